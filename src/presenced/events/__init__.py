"""Event queues: /register, /events, long-poll, heartbeats, expiry. No HTTP here."""

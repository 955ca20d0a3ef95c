"""HTTP: routes and Zulip's REST conventions. No presence rules, no SQL."""

"""Running the app under uvicorn: the configuration ``serve`` builds (``launch``), the
connection limits (``protocol``) and the shutdown that answers parked polls (``shutdown``)."""

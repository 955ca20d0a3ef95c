"""Running the app under uvicorn: the server's configuration and its connection limits."""

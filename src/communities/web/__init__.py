"""The web console: its static files (static/), its HTTP server (console.py, app.py), the sign-in with one-time
links (login.py) and the Connect bridge onto the same gRPC API the game servers use (bridge.py)."""

"""The web layer: blueprints and their CLI commands (``app.py`` registers them)."""

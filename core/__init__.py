"""The ground: errors, settings and the shared vocabulary; it imports nothing of OllyStack."""

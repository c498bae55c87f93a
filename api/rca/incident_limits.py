"""Caps and defaults of the incident analysis requests (shared by the routes and the OpenAPI document)."""
from __future__ import annotations

# Incident analysis reads the raw spans of the window (and of as long a baseline): a bounded scan.
MAX_INCIDENT_WINDOW_S = 6 * 3600
DEFAULT_K, MAX_K = 5, 20  # candidates returned
DEFAULT_EVENTS, MAX_EVENTS = 50, 500  # events of the event chain

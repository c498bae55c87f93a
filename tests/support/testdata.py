"""Paths of the test data the suite carries in tests/testdata/."""
from __future__ import annotations

from pathlib import Path

TESTDATA = Path(__file__).resolve().parents[1] / "testdata"
# The OTLP/JSON request bodies of opentelemetry-proto's examples/ (see its README).
OTLP_EXAMPLES = TESTDATA / "otlp-examples"

"""ops/vector/vector.yaml against OllyStack's own rules: the same correlation IDs from the same
log lines, and the same severity numbers.

Vector is not built here (a large Rust build), so its VRL program is not run: the test reads
the key list and the severity table out of the program, checks them against OllyStack's
extraction (agents/correlation.py) and normalisation (agents/semconv.py), and checks the
sample lines against a table of the IDs the program is written to extract."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from agents.correlation import CorrelationConfig, find_correlation_id
from agents.semconv import normalize_severity

ROOT = Path(__file__).resolve().parents[3]
VRL = yaml.safe_load((ROOT / "ops" / "vector" / "vector.yaml").read_text())["transforms"]["to_otlp"]["source"]
LINES = (ROOT / "tests" / "testdata" / "vector" / "app.log").read_text().splitlines()
# What the VRL program extracts from each line of app.log, by its rules: the first listed
# key of a top-level JSON object holding a non-blank string or an integer.
EXPECTED_IDS = ["order-7f3a", "req-42", "a1b2c3", "123456", "first", "the-next-one", None, None, None,
                "padded-line", None, None, None]
EXPECTED_LEVELS = [9, 13, 17, 5, 17, 9, 21, 1, 21, 9, 0, 0, 0]


def vrl_literal(pattern: str) -> object:
    match = re.search(pattern, VRL, re.DOTALL)
    assert match, f"the VRL program no longer has {pattern!r}"
    return json.loads(match.group(1))


def test_the_program_looks_for_the_same_keys_in_the_same_order() -> None:
    assert tuple(vrl_literal(r"for_each\((\[[^\]]*\])\)")) == CorrelationConfig().body_keys  # type: ignore[arg-type]
    # Its value rule: integers become text, blank strings are skipped, anything else is no ID.
    for rule in ("is_integer(value)", "to_string!(value)", 'strip_whitespace!(value) != ""', "cid == null"):
        assert rule in VRL


@pytest.mark.parametrize("index", range(len(LINES)), ids=[f"line-{i + 1}" for i in range(len(LINES))])
def test_the_same_line_gives_the_same_id(index: int) -> None:
    found = find_correlation_id({}, {}, body=LINES[index])
    assert (found.value if found else None) == EXPECTED_IDS[index]
    assert found is None or found.source == "body"


def test_the_program_maps_levels_to_the_same_severity_numbers() -> None:
    table = vrl_literal(r"severities = (\{.*?\})\n")
    assert isinstance(table, dict)
    assert {text: number for text, number in table.items()} == {
        text: normalize_severity(0, text)[0] for text in table}
    assert all(number for number in table.values())
    for line, expected in zip(LINES, EXPECTED_LEVELS, strict=True):
        try:
            parsed = json.loads(line)
        except ValueError:
            parsed = {}
        fields = parsed if isinstance(parsed, dict) else {}
        level = str(fields.get("level") or fields.get("severity") or fields.get("lvl") or "")
        assert table.get(level.strip().upper(), 0) == expected == normalize_severity(0, level)[0]

"""The Observability page documents every instrument and log field dynamo-es has."""

from __future__ import annotations

from pathlib import Path

from dynamo_es.observability import INSTRUMENTS, LOG_FIELDS

PAGE = (Path(__file__).parents[2] / "docs" / "observability.md").read_text()


def test_every_instrument_is_in_the_metrics_table() -> None:
    """Each instrument's row names it, its kind and its unit."""
    for name, (kind, unit, _) in INSTRUMENTS.items():
        assert f"| `{name}` | {kind} | `{unit}` |" in PAGE, name


def test_every_log_field_is_documented() -> None:
    """Each extra key has a row of its own."""
    for field in LOG_FIELDS:
        assert f"| `{field}` |" in PAGE, field

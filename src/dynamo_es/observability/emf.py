"""CloudWatch Embedded Metric Format: metrics as one JSON log line, which CloudWatch Logs turns into metrics.

In AWS Lambda, whatever a function prints goes to CloudWatch Logs; a line in this format becomes
metrics with no agent, no API call and no package (Powertools Metrics writes the same format,
but would be a run-time dependency).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .metrics import batch_ages, batch_counts

__all__ = ["batch_emf", "emf_document", "emf_line", "is_namespace"]


def is_namespace(namespace: object) -> bool:
    """Whether CloudWatch takes ``namespace`` as a metric namespace (1-255 characters, not blank).

    CloudWatch drops a line with a bad namespace without a word, so callers refuse it up front.
    """
    return isinstance(namespace, str) and 1 <= len(namespace) <= 255 and bool(namespace.strip())


def emf_document(
    namespace: str,
    dimensions: Mapping[str, str],
    values: Mapping[str, tuple[float, str]],
    *,
    timestamp_ms: int | None = None,
) -> dict[str, object]:
    """An EMF document: ``values`` (name -> (value, CloudWatch unit)) under ``namespace`` and ``dimensions``."""
    directive = {
        "Namespace": namespace,
        "Dimensions": [sorted(dimensions)],
        "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
    }
    stamp = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    document: dict[str, object] = {"_aws": {"Timestamp": stamp, "CloudWatchMetrics": [directive]}}
    document.update(dimensions)
    document.update({name: value for name, (value, _) in values.items()})
    return document


def emf_line(namespace: str, dimensions: Mapping[str, str], values: Mapping[str, tuple[float, str]]) -> str:
    """`emf_document` as the one JSON line to print."""
    return json.dumps(emf_document(namespace, dimensions, values), separators=(",", ":"))


def batch_emf(namespace: str, projection: str, changes: Sequence[Any], outcome: Any) -> str:
    """The EMF line of one projection batch: its counts, parked streams, lag and iterator age (by projection)."""
    values: dict[str, tuple[float, str]] = {
        f"Events{name.title()}": (float(count), "Count") for name, count in batch_counts(outcome).items()
    }
    values["StreamsParked"] = (float(len(outcome.parked)), "Count")
    lag, iterator_age = batch_ages(changes, outcome)
    if lag is not None:
        values["Lag"] = (lag * 1000, "Milliseconds")
    if iterator_age is not None:
        values["IteratorAge"] = (iterator_age * 1000, "Milliseconds")
    return emf_line(namespace, {"Projection": projection}, values)

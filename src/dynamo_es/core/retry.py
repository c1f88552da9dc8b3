"""The bounded, jittered backoff that every retry in dynamo-es waits by."""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(retry: int, base_seconds: float, max_seconds: float) -> float:
    """Exponential backoff with full jitter: retry n (from 0) waits up to ``base * 2**n``, capped."""
    return random.uniform(0, min(max_seconds, base_seconds * 2**retry))  # noqa: S311 (jitter, not crypto)

"""The DynamoDB flows' vocabulary: the core's steps (`Call`, `Sleep`) and their drivers, on a client.

An append, a commit or a load is written once, as a generator that yields a `Call` (or a
`Sleep` between retries) and receives the response (or has the botocore error thrown in).
`drive()` runs a flow on a botocore client and `drive_async()` on an aiobotocore one: the
core's `run_steps` and `run_steps_async`, so one vocabulary and one pair of drivers serve the
runners and the stores alike (h11 and httpx are the model).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, TypeVar

from ...core.steps import Call, Sleep, Step, run_steps, run_steps_async

__all__ = ["Call", "Flow", "Sleep", "drive", "drive_async"]

T = TypeVar("T")

Flow = Generator[Step, Any, T]
"""A store algorithm: yields requests (and pauses), receives responses, returns its result."""


def drive(flow: Flow[T], client: Any) -> T:
    """Run ``flow`` on a (sync) botocore client."""
    return run_steps(flow, client)


async def drive_async(flow: Flow[T], client: Any) -> T:
    """Run ``flow`` on an aiobotocore client: the same decisions, non-blocking I/O."""
    return await run_steps_async(flow, client)

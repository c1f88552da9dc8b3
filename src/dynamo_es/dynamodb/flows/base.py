"""The store's algorithms without I/O: generators that yield the DynamoDB calls they need.

An append, a commit or a load is written once, as a generator that yields a `Call`
(or a `Sleep` between retries) and receives the response (or has the botocore error
thrown in). `drive()` runs a flow on a botocore client; `drive_async()` runs the same
flow on an aiobotocore client. So the sync and the async stores share every decision --
planning, encoding, decoding, retries, error classification, read-backs -- and differ only in
how a request travels (h11 and httpx are the model).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from typing import Any, TypeVar

import attrs

from .errors import BOUNDARY_ERRORS

__all__ = ["Call", "Flow", "Sleep", "drive", "drive_async"]

T = TypeVar("T")


@attrs.frozen
class Call:
    """One DynamoDB request: the client method's name (``"query"``) and its parameters."""

    operation: str
    params: dict[str, Any]


@attrs.frozen
class Sleep:
    """A pause before a retry; ``Sleep(0)`` lets an event loop run other tasks during long decoding."""

    seconds: float


Flow = Generator[Call | Sleep, Any, T]
"""A store algorithm: yields requests, receives responses, returns its result."""


def drive(flow: Flow[T], client: Any) -> T:
    """Run ``flow`` on a (sync) botocore client."""
    try:
        request = next(flow)
        while True:
            if isinstance(request, Sleep):
                if request.seconds:  # Sleep(0) is a pause for the event loop; a thread needs none
                    time.sleep(request.seconds)
                request = flow.send(None)
                continue
            try:
                response = getattr(client, request.operation)(**request.params)
            except BOUNDARY_ERRORS as error:
                request = flow.throw(error)
            else:
                request = flow.send(response)
    except StopIteration as done:
        result: T = done.value
        return result


async def drive_async(flow: Flow[T], client: Any) -> T:
    """Run ``flow`` on an aiobotocore client: the same decisions, non-blocking I/O."""
    try:
        request = next(flow)
        while True:
            if isinstance(request, Sleep):
                await asyncio.sleep(request.seconds)
                request = flow.send(None)
                continue
            try:
                response = await getattr(client, request.operation)(**request.params)
            except BOUNDARY_ERRORS as error:
                request = flow.throw(error)
            else:
                request = flow.send(response)
    except StopIteration as done:
        result: T = done.value
        return result

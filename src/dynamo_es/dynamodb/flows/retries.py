"""The one retry flow: a request sent again after transient failures, with the one jittered backoff."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs

from ...core.retry import backoff_delay
from ...settings import EventStoreSettings
from .base import Call, Flow, Sleep
from .errors import BOUNDARY_ERRORS, Failure, classify

__all__ = ["GaveUp", "send"]

log = logging.getLogger("dynamo_es")


@attrs.frozen
class GaveUp:
    """A request that failed for good: not transient, or transient past ``max_transient_retries``."""

    kind: Failure
    reason: str
    error: BaseException
    attempts: int


def send(call: Call, settings: EventStoreSettings, what: Callable[[], str]) -> Flow[Any]:
    """Send ``call``; after a transient failure wait and send it again (the same request, the same token).

    Returns the response, or a `GaveUp` saying why and after how many attempts. ``what()`` names
    the request in the INFO line logged before each retry (called only then: sends are hot).
    """
    retries = 0
    while True:
        try:
            return (yield call)
        except BOUNDARY_ERRORS as error:
            kind, reason = classify(error)
            if kind is not Failure.TRANSIENT or retries >= settings.max_transient_retries:
                return GaveUp(kind, reason, error, retries + 1)
        delay = backoff_delay(retries, settings.retry_base_delay_ms / 1000, settings.retry_max_delay_ms / 1000)
        retries += 1
        log.info("%s: %s, retry %d in %.3fs", what(), reason, retries, delay)
        yield Sleep(delay)

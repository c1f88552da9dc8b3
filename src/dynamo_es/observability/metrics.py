"""Metrics through the OpenTelemetry API: one meter, ``dynamo_es``, with the instruments below.

The instruments are made once, from the API's global meter provider (the API binds them to the
application's provider when it sets one later), and again by `use_meter_provider`. Without the
API every function here returns at once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs

from ._otel import available, metrics_api

__all__ = [
    "INSTRUMENTS",
    "observe_batch",
    "record_append",
    "record_load",
    "record_outbox",
    "record_projection",
    "record_retry",
    "recording",
    "use_meter_provider",
]

INSTRUMENTS: dict[str, tuple[str, str, str]] = {
    "dynamo_es.appends": ("counter", "{append}", "Appends and commits, by outcome (ok, conflict, error, ...)"),
    "dynamo_es.conflicts": ("counter", "{conflict}", "Appends and commits refused for a version conflict"),
    "dynamo_es.retries": ("counter", "{retry}", "Requests sent again after a transient failure, by reason"),
    "dynamo_es.throttles": ("counter", "{throttle}", "Retries for throttling (provisioned or request rate)"),
    "dynamo_es.append.events": ("histogram", "{event}", "Events per append or commit"),
    "dynamo_es.load.events": ("histogram", "{event}", "Events per load"),
    "dynamo_es.projection.events": ("counter", "{event}", "Events a projection handled, by outcome"),
    "dynamo_es.projection.parked": ("counter", "{stream}", "Streams a projection parked"),
    "dynamo_es.projection.lag": ("gauge", "s", "Age of the newest event a projection applied, when applied"),
    "dynamo_es.projection.iterator_age": ("gauge", "s", "Age of the newest stream record of a batch"),
    "dynamo_es.outbox.published": ("counter", "{event}", "Events the outbox published"),
    "dynamo_es.outbox.publish_failures": ("counter", "{event}", "Events the outbox failed to publish"),
    "dynamo_es.outbox.backlog": ("gauge", "{event}", "Undispatched events the outbox saw when it last looked"),
}
"""Name -> (kind, unit, description) of every instrument."""


@attrs.define
class _Instruments:
    by_name: dict[str, Any]
    provider: Any = None
    """The meter provider given to `use_meter_provider`; None for the API's global one."""

    @classmethod
    def make(cls, provider: Any = None) -> _Instruments:
        if not available:
            return cls({})
        meter = metrics_api.get_meter("dynamo_es", meter_provider=provider)
        factories = {"counter": meter.create_counter, "histogram": meter.create_histogram}
        factories["gauge"] = meter.create_gauge
        instruments = {
            name: factories[kind](name, unit=unit, description=description)
            for name, (kind, unit, description) in INSTRUMENTS.items()
        }
        return cls(instruments, provider)

    def add(self, name: str, value: float, attributes: dict[str, Any] | None = None) -> None:
        instrument = self.by_name.get(name)
        if instrument is not None and value:
            instrument.add(value, attributes)

    def record(self, name: str, value: float, attributes: dict[str, Any] | None = None) -> None:
        instrument = self.by_name.get(name)
        if instrument is not None:
            if hasattr(instrument, "set"):
                instrument.set(value, attributes)
            else:
                instrument.record(value, attributes)


_INSTRUMENTS = _Instruments.make()


def use_meter_provider(provider: Any) -> None:
    """Record dynamo-es' metrics with ``provider`` rather than the API's global one (None: the global one again)."""
    global _INSTRUMENTS
    _INSTRUMENTS = _Instruments.make(provider)


def recording() -> bool:
    """Whether metrics go to a meter provider (so measuring something that costs a request is worth it)."""
    if not available:
        return False
    provider = _INSTRUMENTS.provider or metrics_api.get_meter_provider()
    return not isinstance(provider, metrics_api.NoOpMeterProvider) and type(provider).__name__ != "_ProxyMeterProvider"


def record_append(events: int, *, outcome: str, commit: bool = False) -> None:
    """One append (or, ``commit``, a multi-stream commit) of ``events`` events and its outcome.

    Outcomes: ok, conflict, error, already_processed (a redelivered commit: nothing written).
    Only what was written counts in the events-per-append histogram.
    """
    if not available:
        return
    kind = "commit" if commit else "append"
    _INSTRUMENTS.add("dynamo_es.appends", 1, {"outcome": outcome, "kind": kind})
    _INSTRUMENTS.add("dynamo_es.conflicts", int(outcome == "conflict"), {"kind": kind})
    if outcome == "ok":
        _INSTRUMENTS.record("dynamo_es.append.events", events, {"kind": kind})


def record_load(events: int) -> None:
    """One load of ``events`` events."""
    if available:
        _INSTRUMENTS.record("dynamo_es.load.events", events)


def record_retry(reason: str, *, throttled: bool, operation: str) -> None:
    """One request of ``operation`` (``query``, ``transact_write_items``, ...) sent again; ``throttled`` by DynamoDB."""
    if available:
        attributes = {"reason": reason, "operation": operation}
        _INSTRUMENTS.add("dynamo_es.retries", 1, attributes)
        _INSTRUMENTS.add("dynamo_es.throttles", int(throttled), attributes)


def record_projection(
    name: str, counts: dict[str, int], *, parked: int, lag: float | None, iterator_age: float | None
) -> None:
    """One batch of projection ``name``: events per outcome, streams parked, lag and iterator age (seconds)."""
    if not available:
        return
    for outcome, count in counts.items():
        _INSTRUMENTS.add("dynamo_es.projection.events", count, {"projection": name, "outcome": outcome})
    _INSTRUMENTS.add("dynamo_es.projection.parked", parked, {"projection": name})
    if lag is not None:
        _INSTRUMENTS.record("dynamo_es.projection.lag", lag, {"projection": name})
    if iterator_age is not None:
        _INSTRUMENTS.record("dynamo_es.projection.iterator_age", iterator_age, {"projection": name})


def record_outbox(*, published: int, failed: int, backlog: int | None = None) -> None:
    """One outbox round: events published and failed, and the backlog when it was counted."""
    if not available:
        return
    _INSTRUMENTS.add("dynamo_es.outbox.published", published)
    _INSTRUMENTS.add("dynamo_es.outbox.publish_failures", failed)
    if backlog is not None:
        _INSTRUMENTS.record("dynamo_es.outbox.backlog", backlog)


def observe_batch(name: str, changes: Sequence[Any], outcome: Any) -> None:
    """`record_projection` of a projection's `BatchOutcome` for ``changes``, lag and iterator age read off them."""
    if not recording():
        return
    lag, iterator_age = batch_ages(changes, outcome)
    record_projection(name, batch_counts(outcome), parked=len(outcome.parked), lag=lag, iterator_age=iterator_age)


def batch_counts(outcome: Any) -> dict[str, int]:
    """Changes applied, skipped and failed in a `BatchOutcome` (a parked stream's failure counts as failed)."""
    return {"applied": outcome.applied, "skipped": outcome.skipped, "failed": len(outcome.failed) + len(outcome.parked)}


def batch_ages(changes: Sequence[Any], outcome: Any) -> tuple[float | None, float | None]:
    """Seconds since the newest applied event was written (lag) and since the newest record was (iterator age).

    Lag is None when nothing was applied; iterator age when no change came from a stream.
    """
    now = time.time()
    lag = iterator_age = None
    if outcome.newest_applied is not None:
        lag = max(0.0, now - outcome.newest_applied.timestamp())
    delivered = [change.approximate_creation_time for change in changes if change.sequence_number]
    if delivered:
        iterator_age = max(0.0, now - max(delivered).timestamp())
    return lag, iterator_age

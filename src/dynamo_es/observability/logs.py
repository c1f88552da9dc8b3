"""Structured log fields: the ``extra`` keys dynamo-es puts on its log records.

Loggers: ``dynamo_es`` (the stores: retries, conflicts, table checks), ``dynamo_es.projections``
(projections, process managers, Lambda handlers), ``dynamo_es.outbox`` (the dispatcher) and
``dynamo_es.streams`` (the Streams subscription). A JSON formatter (Powertools Logger, say)
finds these keys on the record, beside the message:

- ``stream_id``: the stream (``{aggregateType}:{aggregateId}``);
- ``version``: the event version concerned;
- ``projection``: the projection or process manager;
- ``attempt``: which try this was, for failures and retries.
"""

from __future__ import annotations

__all__ = ["LOG_FIELDS", "log_fields"]

LOG_FIELDS = ("stream_id", "version", "projection", "attempt")
"""Every ``extra`` key dynamo-es sets (each record has those that apply)."""


def log_fields(
    stream_id: str | None = None,
    version: int | None = None,
    *,
    projection: str | None = None,
    attempt: int | None = None,
) -> dict[str, object]:
    """The ``extra`` of a log record about ``stream_id`` at ``version`` (keys given as None are left out)."""
    fields = {"stream_id": stream_id, "version": version, "projection": projection, "attempt": attempt}
    return {key: value for key, value in fields.items() if value is not None}

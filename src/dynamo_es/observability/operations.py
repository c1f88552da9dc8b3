"""The spans and metrics of the event store's operations, for the sync and the async store alike.

A store opens one CLIENT span per operation (``dynamo_es.append``, ``dynamo_es.commit``,
``dynamo_es.load``, ``dynamo_es.check_table``) and reports its outcome when it returns; the
span carries OpenTelemetry's DynamoDB attributes and ours (``dynamo_es.*``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .metrics import record_append, record_load
from .tracing import failed, operation, set_attributes

__all__ = [
    "appended",
    "appending",
    "checking_table",
    "committed",
    "committing",
    "encoded_commit",
    "loaded",
    "loading",
]


def appending(table: str, expected_version: int) -> Any:
    """The span of one append after ``expected_version`` (its stream is named by `appended`)."""
    attributes = {"db.operation": "TransactWriteItems", "dynamo_es.expected_version": expected_version}
    return operation("dynamo_es.append", table, attributes)


def appended(span: Any, result: Any, events: int) -> None:
    """Report an append's `AppendResult` of ``events`` events on its span and in the metrics.

    A conflict is an outcome, not an error; a failure (``result.error``) sets the span's status.
    """
    conflict = bool(result.conflict)
    attributes = {
        "dynamo_es.stream_id": result.stream_id,
        "dynamo_es.event_count": events,
        "dynamo_es.new_version": result.new_version,
    }
    set_attributes(span, {**attributes, "dynamo_es.conflict": conflict})
    outcome = "ok" if result.success else "conflict" if conflict else "error"
    failed(span, result.error)
    record_append(events, outcome=outcome)


def committing(tables: Sequence[str]) -> Any:
    """The span of one multi-stream commit (``append_many``, a unit of work) on ``tables``."""
    return operation("dynamo_es.commit", tables, {"db.operation": "TransactWriteItems"})


def encoded_commit(span: Any, appends: Sequence[Any]) -> None:
    """Name a commit's streams and events on its span, once they are encoded (`EncodedAppend`)."""
    attributes = {
        "dynamo_es.stream_ids": [append.stream_id for append in appends],
        "dynamo_es.stream_count": len(appends),
        "dynamo_es.event_count": sum(len(append.records) for append in appends),
    }
    set_attributes(span, attributes)


def committed(span: Any, result: Any, events: int) -> None:
    """Report a commit's `CommitResult` on its span and in the metrics (a redelivery wrote nothing)."""
    conflict = bool(result.conflicts)
    attributes = {"dynamo_es.conflict": conflict, "dynamo_es.already_processed": bool(result.already_processed)}
    set_attributes(span, attributes)
    failed(span, result.error)
    if result.already_processed:
        outcome = "already_processed"
    else:
        outcome = "ok" if result.success else "conflict" if conflict else "error"
    record_append(events, outcome=outcome, commit=True)


def loading(table: str, stream_id: str, from_version: int, to_version: int | None) -> Any:
    """The span of one load of ``stream_id`` (versions ``from_version`` to ``to_version``)."""
    attributes: dict[str, Any] = {
        "db.operation": "Query",
        "aws.dynamodb.consistent_read": True,
        "dynamo_es.stream_id": stream_id,
        "dynamo_es.from_version": from_version,
    }
    if to_version is not None:
        attributes["dynamo_es.to_version"] = to_version
    return operation("dynamo_es.load", table, attributes)


def loaded(span: Any, events: int) -> None:
    """Report how many events a load gave."""
    set_attributes(span, {"dynamo_es.event_count": events})
    record_load(events)


def checking_table(table: str) -> Any:
    """The span of a table check (DescribeTable, and CreateTable when it is missing and allowed)."""
    return operation("dynamo_es.check_table", table, {"db.operation": "DescribeTable"})

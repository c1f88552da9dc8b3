"""A multi-stream commit: several streams' events (and a tracking record) in one DynamoDB transaction.

Planning is free of I/O (what to send, and which stream each transaction item belongs to);
`CommitRun` sends it, retries what is transient, and reads the cancellation reasons
back into conflicts per stream, a redelivery, or an unknown outcome.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

import attrs

from ...core.gc import collection_paused
from ...exceptions import Conflict, EventStoreError, OutcomeUnknownError, TransientStoreError
from ...ports.store import CommitResult, EncodedAppend, Tracking, committed
from ...settings import EventStoreSettings
from ..schema.model import EventItemCodec
from . import requests
from .base import Call, Flow
from .errors import Failure, GaveUp, cancellation_codes, send, unanswered

__all__ = ["CommitPlan", "CommitRun", "plan_commit"]

log = logging.getLogger("dynamo_es")

_TOKEN_NAMESPACE = uuid.UUID("0b7e9a1d-27c4-4f0e-9d53-6a8f1e2c4b70")
_TRACKING = ""
"""The owner of the tracking item in `owners` (streams are never empty)."""


@attrs.frozen
class CommitPlan:
    """TransactWriteItems parameters, and the stream (or tracking) each item belongs to."""

    params: dict[str, Any]
    owners: tuple[str, ...]


def plan_commit(
    table: str,
    codec: EventItemCodec,
    appends: list[EncodedAppend],
    checked: set[str],
    tracking: tuple[Tracking, dict[str, Any]] | None,
) -> CommitPlan:
    """The transaction: the tracking Update first, then per stream its check (if in ``checked``) and Puts."""
    items: list[dict[str, Any]] = []
    owners: list[str] = []
    if tracking is not None:
        items.append({"Update": tracking[1]})
        owners.append(_TRACKING)
    with collection_paused():
        for append in appends:
            if append.stream_id in checked:
                check = requests.check_exists(table, codec, append.stream_id, append.expected_version)
                items.append({"ConditionCheck": check})
                owners.append(append.stream_id)
            for record in append.records:
                items.append({"Put": requests.put_event(table, codec, record)})
                owners.append(append.stream_id)
    token = _token(appends, tracking[0] if tracking else None, tracking[1] if tracking else None)
    return CommitPlan({"TransactItems": items, "ClientRequestToken": token}, tuple(owners))


def _token(appends: list[EncodedAppend], tracking: Tracking | None, update: dict[str, Any] | None) -> str:
    """DynamoDB's idempotency token, derived from everything the commit writes."""
    parts = [f"{a.stream_id}@{a.expected_version}:" + ",".join(r.event_id for r in a.records) for a in appends]
    if tracking is not None and update is not None:
        parts.append(f"{tracking.name}|{tracking.stream_id}|{tracking.version}|{update['ExpressionAttributeValues']}")
    return str(uuid.uuid5(_TOKEN_NAMESPACE, "\n".join(parts)))


class CommitReader(Protocol):
    """What a commit reads after a failure (as flows): versions, slots and tracking."""

    settings: EventStoreSettings

    def version_or_none(self, stream_id: str) -> Flow[int | None]:
        """The stream's version, or None when it cannot be read."""
        ...

    def slot_ids(self, stream_id: str, first: int, last: int) -> Flow[list[str]]:
        """The event ids stored in versions ``first`` to ``last``."""
        ...

    def tracked_version(self, tracking: Tracking) -> Flow[int]:
        """The version recorded under the tracking's name and stream (0 for none)."""
        ...


@attrs.define
class CommitRun:
    """Sends one commit's transaction and tells what its failure means."""

    reader: CommitReader
    appends: list[EncodedAppend]
    tracking: Tracking | None

    def run(self, call: Call, owners: tuple[str, ...]) -> Flow[CommitResult]:
        """Send the transaction, retrying transient failures with the same token."""
        sent = yield from send(call, self.reader.settings, lambda: f"commit of {self._names()}")
        if isinstance(sent, GaveUp):
            return (yield from self._after_failure(sent.kind, sent.reason, sent.error, owners, attempts=sent.attempts))
        return self.committed()

    def committed(self) -> CommitResult:
        """Every append written."""
        return committed(self.appends)

    def conflicted(self, stream_ids: set[str]) -> Flow[CommitResult]:
        """Nothing written: these streams were not at their expected versions."""
        conflicts = []
        for append in self.appends:
            if append.stream_id in stream_ids:
                actual = yield from self.reader.version_or_none(append.stream_id)
                conflicts.append(Conflict(append.stream_id, append.expected_version, actual))
        return CommitResult(conflicts=tuple(conflicts))

    def refused_before_sending(self) -> Flow[CommitResult]:
        """An expected version was found missing before the transaction: a redelivery, or every conflict."""
        if self.tracking is not None and (yield from self._tracked()):
            return CommitResult(already_processed=True)
        conflicts = []
        for append in self.appends:
            actual = yield from self.reader.version_or_none(append.stream_id)
            if actual != append.expected_version:
                conflicts.append(Conflict(append.stream_id, append.expected_version, actual))
        return CommitResult(conflicts=tuple(conflicts))

    def _after_failure(
        self, kind: Failure, reason: str, error: BaseException, owners: tuple[str, ...], *, attempts: int
    ) -> Flow[CommitResult]:
        if kind is Failure.CONFLICT:
            failed = {owners[i] for i, code in enumerate(cancellation_codes(error)) if code == "ConditionalCheckFailed"}
            if _TRACKING in failed:
                return CommitResult(already_processed=True)
            if (yield from self._landed()):  # this very commit, written before (its response lost, its token expired)
                return self.committed()
            return (yield from self.conflicted(failed))
        if kind is Failure.FATAL:
            return _failure(EventStoreError(f"cannot commit to {self._names()}: {reason}"), error)
        return (yield from self._read_back(kind, reason, error, attempts))

    def _read_back(self, kind: Failure, reason: str, error: BaseException, attempts: int) -> Flow[CommitResult]:
        """After a lost response or an exhausted retry: look whether the transaction landed."""
        landed = yield from self._landed()
        if landed:
            log.info("commit of %s: found written after %s", self._names(), reason)
            return self.committed()
        if landed is None or unanswered(error):
            versions = self._first_versions()
            return _failure(OutcomeUnknownError(self._names(), reason, attempts, versions), error)
        return _failure(TransientStoreError(self._names(), reason, attempts, action="commit"), error)

    def _landed(self) -> Flow[bool | None]:
        """Whether the transaction is written (it is atomic: one stream, or the tracking, tells); None if unreadable."""
        try:
            for append in self.appends:
                if append.records:
                    first, last = append.records[0].version, append.records[-1].version
                    stored = yield from self.reader.slot_ids(append.stream_id, first, last)
                    return stored == [record.event_id for record in append.records]
            if self.tracking is not None:
                return (yield from self._tracked())
        except EventStoreError:
            return None
        return False

    def _tracked(self) -> Flow[bool]:
        assert self.tracking is not None
        return (yield from self.reader.tracked_version(self.tracking)) >= self.tracking.version

    def _first_versions(self) -> tuple[int, int]:
        for append in self.appends:
            if append.records:
                return append.records[0].version, append.records[-1].version
        version = self.tracking.version if self.tracking is not None else 0
        return version, version

    def _names(self) -> str:
        names = [append.stream_id for append in self.appends if append.records]
        if self.tracking is not None:
            names.append(f"tracking {self.tracking.name}/{self.tracking.stream_id}")
        return ", ".join(names)


def _failure(failure: EventStoreError, cause: BaseException) -> CommitResult:
    failure.__cause__ = cause
    return CommitResult(error=failure, outcome_unknown=isinstance(failure, OutcomeUnknownError))

"""One append call's progress: retries of transient failures, and what a failure means for the result."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import attrs
from botocore.exceptions import BotoCoreError
from pynamodb.exceptions import PynamoDBException

from ...core.serialization import EncodedEvent
from ...exceptions import EventStoreError, OutcomeUnknownError, TransientStoreError
from ...ports.store import AppendResult
from ...settings import EventStoreSettings
from .base import Call, Flow
from .errors import Failure, GaveUp, send

__all__ = ["Attempt", "SlotReader", "unanswered"]

log = logging.getLogger("dynamo_es")


class SlotReader(Protocol):
    """What an attempt reads back after a failure (as flows): the stream's version, the ids in some slots."""

    settings: EventStoreSettings

    def version_or_none(self, stream_id: str) -> Flow[int | None]:
        """The stream's version, or None when it cannot be read."""
        ...

    def slot_ids(self, stream_id: str, first: int, last: int) -> Flow[list[str]]:
        """The event ids stored in versions ``first`` to ``last``."""
        ...


@attrs.define
class Attempt:
    """One append call's progress, and what each failed write means for its result."""

    store: SlotReader
    stream_id: str
    expected_version: int
    written: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.written = self.expected_version

    def succeeded(self) -> AppendResult:
        """The result of an append that wrote everything."""
        return AppendResult(
            success=True,
            stream_id=self.stream_id,
            expected_version=self.expected_version,
            new_version=self.written,
        )

    def conflicted(self, actual_version: int | None) -> AppendResult:
        """The result of an append that met another writer's version (``actual_version`` when known)."""
        return AppendResult(
            success=False,
            stream_id=self.stream_id,
            expected_version=self.expected_version,
            new_version=self.written,
            conflict=True,
            actual_version=actual_version,
        )

    def failed(self, error: EventStoreError) -> AppendResult:
        """The result of an append that failed with ``error`` (what was written before it counts)."""
        return AppendResult(
            success=False,
            stream_id=self.stream_id,
            expected_version=self.expected_version,
            new_version=self.written,
            error=error,
        )

    def run(self, call: Call, batch: Sequence[EncodedEvent]) -> Flow[AppendResult | None]:
        """Send ``call``, retrying transient failures; None on success, else the result to return."""
        sent = yield from send(call, self.store.settings, lambda: self.stream_id)
        if isinstance(sent, GaveUp):
            return (yield from self._after_failure(sent.kind, sent.reason, sent.error, batch, attempts=sent.attempts))
        return None

    def _after_failure(
        self,
        kind: Failure,
        reason: str,
        error: BaseException,
        batch: Sequence[EncodedEvent],
        *,
        attempts: int,
    ) -> Flow[AppendResult | None]:
        """What a final failure means, read back from the slots where it could be ambiguous.

        A lost response may hide a write that happened: the slots say whether they hold this
        batch (success), other events (a conflict) or nothing; when they cannot be read, the
        outcome is reported as unknown, never as "nothing written".
        """
        if kind is Failure.FATAL:
            return self._failure(EventStoreError(f"cannot append to {self.stream_id}: {reason}"), error)
        stored = yield from self._stored_ids(batch)
        if stored == [record.event_id for record in batch]:
            log.info("%s: versions %d-%d hold these events", self.stream_id, batch[0].version, batch[-1].version)
            return None
        if kind is not Failure.TRANSIENT or stored:
            return self.conflicted((yield from self.store.version_or_none(self.stream_id)))
        versions = (batch[0].version, batch[-1].version)
        if stored is None or unanswered(error):
            # Empty slots prove nothing after a timeout: the transaction may still be committing.
            return self._failure(OutcomeUnknownError(self.stream_id, reason, attempts, versions), error)
        return self._failure(TransientStoreError(self.stream_id, reason, attempts), error)

    def _failure(self, failure: EventStoreError, cause: BaseException) -> AppendResult:
        failure.__cause__ = cause
        result = self.failed(failure)
        return attrs.evolve(result, outcome_unknown=isinstance(failure, OutcomeUnknownError))

    def _stored_ids(self, batch: Sequence[EncodedEvent]) -> Flow[list[str] | None]:
        """The event ids in the batch's slots, or None when they cannot be read."""
        try:
            return (yield from self.store.slot_ids(self.stream_id, batch[0].version, batch[-1].version))
        except EventStoreError:
            return None


def unanswered(error: BaseException) -> bool:
    """Whether DynamoDB never answered (a timeout or a lost connection), so the write may still land."""
    cause = error.cause if isinstance(error, PynamoDBException) else error
    return isinstance(cause, BotoCoreError)

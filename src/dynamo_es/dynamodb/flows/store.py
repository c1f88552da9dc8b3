"""The event store's appends and commits as flows: shared by the sync and the async store.

`StoreCore` adds the writes to `StoreReads` (settings, serializer, the model's codec, the
versions this process has seen, the reads) and returns `Flow` generators;
the stores only drive them on their client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from ...core.gc import collection_paused
from ...core.serialization import EncodedEvent
from ...domain.events import EventMetadata
from ...exceptions import EventStoreError, OutcomeUnknownError, TransientStoreError
from ...observability.logs import log_fields
from ...ports.lifecycle import with_expiry
from ...ports.store import (
    AppendResult,
    CommitResult,
    EncodedAppend,
    StreamAppend,
    Tracking,
    check_tracking,
    check_transaction_size,
    encode_append,
    encode_appends,
)
from ...settings import EventStoreSettings
from ..schema.limits import (
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_ITEMS,
    plan_transactions,
    request_size,
)
from . import requests
from .archive import StreamArchive
from .base import Call, Flow
from .commit import CommitRun, plan_commit
from .errors import Failure, GaveUp, send, unanswered

__all__ = ["Attempt", "SlotReader", "StoreCore"]

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
            first, last = batch[0].version, batch[-1].version
            fields = log_fields(self.stream_id, last)
            log.info("%s: versions %d-%d hold these events", self.stream_id, first, last, extra=fields)
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


@attrs.define
class StoreCore(StreamArchive):
    """Everything an event store does, as flows; see the "Transactions and limits" docs page."""

    # -- append ---------------------------------------------------------------------------

    def encode(
        self,
        aggregate_id: str,
        aggregate_type: str,
        events: Sequence[Any],
        expected_version: int,
        metadata: EventMetadata | None,
    ) -> tuple[str, list[EncodedEvent]]:
        """Validate and encode an append (raises before anything is sent)."""
        return encode_append(
            self.serializer,
            aggregate_id,
            aggregate_type,
            events,
            expected_version,
            metadata,
            size_of=self.codec.size,
            max_bytes=MAX_ITEM_BYTES,
        )

    def append(self, stream_id: str, records: list[EncodedEvent], expected_version: int) -> Flow[AppendResult]:
        """Write encoded events after ``expected_version``, in transactions or singly."""
        attempt = Attempt(self, stream_id, expected_version)
        if not records:
            return attempt.succeeded()
        if self.expire_after:
            records = with_expiry(records, (yield from self.expiry_of(stream_id, expected_version)))
        if self.settings.use_transactional_write:
            return (yield from self._append_in_transactions(attempt, records))
        return (yield from self._append_singly(attempt, records))

    def _request_size(self, record: EncodedEvent) -> int:
        return request_size(record, self.table)

    def _append_in_transactions(self, attempt: Attempt, records: list[EncodedEvent]) -> Flow[AppendResult]:
        """Each transaction checks, inside itself, the version before its first event (but a new stream's first).

        The first checks ``expected_version``, each later one the last version the one before it
        wrote: so no transaction can land on a stream that was deleted (or truncated) since the
        append began, whatever another process did between two of its transactions.
        """
        events = min(self.settings.max_batch_size, MAX_TRANSACTION_ITEMS)
        checked_events = min(self.settings.max_batch_size, MAX_TRANSACTION_ITEMS - 1)
        batches = plan_transactions(
            records,
            capacity=checked_events,
            first_capacity=checked_events if attempt.expected_version else events,
            max_bytes=MAX_TRANSACTION_BYTES,
            size_of=self._request_size,
        )
        for batch in batches:
            checked = batch[0].version - 1 or None  # a new stream's first transaction checks nothing
            with collection_paused():
                params = requests.transaction(self.table, self.codec, batch, checked)
            failed = yield from attempt.run(Call("transact_write_items", params), batch)
            if failed is not None:
                return failed
            attempt.written = batch[-1].version
        return attempt.succeeded()

    def _append_singly(self, attempt: Attempt, records: list[EncodedEvent]) -> Flow[AppendResult]:
        expected = attempt.expected_version
        if expected > 0 and not (yield from self.slot_ids(attempt.stream_id, expected, expected)):
            return attempt.conflicted((yield from self.version_or_none(attempt.stream_id)))
        for record in records:
            call = Call("put_item", requests.put_event(self.table, self.codec, record))
            failed = yield from attempt.run(call, [record])
            if failed is not None:
                return failed
            attempt.written = record.version
        return attempt.succeeded()

    # -- several streams at once -------------------------------------------------------------

    def encode_commit(self, appends: Sequence[StreamAppend], tracking: Tracking | None) -> list[EncodedAppend]:
        """Validate and encode a commit; refuse one that no transaction can hold (before anything is sent)."""
        check_tracking(tracking)
        encoded = encode_appends(self.serializer, appends, size_of=self.codec.size, max_bytes=MAX_ITEM_BYTES)
        encoded = [append for append in encoded if append.records]
        records = [record for append in encoded for record in append.records]
        size = sum(map(self._request_size, records))
        check_transaction_size(encoded, len(records) + (tracking is not None), size)
        return encoded

    def commit(self, encoded: list[EncodedAppend], tracking: Tracking | None) -> Flow[CommitResult]:
        """Write an encoded commit in one transaction, all or nothing."""
        if self.expire_after:
            encoded = yield from self._with_expiries(encoded)
        run = CommitRun(self, encoded, tracking)
        if not encoded and tracking is None:
            return run.committed()
        records = sum(len(append.records) for append in encoded)
        room = MAX_TRANSACTION_ITEMS - records - (tracking is not None)
        checked, missing = yield from self._commit_checks(encoded, room=room)
        if missing:  # found before sending: say what the transaction would have said
            return (yield from run.refused_before_sending())
        update = (tracking, self.tracking_update(tracking)) if tracking is not None else None
        plan = plan_commit(self.table, self.codec, encoded, checked, update)
        return (yield from run.run(Call("transact_write_items", plan.params), plan.owners))

    def _with_expiries(self, encoded: list[EncodedAppend]) -> Flow[list[EncodedAppend]]:
        """A commit's appends, each carrying its stream's expiry (temporary streams only)."""
        stamped = []
        for append in encoded:
            expires_at = yield from self.expiry_of(append.stream_id, append.expected_version)
            stamped.append(attrs.evolve(append, records=with_expiry(list(append.records), expires_at)))
        return stamped

    def _commit_checks(self, encoded: list[EncodedAppend], *, room: int) -> Flow[tuple[set[str], set[str]]]:
        """Which streams' expected versions a commit checks inside it, and which (read now) do not exist.

        Checks go inside the transaction while there is room, and the rest are read
        (consistently) before it.
        """
        checked = [a for a in encoded if a.expected_version]
        inside = {a.stream_id for a in checked[:room]}
        missing: set[str] = set()
        for append in checked[room:]:
            if not (yield from self.slot_ids(append.stream_id, append.expected_version, append.expected_version)):
                missing.add(append.stream_id)
        return inside, missing

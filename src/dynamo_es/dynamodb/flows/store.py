"""The event store's appends and commits as flows: shared by the sync and the async store.

`StoreCore` adds the writes to `StoreReads` (settings, serializer, the model's codec, the
versions this process has seen, the reads) and returns `Flow` generators;
the stores only drive them on their client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs

from ...core.gc import collection_paused
from ...core.serialization import EncodedEvent
from ...domain.events import EventMetadata
from ...domain.lifecycle import STREAM_TRUNCATED, StreamDeleted, StreamTruncated
from ...exceptions import (
    ConcurrencyError,
    EventStoreError,
    InvalidStreamError,
    StreamDeletedError,
    TransientStoreError,
)
from ...ports.lifecycle import StreamDeletion, StreamTruncation
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
from ..schema.limits import (
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_ITEMS,
    plan_transactions,
    request_size,
)
from . import requests
from .attempt import Attempt
from .base import Call, Flow
from .commit import CommitRun, plan_commit
from .errors import Failure, GaveUp, send
from .reads import StoreReads

__all__ = ["StoreCore"]

log = logging.getLogger("dynamo_es")


@attrs.define
class StoreCore(StoreReads):
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
        if self.settings.use_transactional_write:
            return (yield from self._append_in_transactions(attempt, records))
        return (yield from self._append_singly(attempt, records))

    def _request_size(self, record: EncodedEvent) -> int:
        return request_size(record, self.table)

    def _append_in_transactions(self, attempt: Attempt, records: list[EncodedEvent]) -> Flow[AppendResult]:
        capacity = min(self.settings.max_batch_size, MAX_TRANSACTION_ITEMS)
        check = yield from self._expected_check(attempt, records, capacity)
        if check is False:
            return attempt.conflicted((yield from self.version_or_none(attempt.stream_id)))
        batches = plan_transactions(
            records,
            capacity=capacity,
            first_capacity=capacity - 1 if check else capacity,
            max_bytes=MAX_TRANSACTION_BYTES,
            size_of=self._request_size,
        )
        for index, batch in enumerate(batches):
            checked = attempt.expected_version if index == 0 and check else None
            with collection_paused():
                params = requests.transaction(self.table, self.codec, batch, checked)
            failed = yield from attempt.run(Call("transact_write_items", params), batch)
            if failed is not None:
                return failed
            attempt.written = batch[-1].version
        return attempt.succeeded()

    def _expected_check(self, attempt: Attempt, records: list[EncodedEvent], capacity: int) -> Flow[bool | None]:
        """How the first transaction makes sure ``expected_version`` exists, so no gap can open.

        True: a ConditionCheck inside it (a free slot). None: nothing to check (a new stream).
        When the check would take the slot of the 100th event, a consistent read of that version
        costs no slot: None if it exists, False if not (a conflict). A version this process saw
        is checked all the same: another process may have deleted the stream since.
        """
        expected = attempt.expected_version
        if expected == 0:
            return None
        if len(records) < capacity:
            return True
        return None if (yield from self.slot_ids(attempt.stream_id, expected, expected)) else False

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

    # -- deleting a stream ---------------------------------------------------------------------

    def delete_stream(
        self, stream_id: str, expected: int | None, reason: str, *, reuse_id: bool
    ) -> Flow[StreamDeletion]:
        """Seal the stream with its marks (one transaction), then remove its events bottom up.

        The seal puts `StreamDeleted` into the slot after the last event and over version 1, so
        no writer can append after the last event, start the stream again, or build on a version
        whose successor is already gone. Events go in transactions of 100 Deletes; a deletion cut
        short is finished by the next call, which finds the marks.
        """
        for _ in range(_SEAL_ATTEMPTS):
            last_item = yield from self.last_item(stream_id)
            if last_item is None:
                if expected:
                    raise ConcurrencyError(stream_id, expected, 0)
                return StreamDeletion(stream_id=stream_id, last_version=0, removed=0)
            version = self.codec.sort_key_of(last_item)
            if self.codec.is_deletion_mark(last_item):
                return (yield from self._finish_deletion(stream_id, version, reuse_id=reuse_id, resumed=True))
            if expected is not None and expected != version:
                raise ConcurrencyError(stream_id, expected, version)
            if (yield from self._seal(stream_id, version, reason)):
                return (yield from self._finish_deletion(stream_id, version + 1, reuse_id=reuse_id, resumed=False))
            if expected is not None:  # another writer appended after the version read
                raise ConcurrencyError(stream_id, expected, (yield from self.version_or_none(stream_id)))
        raise EventStoreError(f"cannot delete {stream_id}: writers kept appending ({_SEAL_ATTEMPTS} attempts)")

    def _seal(self, stream_id: str, last: int, reason: str) -> Flow[bool]:
        """Put the marks after ``last`` and over version 1 in one transaction; False if ``last`` is not the last."""
        aggregate_type, _, aggregate_id = stream_id.partition(":")
        mark = StreamDeleted(last, reason)
        after = self.encode(aggregate_id, aggregate_type, [mark], last, None)[1][0]
        first = self.encode(aggregate_id, aggregate_type, [mark], 0, None)[1][0]
        over = {"TableName": self.table, "Item": self.codec.encode(attrs.evolve(first, is_dispatched=True))}
        params = {
            "TransactItems": [
                {"Put": requests.put_event(self.table, self.codec, attrs.evolve(after, is_dispatched=True))},
                {"Put": {**over, **requests.not_deleted(self.codec)}},
            ],
            "ClientRequestToken": requests.request_token([after, first], last),
        }
        sent = yield from send(Call("transact_write_items", params), self.settings, lambda: f"{stream_id}: seal")
        if isinstance(sent, GaveUp):
            if sent.kind is Failure.CONFLICT:
                return False
            raise _gave_up(stream_id, "seal", sent)
        return True

    def _finish_deletion(
        self, stream_id: str, mark_version: int, *, reuse_id: bool, resumed: bool
    ) -> Flow[StreamDeletion]:
        """Remove versions 2 to the one before the mark (what is left of them), then the marks if asked."""
        versions = yield from self._stored_versions(stream_id, (2, mark_version - 1))
        removed = (not resumed) + (yield from self._delete_items(stream_id, versions))
        if reuse_id:
            removed += yield from self._delete_items(stream_id, [1, mark_version])
        return StreamDeletion(
            stream_id=stream_id,
            last_version=mark_version - 1,
            removed=removed,
            already_deleted=resumed,
            reusable=reuse_id,
        )

    def _stored_versions(self, stream_id: str, versions: tuple[int, int]) -> Flow[list[int]]:
        if versions[1] < versions[0]:
            return []
        items = yield from self.raw_pages(stream_id, versions, limit=None, forward=True)
        return [self.codec.sort_key_of(item) for item in items]

    def _delete_items(self, stream_id: str, versions: list[int]) -> Flow[int]:
        """Delete the items at ``versions``, a transaction of at most 100 at a time, lowest first."""
        for start in range(0, len(versions), MAX_TRANSACTION_ITEMS):
            chunk = versions[start : start + MAX_TRANSACTION_ITEMS]
            items = [{"Delete": {"TableName": self.table, "Key": self.codec.key(stream_id, v)}} for v in chunk]
            token = requests.deletion_token(stream_id, chunk)
            params = {"TransactItems": items, "ClientRequestToken": token}
            sent = yield from send(Call("transact_write_items", params), self.settings, lambda: f"{stream_id}: delete")
            if isinstance(sent, GaveUp):
                raise _gave_up(stream_id, f"delete versions {chunk[0]}-{chunk[-1]}", sent)
        return len(versions)

    # -- truncating a stream -------------------------------------------------------------------

    def truncate_stream(self, stream_id: str, before: int) -> Flow[StreamTruncation]:
        """Put `StreamTruncated` over version 1 (one conditional Put), then delete versions 2 to ``before - 1``."""
        last_item = yield from self.last_item(stream_id)
        if last_item is not None and self.codec.is_deletion_mark(last_item):
            raise StreamDeletedError(stream_id, self.codec.sort_key_of(last_item) - 1)
        last = 0 if last_item is None else self.codec.sort_key_of(last_item)
        if before > last:
            raise InvalidStreamError(f"cannot truncate {stream_id} before version {before}: it ends at {last}")
        first = yield from self._first_kept(stream_id)
        if first >= before:
            return StreamTruncation(stream_id=stream_id, first_version=first, removed=0)
        aggregate_type, _, aggregate_id = stream_id.partition(":")
        mark = self.encode(aggregate_id, aggregate_type, [StreamTruncated(before)], 0, None)[1][0]
        item = {"TableName": self.table, "Item": self.codec.encode(attrs.evolve(mark, is_dispatched=True))}
        call = Call("put_item", {**item, **requests.not_deleted(self.codec)})
        sent = yield from send(call, self.settings, lambda: f"{stream_id}: truncate")
        if isinstance(sent, GaveUp):
            if sent.kind is Failure.CONFLICT:  # deleted meanwhile
                raise StreamDeletedError(stream_id, last)
            raise _gave_up(stream_id, "truncate", sent)
        removed = yield from self._delete_items(
            stream_id, (yield from self._stored_versions(stream_id, (2, before - 1)))
        )
        return StreamTruncation(stream_id=stream_id, first_version=before, removed=removed + (first == 1))

    def _first_kept(self, stream_id: str) -> Flow[int]:
        """The first version a (truncated) stream keeps: 1, or its mark's ``first_version``."""
        items = yield from self.raw_pages(stream_id, (1, 1), limit=1, forward=True)
        if not items or self.codec.is_deletion_mark(items[0]):
            return 1
        record = self.codec.decode(items[0])
        if record.event_type != STREAM_TRUNCATED:
            return 1
        mark = self.serializer.decode(record).event
        return mark.first_version if isinstance(mark, StreamTruncated) else 1


_SEAL_ATTEMPTS = 20
"""Reads of the last version, then a seal, before a deletion gives up on writers that keep appending."""


def _gave_up(stream_id: str, action: str, gave_up: GaveUp) -> EventStoreError:
    if gave_up.kind is Failure.TRANSIENT:
        return TransientStoreError(stream_id, gave_up.reason, gave_up.attempts, action=action)
    return EventStoreError(f"cannot {action} of {stream_id}: {gave_up.reason}")

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
from .lifecycle import StreamLifecycle

__all__ = ["StoreCore"]

log = logging.getLogger("dynamo_es")


@attrs.define
class StoreCore(StreamLifecycle):
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

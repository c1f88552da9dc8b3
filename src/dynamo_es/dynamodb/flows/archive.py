"""Archiving a stream as flows: its events moved to the archive table (the same schema) and back.

Archiving first seals the stream (one transaction): `StreamArchived` after the last event and
over version 1, whose original goes to the archive in the same transaction. Then the events
move bottom up, 49 a transaction (a Put into one table and a Delete from the other each) with
a check that version 1 still holds this archiving's mark. So every version is in exactly one
of the two tables at any time, nothing can be appended meanwhile, and a move cut short is
finished by the next call. Restoring moves them back the same way and then, in one last
transaction, puts version 1 back and removes the marks.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from ...core.serialization import EncodedEvent
from ...domain.events import StoredEvent
from ...domain.lifecycle import STREAM_ARCHIVED, STREAM_DELETED, STREAM_TRUNCATED, StreamArchived
from ...exceptions import AggregateNotFoundError, EventStoreError, StreamTruncatedError
from ...ports.lifecycle import StreamArchival, check_loadable, first_kept_version, last_version_of
from ..schema.limits import MAX_TRANSACTION_ITEMS
from . import requests
from .base import Call, Flow
from .errors import Failure, GaveUp, cancellation_codes, cancelled_item, send
from .lifecycle import StreamLifecycle, gave_up_error
from .reads import StoreReads

__all__ = ["StreamArchive"]

_MOVES = (MAX_TRANSACTION_ITEMS - 1) // 2
"""Events a move transaction carries: a Put and a Delete each, beside the check of the mark (49)."""
_ATTEMPTS = 20
_RETURN_TAKEN = {"ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
"""Asks a cancelled transaction for the item that took a slot (so the seal need not read it)."""
_TOKENS = uuid.UUID("5d3e9a50-2f4b-4c7e-8d21-7a9b0c6e1f38")


@attrs.define
class StreamArchive(StreamLifecycle):
    """The store's archiving and restoring, as flows."""

    @property
    def archive_table(self) -> str:
        """The archive table's name."""
        return self.settings.archive_table_name

    def archive_reads(self) -> StoreReads:
        """The reads of this store, on the archive table."""
        settings = attrs.evolve(self.settings, events_table_name=self.archive_table)
        return StoreReads(settings, self.serializer, self.codec, self.tracking_update, self.tracking_attribute)

    def archive_stream(self, stream_id: str) -> Flow[StreamArchival]:
        """Seal the stream with its marks (moving version 1 with them), then move the rest bottom up."""
        last_item = yield from self.last_item(stream_id)
        first: dict[str, Any] | None = None
        for _ in range(_ATTEMPTS):
            if last_item is None:
                raise AggregateNotFoundError(*reversed(stream_id.split(":", 1)))
            last = self.codec.sort_key_of(last_item)
            if self.codec.is_archive_mark(last_item):
                mark = yield from self._archive_mark(stream_id)
                moved = yield from self._to_archive(stream_id, last - 1, mark)
                return StreamArchival(
                    stream_id=stream_id, last_version=last - 1, moved=moved, archived=True, already=True
                )
            if self.codec.is_deletion_mark(last_item):
                check_loadable(self.serializer, [self.codec.decode(last_item)])
            first = first or (yield from self.first_item(stream_id))
            sealed = yield from self._seal_archive(stream_id, last, first)
            if isinstance(sealed, str):
                moved = yield from self._to_archive(stream_id, last, sealed)
                return StreamArchival(stream_id=stream_id, last_version=last, moved=moved + 1, archived=True)
            if sealed is None:
                first, last_item = None, (yield from self.last_item(stream_id))
            else:
                last_item = sealed
        raise EventStoreError(f"cannot archive {stream_id}: writers kept appending ({_ATTEMPTS} attempts)")

    def _seal_archive(
        self, stream_id: str, last: int, first: dict[str, Any] | None
    ) -> Flow[str | dict[str, Any] | None]:
        """Marks after ``last`` and over version 1 (``first``), and version 1 into the archive.

        Returns the mark's id; or the item a writer appended after ``last`` meanwhile (seal after
        that one next, with no read between: a busy stream's writers do not starve the archiving);
        or None when something else changed (read the stream again).
        """
        if first is None or self.codec.event_type_of(first) in (STREAM_DELETED, STREAM_ARCHIVED):
            return None  # a deletion or an archiving began meanwhile: the next read sees its mark
        after, over = (self.mark(stream_id, StreamArchived(last), slot) for slot in (last, 0))
        params = {
            "TransactItems": [
                {"Put": {**requests.put_event(self.table, self.codec, after), **_RETURN_TAKEN}},
                {"Put": {"TableName": self.table, "Item": self.codec.encode(over), **self._holds_id(first)}},
                {"Put": {"TableName": self.archive_table, "Item": first}},
            ],
            "ClientRequestToken": requests.request_token([after, over], last),
        }
        sent = yield from send(Call("transact_write_items", params), self.settings, lambda: f"{stream_id}: archive")
        if isinstance(sent, GaveUp):
            if sent.kind is Failure.CONFLICT:
                return _appended(sent.error)
            raise gave_up_error(stream_id, "archive", sent)
        return over.event_id

    def _to_archive(self, stream_id: str, last: int, guard: str) -> Flow[int]:
        """Move versions 2 to ``last`` to the archive; raises when the stream was restored meanwhile."""
        moved = yield from self._move(stream_id, (2, last), guard, to_archive=True)
        if moved is None:
            raise EventStoreError(f"cannot go on archiving {stream_id}: it was restored meanwhile")
        return moved

    def _holds_id(self, item: dict[str, Any]) -> dict[str, Any]:
        """The condition that an item still holds ``item``'s event id."""
        return {
            "ConditionExpression": "#id = :read",
            "ExpressionAttributeNames": {"#id": self.codec.event_id_attribute},
            "ExpressionAttributeValues": {":read": {"S": self.codec.event_id_of(item)}},
        }

    def _archive_mark(self, stream_id: str) -> Flow[str]:
        """The event id of the `StreamArchived` mark over version 1 (what every move checks)."""
        first = yield from self.first_item(stream_id)
        if first is None or not self.codec.is_archive_mark(first):
            raise EventStoreError(f"cannot go on archiving {stream_id}: its version 1 is not an archive's mark")
        return self.codec.event_id_of(first)

    def _move(self, stream_id: str, versions: tuple[int, int], guard: str, *, to_archive: bool) -> Flow[int | None]:
        """Move the items at ``versions`` between the tables, lowest first; None when the mark is gone."""
        source, target = (self.table, self.archive_table) if to_archive else (self.archive_table, self.table)
        reads = self if to_archive else self.archive_reads()
        items = (
            []
            if versions[1] < versions[0]
            else (yield from reads.raw_pages(stream_id, versions, limit=None, forward=True))
        )
        for start in range(0, len(items), _MOVES):
            chunk = items[start : start + _MOVES]
            transaction: list[dict[str, Any]] = [{"ConditionCheck": self._guard(stream_id, guard)}]
            for item in chunk:
                key = self.codec.key(stream_id, self.codec.sort_key_of(item))
                transaction += [
                    {"Put": {"TableName": target, "Item": item}},
                    {"Delete": {"TableName": source, "Key": key}},
                ]
            token = uuid.uuid5(_TOKENS, f"{stream_id}\n{guard}\n{target}\n{self.codec.sort_key_of(chunk[0])}")
            sent = yield from send(
                Call("transact_write_items", {"TransactItems": transaction, "ClientRequestToken": str(token)}),
                self.settings,
                lambda: f"{stream_id}: move",
            )
            if isinstance(sent, GaveUp) and sent.kind is Failure.CONFLICT:
                return None
            if isinstance(sent, GaveUp):
                raise gave_up_error(stream_id, "move events", sent)
        return len(items)

    # -- restoring ---------------------------------------------------------------------------

    def restore_stream(self, stream_id: str) -> Flow[StreamArchival]:
        """Move an archived stream's events back, then put version 1 back and remove the marks (one transaction)."""
        first = yield from self.first_item(stream_id)
        if first is None:
            raise AggregateNotFoundError(*reversed(stream_id.split(":", 1)))
        if not self.codec.is_archive_mark(first):
            check_loadable(self.serializer, [self.codec.decode(first)])  # a deleted stream raises
            last = yield from self.last_version(stream_id)
            return StreamArchival(stream_id=stream_id, last_version=last, moved=0, archived=False, already=True)
        guard, last = self.codec.event_id_of(first), last_version_of(self.serializer, self.codec.decode(first))
        moved = yield from self._move(stream_id, (2, last), guard, to_archive=False)
        unsealed = moved is not None and (yield from self._unseal(stream_id, last, guard))
        return StreamArchival(
            stream_id=stream_id,
            last_version=last,
            moved=(moved or 0) + unsealed,
            archived=False,
            already=not unsealed,
        )

    def _unseal(self, stream_id: str, last: int, guard: str) -> Flow[bool]:
        """Version 1 back over its mark, the mark after ``last`` gone; False when another call did it."""
        original = yield from self.archive_reads().first_item(stream_id)
        if original is None:
            raise EventStoreError(f"cannot restore {stream_id}: the archive table holds no version 1 of it")
        put = {"TableName": self.table, "Item": original, **self._guard(stream_id, guard)}
        put.pop("Key")
        mark_after = {
            "TableName": self.table,
            "Key": self.codec.key(stream_id, last + 1),
            "ConditionExpression": "#type = :archived",
            "ExpressionAttributeNames": {"#type": self.codec.event_type_attribute},
            "ExpressionAttributeValues": {":archived": {"S": STREAM_ARCHIVED}},
        }
        archived_first = {"TableName": self.archive_table, "Key": self.codec.key(stream_id, 1)}
        params = {
            "TransactItems": [{"Put": put}, {"Delete": mark_after}, {"Delete": archived_first}],
            "ClientRequestToken": str(uuid.uuid5(_TOKENS, f"{stream_id}\n{guard}\nrestored")),
        }
        sent = yield from send(Call("transact_write_items", params), self.settings, lambda: f"{stream_id}: restore")
        if isinstance(sent, GaveUp) and sent.kind is Failure.CONFLICT:
            return False
        if isinstance(sent, GaveUp):
            raise gave_up_error(stream_id, "restore", sent)
        return True

    # -- loading -----------------------------------------------------------------------------

    def load_archived(self, stream_id: str, versions: tuple[int, int | None]) -> Flow[list[StoredEvent]]:
        """An archived stream's events in ``versions``, from the archive table, checked whole."""
        first = yield from self.first_item(stream_id)
        if first is None or not self.codec.is_archive_mark(first):
            raise AggregateNotFoundError(*reversed(stream_id.split(":", 1)))
        last = last_version_of(self.serializer, self.codec.decode(first))
        records = yield from self.archive_reads().query(stream_id, (1, None))
        kept = _first_kept(self, records)
        if [record.version for record in records] != [1, *range(max(kept, 2), last + 1)]:
            raise EventStoreError(
                f"the archive of {stream_id} is not whole: an archive_stream() or restore_stream() was cut short "
                "or is running; call it again"
            )
        if versions[0] < kept:
            raise StreamTruncatedError(stream_id, kept)
        end = last if versions[1] is None else versions[1]
        return self.serializer.decode_all([r for r in records if max(versions[0], kept) <= r.version <= end])


def _first_kept(archive: StreamArchive, records: list[EncodedEvent]) -> int:
    """The first version a (truncated) archived stream keeps: 1 unless version 1 is a `StreamTruncated` mark."""
    if records and records[0].event_type == STREAM_TRUNCATED:
        return first_kept_version(archive.serializer, records[0])
    return 1


def _appended(error: BaseException) -> dict[str, Any] | None:
    """The item a writer put in the seal's first slot, when only that slot stopped it (else None: re-read)."""
    if cancellation_codes(error)[1:] != ["None", "None"]:
        return None
    return cancelled_item(error, 0)

"""Deleting and truncating a stream as flows: a conditional seal, then bounded, guarded transactions of Deletes.

Every transaction of Deletes also checks that version 1 still holds this operation's own mark
(by its event id), so a deleter that stalled cannot remove a later incarnation of the stream,
and its idempotency token is derived from that mark, so a retry is never mistaken for another
incarnation's deletion.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from ...core.serialization import EncodedEvent
from ...domain.lifecycle import STREAM_ARCHIVED, STREAM_DELETED, STREAM_TRUNCATED, StreamDeleted, StreamTruncated
from ...exceptions import (
    ConcurrencyError,
    EventStoreError,
    InvalidStreamError,
    StreamArchivedError,
    StreamDeletedError,
    TransientStoreError,
)
from ...ports.lifecycle import StreamDeletion, StreamTruncation, check_loadable, first_kept_version
from ...ports.store import encode_append
from ..schema.limits import MAX_ITEM_BYTES, MAX_TRANSACTION_ITEMS
from . import requests
from .base import Call, Flow
from .errors import Failure, GaveUp, cancellation_codes, send
from .reads import StoreReads

__all__ = ["StreamLifecycle", "gave_up_error"]

_SEAL_ATTEMPTS = 20
"""Reads of the last version, then a seal, before a deletion gives up on writers that keep appending."""
_TOKENS = uuid.UUID("0b9c1f4e-58a1-4f0e-9a55-3c0f1de2b7a4")


@attrs.define
class StreamLifecycle(StoreReads):
    """The store's deletions and truncations, as flows."""

    def delete_stream(
        self, stream_id: str, expected: int | None, reason: str, *, reuse_id: bool
    ) -> Flow[StreamDeletion]:
        """Seal the stream with its marks (one transaction), then remove its events bottom up.

        The seal puts `StreamDeleted` into the slot after the last event and over version 1, so
        no writer can append after the last event, start the stream again, or build on a version
        whose successor is already gone. Events go in transactions of 99 Deletes and a check of
        the mark; a deletion cut short is finished by the next call, which finds the marks.
        """
        for _ in range(_SEAL_ATTEMPTS):
            last_item = yield from self.last_item(stream_id)
            if last_item is None:
                if expected:
                    raise ConcurrencyError(stream_id, expected, 0)
                return StreamDeletion(stream_id=stream_id, last_version=0, removed=0)
            version = self.codec.sort_key_of(last_item)
            if self.codec.is_archive_mark(last_item):
                raise StreamArchivedError(stream_id, version - 1)
            if self.codec.is_deletion_mark(last_item):
                mark_id = yield from self._first_mark(stream_id)
                return (yield from self._finish_deletion(stream_id, version, mark_id, reuse_id=reuse_id, resumed=True))
            if expected is not None and expected != version:
                raise ConcurrencyError(stream_id, expected, version)
            guard = yield from self._seal(stream_id, version, reason)
            if guard is not None:
                return (
                    yield from self._finish_deletion(stream_id, version + 1, guard, reuse_id=reuse_id, resumed=False)
                )
            if expected is not None:  # another writer appended after the version read
                raise ConcurrencyError(stream_id, expected, (yield from self.version_or_none(stream_id)))
        raise EventStoreError(f"cannot delete {stream_id}: writers kept appending ({_SEAL_ATTEMPTS} attempts)")

    def mark(self, stream_id: str, mark: Any, after: int) -> EncodedEvent:
        """A store's ``mark`` as the record at ``after + 1``, never published."""
        aggregate_type, _, aggregate_id = stream_id.partition(":")
        _, (record,) = encode_append(
            self.serializer, aggregate_id, aggregate_type, [mark], after, None,
            size_of=self.codec.size, max_bytes=MAX_ITEM_BYTES,
        )  # fmt: skip
        return attrs.evolve(record, is_dispatched=True)  # a store's mark is never published

    def _seal(self, stream_id: str, last: int, reason: str) -> Flow[str | None]:
        """Put the marks after ``last`` and over version 1 in one transaction: the first's event id, or None.

        None: ``last`` is no longer the last version (a writer got there first).

        Raises:
            EventStoreError: version 1 is missing or is a mark already (a corrupt stream).
        """
        after = self.mark(stream_id, StreamDeleted(last, reason), last)
        first = self.mark(stream_id, StreamDeleted(last, reason), 0)
        params = {
            "TransactItems": [
                {"Put": requests.put_event(self.table, self.codec, after)},
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": self.codec.encode(first),
                        **requests.not_deleted(self.codec),
                    }
                },
            ],
            "ClientRequestToken": requests.request_token([after, first], last),
        }
        sent = yield from send(Call("transact_write_items", params), self.settings, lambda: f"{stream_id}: seal")
        if not isinstance(sent, GaveUp):
            return first.event_id
        if sent.kind is not Failure.CONFLICT:
            raise gave_up_error(stream_id, "seal", sent)
        if cancellation_codes(sent.error)[1:2] == ["ConditionalCheckFailed"]:
            raise EventStoreError(f"cannot delete {stream_id}: its version 1 is missing or is a mark already")
        return None

    def _first_mark(self, stream_id: str) -> Flow[str]:
        """The event id of the mark over version 1 (what every later transaction checks)."""
        first = yield from self.first_item(stream_id)
        if first is None or not self.codec.is_mark(first):
            raise EventStoreError(f"cannot finish the deletion of {stream_id}: its version 1 is not a mark")
        return self.codec.event_id_of(first)

    def _finish_deletion(
        self, stream_id: str, mark_version: int, guard: str, *, reuse_id: bool, resumed: bool
    ) -> Flow[StreamDeletion]:
        """Remove versions 2 to the one before the mark (what is left of them), then the marks if asked."""
        versions = yield from self._stored_versions(stream_id, (2, mark_version - 1))
        removed = (not resumed) + (yield from self._delete_guarded(stream_id, versions, guard))
        if reuse_id:
            removed += yield from self._delete_marks(stream_id, mark_version, guard)
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

    def _guard(self, stream_id: str, guard: str) -> dict[str, Any]:
        """A condition on version 1: it holds the mark whose event id is ``guard``."""
        return {
            "TableName": self.table,
            "Key": self.codec.key(stream_id, 1),
            "ConditionExpression": "#id = :guard",
            "ExpressionAttributeNames": {"#id": self.codec.event_id_attribute},
            "ExpressionAttributeValues": {":guard": {"S": guard}},
        }

    def _delete_guarded(self, stream_id: str, versions: list[int], guard: str) -> Flow[int]:
        """Delete the items at ``versions``, lowest first: 99 a transaction, with the check of the mark."""
        size = MAX_TRANSACTION_ITEMS - 1
        for start in range(0, len(versions), size):
            chunk = versions[start : start + size]
            items = [{"ConditionCheck": self._guard(stream_id, guard)}]
            items += [{"Delete": {"TableName": self.table, "Key": self.codec.key(stream_id, v)}} for v in chunk]
            yield from self._send_deletes(stream_id, items, f"{guard}\n{chunk[0]}\n{chunk[-1]}")
        return len(versions)

    def _delete_marks(self, stream_id: str, mark_version: int, guard: str) -> Flow[int]:
        """Delete both marks in one transaction (``reuse_id``): the stream's id holds nothing afterwards."""
        over = {"Delete": self._guard(stream_id, guard)}
        after = {"Delete": {"TableName": self.table, "Key": self.codec.key(stream_id, mark_version)}}
        yield from self._send_deletes(stream_id, [over, after], f"{guard}\nmarks")
        return 2

    def _send_deletes(self, stream_id: str, items: list[dict[str, Any]], token: str) -> Flow[None]:
        params = {"TransactItems": items, "ClientRequestToken": str(uuid.uuid5(_TOKENS, f"{stream_id}\n{token}"))}
        sent = yield from send(Call("transact_write_items", params), self.settings, lambda: f"{stream_id}: delete")
        if isinstance(sent, GaveUp):
            if sent.kind is Failure.CONFLICT:
                raise EventStoreError(f"cannot go on deleting in {stream_id}: its version 1 is no longer this mark")
            raise gave_up_error(stream_id, "delete events", sent)

    # -- truncating a stream -------------------------------------------------------------------

    def truncate_stream(self, stream_id: str, before: int) -> Flow[StreamTruncation]:
        """Put `StreamTruncated` over version 1 (conditional on the one read), then delete 2 to ``before - 1``.

        A truncation to the same (or an earlier) version again removes what a cut-short one left;
        the first kept version never goes down.
        """
        for _ in range(_SEAL_ATTEMPTS):
            last_item = yield from self.last_item(stream_id)
            if last_item is not None and self.codec.is_archive_mark(last_item):
                raise StreamArchivedError(stream_id, self.codec.sort_key_of(last_item) - 1)
            if last_item is not None and self.codec.is_deletion_mark(last_item):
                raise StreamDeletedError(stream_id, self.codec.sort_key_of(last_item) - 1)
            last = 0 if last_item is None else self.codec.sort_key_of(last_item)
            if before > last:
                raise InvalidStreamError(f"cannot truncate {stream_id} before version {before}: it ends at {last}")
            first, read_id = yield from self._truncation_mark(stream_id)
            guard: str | None = read_id
            if first < before:
                guard = yield from self._put_truncation_mark(stream_id, before, read_id)
            if guard is not None:
                kept = max(first, before)
                versions = yield from self._stored_versions(stream_id, (2, kept - 1))
                removed = yield from self._delete_guarded(stream_id, versions, guard)
                return StreamTruncation(stream_id=stream_id, first_version=kept, removed=removed + (first == 1))
        raise EventStoreError(f"cannot truncate {stream_id}: its version 1 kept changing ({_SEAL_ATTEMPTS} attempts)")

    def _truncation_mark(self, stream_id: str) -> Flow[tuple[int, str]]:
        """(The first version kept, the event id of version 1): 1 for a stream that is not truncated."""
        first = yield from self.first_item(stream_id)
        if first is None:
            raise EventStoreError(f"cannot truncate {stream_id}: its version 1 is missing")
        record = self.codec.decode(first)
        if record.event_type in (STREAM_DELETED, STREAM_ARCHIVED):
            check_loadable(self.serializer, [record])  # raises: the stream is deleted or archived
        if record.event_type == STREAM_TRUNCATED:
            return first_kept_version(self.serializer, record), record.event_id
        return 1, record.event_id

    def _put_truncation_mark(self, stream_id: str, before: int, read_id: str) -> Flow[str | None]:
        """The new mark's event id; None when version 1 changed since it was read (read again)."""
        mark = self.mark(stream_id, StreamTruncated(before), 0)
        item = {"TableName": self.table, "Item": self.codec.encode(mark)}
        condition = {
            "ConditionExpression": "#id = :read AND #type <> :deleted",
            "ExpressionAttributeNames": {
                "#id": self.codec.event_id_attribute,
                "#type": self.codec.event_type_attribute,
            },
            "ExpressionAttributeValues": {":read": {"S": read_id}, ":deleted": {"S": STREAM_DELETED}},
        }
        sent = yield from send(Call("put_item", {**item, **condition}), self.settings, lambda: f"{stream_id}: truncate")
        if isinstance(sent, GaveUp):
            if sent.kind is Failure.CONFLICT:
                return None
            raise gave_up_error(stream_id, "truncate", sent)
        return mark.event_id


def gave_up_error(stream_id: str, action: str, gave_up: GaveUp) -> EventStoreError:
    """The error of a lifecycle request that gave up: transient (its retries ran out) or not."""
    if gave_up.kind is Failure.TRANSIENT:
        return TransientStoreError(stream_id, gave_up.reason, gave_up.attempts, action=action)
    return EventStoreError(f"cannot {action} of {stream_id}: {gave_up.reason}")

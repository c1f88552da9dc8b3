"""The event store's appends, commits and reads as flows: shared by the sync and the async store.

`StoreCore` holds what the algorithms need (settings, serializer, the model's codec, the
versions this process has seen) and returns `Flow` generators;
the stores only drive them on their client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ...core.changes import Change
from ...core.gc import collection_paused
from ...core.reading import ChangeDecoder
from ...core.serialization import EncodedEvent, EventSerializer
from ...core.steps import MAX_CONCURRENCY, Concurrently
from ...domain.events import EventMetadata, StoredEvent
from ...exceptions import EventStoreError, TransientStoreError
from ...ports.store import (
    AppendResult,
    CommitResult,
    EncodedAppend,
    StreamAppend,
    Tracking,
    check_tracking,
    check_transaction_size,
    check_version,
    encode_append,
    encode_appends,
    make_stream_id,
)
from ...settings import EventStoreSettings
from ..schema.limits import (
    MAX_ITEM_BYTES,
    MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_ITEMS,
    plan_transactions,
    request_size,
)
from ..schema.model import EventItemCodec
from . import requests
from .attempt import Attempt
from .base import Call, Flow, Sleep
from .commit import CommitRun, plan_commit
from .errors import BOUNDARY_ERRORS, Failure
from .retries import GaveUp, send
from .scan import change_reader

__all__ = ["KnownVersions", "StoreCore"]

log = logging.getLogger("dynamo_es")

_CHUNK = 100
"""Events decoded between two pauses: an event loop driving a long load stays responsive."""
_PAUSE = Sleep(0)


@attrs.define
class KnownVersions:
    """The highest version this process has seen stored, per stream (bounded; events are never deleted)."""

    limit: int = 100_000
    _versions: dict[str, int] = attrs.field(factory=dict, init=False)

    def saw(self, stream_id: str, version: int) -> None:
        """Remember that ``version`` of the stream exists."""
        if version > self._versions.get(stream_id, 0):
            if len(self._versions) >= self.limit:
                self._versions.clear()
            self._versions[stream_id] = version

    def has(self, stream_id: str, version: int) -> bool:
        """Whether ``version`` of the stream is known to exist."""
        return self._versions.get(stream_id, 0) >= version


@attrs.define
class StoreCore:
    """Everything an event store does, as flows; see the "Transactions and limits" docs page."""

    settings: EventStoreSettings
    serializer: EventSerializer
    codec: EventItemCodec
    tracking_update: Callable[[Tracking], dict[str, Any]]
    """``tracking_update(tracking)``: the checkpoint table's Update that records it (no I/O)."""
    tracking_attribute: str
    """The checkpoint item's attribute holding the version."""
    page_items: int | None = None
    """Items per Query page of a load (None: DynamoDB's 1 MB pages); smaller pages, shorter parses."""
    known: KnownVersions = attrs.field(factory=KnownVersions)

    @property
    def table(self) -> str:
        """The events table's name."""
        return self.settings.events_table_name

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
            self.known.saw(attempt.stream_id, attempt.written)
        return attempt.succeeded()

    def _expected_check(self, attempt: Attempt, records: list[EncodedEvent], capacity: int) -> Flow[bool | None]:
        """How the first transaction makes sure ``expected_version`` exists, so no gap can open.

        True: a ConditionCheck inside it (a free slot). None: nothing to check (a new stream, or
        a version this store has already read or written: events are never deleted). When the
        check would take the slot of the 100th event, a consistent read of that version costs
        no slot: None if it exists, False if not (a conflict).
        """
        expected = attempt.expected_version
        if expected == 0 or self.known.has(attempt.stream_id, expected):
            return None
        if len(records) < capacity:
            return True
        return None if (yield from self.slot_ids(attempt.stream_id, expected, expected)) else False

    def _append_singly(self, attempt: Attempt, records: list[EncodedEvent]) -> Flow[AppendResult]:
        expected = attempt.expected_version
        unknown = expected > 0 and not self.known.has(attempt.stream_id, expected)
        if unknown and not (yield from self.slot_ids(attempt.stream_id, expected, expected)):
            return attempt.conflicted((yield from self.version_or_none(attempt.stream_id)))
        for record in records:
            call = Call("put_item", requests.put_event(self.table, self.codec, record))
            failed = yield from attempt.run(call, [record])
            if failed is not None:
                return failed
            attempt.written = record.version
            self.known.saw(attempt.stream_id, record.version)
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
        result = yield from run.run(Call("transact_write_items", plan.params), plan.owners)
        if result.success and not result.already_processed:
            for append in encoded:
                self.known.saw(append.stream_id, append.records[-1].version)
        return result

    def _commit_checks(self, encoded: list[EncodedAppend], *, room: int) -> Flow[tuple[set[str], set[str]]]:
        """Which streams' expected versions a commit checks inside it, and which (read now) do not exist.

        Known versions need no check (events are never deleted); checks go inside the transaction
        while there is room, and the rest are read (consistently) before it.
        """
        unknown = [a for a in encoded if a.expected_version and not self.known.has(a.stream_id, a.expected_version)]
        inside = {a.stream_id for a in unknown[:room]}
        missing: set[str] = set()
        for append in unknown[room:]:
            if not (yield from self.slot_ids(append.stream_id, append.expected_version, append.expected_version)):
                missing.add(append.stream_id)
        return inside, missing

    # -- read -----------------------------------------------------------------------------

    def check_load(self, aggregate_id: str, aggregate_type: str, from_version: int, to_version: int | None) -> bool:
        """Validate a load's input (before any I/O); False when the range is empty."""
        make_stream_id(aggregate_type, aggregate_id)
        check_version("from_version", from_version, minimum=1)
        if to_version is not None:
            check_version("to_version", to_version)
            return to_version >= from_version
        return True

    def load(
        self, aggregate_id: str, aggregate_type: str, from_version: int, to_version: int | None
    ) -> Flow[list[StoredEvent]]:
        """The stream's events from ``from_version`` to ``to_version``, decoded, in version order."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        check_version("from_version", from_version, minimum=1)
        if to_version is not None:
            check_version("to_version", to_version)
            if to_version < from_version:
                return []
        with collection_paused():  # the whole load, its requests included: what it allocates has no cycles
            records = yield from self.query(stream_id, (from_version, to_version))
            events: list[StoredEvent] = []
            for start in range(0, len(records), _CHUNK):
                if start:
                    yield _PAUSE
                events.extend(self.serializer.decode_all(records[start : start + _CHUNK]))
            return events

    def read_changes(
        self, aggregate_id: str, aggregate_type: str, versions: tuple[int, int | None], decoder: ChangeDecoder
    ) -> Flow[list[Change]]:
        """A version range as stored changes for one reader (unread ones undecoded, bad ones with their error)."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        if versions[1] is not None and versions[1] < versions[0]:
            return []
        items = yield from self._raw_pages(stream_id, versions, limit=None, forward=True)
        read = change_reader(self.codec, decoder)
        changes: list[Change] = []
        for start in range(0, len(items), _CHUNK):
            if start:
                yield _PAUSE
            changes.extend(read(item) for item in items[start : start + _CHUNK] if self.codec.is_event(item))
        if changes:
            self.known.saw(stream_id, max(change.event.version for change in changes))
        return changes

    def stream_version(self, aggregate_id: str, aggregate_type: str) -> Flow[int]:
        """The version of the stream's last event; 0 when it has none."""
        return (yield from self.last_version(make_stream_id(aggregate_type, aggregate_id)))

    def query(
        self, stream_id: str, versions: tuple[int, int | None], *, limit: int | None = None, forward: bool = True
    ) -> Flow[list[EncodedEvent]]:
        """The stream's events in ``versions``, decoded from the wire format, to the end.

        The first page is read alone. When more follow, a whole-stream read takes the rest as
        version ranges at once (`Concurrently`): a Query's pages come one after the other, but
        disjoint ranges of the sort key need not. The stream is read up to its last version
        when the ranges were planned; what is appended meanwhile is not (it is a later load's).
        """
        records, start_key = yield from self._pages(stream_id, versions, limit=limit, forward=forward, first=True)
        if start_key and limit is None and forward:
            records += yield from self._rest(stream_id, versions, records[-1].version, len(records))
        elif start_key:
            more, _ = yield from self._pages(stream_id, versions, limit=limit, forward=forward, start_key=start_key)
            records += more
        if records:
            self.known.saw(stream_id, max(records[0].version, records[-1].version))
        return records

    def _rest(
        self, stream_id: str, versions: tuple[int, int | None], after: int, page: int
    ) -> Flow[list[EncodedEvent]]:
        """Versions after ``after`` (up to the stream's last), as ranges of about a ``page`` each, read at once."""
        last = yield from self.last_version(stream_id)
        end = last if versions[1] is None else min(versions[1], last)
        ranges = requests.version_ranges(after + 1, end, size=page, most=MAX_CONCURRENCY)
        parts = yield Concurrently([self._range(stream_id, each) for each in ranges])
        return [record for part in parts for record in part]

    def _range(self, stream_id: str, versions: tuple[int, int]) -> Flow[list[EncodedEvent]]:
        records, _ = yield from self._pages(stream_id, versions, limit=None, forward=True)
        return records

    def _pages(
        self,
        stream_id: str,
        versions: tuple[int, int | None],
        *,
        limit: int | None,
        forward: bool,
        start_key: dict[str, Any] | None = None,
        first: bool = False,
    ) -> Flow[tuple[list[EncodedEvent], dict[str, Any] | None]]:
        """Pages from ``start_key`` to the end, or to ``limit`` events (the first page only, with ``first``)."""
        records: list[EncodedEvent] = []
        while True:
            page_limit = limit if limit is not None else self.page_items
            params = requests.query_page(
                self.table, self.codec, stream_id, versions, limit=page_limit, forward=forward, start_key=start_key
            )
            page = yield from self.read(stream_id, params)
            yield from self._decode_page(page.get("Items", []), records)
            start_key = page.get("LastEvaluatedKey")
            if first or not start_key or (limit is not None and len(records) >= limit):
                return records, start_key

    def _decode_page(self, items: list[Any], records: list[EncodedEvent]) -> Flow[None]:
        """The page's items into ``records``, a slice at a time; an event loop runs others before each slice.

        Before the first one too: the response was just parsed, and the ranges of a load arrive
        together, so each slice (and each parse) is a step of its own.
        """
        decode = self.codec.decode
        for start in range(0, len(items), _CHUNK):
            yield _PAUSE
            with collection_paused():
                records.extend(decode(item) for item in items[start : start + _CHUNK])

    def read(self, stream_id: str, params: dict[str, Any]) -> Flow[dict[str, Any]]:
        """One Query page, transient failures retried with the same backoff as writes."""
        page = yield from send(Call("query", params), self.settings, lambda: f"{stream_id}: read")
        if isinstance(page, GaveUp):
            raise _read_error(stream_id, page.reason, page.attempts, page.kind) from page.error
        response: dict[str, Any] = page
        return response

    def _raw_pages(
        self, stream_id: str, versions: tuple[int, int | None], *, limit: int | None, forward: bool
    ) -> Flow[list[dict[str, Any]]]:
        """The raw items of a version range (they need not decode)."""
        items: list[dict[str, Any]] = []
        start_key: dict[str, Any] | None = None
        while True:
            params = requests.query_page(
                self.table, self.codec, stream_id, versions, limit=limit, forward=forward, start_key=start_key
            )
            page = yield from self.read(stream_id, params)
            items.extend(page.get("Items", []))
            start_key = page.get("LastEvaluatedKey")
            if not start_key or (limit is not None and len(items) >= limit):
                return items

    def last_version(self, stream_id: str) -> Flow[int]:
        """The highest version in the stream, from the sort key alone (the item need not decode)."""
        for item in (yield from self._raw_pages(stream_id, (1, None), limit=1, forward=False)):
            version = self.codec.sort_key_of(item)
            self.known.saw(stream_id, version)
            return version
        return 0

    def version_or_none(self, stream_id: str) -> Flow[int | None]:
        """The stream's version, or None when it cannot be read (used after a failed append)."""
        try:
            return (yield from self.last_version(stream_id))
        except EventStoreError:
            return None

    def slot_ids(self, stream_id: str, first: int, last: int) -> Flow[list[str]]:
        """The event ids stored in versions ``first`` to ``last`` of the stream (items need not decode)."""
        items = yield from self._raw_pages(stream_id, (first, last), limit=None, forward=True)
        return [self.codec.event_id_of(item) for item in items]

    def tracked_version(self, tracking: Tracking) -> Flow[int]:
        """The version recorded under ``tracking``'s name and stream; 0 for none (a consistent GetItem)."""
        update = self.tracking_update(tracking)
        params = {"TableName": update["TableName"], "Key": update["Key"], "ConsistentRead": True}
        try:
            item = (yield Call("get_item", params)).get("Item") or {}
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read tracking {tracking.name}/{tracking.stream_id}: {error}") from error
        version = item.get(self.tracking_attribute, {}).get("N")
        return int(version) if version is not None else 0


def _read_error(stream_id: str, reason: str, attempts: int, kind: Failure) -> EventStoreError:
    if kind is Failure.TRANSIENT:
        return TransientStoreError(stream_id, reason, attempts, action="read")
    return EventStoreError(f"cannot read {stream_id}: {reason}")

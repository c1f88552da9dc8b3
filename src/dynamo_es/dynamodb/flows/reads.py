"""The event store's reads as flows: loads (whole streams as version ranges at once), versions, tracking.

`StoreReads` holds what reads and writes share (settings, serializer, the model's codec, the
versions this process has seen); `StoreCore` adds the writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs

from ...core.changes import Change
from ...core.gc import collection_paused
from ...core.reading import ChangeDecoder
from ...core.serialization import EncodedEvent, EventSerializer
from ...core.steps import MAX_CONCURRENCY, Concurrently
from ...domain.events import EventHistory, StoredEvent
from ...exceptions import EventStoreError, StreamExpiredError, TransientStoreError
from ...ports.lifecycle import check_loadable, check_unexpired, expiry_for
from ...ports.store import Tracking, check_version, make_stream_id
from ...settings import EventStoreSettings
from ..schema.model import EventItemCodec
from . import requests
from .base import Call, Flow, Sleep
from .errors import BOUNDARY_ERRORS, Failure, GaveUp, send
from .records import change_reader

__all__ = ["StoreReads"]

T = TypeVar("T")

_CHUNK = 25
"""Events decoded between two pauses: an event loop driving a long load stays responsive.

Three range reads' steps can fall in one turn of the loop; at 25 a turn holds a few ms of
decoding (bench_loop.py: the longest pause of a 10,000-event load fell from 25 to 15-19 ms).
"""
_PAUSE = Sleep(0)


@attrs.define
class StoreReads:
    """What an event store reads, as flows; the writes are `StoreCore`'s."""

    settings: EventStoreSettings
    serializer: EventSerializer
    codec: EventItemCodec
    tracking_update: Callable[[Tracking], dict[str, Any]]
    """``tracking_update(tracking)``: the checkpoint table's Update that records it (no I/O)."""
    tracking_attribute: str
    """The checkpoint item's attribute holding the version."""
    page_items: int | None = None
    """Items per Query page of a load (None: DynamoDB's 1 MB pages); smaller pages, shorter parses."""
    expire_after: Mapping[str, float] = attrs.field(factory=dict)
    """Temporary streams' lifetimes in seconds, by aggregate type (see ``expire_after`` of the stores)."""

    @property
    def table(self) -> str:
        """The events table's name."""
        return self.settings.events_table_name

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
        versions = (from_version, to_version)
        _, events = yield from self._decoded(aggregate_id, aggregate_type, versions, self.serializer.decode_all)
        return events

    def load_history(
        self, aggregate_id: str, aggregate_type: str, from_version: int, to_version: int | None
    ) -> Flow[EventHistory]:
        """The same range as `load()`, only the events decoded, for a replay."""
        versions = (from_version, to_version)
        last, events = yield from self._decoded(aggregate_id, aggregate_type, versions, self.serializer.decode_events)
        return EventHistory(tuple(events), last)

    def _decoded(
        self,
        aggregate_id: str,
        aggregate_type: str,
        versions: tuple[int, int | None],
        decode: Callable[[list[EncodedEvent]], list[T]],
    ) -> Flow[tuple[int, list[T]]]:
        """The range's records through ``decode`` a slice at a time, and the last one's version (0: none)."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        check_version("from_version", versions[0], minimum=1)
        if versions[1] is not None and check_version("to_version", versions[1]) < versions[0]:
            return 0, []
        with collection_paused():  # the whole load, its requests included: what it allocates has no cycles
            records = yield from self.query(stream_id, versions)
            check_loadable(self.serializer, records)
            check_unexpired(records, versions[0])
            if versions[0] > 1 and _starts_late(records, versions):
                check_loadable(self.serializer, (yield from self.query(stream_id, (1, 1))))
            last = records[-1].version if records else 0
            decoded: list[T] = []
            while records:
                decoded.extend(decode(records[:_CHUNK]))
                del records[:_CHUNK]  # freed slice by slice: tens of thousands of objects at once hold a loop
                if records:
                    yield _PAUSE
            return last, decoded

    def read_changes(
        self, aggregate_id: str, aggregate_type: str, versions: tuple[int, int | None], decoder: ChangeDecoder
    ) -> Flow[list[Change]]:
        """A version range as stored changes for one reader (unread ones undecoded, bad ones with their error)."""
        stream_id = make_stream_id(aggregate_type, aggregate_id)
        if versions[1] is not None and versions[1] < versions[0]:
            return []
        items = yield from self.raw_pages(stream_id, versions, limit=None, forward=True)
        read = change_reader(self.codec, decoder)
        changes: list[Change] = []
        for start in range(0, len(items), _CHUNK):
            if start:
                yield _PAUSE
            changes.extend(read(item) for item in items[start : start + _CHUNK] if self.codec.is_event(item))
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
        while items:
            yield _PAUSE
            with collection_paused():
                records.extend(decode(item) for item in items[:_CHUNK])
                del items[:_CHUNK]  # the page's items freed as they are decoded, not all at once

    def read(self, stream_id: str, params: dict[str, Any]) -> Flow[dict[str, Any]]:
        """One Query page, transient failures retried with the same backoff as writes."""
        page = yield from send(Call("query", params), self.settings, lambda: f"{stream_id}: read")
        if isinstance(page, GaveUp):
            raise _read_error(stream_id, page.reason, page.attempts, page.kind) from page.error
        response: dict[str, Any] = page
        return response

    def expiry_of(self, stream_id: str, expected_version: int) -> Flow[int | None]:
        """The expiry an append to ``stream_id`` stamps on its events (None: not a temporary stream).

        A new stream's is now plus its type's lifetime; a later append copies version 1's, so every
        item of the stream expires at once.
        """
        lifetime = self.expire_after.get(stream_id.partition(":")[0])
        if lifetime is None:
            return None
        if expected_version == 0:
            return expiry_for(lifetime)
        first = yield from self.first_item(stream_id)
        if first is None:
            raise StreamExpiredError(stream_id, 0)  # its version 1 is gone: TTL removed it
        return self.codec.decode(first).expires_at

    def last_item(self, stream_id: str) -> Flow[dict[str, Any] | None]:
        """The stream's highest item, raw (a deleted stream's is its mark); None when it has none."""
        items = yield from self.raw_pages(stream_id, (1, None), limit=1, forward=False)
        return items[0] if items else None

    def first_item(self, stream_id: str) -> Flow[dict[str, Any] | None]:
        """The stream's version 1, raw (a deleted or truncated stream's mark); None when it has none."""
        items = yield from self.raw_pages(stream_id, (1, 1), limit=1, forward=True)
        return items[0] if items else None

    def raw_pages(
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
        for item in (yield from self.raw_pages(stream_id, (1, None), limit=1, forward=False)):
            return self.codec.sort_key_of(item)
        return 0

    def version_or_none(self, stream_id: str) -> Flow[int | None]:
        """The stream's version, or None when it cannot be read (used after a failed append)."""
        try:
            return (yield from self.last_version(stream_id))
        except EventStoreError:
            return None

    def slot_ids(self, stream_id: str, first: int, last: int) -> Flow[list[str]]:
        """The event ids stored in versions ``first`` to ``last`` of the stream (items need not decode).

        A store's marks (of a deleted or truncated stream) are left out: no append may build on them.
        """
        items = yield from self.raw_pages(stream_id, (first, last), limit=None, forward=True)
        return [self.codec.event_id_of(item) for item in items if not self.codec.is_mark(item)]

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


def _starts_late(records: list[EncodedEvent], versions: tuple[int, int | None]) -> bool:
    """Whether a load from ``versions[0]`` may have begun inside a truncated range (so version 1 is read).

    A load to the end that found nothing is past the end (a truncated stream keeps its last
    events); a bounded one that found nothing, or any that does not begin at its first version,
    may have met removed versions.
    """
    if records:
        return records[0].version != versions[0]
    return versions[1] is not None


def _read_error(stream_id: str, reason: str, attempts: int, kind: Failure) -> EventStoreError:
    if kind is Failure.TRANSIENT:
        return TransientStoreError(stream_id, reason, attempts, action="read")
    return EventStoreError(f"cannot read {stream_id}: {reason}")

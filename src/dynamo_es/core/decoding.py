"""Decoding fast, for the objects a load makes by the thousand: the batch decoder.

`BatchDecoder` is one `EventSerializer.decode_all()` (or `decode_events()`) call: what its
records share (an event type's class and structure hook, a run of metadata or timestamps, the
keys of their JSON documents) is looked up or parsed once. Stored events are built through
`core.structuring.positional_builder`, at about half the cost of their ``__init__``.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ..domain.events import EventMetadata, StoredEvent
from ..domain.personal import personal_data_of, sealed_as_forgotten
from .structuring import positional_builder, structure_many_of

if TYPE_CHECKING:
    from .serialization import EncodedEvent, EventSerializer, Shredder

__all__ = ["BatchDecoder"]

T = TypeVar("T")


_PayloadKind = tuple[Callable[[Any, Any], Any], type[Any], int]
"""An event type's structure hook, class and current schema version."""


class BatchDecoder:
    """One `decode_all()` call: what its records share is looked up or parsed once.

    The payloads' JSON documents are parsed together, as one array: the parser then makes each
    key once for the whole batch, which halves the cost per event. When that parse fails, or
    does not give one object per record, each record is decoded alone, and a record that is not
    one JSON document fails as `decode()` says. (Records made to fail alone but to join into
    exactly one object each would pass; writing them takes the access that writes any event.)
    """

    def __init__(self, serializer: EventSerializer) -> None:
        self.serializer = serializer
        self.kinds: dict[str, _PayloadKind | None] = {}
        self.metadata_text: str | None = None
        self.metadata: tuple[EventMetadata, int] = (EventMetadata(), 1)
        self.timestamp_text: str | None = None
        self.timestamp = datetime.min

    def decode_all(self, records: Iterable[EncodedEvent]) -> list[StoredEvent]:
        """Every record decoded, in order."""
        records = list(records)
        metadata = [self._metadata(encoded) for encoded in records]
        events = self._events(records, [schema_version for _, schema_version in metadata])
        return [
            _build_stored(
                encoded.stream_id,
                encoded.aggregate_id,
                encoded.aggregate_type,
                encoded.version,
                encoded.event_id,
                encoded.event_type,
                self._timestamp(encoded),
                event,
                envelope,
                encoded.is_dispatched,
            )
            for encoded, event, (envelope, _) in zip(records, events, metadata, strict=True)
        ]

    def events(self, records: Iterable[EncodedEvent]) -> list[Any]:
        """Each record's decoded event, in order: what a replay needs (no envelope, no timestamp)."""
        records, schema_versions = list(records), list[int]()
        add = schema_versions.append
        for encoded in records:
            if encoded.metadata != self.metadata_text:
                self._metadata(encoded)
            add(self.metadata[1])
        return self._events(records, schema_versions)

    def _metadata(self, encoded: EncodedEvent) -> tuple[EventMetadata, int]:
        if encoded.metadata != self.metadata_text:
            self.metadata = self.serializer._parse_metadata(encoded)
            self.metadata_text = encoded.metadata
        return self.metadata

    def _timestamp(self, encoded: EncodedEvent) -> datetime:
        if encoded.timestamp != self.timestamp_text:
            self.timestamp = self.serializer._timestamp(encoded)
            self.timestamp_text = encoded.timestamp
        return self.timestamp

    def _events(self, records: list[EncodedEvent], schema_versions: list[int]) -> list[Any]:
        """The records' events: the batch's documents through each class's hook, the careful path for the rest."""
        documents = _documents(records) or [_UNSEEN] * len(records)
        of_one_kind = self._all_of_one_kind(records, schema_versions, documents)
        if of_one_kind is not None:
            return of_one_kind
        events: list[Any] = []
        add, kinds, careful = events.append, self.kinds, self.serializer._decode_payload
        for encoded, schema_version, document in zip(records, schema_versions, documents, strict=True):
            kind = kinds.get(encoded.event_type, _UNSEEN)
            if kind is _UNSEEN:
                kind = self._kind_of(encoded.event_type)
            if kind is not None and kind[2] == schema_version and type(document) is dict:
                try:
                    add(kind[0](document, kind[1]))
                    continue
                except Exception:  # noqa: BLE001, S110  # the careful path below decodes it again and says what is wrong
                    pass
            add(careful(encoded, schema_version))
        return events

    def _all_of_one_kind(
        self, records: list[EncodedEvent], schema_versions: list[int], documents: list[Any]
    ) -> list[Any] | None:
        """A batch of one event type at its current schema (a run of deposits, say) in one call; else None."""
        if not records or len({encoded.event_type for encoded in records}) != 1 or len(set(schema_versions)) != 1:
            return None
        kind = self._kind_of(records[0].event_type)
        if kind is None or kind[2] != schema_versions[0]:
            return None
        many = structure_many_of(kind[0])
        return None if many is None else many(documents)

    def _kind_of(self, event_type: str) -> _PayloadKind | None:
        """The event type's kind, looked up once per batch (the hot loop reads ``kinds`` itself first)."""
        if event_type not in self.kinds:
            self.kinds[event_type] = self._kind(event_type)
        return self.kinds[event_type]

    def _kind(self, event_type: str) -> _PayloadKind | None:
        resolved = self.serializer.registry.resolve(event_type)
        if resolved is None:
            return None
        cls, version = resolved
        hook = self.serializer.converter.get_structure_hook(cls)
        if personal_data_of(cls) is not None:
            return _opening(hook, self.serializer.shredder), cls, version
        return hook, cls, version


def _opening(hook: Callable[[Any, Any], Any], shredder: Shredder | None) -> Callable[[Any, Any], Any]:
    """``hook`` after the document's sealed fields are opened (or read as forgotten, with no shredder).

    The keys are looked up once per batch (one decoder: one load), each subject's on first use.
    """
    if shredder is None:
        return lambda document, cls: hook(sealed_as_forgotten(cls, document), cls)
    batch: dict[str, Any] = {}
    opened = shredder.open

    def structure(document: Any, cls: Any) -> Any:
        return hook(opened(cls, document, batch=batch), cls)

    return structure


def _documents(records: list[EncodedEvent]) -> list[Any] | None:
    """Every record's JSON document, parsed at once; None when that fails or gives another count."""
    try:
        a2b = binascii.a2b_base64
        payloads = b",".join([a2b(encoded.event_data, strict_mode=True) for encoded in records])
        documents: list[Any] = json.loads(b"[%b]" % payloads)  # UTF-8, as each is (else: record by record)
    except Exception:  # noqa: BLE001  # record by record, each failure is found and described
        return None
    return documents if len(documents) == len(records) else None


_UNSEEN: Any = object()
_build_stored = positional_builder(StoredEvent)

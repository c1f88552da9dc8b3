"""Decoding fast, for the objects a load makes by the thousand: builders and a batch decoder.

A frozen attrs class's ``__init__`` sets each field through ``object.__setattr__`` and takes
keyword arguments only (for these classes): for the ten fields of a stored event that is about
two microseconds, as much as decoding its payload. `positional_builder` makes the same object
through the slots' own descriptors, fields given in order, at about half the cost.
`BatchDecoder` is one `EventSerializer.decode_all()` call: what its records share (an event
type's class and structure hook, a run of metadata or timestamps) is looked up once.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ..domain.events import EventMetadata, StoredEvent

if TYPE_CHECKING:
    from .serialization import EncodedEvent, EventSerializer

__all__ = ["BatchDecoder", "positional_builder"]

T = TypeVar("T")


def positional_builder(cls: type[T]) -> Callable[..., T]:
    """``build(*values)``: an instance of ``cls`` with its fields set in declaration order.

    Raises:
        TypeError: ``cls`` is not a slotted attrs class, or a field has a validator or converter,
            or its ``__init__`` would do more than set the fields (a pre- or post-init, a cached hash).
    """
    fields = attrs.fields(cls)  # type: ignore[arg-type]  # any attrs class: checked by attrs at run time
    names = [field.name for field in fields]
    if not getattr(cls, "__slots__", None) or _more_than_fields(cls, names):
        raise TypeError(f"{cls.__qualname__} is not a plain slotted attrs class")
    if any(field.validator is not None or field.converter is not None for field in fields):
        raise TypeError(f"{cls.__qualname__} validates or converts a field: use its __init__")
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    namespace.update({f"set_{name}": getattr(cls, name).__set__ for name in names})
    lines = [f"def build({', '.join(names)}):", "    instance = new(cls)"]
    lines += [f"    set_{name}(instance, {name})" for name in names]
    lines.append("    return instance")
    exec("\n".join(lines), namespace)  # noqa: S102  # generated from the class's own field names, as attrs does
    build: Callable[..., T] = namespace["build"]
    return build


def _more_than_fields(cls: type[Any], names: list[str]) -> bool:
    """Whether ``__init__`` does more than set the fields: a pre- or post-init, or a slot of its own (a cached hash)."""
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        return True
    slots = {slot for klass in cls.__mro__ for slot in getattr(klass, "__slots__", ())}
    return bool(slots - set(names) - {"__weakref__", "__dict__"})


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
        events: list[Any] = []
        add, kinds, careful = events.append, self.kinds, self.serializer._decode_payload
        for encoded, schema_version, document in zip(records, schema_versions, documents, strict=True):
            kind = kinds.get(encoded.event_type, _UNSEEN)
            if kind is _UNSEEN:
                kind = kinds[encoded.event_type] = self._kind(encoded.event_type)
            if kind is not None and kind[2] == schema_version and type(document) is dict:
                try:
                    add(kind[0](document, kind[1]))
                    continue
                except Exception:  # noqa: BLE001, S110  # the careful path below decodes it again and says what is wrong
                    pass
            add(careful(encoded, schema_version))
        return events

    def _kind(self, event_type: str) -> _PayloadKind | None:
        resolved = self.serializer.registry.resolve(event_type)
        if resolved is None:
            return None
        cls, version = resolved
        return self.serializer.converter.get_structure_hook(cls), cls, version


def _documents(records: list[EncodedEvent]) -> list[Any] | None:
    """Every record's JSON document, parsed at once; None when that fails or gives another count."""
    try:
        texts = [binascii.a2b_base64(encoded.event_data, strict_mode=True).decode() for encoded in records]
        documents: list[Any] = json.loads("[" + ",".join(texts) + "]")
    except Exception:  # noqa: BLE001  # record by record, each failure is found and described
        return None
    return documents if len(documents) == len(records) else None


_UNSEEN: Any = object()
_build_stored = positional_builder(StoredEvent)

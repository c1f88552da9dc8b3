"""The one cattrs converter, and the codec between events and their stored form."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Protocol, TypeVar
from uuid import UUID

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import JsonConverter
from cattrs.preconf.json import make_converter as make_json_converter

from ..domain.events import (
    EventMetadata,
    EventRegistry,
    NewEvent,
    StoredEvent,
    default_registry,
    event_type_of,
)
from ..domain.personal import sealed_as_forgotten
from ..exceptions import DynamoESError, SerializationError, SubjectForgottenError, UnknownEventTypeError
from .decoding import BatchDecoder
from .gc import collection_paused
from .structuring import configure_quick_structure
from .untyped import UntypedValueError, configure_untyped, describe, json_native, untyped_field

__all__ = [
    "EncodedEvent",
    "EventSerializer",
    "RawEventSerializer",
    "Shredder",
    "configure_converter",
    "default_converter",
    "make_converter",
]

C = TypeVar("C", bound=cattrs.Converter)
_ZERO = timedelta(0)
_METADATA_CACHE_SIZE = 1024
T = TypeVar("T")
_METADATA_KEYS = {"correlation_id": "correlationId", "causation_id": "causationId", "trace_parent": "traceparent"}
_RESERVED_METADATA_KEYS = frozenset({*_METADATA_KEYS.values(), "schemaVersion"})


def configure_converter(converter: C) -> C:
    """Teach ``converter`` the types events commonly hold, losslessly as JSON, and our own records.

    datetime as ISO 8601 (naive values are taken as UTC), UUID and Decimal as strings;
    enums, nested attrs classes, lists, dicts, optionals and fields declared as sets are
    cattrs' own behaviour. Values JSON cannot carry back unchanged are refused, never changed:
    NaN and infinities, and in untyped positions (``Any``, ``object``, unannotated fields and
    the metadata's ``extra``) anything but JSON's own None, bool, int, float, str, list and
    dict with str keys: a ``bytes``, ``datetime``, ``tuple`` or ``set`` there needs its type declared.
    [`EventMetadata`][dynamo_es.EventMetadata] becomes the stored metadata document (``correlationId``,
    ``causationId`` and the ``extra`` keys beside them).
    """
    converter.register_unstructure_hook(datetime, _datetime_to_text)
    converter.register_structure_hook(datetime, lambda value, _: _datetime_from_text(value))
    converter.register_unstructure_hook(UUID, str)
    converter.register_structure_hook(UUID, lambda value, _: UUID(str(value)))
    converter.register_unstructure_hook(Decimal, str)
    converter.register_structure_hook(Decimal, lambda value, _: _decimal(value))
    configure_untyped(converter)
    configure_quick_structure(converter)
    _configure_metadata(converter)
    return converter


_TRACEPARENT = re.compile(r"(?!ff)[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
"""W3C Trace Context's traceparent: version (not ff), trace id and parent id (not all zeros), flags."""


def is_traceparent(value: object) -> bool:
    """Whether ``value`` is a W3C ``traceparent`` (``00-<32 hex>-<16 hex>-<2 hex>``, lower case)."""
    return isinstance(value, str) and _TRACEPARENT.fullmatch(value) is not None


def _configure_metadata(converter: cattrs.Converter) -> None:
    """EventMetadata as one flat JSON object: the named ids in camelCase, ``extra`` beside them."""
    overrides = {name: override(rename=key) for name, key in _METADATA_KEYS.items()}
    overrides["extra"] = override(omit=True)
    unstructure_known = make_dict_unstructure_fn(
        EventMetadata,
        converter,
        _cattrs_omit_if_default=True,
        **overrides,  # type: ignore[arg-type]  # cattrs types **kwargs as overrides, mypy mixes them with flags
    )
    structure_known = make_dict_structure_fn(EventMetadata, converter, **overrides)  # type: ignore[arg-type]

    def unstructure(metadata: EventMetadata) -> dict[str, Any]:
        clash = _RESERVED_METADATA_KEYS.intersection(metadata.extra)
        if clash:
            raise ValueError(f"metadata keys {sorted(clash)} are reserved")
        if metadata.trace_parent is not None and not is_traceparent(metadata.trace_parent):
            raise ValueError(f"metadata trace_parent {metadata.trace_parent!r} is not a W3C traceparent")
        return {**unstructure_known(metadata), **json_native(dict(metadata.extra))}

    def structure(document: Any, _: Any) -> EventMetadata:
        if not isinstance(document, dict):
            raise TypeError("metadata is not a JSON object")
        extra = {key: value for key, value in document.items() if key not in _RESERVED_METADATA_KEYS}
        return attrs.evolve(structure_known(document, EventMetadata), extra=extra)

    converter.register_unstructure_hook(EventMetadata, unstructure)
    converter.register_structure_hook(EventMetadata, structure)


def make_converter() -> JsonConverter:
    """A new JSON-ready converter configured by [`configure_converter()`][dynamo_es.configure_converter].

    Register hooks for your own types on it, and pass it to ``EventSerializer(converter=...)``.
    """
    return configure_converter(make_json_converter(forbid_extra_keys=False))


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError:  # decimal.InvalidOperation
        raise ValueError(f"{value!r} is not a decimal number") from None


def _datetime_to_text(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _datetime_from_text(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


default_converter = make_converter()
"""The converter every serializer and store uses unless given another."""


@attrs.frozen(kw_only=True)
class EncodedEvent:
    """An event in its stored form: one DynamoDB item's worth of strings and numbers."""

    stream_id: str
    aggregate_id: str
    aggregate_type: str
    version: int
    event_id: str
    event_type: str
    timestamp: str
    event_data: str
    metadata: str
    is_dispatched: bool = False
    expires_at: int | None = None
    """When DynamoDB's TTL may delete the item (epoch seconds): a temporary stream's expiry."""

    def texts(self) -> tuple[str, ...]:
        """The string values, in field order: what size estimates count."""
        return (
            self.stream_id,
            self.aggregate_id,
            self.aggregate_type,
            self.event_id,
            self.event_type,
            self.timestamp,
            self.event_data,
            self.metadata,
        )


class Shredder(Protocol):
    """Seals an event's personal fields on the way in and opens them on the way out (`dynamo_es.privacy`)."""

    def seal(self, cls: type[Any], document: dict[str, Any]) -> dict[str, Any]:
        """``document``, an unstructured event of ``cls``, with its personal fields sealed."""
        ...

    def open(self, cls: type[Any], document: dict[str, Any], *, batch: dict[str, Any] | None = None) -> dict[str, Any]:
        """``document`` with its sealed fields opened (placeholders for a forgotten subject).

        ``batch``: what one batch's documents share (keys looked up once); the document is then
        the batch's own, and may be changed in place.
        """
        ...

    def seal_state(self, subjects: Sequence[str], text: str, *, context: str) -> str:
        """A snapshot's state sealed with each subject's key in turn (any one forgotten: unreadable).

        ``context`` (the aggregate and version) is bound in: the state opens for it alone.
        """
        ...

    def open_state(self, text: str, *, context: str) -> tuple[str, list[str]] | None:
        """A sealed state opened, and its subjects; None when one is forgotten. Other text: as it is, no subjects."""
        ...


@attrs.define
class EventSerializer:
    """Encodes events to JSON (stored Base64) and decodes them, upcasting old schema versions.

    Attributes:
        converter: the cattrs converter for event payloads (default [`make_converter()`][dynamo_es.make_converter]).
        registry: where event type names are looked up (default: the global registry).
        shredder: seals personal fields (`dynamo_es.privacy.CryptoShredder`); None stores them as they are.
    """

    converter: cattrs.Converter = attrs.field(default=default_converter)
    registry: EventRegistry = attrs.field(default=default_registry)
    shredder: Shredder | None = attrs.field(default=None, kw_only=True)
    _metadata_cache: dict[str, tuple[EventMetadata, int]] = attrs.field(factory=dict, init=False, repr=False, eq=False)
    _metadata_texts: dict[tuple[str | None, str | None, str | None, int], str] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )

    def dumps(self, value: Any, unstructure_as: Any = None) -> str:
        """``value`` as compact JSON text, through the converter."""
        return dumps(self.converter, value, unstructure_as)

    def loads(self, text: str, cls: type[T]) -> T:
        """JSON ``text`` structured as ``cls``, through the converter."""
        return loads(self.converter, text, cls)

    def encode(self, new_event: NewEvent, *, aggregate_type: str, aggregate_id: str, version: int) -> EncodedEvent:
        """The stored form of ``new_event`` at ``version`` of the given stream."""
        stream_id = f"{aggregate_type}:{aggregate_id}"
        event_type, schema_version = event_type_of(new_event.event)
        try:
            document = self.converter.unstructure(new_event.event)
            if self.shredder is not None:
                document = self.shredder.seal(type(new_event.event), document)
            payload = _ENCODER.encode(document).encode()
            metadata = self._metadata_json(new_event.metadata, schema_version)
        except SubjectForgottenError as error:
            raise SubjectForgottenError(error.subject, stream_id=stream_id, version=version) from error
        except UntypedValueError as error:
            field, path = untyped_field(self.converter, new_event.event)
            where = describe(error, field, path) if field else describe(error, "metadata.extra")
            raise SerializationError(
                f"cannot serialize: {where}",
                stream_id=stream_id,
                version=version,
                event_type=event_type,
            ) from error
        except (TypeError, ValueError, RecursionError) as error:
            raise SerializationError(
                f"cannot serialize: {error}",
                stream_id=stream_id,
                version=version,
                event_type=event_type,
            ) from error
        return EncodedEvent(
            stream_id=stream_id,
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            version=version,
            event_id=new_event.event_id,
            event_type=event_type,
            timestamp=_utc_text(new_event.timestamp),
            event_data=binascii.b2a_base64(payload, newline=False).decode("ascii"),
            metadata=metadata,
        )

    def decode(self, encoded: EncodedEvent) -> StoredEvent:
        """The event in ``encoded``, upcast to its current class.

        Raises:
            UnknownEventTypeError: no class is registered for the stored type.
            SerializationError: the data or metadata is corrupt or does not fit the class.
        """
        metadata, schema_version = self._parse_metadata(encoded)
        return StoredEvent(
            stream_id=encoded.stream_id,
            aggregate_id=encoded.aggregate_id,
            aggregate_type=encoded.aggregate_type,
            version=encoded.version,
            event_id=encoded.event_id,
            event_type=encoded.event_type,
            timestamp=self._timestamp(encoded),
            event=self._decode_payload(encoded, schema_version),
            metadata=metadata,
            is_dispatched=encoded.is_dispatched,
        )

    def decode_all(self, records: Iterable[EncodedEvent]) -> list[StoredEvent]:
        """`decode()` for many records, the cyclic garbage collector paused meanwhile.

        The same results and errors as `decode()` one by one, faster: each event type's class
        and structure hook are looked up once per call, and the metadata and timestamp a run of
        events shares are parsed once. Anything unusual (an upcast, a corrupt payload) takes
        `decode()`'s own path, which raises what it raises.
        """
        with collection_paused():
            if type(self)._decode_payload is not EventSerializer._decode_payload:
                return [self.decode(record) for record in records]  # a subclass decodes payloads its own way
            return BatchDecoder(self).decode_all(records)

    def decode_events(self, records: Iterable[EncodedEvent]) -> list[Any]:
        """Each record's decoded event (``decode(record).event``), for a replay: no envelopes are built.

        The same events and errors as `decode()`, as for `decode_all()`, except that the
        timestamp is not read: a replay does not need it.
        """
        with collection_paused():
            if type(self)._decode_payload is not EventSerializer._decode_payload:
                return [self.decode(record).event for record in records]
            return BatchDecoder(self).events(records)

    def _decode_payload(self, encoded: EncodedEvent, schema_version: int) -> Any:
        resolved = self.registry.resolve(encoded.event_type)
        if resolved is None:
            raise _decode_error(
                encoded,
                "no event class is registered under this type name (decorate it with @event)",
                UnknownEventTypeError,
            )
        cls, current_version = resolved
        try:
            data = _json_document(binascii.a2b_base64(encoded.event_data, strict_mode=True).decode())
            if type(data) is dict:
                data = self.shredder.open(cls, data) if self.shredder is not None else sealed_as_forgotten(cls, data)
            if schema_version < current_version:
                data = self._upcast(encoded, data, schema_version, current_version)
            elif schema_version > current_version:
                raise ValueError(
                    f"stored schema version {schema_version} is newer than {cls.__qualname__}'s "
                    f"version {current_version}"
                )
            return self.converter.structure(data, cls)
        except (
            binascii.Error,
            ValueError,
            TypeError,
            KeyError,
            DynamoESError,
            cattrs.BaseValidationError,
        ) as error:
            raise _decode_error(encoded, f"cannot decode event data: {_describe(error)}") from error

    def _upcast(self, encoded: EncodedEvent, data: Any, schema_version: int, current_version: int) -> Any:
        """``data`` upcast to the current schema version; an upcaster's own error becomes a SerializationError."""
        try:
            return self.registry.upcast(encoded.event_type, data, schema_version, current_version)
        except DynamoESError:
            raise
        except Exception as error:  # an upcaster is user code: any error it raises is named here
            raise _decode_error(
                encoded, f"upcaster from schema version {schema_version} failed: {_describe(error)}"
            ) from error

    def _metadata_json(self, metadata: EventMetadata, schema_version: int) -> str:
        if not metadata.extra:  # the common case: the same few ids on every event of a save
            key = (metadata.correlation_id, metadata.causation_id, metadata.trace_parent, schema_version)
            text = self._metadata_texts.get(key)
            if text is None:
                text = self._metadata_texts[key] = self._metadata_document(metadata, schema_version)
                if len(self._metadata_texts) >= _METADATA_CACHE_SIZE:
                    self._metadata_texts.clear()
            return text
        return self._metadata_document(metadata, schema_version)

    def _metadata_document(self, metadata: EventMetadata, schema_version: int) -> str:
        document = {"schemaVersion": schema_version, **self.converter.unstructure(metadata, EventMetadata)}
        return _ENCODER.encode(document)

    def _parse_metadata(self, encoded: EncodedEvent) -> tuple[EventMetadata, int]:
        """The metadata and schema version; the events of one save share their metadata text, so it is parsed once."""
        cached = self._metadata_cache.get(encoded.metadata)
        if cached is not None:
            return cached
        try:
            document = json.loads(encoded.metadata) if encoded.metadata else {}
            metadata = self.converter.structure(document, EventMetadata)
            schema_version = int(document.get("schemaVersion", 1))
        except (ValueError, TypeError, cattrs.BaseValidationError) as error:
            raise _decode_error(encoded, f"cannot decode metadata: {_describe(error)}") from error
        if len(self._metadata_cache) >= _METADATA_CACHE_SIZE:
            self._metadata_cache.clear()
        metadata = attrs.evolve(metadata, extra=MappingProxyType(dict(metadata.extra)))  # shared: read-only
        self._metadata_cache[encoded.metadata] = metadata, schema_version
        return metadata, schema_version

    def _timestamp(self, encoded: EncodedEvent) -> datetime:
        try:
            parsed = datetime.fromisoformat(encoded.timestamp)
        except (ValueError, TypeError) as error:
            raise _decode_error(encoded, f"bad timestamp {encoded.timestamp!r}") from error
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@attrs.define
class RawEventSerializer(EventSerializer):
    """Decodes event data to plain JSON values instead of event classes (no upcasting).

    For tools that do not import the domain, like the ``dynamo-es`` command.
    """

    def _decode_payload(self, encoded: EncodedEvent, schema_version: int) -> Any:
        try:
            return json.loads(base64.b64decode(encoded.event_data, validate=True))
        except (binascii.Error, ValueError) as error:
            raise _decode_error(encoded, f"cannot decode event data: {error}") from error


_DECODER = json.JSONDecoder()
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""Compact JSON that any reader can take: NaN and Infinity are refused, not written as invalid JSON."""


def _utc_text(value: datetime) -> str:
    """ISO 8601 in UTC; naive values are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC).isoformat()
    return (value if value.utcoffset() == _ZERO else value.astimezone(UTC)).isoformat()


def _json_document(text: str) -> Any:
    """``json.loads`` for text we wrote ourselves (compact, no surrounding whitespace), a little faster."""
    value, end = _DECODER.raw_decode(text)
    if end != len(text):
        raise ValueError(f"extra data after the JSON document at {end}")
    return value


def dumps(converter: cattrs.Converter, value: Any, unstructure_as: Any = None) -> str:
    """``value`` as compact JSON text, unstructured by ``converter``."""
    return json.dumps(converter.unstructure(value, unstructure_as), separators=(",", ":"), ensure_ascii=False)


def loads(converter: cattrs.Converter, text: str, cls: type[T]) -> T:
    """JSON ``text`` structured as ``cls`` by ``converter``."""
    return converter.structure(json.loads(text), cls)


def _decode_error(
    encoded: EncodedEvent, message: str, kind: type[SerializationError] = SerializationError
) -> SerializationError:
    """An error about ``encoded`` that names its stream, version and event type."""
    return kind(message, stream_id=encoded.stream_id, version=encoded.version, event_type=encoded.event_type)


def _describe(error: BaseException) -> str:
    if isinstance(error, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(error)) or str(error)
    return str(error) or type(error).__name__

"""Event store settings: defaults, validation, and construction from a mapping or the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from .exceptions import ConfigurationError

__all__ = ["EventStoreSettings"]

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")
_NOT_SETTINGS = frozenset({"DYNAMO_ES_DYNAMODB_LOCAL_DIR"})
"""Variables with the settings' prefix that belong to other parts of dynamo-es (the test launcher)."""
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _table_name(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _TABLE_NAME.match(value):
        raise ConfigurationError(attribute.name, f"{value!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")


def _attribute_name(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _ATTRIBUTE_NAME.match(value):
        raise ConfigurationError(attribute.name, f"{value!r} is not a usable attribute name")


def _int_between(low: int, high: int | None = None) -> Any:
    def check(_: Any, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(attribute.name, f"{value!r} is not an integer")
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise ConfigurationError(attribute.name, f"{value} is not {bounds}")

    return check


def _boolean(_: Any, attribute: attrs.Attribute[bool], value: bool) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(attribute.name, f"{value!r} is not a boolean")


def _optional_text(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigurationError(attribute.name, f"{value!r} is not a non-empty string")


def _endpoint(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    try:
        parsed = urlsplit(value) if isinstance(value, str) else None
    except ValueError as error:
        raise ConfigurationError(attribute.name, f"{value!r}: {error}") from None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigurationError(attribute.name, f"{value!r} is not an http(s) URL such as http://127.0.0.1:8000")
    try:
        parsed.port  # noqa: B018 (a bad port raises here)
    except ValueError as error:
        raise ConfigurationError(attribute.name, f"{value!r}: {error}") from None


def _snake_case(key: str) -> str:
    """``EventsTableName`` / ``eventsTableName`` / ``EVENTS_TABLE_NAME`` -> ``events_table_name``."""
    if key.isupper() or "_" in key:
        return key.lower()
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


@attrs.frozen(kw_only=True)
class EventStoreSettings:
    """How dynamo-es reaches and shapes its DynamoDB table.

    Every option has a default, so ``EventStoreSettings()`` is a working configuration for
    the ``Events`` table in the default region. Build one from a configuration section with
    `from_mapping()` or from ``DYNAMO_ES_*`` environment variables with `from_env()`.
    """

    events_table_name: str = attrs.field(default="Events", validator=_table_name)
    partition_key_attribute: str = attrs.field(default="pk", validator=_attribute_name)
    sort_key_attribute: str = attrs.field(default="sk", validator=_attribute_name)
    use_transactional_write: bool = attrs.field(default=True, validator=_boolean)
    max_batch_size: int = attrs.field(default=100, validator=_int_between(1, 100))
    streams_poll_interval_ms: int = attrs.field(default=1000, validator=_int_between(1))
    checkpoints_table_name: str = attrs.field(default="EventCheckpoints", validator=_table_name)
    snapshots_table_name: str = attrs.field(default="EventSnapshots", validator=_table_name)
    keys_table_name: str = attrs.field(default="EventKeys", validator=_table_name)
    archive_table_name: str = attrs.field(default="EventArchive", validator=_table_name)
    ttl_attribute: str = attrs.field(default="expiresAt", validator=_attribute_name)
    outbox_partitions: int = attrs.field(default=1, validator=_int_between(1, 100))
    create_table_if_not_exists: bool = attrs.field(default=True, validator=_boolean)
    use_on_demand_capacity: bool = attrs.field(default=True, validator=_boolean)
    read_capacity_units: int = attrs.field(default=5, validator=_int_between(1))
    write_capacity_units: int = attrs.field(default=5, validator=_int_between(1))
    enable_streams: bool = attrs.field(default=True, validator=_boolean)
    region: str = attrs.field(default="us-east-1", validator=_optional_text)
    endpoint_url: str | None = attrs.field(default=None, validator=[_optional_text, _endpoint])
    aws_access_key_id: str | None = attrs.field(default=None, validator=_optional_text, repr=False)
    aws_secret_access_key: str | None = attrs.field(default=None, validator=_optional_text, repr=False)
    max_transient_retries: int = attrs.field(default=6, validator=_int_between(0, 50))
    retry_base_delay_ms: int = attrs.field(default=25, validator=_int_between(0))
    retry_max_delay_ms: int = attrs.field(default=2000, validator=_int_between(0))
    client_max_attempts: int = attrs.field(default=4, validator=_int_between(1, 10))

    def __attrs_post_init__(self) -> None:
        if self.partition_key_attribute == self.sort_key_attribute:
            raise ConfigurationError("sort_key_attribute", "must differ from partition_key_attribute")

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The names of every option, in declaration order."""
        return tuple(field.name for field in attrs.fields(cls))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> EventStoreSettings:
        """Build settings from a configuration section.

        Keys may be ``snake_case``, ``camelCase`` or ``PascalCase`` (``EventsTableName``).
        String values are parsed ("true", "100"), so a section read from a file works.

        Raises:
            ConfigurationError: for an unknown key or a bad value, naming the key.
        """
        fields = attrs.fields_dict(cls)
        values: dict[str, Any] = {}
        given: dict[str, str] = {}
        for key, raw in mapping.items():
            name = _snake_case(str(key))
            if name not in fields:
                raise ConfigurationError(str(key), "unknown setting")
            if name in given:
                raise ConfigurationError(str(key), f"given twice (also as {given[name]!r})")
            given[name] = str(key)
            values[name] = _parse(name, fields[name], raw)
        return cls(**values)

    @classmethod
    def from_env(cls, prefix: str = "DYNAMO_ES_", *, environ: Mapping[str, str] | None = None) -> EventStoreSettings:
        """Build settings from environment variables such as ``DYNAMO_ES_EVENTS_TABLE_NAME``.

        Variables that start with ``prefix`` but name no setting are an error, so a typo
        does not silently fall back to a default (the DynamoDB Local launcher's own
        ``DYNAMO_ES_DYNAMODB_LOCAL_DIR`` is not a setting and is left alone). An empty value
        is an error too, not a silent default.

        Raises:
            ConfigurationError: for an unknown variable or a bad value, naming the variable.
        """
        source = os.environ if environ is None else environ
        fields = attrs.fields_dict(cls)
        values: dict[str, Any] = {}
        for key, raw in source.items():
            if not key.startswith(prefix) or key in _NOT_SETTINGS:
                continue
            name = key[len(prefix) :].lower()
            if name not in fields:
                raise ConfigurationError(key, "unknown setting")
            try:
                values[name] = _parse(name, fields[name], raw)
            except ConfigurationError as error:
                raise ConfigurationError(key, error.reason) from None
        try:
            return cls(**values)
        except ConfigurationError as error:
            raise ConfigurationError(prefix + error.key.upper(), error.reason) from None


def _parse(name: str, field: attrs.Attribute[Any], raw: Any) -> Any:
    """Turn a configuration value (often a string) into the field's type."""
    if not isinstance(raw, str):
        return raw
    default = field.default
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigurationError(name, f"{raw!r} is not a boolean (true/false)")
    if isinstance(default, int):
        try:
            return int(raw.strip())
        except ValueError:
            raise ConfigurationError(name, f"{raw!r} is not an integer") from None
    if default is None and not raw.strip():
        raise ConfigurationError(name, "is empty; unset it to use the default")
    return raw

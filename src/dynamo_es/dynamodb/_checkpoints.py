"""DynamoDBCheckpointStore: projection checkpoints in a DynamoDB table of their own."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from .._serialization import default_converter, dumps, loads
from ..exceptions import EventStoreError
from ..projections._changes import StreamPosition
from ..settings import EventStoreSettings
from ._errors import BOUNDARY_ERRORS
from ._model import table_meta
from ._table import LazyTable

__all__ = ["CheckpointItem", "DynamoDBCheckpointStore", "checkpoint_model"]

_POSITION_KEY = "$position"


class CheckpointItem(Model):
    """One checkpoint row: ``(name, "$position")`` holds a position, ``(name, stream id)`` a version."""

    class Meta:
        abstract = True

    name = UnicodeAttribute(hash_key=True)
    key = UnicodeAttribute(range_key=True)
    position = UnicodeAttribute(null=True)
    version = NumberAttribute(null=True)
    updated_at = UnicodeAttribute(attr_name="updatedAt")


@functools.cache
def checkpoint_model(settings: EventStoreSettings) -> type[CheckpointItem]:
    """The :class:`CheckpointItem` model on ``settings.checkpoints_table_name``."""
    namespace = {"Meta": table_meta(settings, settings.checkpoints_table_name), "__module__": __name__}
    return type(f"CheckpointItem_{settings.checkpoints_table_name}", (CheckpointItem,), namespace)


def _now() -> str:
    return datetime.now(UTC).isoformat()


@attrs.define
class DynamoDBCheckpointStore:
    """A :class:`CheckpointStore` in its own DynamoDB table (``checkpoints_table_name``).

    The table (``name`` S hash key, ``key`` S range key, no stream) is created on first use
    like the events table.
    """

    settings: EventStoreSettings = attrs.field(factory=EventStoreSettings)
    _table: LazyTable[CheckpointItem] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._table = LazyTable(
            checkpoint_model(self.settings),
            self.settings.create_table_if_not_exists,
            {"HASH": ("name", "S"), "RANGE": ("key", "S")},
        )

    def ensure_table(self) -> dict[str, Any]:
        """Check the checkpoints table, creating it if missing and allowed."""
        return self._table.ensure()

    def load_position(self, name: str) -> StreamPosition | None:
        """The position saved under ``name``, or None."""
        model = self._table.ready()
        try:
            item = model.get(name, _POSITION_KEY, consistent_read=True)
        except model.DoesNotExist:
            return None
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read checkpoint {name!r}: {error}") from error
        return loads(default_converter, item.position or "{}", StreamPosition)

    def save_position(self, name: str, position: StreamPosition) -> None:
        """Save ``position`` under ``name``."""
        model = self._table.ready()
        text = dumps(default_converter, position)
        try:
            model(name, _POSITION_KEY, position=text, updated_at=_now()).save()
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot save checkpoint {name!r}: {error}") from error

    def load_versions(self, name: str, stream_ids: Iterable[str]) -> dict[str, int]:
        """The last applied version of each of ``stream_ids`` that has one."""
        model = self._table.ready()
        keys = [(name, stream_id) for stream_id in set(stream_ids)]
        if not keys:
            return {}
        try:
            return {item.key: int(item.version or 0) for item in model.batch_get(keys, consistent_read=True)}
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot read versions of {name!r}: {error}") from error

    def save_versions(self, name: str, versions: Mapping[str, int]) -> None:
        """Record the last applied version of each stream in ``versions``."""
        model = self._table.ready()
        now = _now()
        try:
            with model.batch_write() as batch:
                for stream_id, version in versions.items():
                    batch.save(model(name, stream_id, version=version, updated_at=now))
        except BOUNDARY_ERRORS as error:
            raise EventStoreError(f"cannot save versions of {name!r}: {error}") from error

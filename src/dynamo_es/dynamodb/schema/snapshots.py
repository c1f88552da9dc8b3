"""The snapshot item's schema: its PynamoDB model, on the settings' snapshots table."""

from __future__ import annotations

import functools

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from ...settings import EventStoreSettings
from .model import table_meta

__all__ = ["SnapshotItem", "snapshot_model"]


class SnapshotItem(Model):
    """A snapshot row: ``pk`` = stream id, ``sk`` = the version the state is at."""

    class Meta:  # noqa: D106  # PynamoDB's model options
        abstract = True

    stream_id = UnicodeAttribute(hash_key=True, attr_name="pk")
    version = NumberAttribute(range_key=True, attr_name="sk")
    aggregate_type = UnicodeAttribute(attr_name="aggregateType")
    aggregate_id = UnicodeAttribute(attr_name="aggregateId")
    schema_version = NumberAttribute(attr_name="schemaVersion")
    state = UnicodeAttribute(attr_name="state")
    taken_at = UnicodeAttribute(attr_name="takenAt")


@functools.cache
def snapshot_model(settings: EventStoreSettings) -> type[SnapshotItem]:
    """The `SnapshotItem` model on ``settings.snapshots_table_name``."""
    namespace = {"Meta": table_meta(settings, settings.snapshots_table_name), "__module__": __name__}
    return type(f"SnapshotItem_{settings.snapshots_table_name}", (SnapshotItem,), namespace)

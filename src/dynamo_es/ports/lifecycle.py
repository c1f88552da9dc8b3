"""A stream's lifecycle: deleting it, the protocol every store that can implements (sync and async).

A deletion first writes `StreamDeleted` after the stream's last event (with the stream's own
optimistic check, so it is all or nothing), then removes the events in bounded steps. From the
first step on, the stream loads as deleted (`StreamDeletedError`) and takes no append, not at
version 1 either; a deletion cut short is finished by calling ``delete_stream()`` again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..core.serialization import EncodedEvent, EventSerializer
from ..domain.lifecycle import STREAM_DELETED, StreamDeleted
from ..exceptions import StreamDeletedError

__all__ = ["AsyncDeletableStore", "DeletableStore", "StreamDeletion", "check_not_deleted"]


@attrs.frozen(kw_only=True)
class StreamDeletion:
    """What ``delete_stream()`` did.

    Attributes:
        stream_id: the stream.
        last_version: the version of its last event before the deletion (0: it had none, and
            nothing was written).
        removed: how many items this call removed (events, and with ``reuse_id`` the marks).
        already_deleted: an earlier call began the deletion; this one finished it.
        reusable: the id holds nothing any more: the next append starts again at version 1.
    """

    stream_id: str
    last_version: int
    removed: int
    already_deleted: bool = False
    reusable: bool = False


@runtime_checkable
class DeletableStore(Protocol):
    """A store whose streams can be deleted: the memory and DynamoDB stores."""

    def delete_stream(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        expected_version: int | None = None,
        reason: str = "",
        reuse_id: bool = False,
    ) -> StreamDeletion:
        """Delete the stream's events; see the module's description.

        ``expected_version``: refuse (`ConcurrencyError`) unless the stream is at that version.
        ``reuse_id``: remove the deletion's marks too, so the id may start again at version 1.
        Idempotent: a deleted stream is deleted again as a no-op (or the rest of a cut-short one).
        """
        ...


@runtime_checkable
class AsyncDeletableStore(Protocol):
    """The async `DeletableStore`."""

    async def delete_stream(
        self,
        aggregate_id: str,
        aggregate_type: str,
        *,
        expected_version: int | None = None,
        reason: str = "",
        reuse_id: bool = False,
    ) -> StreamDeletion:
        """Delete the stream's events; see `DeletableStore`."""
        ...


def check_not_deleted(serializer: EventSerializer, records: Sequence[EncodedEvent]) -> None:
    """Raise `StreamDeletedError` when a load's first or last record is a deletion's mark.

    A deletion replaces version 1 with a mark and writes one after the last event, so every
    load of a deleted stream (of any range reaching either end) holds one.
    """
    for record in (records[0], records[-1]) if records else ():
        if record.event_type == STREAM_DELETED:
            raise StreamDeletedError(record.stream_id, _last_version(serializer.decode(record).event, record))


def _last_version(mark: Any, record: EncodedEvent) -> int:
    """The mark's last version: from `StreamDeleted`, or from its document (a raw serializer's)."""
    if isinstance(mark, StreamDeleted):
        return mark.last_version
    if isinstance(mark, dict) and isinstance(mark.get("last_version"), int):
        return int(mark["last_version"])
    return record.version - 1

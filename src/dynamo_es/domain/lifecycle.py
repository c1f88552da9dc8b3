"""The events a store writes itself about a stream's life: `StreamDeleted` and `StreamTruncated`."""

from __future__ import annotations

import attrs

__all__ = ["STREAM_DELETED", "STREAM_TRUNCATED", "StreamDeleted", "StreamTruncated"]

STREAM_DELETED = "$StreamDeleted"
"""`StreamDeleted`'s event type name, in every registry (``$``: no user type is named so)."""
STREAM_TRUNCATED = "$StreamTruncated"
"""`StreamTruncated`'s event type name, in every registry."""


@attrs.frozen
class StreamDeleted:
    """The stream was deleted: its events are gone, and this is what is left of it.

    A store writes it after the last event when ``delete_stream()`` begins, so projections
    and Lambda handlers receive it as a change of its own: handle it (``@handles(StreamDeleted)``)
    to drop the aggregate from a read model. It needs no gap filling: a projection applies it
    whatever versions it has not seen, for they are deleted.

    Attributes:
        last_version: the version of the stream's last event before the deletion.
        reason: what the caller gave as the reason, for the audit trail.
    """

    last_version: int
    reason: str = ""


@attrs.frozen
class StreamTruncated:
    """Version 1 of a truncated stream: the events before ``first_version`` are gone.

    Loads from a snapshot at ``first_version - 1`` or later never read it; a load that starts
    before ``first_version`` raises `StreamTruncatedError`.
    """

    first_version: int

"""The events dynamo-es writes itself: `StreamDeleted`, `StreamTruncated`, `StreamArchived`, `SubjectForgotten`."""

from __future__ import annotations

import attrs

__all__ = [
    "EXPIRED",
    "STREAM_ARCHIVED",
    "STREAM_DELETED",
    "STREAM_MARKS",
    "STREAM_TRUNCATED",
    "SUBJECTS",
    "SUBJECT_FORGOTTEN",
    "StreamArchived",
    "StreamDeleted",
    "StreamTruncated",
    "SubjectForgotten",
]

STREAM_DELETED = "$StreamDeleted"
"""`StreamDeleted`'s event type name, in every registry (``$``: no user type is named so)."""
STREAM_TRUNCATED = "$StreamTruncated"
"""`StreamTruncated`'s event type name, in every registry."""
STREAM_ARCHIVED = "$StreamArchived"
"""`StreamArchived`'s event type name, in every registry."""
STREAM_MARKS = frozenset({STREAM_DELETED, STREAM_TRUNCATED, STREAM_ARCHIVED})
"""The event types of a store's own marks, which stand in a stream's slots but are no events of it."""
SUBJECT_FORGOTTEN = "$SubjectForgotten"
"""`SubjectForgotten`'s event type name, in every registry."""
EXPIRED = "expired (TTL)"
"""The ``reason`` of the `StreamDeleted` a projection receives for a temporary stream DynamoDB's TTL removed."""
SUBJECTS = "$Subject"
"""The aggregate type of the streams that announce forgotten subjects: ``$Subject:{subject}``."""


@attrs.frozen
class StreamDeleted:
    """The stream was deleted: its events are gone, and this is what is left of it.

    A store writes it after the last event when ``delete_stream()`` begins, so projections
    and Lambda handlers receive it as a change of its own: handle it (``@handles(StreamDeleted)``)
    to drop the aggregate from a read model. It needs no gap filling: a projection applies it
    whatever versions it has not seen, for they are deleted.

    A temporary stream removed by DynamoDB's TTL (``expire_after``) arrives as one too, with
    ``reason`` `EXPIRED` and ``last_version`` the version of the removed item that announced it
    (the change's ``expired`` is True): the same handler drops the aggregate.

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


@attrs.frozen
class StreamArchived:
    """What an archived stream leaves in the events table: version 1 and the slot after its last event.

    ``archive_stream()`` moves the events to the archive table; ``restore_stream()`` moves them
    back and removes both marks, so the stream goes on at ``last_version + 1``. Projections
    skip it without counting its version: it is no event of the aggregate.

    Attributes:
        last_version: the version of the stream's last event.
    """

    last_version: int


@attrs.frozen
class SubjectForgotten:
    """A data subject was forgotten (crypto-shredding): read models drop what they derived from its data.

    ``CryptoShredder.forget(subject, announce_to=store)`` appends it as version 1 of the stream
    ``$Subject:{subject}``, once, so projections and Lambda handlers receive it like any event.
    """

    subject: str

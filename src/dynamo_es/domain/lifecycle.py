"""The events dynamo-es writes itself: `StreamDeleted`, `StreamTruncated`, `SubjectForgotten`."""

from __future__ import annotations

import attrs

__all__ = [
    "STREAM_DELETED",
    "STREAM_TRUNCATED",
    "SUBJECTS",
    "SUBJECT_FORGOTTEN",
    "StreamDeleted",
    "StreamTruncated",
    "SubjectForgotten",
]

STREAM_DELETED = "$StreamDeleted"
"""`StreamDeleted`'s event type name, in every registry (``$``: no user type is named so)."""
STREAM_TRUNCATED = "$StreamTruncated"
"""`StreamTruncated`'s event type name, in every registry."""
SUBJECT_FORGOTTEN = "$SubjectForgotten"
"""`SubjectForgotten`'s event type name, in every registry."""
SUBJECTS = "$Subject"
"""The aggregate type of the streams that announce forgotten subjects: ``$Subject:{subject}``."""


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


@attrs.frozen
class SubjectForgotten:
    """A data subject was forgotten (crypto-shredding): read models drop what they derived from its data.

    ``CryptoShredder.forget(subject, announce_to=store)`` appends it as version 1 of the stream
    ``$Subject:{subject}``, once, so projections and Lambda handlers receive it like any event.
    """

    subject: str

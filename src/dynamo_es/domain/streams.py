"""A stream's identity: the partition key ``{aggregateType}:{aggregateId}``, checked once for every store."""

from __future__ import annotations

from ..exceptions import InvalidStreamError

__all__ = ["MAX_STREAM_ID_BYTES", "make_stream_id"]

MAX_STREAM_ID_BYTES = 2048
"""DynamoDB's partition key limit, in bytes of UTF-8 (not characters)."""


def make_stream_id(aggregate_type: str, aggregate_id: str) -> str:
    """The partition key ``{aggregate_type}:{aggregate_id}``, after checking both parts.

    Raises:
        InvalidStreamError: a part is empty or not a string, the type contains ``:`` (which
            would make the key ambiguous), a part is not valid Unicode text (a lone surrogate),
            or the key is over DynamoDB's 2,048 bytes of UTF-8.
    """
    for label, value in (("aggregate type", aggregate_type), ("aggregate id", aggregate_id)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidStreamError(f"{label} must be a non-empty string, not {value!r}")
    if ":" in aggregate_type:
        raise InvalidStreamError(f"aggregate type {aggregate_type!r} must not contain ':'")
    stream_id = f"{aggregate_type}:{aggregate_id}"
    if stream_id.isascii():
        size = len(stream_id)
    else:
        try:
            size = len(stream_id.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise InvalidStreamError(f"stream id {stream_id!r} is not valid Unicode text: {error.reason}") from None
    if size > MAX_STREAM_ID_BYTES:
        raise InvalidStreamError(
            f"stream id {stream_id[:40]!r}... is {size:,} bytes of UTF-8; DynamoDB's limit is {MAX_STREAM_ID_BYTES:,}"
        )
    return stream_id

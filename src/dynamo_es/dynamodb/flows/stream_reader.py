"""Reading a DynamoDB stream shard by shard, parents first: the rules as flows, for both subscriptions.

`StreamReader` holds a subscription's state (shards, iterators, position, backoff) and its
requests as flows: `Subscription` drives them on botocore,
`AsyncSubscription` on aiobotocore, so the two read a stream by exactly the same rules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from ...core.changes import SHARD_END, Change, StreamPosition
from ...exceptions import StreamTrimmedError, SubscriptionError
from ...ports.source import StartAt, TrimmedPolicy
from .base import Call, Flow, Sleep
from .errors import BOUNDARY_ERRORS

__all__ = ["RecordDecoder", "StreamReader", "creation_time", "describe_shards", "first_record_time"]

log = logging.getLogger("dynamo_es.streams")

C = TypeVar("C")

RecordDecoder = Callable[[Mapping[str, Any], "str | None"], "Change | None"]
"""Turns one stream record into a Change, or None when its item is not an event."""

_THROTTLED = frozenset(
    {"LimitExceededException", "ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"}
)
_MAX_BACKOFF_SECONDS = 30.0
_SHARD_REFRESH_SECONDS = 10.0
_DECODE_CHUNK = 250
"""Records decoded between pauses for the event loop (the sync driver does not pause)."""


@attrs.define
class _Shard:
    shard_id: str
    parent_id: str | None
    closed: bool
    iterator: str | None = None
    finished: bool = False
    last_sequence: str | None = None


def _code(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return type(error).__name__


@attrs.define
class StreamReader(Generic[C]):
    """A subscription's state and its reads as flows; see [`Subscription`][dynamo_es.dynamodb.Subscription].

    ``client`` is what the subscription drives the flows on: a lazy ``dynamodbstreams`` client.
    """

    client: C
    stream_arn: str
    decode: RecordDecoder
    position: StreamPosition = attrs.field(factory=StreamPosition)
    poll_interval: float = attrs.field(default=1.0, kw_only=True)
    start_at: StartAt = attrs.field(default="trim_horizon", kw_only=True)
    on_trimmed: TrimmedPolicy = attrs.field(default="restart", kw_only=True)
    batch_limit: int = attrs.field(default=1000, kw_only=True)
    _shards: dict[str, _Shard] = attrs.field(factory=dict, init=False, repr=False)
    _started: bool = attrs.field(default=False, init=False, repr=False)
    _resuming: bool = attrs.field(default=False, init=False, repr=False)
    _throttled: int = attrs.field(default=0, init=False, repr=False)
    _refreshed_at: float = attrs.field(default=0.0, init=False, repr=False)
    _idle: bool = attrs.field(default=False, init=False, repr=False)
    _hiccup: bool = attrs.field(default=False, init=False, repr=False)
    _unreturned: list[Change] = attrs.field(factory=list, init=False, repr=False)
    """Changes read by a poll that did not return (an async poll cancelled midway): the next poll returns them."""
    foreign: int = attrs.field(default=0, init=False)
    """Records skipped because their item is not an event (single-table designs)."""
    records_lost: int = attrs.field(default=0, init=False)
    """How often records were trimmed before they were read (a Projection then reads the table)."""

    def _start_flow(self) -> Flow[None]:
        if not self._started:
            self._resuming = bool(self.position.shards)
            yield from self._refresh_shards(initial=True)
            self._started = True
            self._check_resumed_shards()

    def _check_resumed_shards(self) -> None:
        """A saved shard that the stream no longer lists expired (24 h): records after it may be lost."""
        gone = sorted(
            s for s, sequence in self.position.shards.items() if s not in self._shards and sequence != SHARD_END
        )
        if not gone:
            return
        if self.on_trimmed == "raise":
            raise StreamTrimmedError(gone[0], self.position.shards[gone[0]])
        self.records_lost += 1
        log.warning("saved shards %s are gone from the stream (older than 24 h): records may be lost", gone)

    def _delay(self) -> float:
        if self._throttled:
            return float(min(_MAX_BACKOFF_SECONDS, self.poll_interval * 2**self._throttled))
        return self.poll_interval

    # -- one read of every readable shard ------------------------------------------------

    def _poll_flow(self) -> Flow[list[Change]]:
        yield from self._start_flow()
        if time.monotonic() - self._refreshed_at > _SHARD_REFRESH_SECONDS:
            yield from self._refresh_shards()
        progressed = False
        self._hiccup = False
        for shard in list(self._shards.values()):
            if self._readable(shard):
                before = shard.finished
                self._unreturned.extend((yield from self._read(shard)))
                progressed |= shard.finished and not before
        if progressed:
            yield from self._refresh_shards()
        changes, self._unreturned = self._unreturned, []
        self._idle = not changes and not progressed and not self._throttled and not self._hiccup
        return changes

    def _readable(self, shard: _Shard) -> bool:
        if shard.finished:
            return False
        parent = self._shards.get(shard.parent_id) if shard.parent_id else None
        return parent is None or parent.finished

    def _read(self, shard: _Shard) -> Flow[list[Change]]:
        if shard.iterator is None:
            shard.iterator = yield from self._iterator(shard)
            if shard.iterator is None:
                return []
        try:
            response = yield Call("get_records", {"ShardIterator": shard.iterator, "Limit": self.batch_limit})
        except BOUNDARY_ERRORS as error:
            return (yield from self._read_failed(shard, error))
        self._throttled = 0
        records = response.get("Records", [])
        changes = yield from self._decoded(records, shard.shard_id)  # the shard moves on once they are decoded
        shard.iterator = response.get("NextShardIterator")
        if shard.iterator is None:
            shard.finished = True
            self.position = self.position.finished(shard.shard_id)
            log.debug("shard %s read to its end", shard.shard_id)
        self.foreign += len(records) - len(changes)
        if changes:
            shard.last_sequence = changes[-1].sequence_number
        return changes

    def _decoded(self, records: list[Mapping[str, Any]], shard_id: str) -> Flow[list[Change]]:
        changes: list[Change] = []
        for start in range(0, len(records), _DECODE_CHUNK):
            if start:
                yield Sleep(0)
            decoded = (self.decode(record, shard_id) for record in records[start : start + _DECODE_CHUNK])
            changes.extend(change for change in decoded if change is not None)
        return changes

    def _read_failed(self, shard: _Shard, error: BaseException) -> Flow[list[Change]]:
        code = _code(error)
        self._hiccup = True
        if code == "ExpiredIteratorException":
            log.info("shard %s: iterator expired; renewing after %s", shard.shard_id, shard.last_sequence)
            shard.iterator = None
        elif code == "TrimmedDataAccessException":
            yield from self._trimmed(shard)
        elif code == "ResourceNotFoundException":
            log.warning("shard %s is gone from the stream; skipping it", shard.shard_id)
            shard.finished = True
        elif code in _THROTTLED or isinstance(error, BotoCoreError):
            self._throttled += 1
            log.info("stream read throttled (%s); backing off %.1fs", code, self._delay())
        else:
            raise SubscriptionError(f"cannot read shard {shard.shard_id}: {error}") from error
        return []

    def _trimmed(self, shard: _Shard) -> Flow[None]:
        if self.on_trimmed == "raise":
            raise StreamTrimmedError(shard.shard_id, shard.last_sequence)
        self.records_lost += 1
        log.warning(
            "shard %s: records after %s were trimmed before they were read (the stream keeps 24 h); "
            "going on from the oldest record still kept: changes in between are lost to this subscription",
            shard.shard_id,
            shard.last_sequence,
        )
        shard.last_sequence = None
        shard.iterator = yield from self._get_iterator(shard, "TRIM_HORIZON")

    # -- shards and iterators ------------------------------------------------------------

    def _iterator(self, shard: _Shard) -> Flow[str | None]:
        sequence = shard.last_sequence or self.position.shards.get(shard.shard_id)
        if sequence == SHARD_END:
            shard.finished = True
            return None
        if sequence is None:
            return (yield from self._get_iterator(shard, "TRIM_HORIZON"))
        shard.last_sequence = sequence
        return (yield from self._get_iterator(shard, "AFTER_SEQUENCE_NUMBER", sequence))

    def _get_iterator(self, shard: _Shard, kind: str, sequence: str | None = None) -> Flow[str | None]:
        request: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id, "ShardIteratorType": kind}
        if sequence is not None:
            request["SequenceNumber"] = sequence
        try:
            response = yield Call("get_shard_iterator", request)
        except BOUNDARY_ERRORS as error:
            code = _code(error)
            if code == "ResourceNotFoundException":
                shard.finished = True
                return None
            if code == "TrimmedDataAccessException" and kind != "TRIM_HORIZON":
                yield from self._trimmed(shard)
                return shard.iterator
            raise SubscriptionError(f"cannot open shard {shard.shard_id} at {kind}: {error}") from error
        iterator: str | None = response.get("ShardIterator")
        return iterator

    def _refresh_shards(self, *, initial: bool = False) -> Flow[None]:
        for description in (yield from self._describe_shards()):
            shard_id = description["ShardId"]
            if shard_id in self._shards:
                continue
            shard = _Shard(
                shard_id,
                description.get("ParentShardId"),
                closed="EndingSequenceNumber" in description.get("SequenceNumberRange", {}),
            )
            if initial and not self._resuming and self.start_at == "latest":
                yield from self._start_at_latest(shard)
            self._shards[shard_id] = shard
            log.debug("found shard %s (parent %s)", shard_id, shard.parent_id)
        self._refreshed_at = time.monotonic()

    def _start_at_latest(self, shard: _Shard) -> Flow[None]:
        if shard.closed:
            shard.finished = True
        else:
            shard.iterator = yield from self._get_iterator(shard, "LATEST")

    def _describe_shards(self) -> Flow[list[dict[str, Any]]]:
        return (yield from describe_shards(self.stream_arn))


def describe_shards(stream_arn: str) -> Flow[list[dict[str, Any]]]:
    """The stream's shard descriptions (DescribeStream, paged)."""
    shards: list[dict[str, Any]] = []
    request: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        try:
            response = yield Call("describe_stream", dict(request))
        except BOUNDARY_ERRORS as error:
            raise SubscriptionError(f"cannot describe stream {stream_arn}: {error}") from error
        description = response["StreamDescription"]
        shards.extend(description.get("Shards", []))
        last = description.get("LastEvaluatedShardId")
        if not last:
            return shards
        request["ExclusiveStartShardId"] = last


_PROBE_PAGES = 3
"""GetRecords calls per shard before a shard counts as read to its end (an empty page proves little on AWS)."""


def first_record_time(stream_arn: str, shard_id: str, after: str | None) -> Flow[datetime | None]:
    """When the first record of the shard after sequence ``after`` (None: its oldest) was written; None if none.

    A few empty pages in a row count as none (DynamoDB Streams may answer an empty page before a record).
    """
    request: dict[str, Any] = {"StreamArn": stream_arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}
    if after is not None:
        request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after)
    try:
        iterator = (yield Call("get_shard_iterator", request)).get("ShardIterator")
        for _ in range(_PROBE_PAGES):
            if not iterator:
                return None
            page = yield Call("get_records", {"ShardIterator": iterator, "Limit": 1})
            if page.get("Records"):
                return creation_time(page["Records"][0]["dynamodb"].get("ApproximateCreationDateTime"))
            iterator = page.get("NextShardIterator")
    except BOUNDARY_ERRORS as error:
        raise SubscriptionError(f"cannot read shard {shard_id} of {stream_arn}: {error}") from error
    return None


def creation_time(value: Any) -> datetime:
    """Botocore gives a datetime; Lambda epoch seconds; Kinesis for DynamoDB milli- or microseconds."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        while value > 1e11:  # no stream record is dated after the year 5138 in seconds
            value /= 1000
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)

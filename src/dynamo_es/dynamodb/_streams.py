"""DynamoDB Streams: read the events table's stream shard by shard, parents first, and decode its records."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
from botocore.exceptions import BotoCoreError, ClientError

from .._serialization import EventSerializer
from ..exceptions import StreamTrimmedError, SubscriptionError
from ..projections._changes import SHARD_END, Change, ChangeKind, StreamPosition
from ..projections._source import StartAt, TrimmedPolicy
from ..settings import EventStoreSettings
from ._client import make_client
from ._model import EventItemCodec

__all__ = ["RecordDecoder", "Subscription", "make_streams_client", "record_decoder"]

log = logging.getLogger("dynamo_es.streams")

RecordDecoder = Callable[[Mapping[str, Any], "str | None"], "Change | None"]
"""Turns one stream record into a Change, or None when its item is not an event."""
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"

_THROTTLED = frozenset(
    {"LimitExceededException", "ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"}
)
_MAX_BACKOFF_SECONDS = 30.0
_SHARD_REFRESH_SECONDS = 10.0


def make_streams_client(settings: EventStoreSettings) -> Any:
    """A botocore ``dynamodbstreams`` client for ``settings``; GetRecords pages stay in wire format."""
    return make_client(settings, "dynamodbstreams")


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
class Subscription:
    """Changes of the events table, from its DynamoDB stream, in order per aggregate.

    Iterate it (``for change in subscription``) or ``async for change in
    subscription.read_changes()``; `stop()` (from any thread) ends either cleanly.
    Every shard is found and re-listed as the stream reshards; a parent shard is read to its
    end before its children, so the changes of one aggregate arrive in version order. An
    expired shard iterator is renewed from the last sequence number. Empty reads wait
    ``poll_interval`` seconds; throttling backs off exponentially up to 30 s.

    Made by ``DynamoDBEventStore.subscribe_to_changes()``.
    """

    client: Any
    stream_arn: str
    decode: RecordDecoder
    position: StreamPosition = attrs.field(factory=StreamPosition)
    poll_interval: float = attrs.field(default=1.0, kw_only=True)
    start_at: StartAt = attrs.field(default="trim_horizon", kw_only=True)
    on_trimmed: TrimmedPolicy = attrs.field(default="restart", kw_only=True)
    batch_limit: int = attrs.field(default=1000, kw_only=True)
    _shards: dict[str, _Shard] = attrs.field(factory=dict, init=False, repr=False)
    _stopped: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)
    _started: bool = attrs.field(default=False, init=False, repr=False)
    _resuming: bool = attrs.field(default=False, init=False, repr=False)
    _throttled: int = attrs.field(default=0, init=False, repr=False)
    _refreshed_at: float = attrs.field(default=0.0, init=False, repr=False)
    _idle: bool = attrs.field(default=False, init=False, repr=False)
    _hiccup: bool = attrs.field(default=False, init=False, repr=False)
    foreign: int = attrs.field(default=0, init=False)
    """Records skipped because their item is not an event (single-table designs)."""
    records_lost: int = attrs.field(default=0, init=False)
    """How often records were trimmed before they were read (a Projection then reads the table)."""

    def start(self) -> Subscription:
        """List the shards and place an iterator at the start of each readable one."""
        if not self._started:
            self._resuming = bool(self.position.shards)
            self._refresh_shards(initial=True)
            self._started = True
            self._check_resumed_shards()
        return self

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

    def stop(self) -> None:
        """End iteration after the change being delivered; safe from another thread."""
        self._stopped.set()

    @property
    def stopped(self) -> bool:
        """Whether `stop()` was called."""
        return self._stopped.is_set()

    # -- delivery ------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Change]:
        for batch in self._batches(stop_when_idle=False):
            for change in batch:
                self.position = self.position.after(change)
                yield change
                if self.stopped:
                    return

    def batches(self, *, stop_when_idle: bool = False) -> Iterator[list[Change]]:
        """The changes, one list per read; with ``stop_when_idle``, end once caught up."""
        for batch in self._batches(stop_when_idle=stop_when_idle):
            self.position = self.position.after_all(batch)
            yield batch

    async def read_changes(self, *, stop_when_idle: bool = False) -> AsyncIterator[Change]:
        """The changes as an async iterator; reads run in a worker thread."""
        self.start()
        while not self.stopped:
            batch = await asyncio.to_thread(self.poll)
            for change in batch:
                self.position = self.position.after(change)
                yield change
                if self.stopped:
                    return
            if not batch:
                if stop_when_idle and self._idle:
                    return
                await asyncio.sleep(self._delay())

    def _batches(self, *, stop_when_idle: bool) -> Iterator[list[Change]]:
        self.start()
        while not self.stopped:
            batch = self.poll()
            if batch:
                yield batch
                continue
            if stop_when_idle and self._idle:
                return
            self._stopped.wait(self._delay())

    def _delay(self) -> float:
        if self._throttled:
            return float(min(_MAX_BACKOFF_SECONDS, self.poll_interval * 2**self._throttled))
        return self.poll_interval

    # -- one read of every readable shard ------------------------------------------------

    def poll(self) -> list[Change]:
        """Read each readable shard once and return the decoded changes (position not moved)."""
        self.start()
        if time.monotonic() - self._refreshed_at > _SHARD_REFRESH_SECONDS:
            self._refresh_shards()
        changes: list[Change] = []
        progressed = False
        self._hiccup = False
        for shard in list(self._shards.values()):
            if self._readable(shard):
                before = shard.finished
                changes.extend(self._read(shard))
                progressed |= shard.finished and not before
        if progressed:
            self._refresh_shards()
        self._idle = not changes and not progressed and not self._throttled and not self._hiccup
        return changes

    def _readable(self, shard: _Shard) -> bool:
        if shard.finished:
            return False
        parent = self._shards.get(shard.parent_id) if shard.parent_id else None
        return parent is None or parent.finished

    def _read(self, shard: _Shard) -> list[Change]:
        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
            if shard.iterator is None:
                return []
        try:
            response = self.client.get_records(ShardIterator=shard.iterator, Limit=self.batch_limit)
        except (ClientError, BotoCoreError) as error:
            return self._read_failed(shard, error)
        self._throttled = 0
        records = response.get("Records", [])
        shard.iterator = response.get("NextShardIterator")
        if shard.iterator is None:
            shard.finished = True
            self.position = self.position.finished(shard.shard_id)
            log.debug("shard %s read to its end", shard.shard_id)
        decoded = (self.decode(record, shard.shard_id) for record in records)
        changes = [change for change in decoded if change is not None]
        self.foreign += len(records) - len(changes)
        if changes:
            shard.last_sequence = changes[-1].sequence_number
        return changes

    def _read_failed(self, shard: _Shard, error: BaseException) -> list[Change]:
        code = _code(error)
        self._hiccup = True
        if code == "ExpiredIteratorException":
            log.info("shard %s: iterator expired; renewing after %s", shard.shard_id, shard.last_sequence)
            shard.iterator = None
        elif code == "TrimmedDataAccessException":
            self._trimmed(shard)
        elif code == "ResourceNotFoundException":
            log.warning("shard %s is gone from the stream; skipping it", shard.shard_id)
            shard.finished = True
        elif code in _THROTTLED or isinstance(error, BotoCoreError):
            self._throttled += 1
            log.info("stream read throttled (%s); backing off %.1fs", code, self._delay())
        else:
            raise SubscriptionError(f"cannot read shard {shard.shard_id}: {error}") from error
        return []

    def _trimmed(self, shard: _Shard) -> None:
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
        shard.iterator = self._get_iterator(shard, "TRIM_HORIZON")

    # -- shards and iterators ------------------------------------------------------------

    def _iterator(self, shard: _Shard) -> str | None:
        sequence = shard.last_sequence or self.position.shards.get(shard.shard_id)
        if sequence == SHARD_END:
            shard.finished = True
            return None
        if sequence is None:
            return self._get_iterator(shard, "TRIM_HORIZON")
        shard.last_sequence = sequence
        return self._get_iterator(shard, "AFTER_SEQUENCE_NUMBER", sequence)

    def _get_iterator(self, shard: _Shard, kind: str, sequence: str | None = None) -> str | None:
        request: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id, "ShardIteratorType": kind}
        if sequence is not None:
            request["SequenceNumber"] = sequence
        try:
            iterator: str | None = self.client.get_shard_iterator(**request).get("ShardIterator")
        except (ClientError, BotoCoreError) as error:
            code = _code(error)
            if code == "ResourceNotFoundException":
                shard.finished = True
                return None
            if code == "TrimmedDataAccessException" and kind != "TRIM_HORIZON":
                self._trimmed(shard)
                return shard.iterator
            raise SubscriptionError(f"cannot open shard {shard.shard_id} at {kind}: {error}") from error
        return iterator

    def _refresh_shards(self, *, initial: bool = False) -> None:
        for description in self._describe_shards():
            shard_id = description["ShardId"]
            if shard_id in self._shards:
                continue
            shard = _Shard(
                shard_id,
                description.get("ParentShardId"),
                closed="EndingSequenceNumber" in description.get("SequenceNumberRange", {}),
            )
            if initial and not self._resuming and self.start_at == "latest":
                self._start_at_latest(shard)
            self._shards[shard_id] = shard
            log.debug("found shard %s (parent %s)", shard_id, shard.parent_id)
        self._refreshed_at = time.monotonic()

    def _start_at_latest(self, shard: _Shard) -> None:
        if shard.closed:
            shard.finished = True
        else:
            shard.iterator = self._get_iterator(shard, "LATEST")

    def _describe_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        try:
            while True:
                description = self.client.describe_stream(**request)["StreamDescription"]
                shards.extend(description.get("Shards", []))
                last = description.get("LastEvaluatedShardId")
                if not last:
                    return shards
                request["ExclusiveStartShardId"] = last
        except (ClientError, BotoCoreError) as error:
            raise SubscriptionError(f"cannot describe stream {self.stream_arn}: {error}") from error


def record_decoder(serializer: EventSerializer, codec: EventItemCodec) -> RecordDecoder:
    """A function turning one stream record (GetRecords or Lambda shape) into a [`Change`][dynamo_es.Change].

    It returns None for a record whose item is not an event (another entity type in a
    single-table design).
    """

    def decode(record: Mapping[str, Any], shard_id: str | None) -> Change | None:
        stream_record = record["dynamodb"]
        kind = _kind(record)
        image = stream_record.get("OldImage" if kind is ChangeKind.REMOVE else "NewImage")
        if image is None:
            if kind is ChangeKind.REMOVE and "NewImage" not in stream_record and _view(stream_record) == "NEW_IMAGE":
                return None  # a NEW_IMAGE stream says nothing of what a removal removed
            raise _no_image(stream_record, kind)
        if not codec.is_event(image):
            return None
        old = stream_record.get("OldImage") if kind is ChangeKind.MODIFY else None
        return Change(
            kind=kind,
            event=serializer.decode(codec.decode(image)),
            previous=None if old is None else serializer.decode(codec.decode(old)),
            shard_id=shard_id,
            sequence_number=str(stream_record["SequenceNumber"]),
            approximate_creation_time=_creation_time(stream_record.get("ApproximateCreationDateTime")),
            expired=kind is ChangeKind.REMOVE and _by_ttl(record),
        )

    return decode


def _kind(record: Mapping[str, Any]) -> ChangeKind:
    try:
        return ChangeKind(record.get("eventName"))
    except ValueError:
        raise SubscriptionError(
            f"stream record has eventName {record.get('eventName')!r}, not INSERT, MODIFY or REMOVE"
        ) from None


def _view(stream_record: Mapping[str, Any]) -> str:
    return str(stream_record.get("StreamViewType") or ("KEYS_ONLY" if "Keys" in stream_record else "unknown"))


def _no_image(stream_record: Mapping[str, Any], kind: ChangeKind) -> SubscriptionError:
    needed = "OldImage" if kind is ChangeKind.REMOVE else "NewImage"
    return SubscriptionError(
        f"stream record {stream_record.get('SequenceNumber')} ({kind.value}) has no {needed}: the stream view is "
        f"{_view(stream_record)}; dynamo-es needs the table's stream view to be NEW_AND_OLD_IMAGES "
        "(NEW_IMAGE also works, without removals)"
    )


def _by_ttl(record: Mapping[str, Any]) -> bool:
    identity = record.get("userIdentity") or {}
    return isinstance(identity, Mapping) and identity.get("principalId") == _TTL_PRINCIPAL


def _creation_time(value: Any) -> datetime:
    """Botocore gives a datetime; Lambda epoch seconds; Kinesis for DynamoDB milli- or microseconds."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        while value > 1e11:  # no stream record is dated after the year 5138 in seconds
            value /= 1000
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)

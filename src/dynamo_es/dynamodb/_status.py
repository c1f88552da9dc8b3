"""The state of a dynamo-es system, read from its tables: what ``dynamo-es status`` prints.

Sync only: it is a tool for operators and health checks, not a hot path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from ..core.changes import SHARD_END
from ._sync.checkpoints import DynamoDBCheckpointStore
from ._sync.store import DynamoDBEventStore
from .flows.base import drive
from .flows.checkpoints import POSITION_PREFIX, CheckpointItem, checkpoint_model, checkpoint_rows
from .flows.stream_reader import describe_shards, first_record_time
from .wire.client import LazyClient

__all__ = ["OutboxStatus", "ProjectionStatus", "SystemStatus", "read_status"]


@attrs.frozen(kw_only=True)
class ProjectionStatus:
    """One projection's (or process manager's) state, from its rows in the checkpoints table.

    Attributes:
        name: the checkpoint name.
        position: the saved position: each shard's last sequence number read ("END" for a
            shard read to its end).
        shards: shards of the events table's stream that its saved position covers (a
            projection fed by AWS Lambda keeps no position: Lambda's event source mapping does).
        streams: streams it has applied events of.
        parked: streams parked (skipped until ``replay_parked()``).
        failing: streams with failures counted that are not parked yet.
        lag_seconds: how long the oldest stream record after its position has waited (0: caught
            up); None when its position is not on this table's stream (see Lambda's IteratorAge).
        updated_at: when its checkpoint rows last changed.
    """

    name: str
    position: dict[str, str]
    shards: int
    streams: int
    parked: int
    failing: int
    lag_seconds: float | None
    updated_at: datetime | None


@attrs.frozen(kw_only=True)
class OutboxStatus:
    """The outbox: how many events wait to be dispatched, and the oldest of them.

    Attributes:
        backlog: undispatched events.
        oldest_stream_id, oldest_version, oldest_timestamp: the oldest undispatched event, if any.
    """

    backlog: int
    oldest_stream_id: str | None = None
    oldest_version: int | None = None
    oldest_timestamp: datetime | None = None


@attrs.frozen(kw_only=True)
class SystemStatus:
    """Every projection of the checkpoints table, and the outbox, at ``read_at``."""

    read_at: datetime
    projections: tuple[ProjectionStatus, ...]
    outbox: OutboxStatus

    @property
    def parked(self) -> int:
        """Streams parked, across projections."""
        return sum(projection.parked for projection in self.projections)


def read_status(store: DynamoDBEventStore) -> SystemStatus:
    """Read the projections' checkpoints, their lag on the events table's stream, and the outbox.

    Costs one Scan of the checkpoints table (the attributes a summary needs), two stream calls
    per shard and projection, and one count of the outbox index.

    Raises:
        TableNotFoundError: the events table or the checkpoints table does not exist (a health
            check must not read a misnamed checkpoints table as "no projections").
    """
    now = datetime.now(UTC)
    description = store.ensure_table()
    rows = _checkpoint_rows(store)
    stream_arn = description.get("LatestStreamArn") if description.get("StreamSpecification") else None
    probe = _StreamProbe(store, stream_arn)
    try:
        projections = tuple(_summary(name, group, probe, now) for name, group in sorted(_by_name(rows).items()))
    finally:
        probe.close()
    return SystemStatus(read_at=now, projections=projections, outbox=_outbox(store))


def _checkpoint_rows(store: DynamoDBEventStore) -> list[CheckpointItem]:
    settings = attrs.evolve(store.settings, create_table_if_not_exists=False)
    DynamoDBCheckpointStore(settings).ensure_table()
    client = LazyClient(settings)
    try:
        return drive(checkpoint_rows(settings.checkpoints_table_name, checkpoint_model(settings)), client.get())
    finally:
        client.close()


def _by_name(rows: Iterable[CheckpointItem]) -> dict[str, list[CheckpointItem]]:
    groups: dict[str, list[CheckpointItem]] = defaultdict(list)
    for row in rows:
        groups[row.name].append(row)
    return groups


@attrs.define
class _StreamProbe:
    """The events table's stream, described once, probed per projection position."""

    store: DynamoDBEventStore
    stream_arn: str | None
    _client: LazyClient | None = attrs.field(default=None, init=False)
    _shards: list[str] | None = attrs.field(default=None, init=False)
    _first: dict[tuple[str, str | None], datetime | None] = attrs.field(factory=dict, init=False)
    """The first record after each (shard, sequence) probed: projections at one position share a probe."""

    def lag(self, position: dict[str, str], now: datetime) -> float | None:
        """Seconds the oldest record after ``position`` has waited; None when ``position`` is not on this stream."""
        if self.stream_arn is None:
            return None
        shards = self._shards_now()
        if not set(position) & set(shards):
            return None
        unread = [self._first_after(shard, position.get(shard)) for shard in shards if position.get(shard) != SHARD_END]
        oldest = min((written for written in unread if written is not None), default=None)
        return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())

    def _first_after(self, shard_id: str, sequence: str | None) -> datetime | None:
        key = (shard_id, sequence)
        if key not in self._first:
            assert self.stream_arn is not None
            self._first[key] = drive(first_record_time(self.stream_arn, shard_id, sequence), self._streams())
        return self._first[key]

    def _streams(self) -> Any:
        if self._client is None:
            self._client = LazyClient(self.store.settings, "dynamodbstreams")
        return self._client.get()

    def _shards_now(self) -> list[str]:
        if self._shards is None:
            assert self.stream_arn is not None
            described = drive(describe_shards(self.stream_arn), self._streams())
            self._shards = [shard["ShardId"] for shard in described]
        return self._shards

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _summary(name: str, rows: Sequence[CheckpointItem], probe: _StreamProbe, now: datetime) -> ProjectionStatus:
    position = {row.key[len(POSITION_PREFIX) :]: row.shard_sequence or "" for row in rows if _is_position(row)}
    progress = [row for row in rows if not _is_position(row)]
    updated = [row.updated_at for row in rows if row.updated_at]
    return ProjectionStatus(
        name=name,
        position=position,
        shards=len(position),
        streams=sum(bool(row.version) for row in progress),
        parked=sum(bool(row.parked) for row in progress),
        failing=sum(bool(row.failures) and not row.parked for row in progress),
        lag_seconds=probe.lag(position, now) if position else None,
        updated_at=datetime.fromisoformat(max(updated)) if updated else None,
    )


def _is_position(row: CheckpointItem) -> bool:
    return row.key.startswith(POSITION_PREFIX)


def _outbox(store: DynamoDBEventStore) -> OutboxStatus:
    backlog = store.count_undispatched()
    oldest = next(iter(store.undispatched(page_size=1)), None) if backlog else None
    if oldest is None:
        return OutboxStatus(backlog=backlog)
    return OutboxStatus(
        backlog=backlog,
        oldest_stream_id=oldest.stream_id,
        oldest_version=oldest.version,
        oldest_timestamp=oldest.timestamp,
    )

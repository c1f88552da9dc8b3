"""Checkpoint stores, in memory, in DynamoDB and async on DynamoDB, behave alike."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from dynamo_es import (
    CheckpointStore,
    DynamoDBCheckpointStore,
    EventStoreSettings,
    InMemoryCheckpointStore,
    StreamPosition,
)
from dynamo_es.dynamodb.aio import AsyncDynamoDBCheckpointStore
from dynamo_es.projections import StreamProgress
from dynamo_es.testing._aio_contract import Blocking, LoopThread


@pytest.fixture(params=["memory", "dynamodb", "async-dynamodb"])
def checkpoints(request: pytest.FixtureRequest) -> Iterator[CheckpointStore]:
    """Every checkpoint store: memory, DynamoDB, and the async DynamoDB one awaited on a loop thread."""
    if request.param == "async-dynamodb":
        request.applymarker(pytest.mark.ddblocal)
        runner, store = LoopThread(), AsyncDynamoDBCheckpointStore(request.getfixturevalue("events_table"))
        yield Blocking(store, runner)
        runner.run(store.close())
        runner.stop()
        return
    yield _sync_checkpoints(request)


def _sync_checkpoints(request: pytest.FixtureRequest) -> CheckpointStore:
    if request.param == "memory":
        return InMemoryCheckpointStore()
    request.applymarker(pytest.mark.ddblocal)
    return DynamoDBCheckpointStore(request.getfixturevalue("events_table"))


class TestCheckpointStores:
    def test_position_round_trip(self, checkpoints: CheckpointStore) -> None:
        """A saved position loads back; an unknown name has none."""
        name = f"cp-{uuid.uuid4()}"
        assert checkpoints.load_position(name) is None
        position = StreamPosition({"shardId-1": "000000000000000000123"})
        checkpoints.save_position(name, position)
        assert checkpoints.load_position(name) == position
        checkpoints.save_position(name, StreamPosition({"shardId-1": "124", "shardId-2": "10"}))
        assert checkpoints.load_position(name) == StreamPosition({"shardId-1": "124", "shardId-2": "10"})

    def test_versions_round_trip_per_name(self, checkpoints: CheckpointStore) -> None:
        """Versions are kept per checkpoint name and stream; unknown streams are absent."""
        name, other = f"cp-{uuid.uuid4()}", f"cp-{uuid.uuid4()}"
        checkpoints.save_versions(name, {"A:1": 3, "A:2": 5})
        checkpoints.save_versions(name, {"A:1": 4})
        checkpoints.save_versions(other, {"A:1": 99})
        progress = checkpoints.load_progress(name, ["A:1", "A:2", "A:3"])
        assert {stream: p.version for stream, p in progress.items()} == {"A:1": 4, "A:2": 5}
        assert checkpoints.load_progress(name, []) == {}

    def test_an_older_position_never_moves_a_shard_back(self, checkpoints: CheckpointStore) -> None:
        """Saving an older sequence number (a slower worker) leaves the newer one; other shards still move."""
        name = f"cp-{uuid.uuid4()}"
        checkpoints.save_position(name, StreamPosition({"s1": "4000000000000000000050", "s2": "7"}))
        checkpoints.save_position(name, StreamPosition({"s1": "400000000000000000049", "s2": "8"}))
        assert checkpoints.load_position(name) == StreamPosition({"s1": "4000000000000000000050", "s2": "8"})

    def test_an_older_version_never_moves_a_stream_back(self, checkpoints: CheckpointStore) -> None:
        """Saving a lower version for a stream is ignored."""
        name = f"cp-{uuid.uuid4()}"
        checkpoints.save_versions(name, {"A:1": 9})
        checkpoints.save_versions(name, {"A:1": 3})
        assert checkpoints.load_progress(name, ["A:1"])["A:1"].version == 9

    def test_failures_count_then_park_then_unpark(self, checkpoints: CheckpointStore) -> None:
        """Failures at one version count up; at park_after the stream is parked; unpark clears both."""
        name = f"cp-{uuid.uuid4()}"
        checkpoints.save_versions(name, {"A:1": 2})
        assert checkpoints.record_failure(name, "A:1", 3, "boom 1", park_after=2) == 1
        assert checkpoints.parked(name) == {}
        assert checkpoints.record_failure(name, "A:1", 3, "boom 2", park_after=2) == 2
        parked = checkpoints.parked(name)
        assert list(parked) == ["A:1"]
        assert (parked["A:1"].version, parked["A:1"].failures, parked["A:1"].error) == (2, 2, "boom 2")
        checkpoints.unpark(name, "A:1")
        assert checkpoints.parked(name) == {}
        assert checkpoints.load_progress(name, ["A:1"])["A:1"] == StreamProgress(2)

    def test_success_clears_the_failure_count(self, checkpoints: CheckpointStore) -> None:
        """A newer applied version resets failures, so a later failure counts from one again."""
        name = f"cp-{uuid.uuid4()}"
        checkpoints.record_failure(name, "A:1", 1, "boom", park_after=None)
        checkpoints.save_versions(name, {"A:1": 1})
        assert checkpoints.load_progress(name, ["A:1"])["A:1"] == StreamProgress(1)
        assert checkpoints.record_failure(name, "A:1", 2, "boom", park_after=None) == 1

    def test_implements_the_protocol(self, checkpoints: CheckpointStore) -> None:
        """Both stores satisfy the CheckpointStore protocol."""
        assert isinstance(checkpoints, CheckpointStore)


@pytest.mark.ddblocal
def test_checkpoint_table_key_schema(events_table: EventStoreSettings) -> None:
    """The checkpoints table has name (S, HASH) and key (S, RANGE)."""
    store = DynamoDBCheckpointStore(events_table)
    keys = store.ensure_table()["KeySchema"]
    assert keys == [{"AttributeName": "name", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}]


@pytest.mark.ddblocal
def test_concurrent_workers_never_regress_each_other(events_table: EventStoreSettings) -> None:
    """Two workers saving interleaved positions and versions of one name end at the highest of each."""
    name = f"cp-{uuid.uuid4()}"
    stores = [DynamoDBCheckpointStore(events_table), DynamoDBCheckpointStore(events_table)]
    barrier = threading.Barrier(2)

    def worker(index: int) -> None:
        store = stores[index]
        barrier.wait()
        for step in range(index, 60, 2):  # worker 0 saves the even steps, worker 1 the odd ones
            store.save_position(name, StreamPosition({"shard": str(10**20 + step)}))
            store.save_versions(name, {"A:1": step + 1, "A:2": 60 - step})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].load_position(name) == StreamPosition({"shard": str(10**20 + 59)})
    progress = stores[1].load_progress(name, ["A:1", "A:2"])
    assert (progress["A:1"].version, progress["A:2"].version) == (60, 60)

"""Checkpoint stores, in memory and in DynamoDB, behave alike."""

from __future__ import annotations

import uuid

import pytest

from dynamo_es import (
    CheckpointStore,
    DynamoDBCheckpointStore,
    EventStoreSettings,
    InMemoryCheckpointStore,
    StreamPosition,
)


@pytest.fixture(params=["memory", "dynamodb"])
def checkpoints(request: pytest.FixtureRequest) -> CheckpointStore:
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
        checkpoints.save_position(name, StreamPosition({"shardId-1": "9", "shardId-2": "10"}))
        assert checkpoints.load_position(name) == StreamPosition({"shardId-1": "9", "shardId-2": "10"})

    def test_versions_round_trip_per_name(self, checkpoints: CheckpointStore) -> None:
        """Versions are kept per checkpoint name and stream; unknown streams are absent."""
        name, other = f"cp-{uuid.uuid4()}", f"cp-{uuid.uuid4()}"
        checkpoints.save_versions(name, {"A:1": 3, "A:2": 5})
        checkpoints.save_versions(name, {"A:1": 4})
        checkpoints.save_versions(other, {"A:1": 99})
        assert checkpoints.load_versions(name, ["A:1", "A:2", "A:3"]) == {"A:1": 4, "A:2": 5}
        assert checkpoints.load_versions(name, []) == {}

    def test_implements_the_protocol(self, checkpoints: CheckpointStore) -> None:
        """Both stores satisfy the CheckpointStore protocol."""
        assert isinstance(checkpoints, CheckpointStore)


@pytest.mark.ddblocal
def test_checkpoint_table_key_schema(events_table: EventStoreSettings) -> None:
    """The checkpoints table has name (S, HASH) and key (S, RANGE)."""
    store = DynamoDBCheckpointStore(events_table)
    keys = store.ensure_table()["KeySchema"]
    assert keys == [{"AttributeName": "name", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}]

"""Snapshots of aggregates holding personal data: sealed with their subjects' keys, unreadable once one is forgotten."""

from __future__ import annotations

import uuid

import attrs
import pytest

from dynamo_es import (
    AggregateRoot,
    DynamoDBEventStore,
    DynamoDBSnapshotStore,
    EventSerializer,
    EventStoreSettings,
    InMemoryEventStore,
    InMemorySnapshotStore,
    Repository,
    SnapshotStore,
    applies,
)
from dynamo_es.aio import AsyncInMemoryEventStore
from dynamo_es.app._checks import restore
from dynamo_es.domain.personal import FORGOTTEN
from dynamo_es.exceptions import ConfigurationError, SnapshotError
from dynamo_es.privacy import CryptoShredder

from .test_shredder import AGE, MARKER, Registered, Upgraded, shredder


class Member(AggregateRoot, aggregate_type="PrivacyMember"):
    email: str
    age: int
    plan: str

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.email, self.age, self.plan = "", -1, ""

    @applies(Registered)
    def _registered(self, event: Registered) -> None:
        self.email, self.age, self.plan = event.email, event.age, event.plan

    @applies(Upgraded)
    def _upgraded(self, event: Upgraded) -> None:
        self.plan = event.plan


def saved_member(repository: Repository[Member], subject: str) -> Member:
    member = Member(f"m-{uuid.uuid4().hex[:8]}")
    member.record(Registered(subject, MARKER, AGE, "pro"))
    member.record(Upgraded("gold"))
    repository.save(member)
    return member


def snapshots_of(kind: str, request: pytest.FixtureRequest) -> tuple[object, SnapshotStore]:
    if kind == "memory":
        return None, InMemorySnapshotStore()
    settings: EventStoreSettings = request.getfixturevalue("events_table")
    return settings, DynamoDBSnapshotStore(settings)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.ddblocal)])
def setup(request: pytest.FixtureRequest) -> tuple[CryptoShredder, Repository[Member], SnapshotStore]:
    sealing = shredder()
    serializer = EventSerializer(shredder=sealing)
    settings, snapshots = snapshots_of(request.param, request)
    store = (
        InMemoryEventStore(serializer=serializer)
        if settings is None
        else DynamoDBEventStore(settings, serializer=serializer)
    )  # type: ignore[arg-type]
    return sealing, Repository(Member, store, snapshots=snapshots), snapshots


def test_the_snapshot_is_sealed_and_loads_back(setup: tuple[CryptoShredder, Repository[Member], SnapshotStore]) -> None:
    """The stored state holds no byte of the marker; get() starts from it and gives the plaintext."""
    _, members, snapshots = setup
    member = saved_member(members, "subject-a")
    assert members.take_snapshot(member) is not None
    stored = snapshots.load_latest(Member.aggregate_type, member.id)
    assert stored is not None and MARKER not in stored.state and str(AGE) not in stored.state
    assert stored.state.startswith('{"$sealedState"') and '"subjects":["subject-a"]' in stored.state
    loaded = members.get(member.id)
    assert (loaded.email, loaded.age, loaded.plan, loaded.version) == (MARKER, AGE, "gold", 2)
    assert loaded.personal_subjects == {"subject-a"}  # kept through the snapshot: the next one is sealed too


def test_after_forget_the_snapshot_is_skipped_and_the_replay_gives_placeholders(
    setup: tuple[CryptoShredder, Repository[Member], SnapshotStore],
) -> None:
    """Once the subject is forgotten, get() replays the events: placeholders, the rest unchanged."""
    sealing, members, _ = setup
    member = saved_member(members, "subject-b")
    members.take_snapshot(member)
    sealing.forget("subject-b")
    loaded = members.get(member.id)
    assert (loaded.email, loaded.age, loaded.plan, loaded.version) == (FORGOTTEN, 0, "gold", 2)
    assert members.take_snapshot(loaded) is None  # a forgotten subject gets no new sealed state


def test_an_aggregate_without_personal_data_is_snapshotted_in_the_clear() -> None:
    """No event with personal data applied: the state is stored as without a shredder."""
    members = Repository(Member, InMemoryEventStore(serializer=EventSerializer(shredder=shredder())))
    snapshots = InMemorySnapshotStore()
    members = Repository(Member, members.store, snapshots=snapshots)
    member = Member("plain")
    member.record(Upgraded("gold"))
    members.save(member)
    members.take_snapshot(member)
    stored = snapshots.load_latest(Member.aggregate_type, "plain")
    assert stored is not None and stored.state.startswith('{"email"')


def test_a_reader_without_the_shredder_replays_instead() -> None:
    """A sealed snapshot read by a repository whose serializer has no shredder is skipped: placeholders."""
    sealing = shredder()
    snapshots = InMemorySnapshotStore()
    store = InMemoryEventStore(serializer=EventSerializer(shredder=sealing))
    member = saved_member(Repository(Member, store, snapshots=snapshots), "subject-c")
    Repository(Member, store, snapshots=snapshots).take_snapshot(member)
    store.serializer = EventSerializer()
    loaded = Repository(Member, store, snapshots=snapshots).get(member.id)
    assert (loaded.email, loaded.plan) == (FORGOTTEN, "gold")


def test_an_unsealed_snapshot_of_personal_state_is_not_trusted_with_a_shredder() -> None:
    """A snapshot taken before sealing (its subjects unknown) is ignored: after forget, get() gives placeholders."""
    sealing = shredder()
    snapshots = InMemorySnapshotStore()
    store = InMemoryEventStore(serializer=EventSerializer(shredder=sealing))
    member = saved_member(Repository(Member, store, snapshots=snapshots), "subject-d")
    plain = Repository(Member, InMemoryEventStore(), snapshots=snapshots)
    plain_member = Member(member.id)
    plain_member.record(Registered("subject-d", MARKER, AGE, "pro"))
    plain_member.record(Upgraded("gold"))
    plain_member.mark_committed()
    plain.take_snapshot(plain_member)  # an old, unsealed snapshot of the same aggregate
    sealing.forget("subject-d")
    loaded = Repository(Member, store, snapshots=snapshots).get(member.id)
    assert loaded.email == FORGOTTEN


def test_a_sealed_state_opens_only_for_its_own_aggregate_and_version() -> None:
    """A sealed state copied onto another aggregate (same subject) is ignored: that one replays instead."""
    sealing = shredder()
    snapshots = InMemorySnapshotStore()
    store = InMemoryEventStore(serializer=EventSerializer(shredder=sealing))
    members = Repository(Member, store, snapshots=snapshots)
    first, second = saved_member(members, "subject-e"), saved_member(members, "subject-e")
    members.take_snapshot(first)
    stolen = snapshots.load_latest(Member.aggregate_type, first.id)
    assert stolen is not None
    snapshots.save(attrs.evolve(stolen, aggregate_id=second.id))
    assert restore(Member, second.id, snapshots.load_latest(Member.aggregate_type, second.id), store.serializer) is None
    assert members.get(second.id).email == MARKER  # replayed


def test_truncating_behind_a_sealed_snapshot_is_refused() -> None:
    """Once a subject is forgotten neither the snapshot nor the removed events could load it: SnapshotError."""
    store = InMemoryEventStore(serializer=EventSerializer(shredder=shredder()))
    members = Repository(Member, store, snapshots=InMemorySnapshotStore())
    member = saved_member(members, "subject-f")
    members.take_snapshot(member)
    with pytest.raises(SnapshotError, match="holds personal data"):
        members.truncate(member.id)


def test_an_announcement_to_an_async_store_is_refused() -> None:
    """forget(announce_to=) needs a sync store: an async one raises ConfigurationError (nothing half-announced)."""
    with pytest.raises(ConfigurationError, match="sync event store"):
        shredder().forget("subject-g", announce_to=AsyncInMemoryEventStore(InMemoryEventStore()))  # type: ignore[arg-type]

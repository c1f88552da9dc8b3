"""Repository.truncate and Repository.delete: what they remove, and what get() and exists() say afterwards."""

from __future__ import annotations

import uuid
from decimal import Decimal

import attrs
import pytest

from dynamo_es import (
    DynamoDBEventStore,
    DynamoDBSnapshotStore,
    EventSerializer,
    EventStore,
    EventStoreSettings,
    InMemoryEventStore,
    InMemorySnapshotStore,
    Repository,
    SnapshotStore,
)
from dynamo_es.exceptions import (
    AggregateNotFoundError,
    EventStoreError,
    SnapshotError,
    StreamArchivedError,
    StreamDeletedError,
    StreamTruncatedError,
)

from .test_snapshots import Ledger


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request: pytest.FixtureRequest) -> tuple[EventStore, SnapshotStore]:
    if request.param == "memory":
        return InMemoryEventStore(), InMemorySnapshotStore()
    request.applymarker(pytest.mark.ddblocal)
    settings: EventStoreSettings = request.getfixturevalue("events_table")
    return DynamoDBEventStore(settings), DynamoDBSnapshotStore(settings)


def ledger_with_snapshot(repository: Repository[Ledger], *, bookings: int, snapshot_after: int) -> Ledger:
    ledger = Ledger(f"trunc-{uuid.uuid4().hex[:8]}")
    for number in range(bookings):
        ledger.book(f"entry {number}", Decimal(number), "t")
        repository.save(ledger)
        if number + 1 == snapshot_after:
            assert repository.take_snapshot(ledger) is not None
    return ledger


def test_truncate_behind_the_snapshot_keeps_get_whole(stores: tuple[EventStore, SnapshotStore]) -> None:
    """Truncated before the snapshot's version, get() equals the state before; older versions raise."""
    events, snapshots = stores
    repository = Repository(Ledger, events, snapshots=snapshots)
    ledger = ledger_with_snapshot(repository, bookings=8, snapshot_after=5)
    before = repository.get(ledger.id).state()
    truncation = repository.truncate(ledger.id)
    assert (truncation.first_version, truncation.removed) == (5, 4)
    assert repository.get(ledger.id).state() == before
    assert repository.get(ledger.id, version=6).version == 6
    with pytest.raises(StreamTruncatedError, match="before version 5"):
        repository.get(ledger.id, version=3)
    with pytest.raises(StreamTruncatedError):
        Repository(Ledger, events).get(ledger.id)  # no snapshot store: a load from version 1


def test_truncate_needs_a_usable_snapshot_at_or_after_the_version(stores: tuple[EventStore, SnapshotStore]) -> None:
    """No snapshot store, no snapshot, or one older than `before`: SnapshotError, and nothing is removed."""
    events, snapshots = stores
    ledger = ledger_with_snapshot(Repository(Ledger, events, snapshots=snapshots), bookings=6, snapshot_after=3)
    with pytest.raises(SnapshotError, match="needs a snapshot store"):
        Repository(Ledger, events).truncate(ledger.id)
    with pytest.raises(SnapshotError, match="latest snapshot is at 3"):
        Repository(Ledger, events, snapshots=snapshots).truncate(ledger.id, before=4)
    other = ledger_with_snapshot(Repository(Ledger, events), bookings=3, snapshot_after=0)
    with pytest.raises(SnapshotError, match="no usable snapshot"):
        Repository(Ledger, events, snapshots=snapshots).truncate(other.id)
    assert len(events.load(ledger.id, Ledger.aggregate_type)) == 6


def test_a_store_that_cannot_truncate_is_named() -> None:
    """A store without truncate_stream raises EventStoreError naming its class."""
    inner = InMemoryEventStore()

    @attrs.define
    class PlainStore:  # an EventStore of the user's own: the protocol's methods only
        serializer: EventSerializer = inner.serializer
        append = inner.append
        load = inner.load
        stream_version = inner.stream_version
        append_many = inner.append_many

    with pytest.raises(EventStoreError, match="cannot truncate"):
        Repository(Ledger, PlainStore(), snapshots=InMemorySnapshotStore()).truncate("x")


def test_delete_removes_the_snapshots_so_no_version_comes_back(stores: tuple[EventStore, SnapshotStore]) -> None:
    """After Repository.delete, get() raises StreamDeletedError at any version, and exists() is False."""
    events, snapshots = stores
    repository = Repository(Ledger, events, snapshots=snapshots)
    ledger = ledger_with_snapshot(repository, bookings=6, snapshot_after=3)
    assert repository.exists(ledger.id)
    deletion = repository.delete(ledger.id, expected_version=6, reason="closed")
    assert deletion.last_version == 6
    for version in (None, 3, 5):
        with pytest.raises(StreamDeletedError):
            repository.get(ledger.id, version=version)
    assert snapshots.load_latest(Ledger.aggregate_type, ledger.id) is None
    assert not repository.exists(ledger.id)


def test_delete_with_reuse_id_starts_the_aggregate_afresh(stores: tuple[EventStore, SnapshotStore]) -> None:
    """With reuse_id, the old snapshot cannot seed the new aggregate: it is gone."""
    events, snapshots = stores
    repository = Repository(Ledger, events, snapshots=snapshots)
    ledger = ledger_with_snapshot(repository, bookings=4, snapshot_after=4)
    repository.delete(ledger.id, reuse_id=True)
    fresh = Ledger(ledger.id)
    fresh.book("again", Decimal(1), "t")
    repository.save(fresh)
    assert repository.get(ledger.id).total == Decimal(1)


def test_archive_and_restore_through_the_repository(stores: tuple[EventStore, SnapshotStore]) -> None:
    """Archived: get() raises StreamArchivedError, get(archived=True) loads it, exists(); restored, it saves again."""
    events, snapshots = stores
    repository = Repository(Ledger, events, snapshots=snapshots)
    ledger = ledger_with_snapshot(repository, bookings=5, snapshot_after=3)
    assert repository.archive(ledger.id).last_version == 5
    with pytest.raises(StreamArchivedError):
        repository.get(ledger.id)  # from the snapshot, the events after it are in the archive
    with pytest.raises(StreamArchivedError):
        Repository(Ledger, events).get(ledger.id)
    archived = repository.get(ledger.id, archived=True)
    assert (archived.version, archived.total) == (5, ledger.total)
    assert Repository(Ledger, events).get(ledger.id, archived=True, version=2).version == 2
    assert repository.exists(ledger.id)
    repository.restore(ledger.id)
    restored = repository.get(ledger.id)
    restored.rename("after the archive")
    assert repository.save(restored) == 6
    with pytest.raises(AggregateNotFoundError):
        repository.get(ledger.id, archived=True)


def test_a_store_that_cannot_archive_is_named() -> None:
    """A store without archive_stream: archive, restore and get(archived=True) raise EventStoreError naming it."""

    class PlainStore(InMemoryEventStore):
        archive_stream = None  # type: ignore[assignment]  # no longer an ArchivableStore

    repository = Repository(Ledger, PlainStore())
    for call in (repository.archive, repository.restore, lambda i: repository.get(i, archived=True)):
        with pytest.raises(EventStoreError, match="PlainStore cannot"):
            call("x")

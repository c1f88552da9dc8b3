"""The archiving contract: one suite that every ArchivableStore must pass."""

from __future__ import annotations

import threading
from typing import Any

from ..core.changes import ChangeKind
from ..core.serialization import EventSerializer
from ..exceptions import AggregateNotFoundError, StreamArchivedError, StreamDeletedError, StreamTruncatedError
from ..ports.lifecycle import ArchivableStore
from ._contract_events import Noted, contract_registry, notes, raised, stream

__all__ = ["ArchivableStoreContract"]


class ArchivableStoreContract:
    """Behaviour every [`ArchivableStore`][dynamo_es.ArchivableStore] shares.

    Subclass it as ``TestYourStore`` and implement `create_archivable_store()`.
    """

    def create_archivable_store(self, serializer: EventSerializer) -> Any:
        """Return an event store that is also an `ArchivableStore` (and a `DeletableStore`), using ``serializer``."""
        raise NotImplementedError

    def archivable(self) -> Any:
        """The store under test, with the contract's serializer."""
        store = self.create_archivable_store(EventSerializer(registry=contract_registry))
        assert isinstance(store, ArchivableStore)
        return store

    def test_an_archived_stream_loads_only_on_request(self) -> None:
        """After archive_stream, load raises StreamArchivedError; load_archived returns every event unchanged."""
        store, (aggregate_id, aggregate_type) = self.archivable(), stream()
        store.append(aggregate_id, aggregate_type, notes(120), 0).raise_for_failure()
        before = store.load(aggregate_id, aggregate_type)
        archival = store.archive_stream(aggregate_id, aggregate_type)
        assert (archival.last_version, archival.moved, archival.archived, archival.already) == (120, 120, True, False)
        error = raised(StreamArchivedError, lambda: store.load(aggregate_id, aggregate_type))
        assert error.last_version == 120 and isinstance(error, AggregateNotFoundError)
        raised(StreamArchivedError, lambda: store.load(aggregate_id, aggregate_type, from_version=50))
        assert store.load_archived(aggregate_id, aggregate_type) == before
        ranged = store.load_archived(aggregate_id, aggregate_type, from_version=100, to_version=110)
        assert [event.version for event in ranged] == list(range(100, 111))

    def test_an_archived_stream_takes_no_append(self) -> None:
        """Appends at 0, at the last version and at the mark's version are conflicts while archived."""
        store, (aggregate_id, aggregate_type) = self.archivable(), stream()
        store.append(aggregate_id, aggregate_type, notes(3), 0).raise_for_failure()
        store.archive_stream(aggregate_id, aggregate_type)
        for expected in (0, 3, 4):
            assert store.append(aggregate_id, aggregate_type, notes(1), expected).conflict, expected
        assert len(store.load_archived(aggregate_id, aggregate_type)) == 3

    def test_restore_brings_the_stream_back_as_it_was(self) -> None:
        """restore_stream in one call: the stream loads as before and goes on at its next version."""
        store, (aggregate_id, aggregate_type) = self.archivable(), stream()
        store.append(aggregate_id, aggregate_type, notes(60), 0).raise_for_failure()
        before = store.load(aggregate_id, aggregate_type)
        store.archive_stream(aggregate_id, aggregate_type)
        restored = store.restore_stream(aggregate_id, aggregate_type)
        assert (restored.last_version, restored.moved, restored.archived, restored.already) == (60, 60, False, False)
        assert store.load(aggregate_id, aggregate_type) == before
        assert store.append(aggregate_id, aggregate_type, [Noted("after")], 60).new_version == 61
        raised(AggregateNotFoundError, lambda: store.load_archived(aggregate_id, aggregate_type))

    def test_archiving_and_restoring_again_are_idempotent(self) -> None:
        """A second archive_stream or restore_stream changes nothing and says it was done already."""
        store, (aggregate_id, aggregate_type) = self.archivable(), stream()
        store.append(aggregate_id, aggregate_type, notes(4), 0).raise_for_failure()
        store.archive_stream(aggregate_id, aggregate_type)
        again = store.archive_stream(aggregate_id, aggregate_type)
        assert (again.already, again.moved, again.last_version) == (True, 0, 4)
        store.restore_stream(aggregate_id, aggregate_type)
        again = store.restore_stream(aggregate_id, aggregate_type)
        assert (again.already, again.moved, again.archived, again.last_version) == (True, 0, False, 4)
        assert len(store.load(aggregate_id, aggregate_type)) == 4

    def test_a_missing_stream_cannot_be_archived_or_restored(self) -> None:
        """Archiving, restoring or loading from the archive a stream without events raises AggregateNotFoundError."""
        store, (aggregate_id, aggregate_type) = self.archivable(), stream()
        raised(AggregateNotFoundError, lambda: store.archive_stream(aggregate_id, aggregate_type))
        raised(AggregateNotFoundError, lambda: store.restore_stream(aggregate_id, aggregate_type))
        raised(AggregateNotFoundError, lambda: store.load_archived(aggregate_id, aggregate_type))

    def test_deleted_and_archived_streams_refuse_the_other_operation(self) -> None:
        """A deleted stream is not archived (StreamDeletedError); an archived one is not deleted or truncated."""
        store, (deleted_id, aggregate_type), (archived_id, _) = self.archivable(), stream(), stream()
        for aggregate_id in (deleted_id, archived_id):
            store.append(aggregate_id, aggregate_type, notes(3), 0).raise_for_failure()
        store.delete_stream(deleted_id, aggregate_type)
        raised(StreamDeletedError, lambda: store.archive_stream(deleted_id, aggregate_type))
        raised(StreamDeletedError, lambda: store.restore_stream(deleted_id, aggregate_type))
        store.archive_stream(archived_id, aggregate_type)
        raised(StreamArchivedError, lambda: store.delete_stream(archived_id, aggregate_type))
        raised(StreamArchivedError, lambda: store.truncate_stream(archived_id, aggregate_type, 2))
        assert len(store.load_archived(archived_id, aggregate_type)) == 3

    def test_a_truncated_stream_is_archived_with_its_mark(self) -> None:
        """Truncated before 3: the archive loads from 3 (earlier raises StreamTruncatedError); restored, the same."""
        store, (aggregate_id, aggregate_type) = self.archivable(), stream()
        store.append(aggregate_id, aggregate_type, notes(5), 0).raise_for_failure()
        store.truncate_stream(aggregate_id, aggregate_type, 3)
        store.archive_stream(aggregate_id, aggregate_type)
        assert [e.version for e in store.load_archived(aggregate_id, aggregate_type, from_version=3)] == [3, 4, 5]
        raised(StreamTruncatedError, lambda: store.load_archived(aggregate_id, aggregate_type))
        store.restore_stream(aggregate_id, aggregate_type)
        assert [e.version for e in store.load(aggregate_id, aggregate_type, from_version=3)] == [3, 4, 5]
        raised(StreamTruncatedError, lambda: store.load(aggregate_id, aggregate_type))

    def test_archiving_while_writers_append_keeps_every_landed_event(self) -> None:
        """Writers racing an archiving: every event that landed is in the archive, and none lands after it."""
        store, (aggregate_id, aggregate_type) = self.archivable(), stream()
        store.append(aggregate_id, aggregate_type, notes(30), 0).raise_for_failure()
        landed: list[int] = []
        stop = threading.Event()

        def write() -> None:
            while not stop.is_set():
                version = store.stream_version(aggregate_id, aggregate_type)
                result = store.append(aggregate_id, aggregate_type, [Noted("racing")], version)
                if result.success:
                    landed.append(result.new_version)

        writers = [threading.Thread(target=write) for _ in range(2)]
        for writer in writers:
            writer.start()
        archival = store.archive_stream(aggregate_id, aggregate_type)
        stop.set()
        for writer in writers:
            writer.join()
        archived = [event.version for event in store.load_archived(aggregate_id, aggregate_type)]
        assert archived == list(range(1, archival.last_version + 1))
        assert all(version <= archival.last_version for version in landed)

    def test_a_round_trip_leaves_the_events_only(self) -> None:
        """After archiving and restoring, the stream holds its events once and no mark; the next one is version 4."""
        store, (aggregate_id, aggregate_type) = self.archivable(), stream()
        store.append(aggregate_id, aggregate_type, notes(3), 0).raise_for_failure()
        store.archive_stream(aggregate_id, aggregate_type)
        store.restore_stream(aggregate_id, aggregate_type)
        store.append(aggregate_id, aggregate_type, [Noted("after")], 3).raise_for_failure()
        changes = store.read_changes(aggregate_id, aggregate_type)
        assert [(c.kind, c.event.version) for c in changes] == [(ChangeKind.INSERT, v) for v in (1, 2, 3, 4)]

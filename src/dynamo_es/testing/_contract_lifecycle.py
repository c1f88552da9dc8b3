"""The stream deletion and truncation contract: one suite that every DeletableStore must pass."""

from __future__ import annotations

import threading
from typing import Any

from ..core.serialization import EventSerializer
from ..domain.lifecycle import StreamDeleted
from ..exceptions import (
    AggregateNotFoundError,
    ConcurrencyError,
    InvalidStreamError,
    StreamDeletedError,
    StreamTruncatedError,
)
from ..ports.lifecycle import DeletableStore
from ._contract_events import Noted, contract_registry, notes, raised, stream

__all__ = ["DeletableStoreContract"]


class DeletableStoreContract:
    """Behaviour every [`DeletableStore`][dynamo_es.DeletableStore] shares.

    Subclass it as ``TestYourStore`` and implement `create_deletable_store()`.
    """

    def create_deletable_store(self, serializer: EventSerializer) -> Any:
        """Return an event store that is also a `DeletableStore`, using ``serializer``."""
        raise NotImplementedError

    def deletable(self) -> Any:
        """The store under test, with the contract's serializer."""
        store = self.create_deletable_store(EventSerializer(registry=contract_registry))
        assert isinstance(store, DeletableStore)
        return store

    def test_a_deleted_stream_loads_as_deleted(self) -> None:
        """After delete_stream, load raises StreamDeletedError naming the stream and its last version."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(3), 0).raise_for_failure()
        deletion = store.delete_stream(aggregate_id, aggregate_type, reason="test")
        assert (deletion.last_version, deletion.removed, deletion.already_deleted) == (3, 3, False)
        error = raised(StreamDeletedError, lambda: store.load(aggregate_id, aggregate_type))
        assert error.stream_id == f"{aggregate_type}:{aggregate_id}" and error.last_version == 3
        assert isinstance(error, AggregateNotFoundError)
        assert store.stream_version(aggregate_id, aggregate_type) == 4  # the mark's version

    def test_a_deleted_stream_takes_no_append_not_even_at_version_one(self) -> None:
        """Appends at 0, at the old last version and at the mark's version are conflicts; nothing is written."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(2), 0).raise_for_failure()
        store.delete_stream(aggregate_id, aggregate_type)
        for expected in (0, 2, 3):
            result = store.append(aggregate_id, aggregate_type, notes(1), expected)
            assert result.conflict and not result.success, expected
        raised(StreamDeletedError, lambda: store.load(aggregate_id, aggregate_type))

    def test_reuse_id_lets_the_stream_start_again_at_version_one(self) -> None:
        """With reuse_id, nothing is left: the next append starts at 1 and loads alone."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(2), 0).raise_for_failure()
        deletion = store.delete_stream(aggregate_id, aggregate_type, reuse_id=True)
        assert deletion.reusable and deletion.removed == 4  # both events, and both marks
        assert store.stream_version(aggregate_id, aggregate_type) == 0
        store.append(aggregate_id, aggregate_type, [Noted("again")], 0).raise_for_failure()
        assert [e.event for e in store.load(aggregate_id, aggregate_type)] == [Noted("again")]

    def test_deleting_again_is_a_no_op_that_says_so(self) -> None:
        """A second delete_stream reports already_deleted and removes nothing more."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(2), 0).raise_for_failure()
        store.delete_stream(aggregate_id, aggregate_type)
        again = store.delete_stream(aggregate_id, aggregate_type)
        assert (again.already_deleted, again.removed, again.last_version) == (True, 0, 2)

    def test_a_stale_expected_version_refuses_the_deletion(self) -> None:
        """expected_version other than the stream's raises ConcurrencyError and deletes nothing."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(3), 0).raise_for_failure()
        error = raised(ConcurrencyError, lambda: store.delete_stream(aggregate_id, aggregate_type, expected_version=2))
        assert error.actual_version == 3
        assert len(store.load(aggregate_id, aggregate_type)) == 3

    def test_an_empty_stream_has_nothing_to_delete(self) -> None:
        """Deleting a stream with no events writes nothing: it can still be created."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        deletion = store.delete_stream(aggregate_id, aggregate_type)
        assert (deletion.last_version, deletion.removed) == (0, 0)
        assert store.append(aggregate_id, aggregate_type, notes(1), 0).success

    def test_a_long_stream_is_deleted_in_bounded_steps(self) -> None:
        """A 250-event stream (more than one transaction) is deleted whole; another stream is untouched."""
        store, (aggregate_id, aggregate_type), (other_id, _) = self.deletable(), stream(), stream()
        store.append(aggregate_id, aggregate_type, notes(250), 0).raise_for_failure()
        store.append(other_id, aggregate_type, notes(2), 0).raise_for_failure()
        assert store.delete_stream(aggregate_id, aggregate_type).removed == 250
        raised(StreamDeletedError, lambda: store.load(aggregate_id, aggregate_type))
        assert [e.version for e in store.load(other_id, aggregate_type)] == [1, 2]

    def test_the_deletion_mark_is_a_stream_deleted_event(self) -> None:
        """The mark reads as StreamDeleted with the last version and the reason (what projections receive)."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(2), 0).raise_for_failure()
        store.delete_stream(aggregate_id, aggregate_type, reason="customer asked")
        (change,) = store.read_changes(aggregate_id, aggregate_type, from_version=3)
        assert change.event.event == StreamDeleted(2, "customer asked") and change.event.version == 3

    def test_writers_racing_a_deletion_are_deleted_with_it_or_refused(self) -> None:
        """Appends racing delete_stream either land before its mark (and are deleted) or are refused."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(120), 0).raise_for_failure()
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
        deletion = store.delete_stream(aggregate_id, aggregate_type)
        stop.set()
        for writer in writers:
            writer.join()
        assert all(version <= deletion.last_version for version in landed), (landed, deletion)
        assert deletion.removed == deletion.last_version >= 120
        error = raised(StreamDeletedError, lambda: store.load(aggregate_id, aggregate_type))
        assert error.last_version == deletion.last_version

    def test_a_truncated_stream_loads_from_its_first_kept_version(self) -> None:
        """After truncate_stream(before=3), versions 3 on load; a load from 1 raises StreamTruncatedError."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(5), 0).raise_for_failure()
        truncation = store.truncate_stream(aggregate_id, aggregate_type, 3)
        assert (truncation.first_version, truncation.removed) == (3, 2)
        assert [e.version for e in store.load(aggregate_id, aggregate_type, from_version=3)] == [3, 4, 5]
        error = raised(StreamTruncatedError, lambda: store.load(aggregate_id, aggregate_type))
        assert error.first_version == 3 and error.stream_id == f"{aggregate_type}:{aggregate_id}"
        raised(StreamTruncatedError, lambda: store.load(aggregate_id, aggregate_type, to_version=2))

    def test_a_truncated_stream_takes_appends_after_its_last_version_only(self) -> None:
        """Appending at 5 works; stale expected versions 0, 1 and 2 (freed slots) are conflicts."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(5), 0).raise_for_failure()
        store.truncate_stream(aggregate_id, aggregate_type, 4)
        for expected in (0, 1, 2):
            assert store.append(aggregate_id, aggregate_type, notes(1), expected).conflict, expected
        assert store.append(aggregate_id, aggregate_type, [Noted("after")], 5).new_version == 6
        assert [e.version for e in store.load(aggregate_id, aggregate_type, from_version=4)] == [4, 5, 6]

    def test_truncating_again_is_idempotent_and_can_go_further(self) -> None:
        """The same truncation again removes nothing; a later first version removes the events between."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(6), 0).raise_for_failure()
        store.truncate_stream(aggregate_id, aggregate_type, 3)
        assert store.truncate_stream(aggregate_id, aggregate_type, 3).removed == 0
        further = store.truncate_stream(aggregate_id, aggregate_type, 5)
        assert (further.first_version, further.removed) == (5, 2)
        assert [e.version for e in store.load(aggregate_id, aggregate_type, from_version=5)] == [5, 6]
        assert raised(StreamTruncatedError, lambda: store.load(aggregate_id, aggregate_type)).first_version == 5

    def test_truncating_past_the_end_or_below_two_is_refused(self) -> None:
        """before_version past the last event, or below 2, raises InvalidStreamError and changes nothing."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(3), 0).raise_for_failure()
        raised(InvalidStreamError, lambda: store.truncate_stream(aggregate_id, aggregate_type, 4))
        raised(InvalidStreamError, lambda: store.truncate_stream(aggregate_id, aggregate_type, 1))
        assert len(store.load(aggregate_id, aggregate_type)) == 3

    def test_a_truncated_stream_can_be_deleted_and_a_deleted_one_not_truncated(self) -> None:
        """Deleting after truncating leaves a deleted stream; truncating a deleted one raises StreamDeletedError."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(4), 0).raise_for_failure()
        store.truncate_stream(aggregate_id, aggregate_type, 3)
        assert store.delete_stream(aggregate_id, aggregate_type).last_version == 4
        raised(StreamDeletedError, lambda: store.load(aggregate_id, aggregate_type, from_version=3))
        raised(StreamDeletedError, lambda: store.truncate_stream(aggregate_id, aggregate_type, 2))

    def test_a_load_that_starts_inside_the_removed_versions_raises(self) -> None:
        """Truncated before 8: loads from 4 (to the end, or to 6) raise; from 8, or past the end, do not."""
        store, (aggregate_id, aggregate_type) = self.deletable(), stream()
        store.append(aggregate_id, aggregate_type, notes(10), 0).raise_for_failure()
        store.truncate_stream(aggregate_id, aggregate_type, 8)
        raised(StreamTruncatedError, lambda: store.load(aggregate_id, aggregate_type, from_version=4))
        raised(StreamTruncatedError, lambda: store.load(aggregate_id, aggregate_type, from_version=4, to_version=6))
        assert [e.version for e in store.load(aggregate_id, aggregate_type, from_version=8)] == [8, 9, 10]
        assert store.load(aggregate_id, aggregate_type, from_version=11) == []

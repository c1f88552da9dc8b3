"""The multi-stream part of the event store contract: commits all or nothing, tracking once."""

from __future__ import annotations

import functools
import threading
import uuid

from ..domain.events import NewEvent
from ..exceptions import ConcurrencyError, Conflict, InvalidStreamError, TransactionTooLargeError
from ..ports.store import CommitResult, EventStore, StreamAppend, Tracking
from ._contract_events import Noted, notes, raised, stream

__all__ = ["MultiStreamContract"]


class MultiStreamContract:
    """`append_many()`: several streams (and a tracking record) all or nothing."""

    def store(self) -> EventStore:
        """The store under test (provided by [`EventStoreContract`][dynamo_es.testing.EventStoreContract])."""
        raise NotImplementedError

    def test_commit_writes_every_stream_in_one_step(self) -> None:
        """A new stream and an existing one are both written, each after its own expected version."""
        store, new, old = self.store(), stream(), stream()
        store.append(*old, notes(2), 0).raise_for_failure()
        result = store.append_many([StreamAppend(*new, notes(1), 0), StreamAppend(*old, notes(3), 2)])
        assert result.success and not result.already_processed
        assert [(r.stream_id, r.new_version) for r in result.results] == [
            (f"{new[1]}:{new[0]}", 1),
            (f"{old[1]}:{old[0]}", 5),
        ]
        assert store.stream_version(*new) == 1 and store.stream_version(*old) == 5

    def test_a_conflict_on_one_stream_writes_nothing_anywhere(self) -> None:
        """One stale expected version among three streams: none is written, the conflict is named."""
        store, first, stale, last = self.store(), stream(), stream(), stream()
        store.append(*stale, notes(2), 0).raise_for_failure()
        appends = [StreamAppend(*first, notes(2), 0), StreamAppend(*stale, notes(1), 1)]
        result = store.append_many([*appends, StreamAppend(*last, notes(1), 0)])
        assert not result.success and result.conflicts == (Conflict(f"{stale[1]}:{stale[0]}", 1, 2),)
        assert store.stream_version(*first) == 0 and store.stream_version(*last) == 0
        assert store.stream_version(*stale) == 2

    def test_every_conflicting_stream_is_named_in_the_error(self) -> None:
        """Two stale streams: ConcurrencyError lists both with expected and actual versions."""
        store, a, b = self.store(), stream(), stream()
        store.append(*a, notes(1), 0).raise_for_failure()
        store.append(*b, notes(3), 0).raise_for_failure()
        result = store.append_many([StreamAppend(*a, notes(1), 0), StreamAppend(*b, notes(1), 5)])
        error = raised(ConcurrencyError, result.raise_for_failure)
        assert set(error.conflicts) == {Conflict(f"{a[1]}:{a[0]}", 0, 1), Conflict(f"{b[1]}:{b[0]}", 5, 3)}
        assert f"{a[1]}:{a[0]}" in str(error) and f"{b[1]}:{b[0]}" in str(error)
        assert store.stream_version(*a) == 1 and store.stream_version(*b) == 3

    def test_more_items_than_one_transaction_holds_are_refused_before_writing(self) -> None:
        """101 events over two streams raise TransactionTooLargeError saying how many; nothing is written."""
        store, a, b = self.store(), stream(), stream()
        appends = [StreamAppend(*a, notes(60), 0), StreamAppend(*b, notes(41), 0)]
        error = raised(TransactionTooLargeError, lambda: store.append_many(appends))
        assert error.items == 101 and error.max_items == 100 and "101 items" in str(error)
        assert store.stream_version(*a) == 0 and store.stream_version(*b) == 0

    def test_more_bytes_than_one_transaction_holds_are_refused_before_writing(self) -> None:
        """Fourteen 330 KB events (over 4 MB) raise TransactionTooLargeError with the size; nothing is written."""
        store, a, b = self.store(), stream(), stream()
        big = [Noted("x" * 250_000, n) for n in range(7)]
        error = raised(
            TransactionTooLargeError, lambda: store.append_many([StreamAppend(*a, big, 0), StreamAppend(*b, big, 0)])
        )
        assert error.items == 14 and error.size > error.max_bytes and f"{error.size:,} bytes" in str(error)
        assert store.stream_version(*a) == 0 and store.stream_version(*b) == 0

    def test_one_stream_twice_in_a_commit_is_refused(self) -> None:
        """A stream named in two appends of one commit raises InvalidStreamError; nothing is written."""
        store, a = self.store(), stream()
        twice = [StreamAppend(*a, notes(1), 0), StreamAppend(*a, notes(1), 1)]
        assert "twice" in str(raised(InvalidStreamError, lambda: store.append_many(twice)))
        assert store.stream_version(*a) == 0

    def test_bad_input_in_any_append_writes_nothing(self) -> None:
        """A malformed second append fails the commit before the first is written."""
        store, a = self.store(), stream()
        appends = [StreamAppend(*a, notes(1), 0), StreamAppend("", "ContractStream", notes(1), 0)]
        raised(InvalidStreamError, lambda: store.append_many(appends))
        assert store.stream_version(*a) == 0

    def test_retrying_the_same_commit_is_idempotent(self) -> None:
        """The same envelopes committed again succeed without duplicates."""
        store, a, b = self.store(), stream(), stream()
        appends = [StreamAppend(*a, [NewEvent(n) for n in notes(2)], 0), StreamAppend(*b, [NewEvent(Noted("b"))], 0)]
        assert store.append_many(appends).success and store.append_many(appends).success
        assert store.stream_version(*a) == 2 and store.stream_version(*b) == 1

    def test_an_empty_commit_is_a_successful_no_op(self) -> None:
        """No appends (or appends without events) succeed and write nothing."""
        store, a = self.store(), stream()
        assert store.append_many([]).success
        assert store.append_many([StreamAppend(*a, [], 0)]).success
        assert store.stream_version(*a) == 0

    def test_a_tracked_commit_happens_once(self) -> None:
        """A second commit with the same tracking writes nothing and reports already_processed."""
        store, a, upstream = self.store(), stream(), f"Upstream:{uuid.uuid4()}"
        tracking = Tracking("contract-reactor", upstream, 4)
        first = store.append_many([StreamAppend(*a, notes(1), 0)], tracking=tracking)
        again = store.append_many([StreamAppend(*a, notes(1, prefix="again"), 1)], tracking=tracking)
        assert first.success and not first.already_processed
        assert again.success and again.already_processed and again.results == ()
        assert store.stream_version(*a) == 1

    def test_tracking_only_moves_forward(self) -> None:
        """After version 5 is tracked, version 3 is already processed; version 6 is not."""
        store, a, upstream = self.store(), stream(), f"Upstream:{uuid.uuid4()}"
        assert not store.append_many([], tracking=Tracking("contract-reactor", upstream, 5)).already_processed
        assert store.append_many(
            [StreamAppend(*a, notes(1), 0)], tracking=Tracking("contract-reactor", upstream, 3)
        ).already_processed
        assert store.stream_version(*a) == 0
        later = store.append_many([StreamAppend(*a, notes(1), 0)], tracking=Tracking("contract-reactor", upstream, 6))
        assert later.success and not later.already_processed and store.stream_version(*a) == 1

    def test_tracking_is_per_name(self) -> None:
        """Two reactors tracking the same upstream event each commit once."""
        store, upstream = self.store(), f"Upstream:{uuid.uuid4()}"
        for name in ("reactor-a", "reactor-b"):
            assert not store.append_many([], tracking=Tracking(name, upstream, 1)).already_processed
            assert store.append_many([], tracking=Tracking(name, upstream, 1)).already_processed

    def test_a_conflict_leaves_the_tracking_unrecorded(self) -> None:
        """A tracked commit that conflicts records nothing: the same tracking commits afterwards."""
        store, a, upstream = self.store(), stream(), f"Upstream:{uuid.uuid4()}"
        store.append(*a, notes(1), 0).raise_for_failure()
        tracking = Tracking("contract-reactor", upstream, 1)
        assert store.append_many([StreamAppend(*a, notes(1), 0)], tracking=tracking).conflicts
        assert store.append_many([StreamAppend(*a, notes(1), 1)], tracking=tracking).results

    def test_racing_tracked_commits_have_exactly_one_effect(self) -> None:
        """Six threads commit the same tracking at once: one writes, the rest are already processed."""
        store, upstream = self.store(), f"Upstream:{uuid.uuid4()}"
        targets = [stream() for _ in range(6)]
        results: list[CommitResult] = []
        gate = threading.Barrier(6)

        def commit(n: int) -> None:
            gate.wait()
            appends = [StreamAppend(*targets[n], notes(1), 0)]
            results.append(store.append_many(appends, tracking=Tracking("contract-reactor", upstream, 1)))

        threads = [threading.Thread(target=commit, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(r.success and not r.already_processed for r in results) == 1
        assert sum(r.already_processed for r in results) == 5
        assert sum(store.stream_version(*target) for target in targets) == 1

    def test_malformed_tracking_is_refused(self) -> None:
        """Tracking without a name, a 'Type:id' stream, a positive version or a short enough id raises first."""
        store, a = self.store(), stream()
        appends = [StreamAppend(*a, notes(1), 0)]
        too_long = Tracking("r", "T:" + "x" * 2047, 1)  # over the 2,048 bytes a stream id may have
        for tracking in [Tracking("", "T:x", 1), Tracking("r", "nocolon", 1), Tracking("r", "T:x", 0), too_long]:
            raised(InvalidStreamError, functools.partial(store.append_many, appends, tracking=tracking))
        assert store.stream_version(*a) == 0

"""Process managers: one effect per upstream event, whatever the redelivery, on memory and DynamoDB Local."""

from __future__ import annotations

import threading
import uuid

import pytest

from dynamo_es import (
    Change,
    DynamoDBEventStore,
    InMemoryEventStore,
    Repository,
    StoredEvent,
    UnitOfWork,
    process_manager,
)
from dynamo_es.exceptions import ConfigurationError, EventStoreError
from dynamo_es.projections import BatchOutcome, ChangeKind, Projection, UnitCommits

from ..conftest import Account, Credited

Store = InMemoryEventStore | DynamoDBEventStore


def cashback(change: Change, unit: UnitOfWork) -> None:
    """The policy under test: every credit of 100 or more earns 1 on the account's rewards account."""
    event = change.event.event
    if isinstance(event, Credited) and event.amount >= 100:
        rewards_id = f"rewards-{change.event.aggregate_id}"
        try:
            rewards = unit.get(Account, rewards_id)
        except LookupError:
            rewards = Account.open(rewards_id)
            unit.add(rewards)
        rewards.credit(1, reason=change.event.event_id)


def upstream(store: Store, *amounts: int) -> tuple[str, list[Change]]:
    """An account credited ``amounts``; its id and its events as changes."""
    account = Account.open(f"acc-{uuid.uuid4().hex[:10]}")
    for amount in amounts:
        account.credit(amount)
    Repository(Account, store).save(account)
    return account.id, [Change.stored(e) for e in store.load(account.id, "TestAccount")]


def rewards(store: Store, account_id: str) -> list[StoredEvent]:
    return store.load(f"rewards-{account_id}", "TestAccount")


def name() -> str:
    return f"cashback-{uuid.uuid4().hex[:8]}"


class TestExactlyOnce:
    def test_each_upstream_event_has_one_effect(self, any_store: Store) -> None:
        """Two qualifying credits give two rewards, each caused by its credit."""
        account_id, changes = upstream(any_store, 100, 50, 250)
        outcome = process_manager(name(), cashback, any_store).handle(changes)
        assert outcome.applied == 4 and not outcome.failed
        earned = rewards(any_store, account_id)
        assert [e.event for e in earned][1:] == [
            Credited(1, changes[1].event.event_id),
            Credited(1, changes[3].event.event_id),
        ]
        assert {e.metadata.causation_id for e in earned} == {changes[1].event.event_id, changes[3].event.event_id}

    def test_redelivery_any_number_of_times_has_no_second_effect(self, any_store: Store) -> None:
        """The same batch handled five times (by five workers) changes nothing after the first."""
        account_id, changes = upstream(any_store, 100)
        manager_name = name()
        outcomes = [process_manager(manager_name, cashback, any_store).handle(changes) for _ in range(5)]
        assert [o.applied for o in outcomes] == [2, 0, 0, 0, 0]
        assert all(not o.failed for o in outcomes)
        assert [e.event for e in rewards(any_store, account_id)][1:] == [Credited(1, changes[1].event.event_id)]

    def test_concurrent_redelivery_has_exactly_one_effect(self, any_store: Store) -> None:
        """Six workers handle the same event at once: one reward, no failure reported to anyone."""
        account_id, changes = upstream(any_store, 100)
        manager_name = name()
        outcomes: list[BatchOutcome] = []
        gate = threading.Barrier(6)

        def work() -> None:
            manager = process_manager(manager_name, cashback, any_store)
            gate.wait()
            outcomes.append(manager.handle(changes))

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(outcomes) == 6 and all(not o.failed for o in outcomes)
        assert [e.event.reason for e in rewards(any_store, account_id)[1:]] == [changes[1].event.event_id]

    def test_events_delivered_in_reverse_are_handled_in_version_order(self, any_store: Store) -> None:
        """Reversed delivery: the rewards follow the credits' order."""
        account_id, changes = upstream(any_store, 100, 200, 300)
        process_manager(name(), cashback, any_store).handle(changes[::-1])
        reasons = [e.event.reason for e in rewards(any_store, account_id)[1:]]
        assert reasons == [c.event.event_id for c in changes[1:]]

    def test_a_conflict_with_another_writer_reruns_the_policy(self, any_store: Store) -> None:
        """The rewards account changes between load and commit: the policy runs again on fresh state."""
        account_id, changes = upstream(any_store, 100, 100)
        manager_name = name()
        process_manager(manager_name, cashback, any_store).handle(changes[:2])
        runs: list[int] = []

        def meddling(change: Change, unit: UnitOfWork) -> None:
            cashback(change, unit)
            runs.append(change.event.version)
            if len(runs) == 1:  # another writer credits the rewards account meanwhile
                other = Repository(Account, any_store).get(f"rewards-{account_id}")
                other.credit(7)
                Repository(Account, any_store).save(other)

        outcome = process_manager(manager_name, meddling, any_store).handle(changes)
        assert runs == [3, 3] and outcome.applied == 1 and not outcome.failed
        assert Repository(Account, any_store).get(f"rewards-{account_id}").balance == 9

    def test_a_policy_failing_after_another_worker_applied_the_event_is_no_failure(self, any_store: Store) -> None:
        """Worker B's policy raises because worker A reacted first: B reports no failure, the effect is A's alone."""
        account_id, changes = upstream(any_store, 100)
        manager_name = name()

        def second_worker(change: Change, unit: UnitOfWork) -> None:
            if change.event.version == 2:
                process_manager(manager_name, cashback, any_store).handle(changes)  # worker A, meanwhile
                raise ValueError("already rewarded")

        outcome = process_manager(manager_name, second_worker, any_store).handle(changes)
        assert not outcome.failed and not outcome.errors and outcome.skipped == 1
        assert len(rewards(any_store, account_id)) == 2


class TestCrashes:
    def test_a_crash_between_handling_and_saving_records_nothing_and_the_event_is_handled_again(self) -> None:
        """The commit never reaches the store: no effect, no tracking; the redelivery has the one effect."""
        store = FailingOnce()
        account_id, changes = upstream(store, 100)
        manager_name = name()
        first = process_manager(manager_name, cashback, store).handle(changes)
        assert len(first.failed) == 1 and rewards(store, account_id) == []
        assert (
            store.tracking.load_progress(manager_name, [changes[0].event.stream_id])[changes[0].event.stream_id].version
            == 1
        )
        again = process_manager(manager_name, cashback, store).handle(changes)
        assert again.applied == 1 and not again.failed
        assert [e.event.amount for e in rewards(store, account_id)[1:]] == [1]


class TestConfiguration:
    def test_a_projection_with_effects_handles_inserts_only(self) -> None:
        """Asking for modify or remove changes with effects is a configuration error."""
        store = InMemoryEventStore()
        with pytest.raises(ConfigurationError, match="inserts only"):
            Projection(
                "p", lambda change: None, store.tracking, store, kinds=frozenset(ChangeKind), effects=UnitCommits(store)
            )


class FailingOnce(InMemoryEventStore):
    """Stands for a process that dies after the policy ran, before its commit reached the store."""

    failed: bool = False

    def append_many(self, appends, *, tracking=None):  # type: ignore[no-untyped-def]
        if appends and not self.failed:
            self.failed = True
            raise EventStoreError("the worker died before its commit was sent")
        return super().append_many(appends, tracking=tracking)

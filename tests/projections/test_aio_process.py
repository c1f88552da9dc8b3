"""Async process managers: one effect per upstream event, whatever the redelivery, on memory and DynamoDB Local."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from dynamo_es import Change, DynamoDBEventStore, InMemoryEventStore, Repository
from dynamo_es.aio import AsyncInMemoryEventStore, AsyncUnitOfWork, async_process_manager
from dynamo_es.dynamodb.aio import AsyncDynamoDBEventStore
from dynamo_es.projections import BatchOutcome

from ..conftest import Account, Credited
from .test_process import Store, name, rewards, upstream

Scenario = Callable[[Any], Coroutine[Any, Any, Any]]


async def cashback(change: Change, unit: AsyncUnitOfWork) -> None:
    """The policy: every credit of 100 or more earns 1 on the account's rewards account."""
    event = change.event.event
    if isinstance(event, Credited) and event.amount >= 100:
        rewards_id = f"rewards-{change.event.aggregate_id}"
        try:
            rewards = await unit.get(Account, rewards_id)
        except LookupError:
            rewards = Account.open(rewards_id)
            unit.add(rewards)
        rewards.credit(1, reason=change.event.event_id)


@pytest.fixture(params=["memory", "dynamodb"])
def stores(request: pytest.FixtureRequest) -> tuple[Store, Callable[[Scenario], Any]]:
    """A sync store (to write upstream events and read effects) and ``run(scenario)`` with an async store on it."""
    if request.param == "memory":
        memory = InMemoryEventStore()
        return memory, lambda scenario: asyncio.run(scenario(AsyncInMemoryEventStore(memory)))
    request.applymarker(pytest.mark.ddblocal)
    settings = request.getfixturevalue("events_table")

    async def on_dynamodb(scenario: Scenario) -> Any:
        async with AsyncDynamoDBEventStore(settings) as store:
            return await scenario(store)

    return DynamoDBEventStore(settings), lambda scenario: asyncio.run(on_dynamodb(scenario))


class TestAsyncProcessManager:
    def test_each_upstream_event_has_one_effect_caused_by_it(self, stores: tuple[Store, Any]) -> None:
        """Two qualifying credits give two rewards, each naming its credit as cause."""
        sync, run = stores
        account_id, changes = upstream(sync, 100, 50, 250)

        async def scenario(store: Any) -> BatchOutcome:
            return await async_process_manager(name(), cashback, store).handle(changes)

        outcome = run(scenario)
        assert outcome.applied == 4 and not outcome.failed
        earned = rewards(sync, account_id)
        assert [e.event for e in earned][1:] == [
            Credited(1, changes[1].event.event_id),
            Credited(1, changes[3].event.event_id),
        ]
        assert {e.metadata.causation_id for e in earned} == {changes[1].event.event_id, changes[3].event.event_id}

    def test_concurrent_and_repeated_delivery_has_exactly_one_effect(self, stores: tuple[Store, Any]) -> None:
        """Six tasks handle the same batch at once, then five more times: one reward, no failure."""
        sync, run = stores
        account_id, changes = upstream(sync, 100)
        manager_name = name()

        async def scenario(store: Any) -> list[BatchOutcome]:
            managers = [async_process_manager(manager_name, cashback, store) for _ in range(6)]
            at_once = await asyncio.gather(*(manager.handle(changes) for manager in managers))
            return [*at_once, *[await managers[0].handle(changes) for _ in range(5)]]

        outcomes = run(scenario)
        assert all(not o.failed for o in outcomes) and sum(o.applied for o in outcomes[6:]) == 0
        assert [e.event.reason for e in rewards(sync, account_id)[1:]] == [changes[1].event.event_id]

    def test_events_delivered_in_reverse_are_handled_in_version_order(self, stores: tuple[Store, Any]) -> None:
        """Reversed delivery: the rewards follow the credits' order."""
        sync, run = stores
        account_id, changes = upstream(sync, 100, 200, 300)

        async def scenario(store: Any) -> BatchOutcome:
            return await async_process_manager(name(), cashback, store).handle(changes[::-1])

        run(scenario)
        assert [e.event.reason for e in rewards(sync, account_id)[1:]] == [c.event.event_id for c in changes[1:]]

    def test_a_conflict_with_another_writer_reruns_the_policy(self, stores: tuple[Store, Any]) -> None:
        """The rewards account changes between load and commit: the policy runs again on fresh state."""
        sync, run = stores
        account_id, changes = upstream(sync, 100, 100)
        manager_name = name()
        runs: list[int] = []

        async def meddling(change: Change, unit: AsyncUnitOfWork) -> None:
            await cashback(change, unit)
            runs.append(change.event.version)
            if len(runs) == 1:  # another writer credits the rewards account meanwhile
                other = Repository(Account, sync).get(f"rewards-{account_id}")
                other.credit(7)
                Repository(Account, sync).save(other)

        async def scenario(store: Any) -> BatchOutcome:
            await async_process_manager(manager_name, cashback, store).handle(changes[:2])
            return await async_process_manager(manager_name, meddling, store).handle(changes)

        outcome = run(scenario)
        assert runs == [3, 3] and outcome.applied == 1 and not outcome.failed
        assert Repository(Account, sync).get(f"rewards-{account_id}").balance == 9

"""Projections on DynamoDB Local: equal to replay, stop/resume, failures, duplicates, MODIFY."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Callable

import attrs
import pytest

from dynamo_es import (
    Change,
    ChangeKind,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    InMemoryCheckpointStore,
    Repository,
)
from dynamo_es.exceptions import ProjectionError

from .conftest import MakeProjection, Wallet, balance_delta

pytestmark = pytest.mark.ddblocal


@attrs.define
class Balances:
    """A naive read model: balance per wallet, and how often each event was applied."""

    wallet_ids: set[str]
    balances: dict[str, int] = attrs.field(factory=lambda: defaultdict(int))
    applied: dict[tuple[str, int], int] = attrs.field(factory=lambda: defaultdict(int))

    def __call__(self, change: Change) -> None:
        if change.event.aggregate_id not in self.wallet_ids:
            return
        self.balances[change.event.aggregate_id] += balance_delta(change)
        self.applied[(change.event.aggregate_id, change.event.version)] += 1


@pytest.fixture
def checkpoints(store: DynamoDBEventStore) -> DynamoDBCheckpointStore:
    return DynamoDBCheckpointStore(store.settings)


def name() -> str:
    return f"balances-{uuid.uuid4().hex[:8]}"


class TestProjection:
    def test_balances_equal_the_state_rebuilt_by_replay(
        self,
        make_projection: MakeProjection,
        store: DynamoDBEventStore,
        wallets: Repository[Wallet],
        checkpoints: DynamoDBCheckpointStore,
    ) -> None:
        """After random commands on several wallets, the projection matches each aggregate."""
        rng = random.Random(7)
        ids = [f"w-{uuid.uuid4()}" for _ in range(4)]
        for wallet_id in ids:
            wallets.save(Wallet.open(wallet_id))
        for _ in range(40):
            wallet = wallets.get(rng.choice(ids))
            if wallet.balance and rng.random() < 0.4:
                wallet.withdraw(rng.randint(1, wallet.balance))
            else:
                wallet.deposit(rng.randint(1, 50))
            wallets.save(wallet)
        model = Balances(set(ids))
        make_projection(name(), model, checkpoints, store).run(stop_when_idle=True)
        assert {i: model.balances[i] for i in ids} == {i: wallets.get(i).balance for i in ids}
        assert set(model.applied.values()) == {1}

    def test_stop_and_resume_loses_nothing_and_applies_nothing_twice(
        self,
        make_projection: MakeProjection,
        store: DynamoDBEventStore,
        make_wallets: Callable[..., list[str]],
        checkpoints: DynamoDBCheckpointStore,
    ) -> None:
        """A second run from the saved checkpoint (a new process) sees only what came after."""
        projection_name = name()
        first_ids = make_wallets(2, deposits=2)
        model = Balances(set(first_ids))
        first = make_projection(projection_name, model, checkpoints, store)
        first.run(stop_when_idle=True)
        later_ids = make_wallets(2, deposits=1)
        model.wallet_ids |= set(later_ids)
        restarted = make_projection(projection_name, model, DynamoDBCheckpointStore(store.settings), store)
        handled = restarted.run(stop_when_idle=True)
        assert handled >= 4
        assert len([key for key in model.applied if key[0] in later_ids]) == 4
        assert set(model.applied.values()) == {1}
        assert {i: model.balances[i] for i in first_ids} == dict.fromkeys(first_ids, 1 + 2)

    def test_failing_handler_checkpoints_before_the_failure(
        self,
        make_projection: MakeProjection,
        store: DynamoDBEventStore,
        make_wallets: Callable[..., list[str]],
        checkpoints: DynamoDBCheckpointStore,
    ) -> None:
        """With max_attempts=None a handler error ends the run (ProjectionError); a rerun starts at that change."""
        ids = make_wallets(1, deposits=3)
        model = Balances(set(ids))
        fail_on = (ids[0], 3)

        def flaky(change: Change) -> None:
            if (change.event.aggregate_id, change.event.version) == fail_on:
                raise RuntimeError("read model unavailable")
            model(change)

        projection_name = name()
        with pytest.raises(ProjectionError) as caught:
            make_projection(projection_name, flaky, checkpoints, store, max_attempts=None).run(stop_when_idle=True)
        assert (caught.value.stream_id, caught.value.version) == (f"Wallet:{ids[0]}", 3)
        assert isinstance(caught.value.__cause__, RuntimeError)
        make_projection(projection_name, model, checkpoints, store).run(stop_when_idle=True)
        assert sorted(model.applied) == [(ids[0], v) for v in (1, 2, 3, 4)]
        assert set(model.applied.values()) == {1}

    def test_modifications_are_ignored_by_default_and_delivered_when_asked(
        self, make_projection: MakeProjection, store: DynamoDBEventStore, make_wallets: Callable[..., list[str]]
    ) -> None:
        """IsDispatched flipping (MODIFY) does not reach a default projection; it does with kinds."""
        (wallet_id,) = make_wallets(1, deposits=0)
        store.connection.client.update_item(
            TableName=store.settings.events_table_name,
            Key={"pk": {"S": f"Wallet:{wallet_id}"}, "sk": {"N": "1"}},
            UpdateExpression="SET isDispatched = :t",
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )
        seen: dict[str, list[ChangeKind]] = {"default": [], "all": []}

        def recorder(key: str) -> Callable[[Change], None]:
            return lambda change: seen[key].append(change.kind) if change.event.aggregate_id == wallet_id else None

        make_projection(name(), recorder("default"), InMemoryCheckpointStore(), store).run(stop_when_idle=True)
        make_projection(
            name(),
            recorder("all"),
            InMemoryCheckpointStore(),
            store,
            kinds=frozenset({ChangeKind.INSERT, ChangeKind.MODIFY}),
        ).run(stop_when_idle=True)
        assert seen == {"default": [ChangeKind.INSERT], "all": [ChangeKind.INSERT, ChangeKind.MODIFY]}

    def test_handle_skips_versions_already_applied(
        self, make_projection: MakeProjection, store: DynamoDBEventStore, make_wallets: Callable[..., list[str]]
    ) -> None:
        """Handing the same changes to handle() again applies none of them twice."""
        ids = make_wallets(1, deposits=2)
        changes = [
            c
            for batch in store.subscribe_to_changes().batches(stop_when_idle=True)
            for c in batch
            if c.event.aggregate_id in ids
        ]
        model = Balances(set(ids))
        checkpoints = InMemoryCheckpointStore()
        assert make_projection("p", model, checkpoints, store).handle(changes).applied == 3
        assert make_projection("p", model, checkpoints, store).handle(changes).applied == 0
        assert set(model.applied.values()) == {1}

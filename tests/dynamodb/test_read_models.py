"""Exactly-once read models: a handler's writes and its checkpoint in one transaction, on DynamoDB Local."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from dynamo_es import Change, DynamoDBCheckpointStore, DynamoDBEventStore, EventStoreSettings, Projection, Repository
from dynamo_es.aio import AsyncProjection
from dynamo_es.dynamodb import ConditionCheck, DeleteItem, PutItem, UpdateItem
from dynamo_es.dynamodb.aio import AsyncDynamoDBCheckpointStore, AsyncDynamoDBEventStore
from dynamo_es.exceptions import InvalidStreamError, TransactionTooLargeError, WriteConditionError
from dynamo_es.projections import BatchOutcome
from dynamo_es.testing import DynamoDBLocal, FaultProxy

from ..conftest import Account, Credited, Debited

pytestmark = pytest.mark.ddblocal


class Balance(Model):
    """The read model: one item per account, kept by the projection."""

    class Meta:
        """Its table; the endpoint is set by the fixture that creates it."""

        table_name = "ReadModelBalances"
        billing_mode = "PAY_PER_REQUEST"

    account_id = UnicodeAttribute(hash_key=True)
    amount = NumberAttribute(default=0)
    last_version = NumberAttribute(default=0)


class BigItem(Model):
    """Large items, in the same table (its key is the account id)."""

    class Meta:
        """The fixture points it at DynamoDB Local."""

        table_name = "ReadModelBalances"

    account_id = UnicodeAttribute(hash_key=True)
    blob = UnicodeAttribute()


def balance_writes(change: Change) -> Any:
    """The handler: add each credit or debit, and only after the version before it (a conditional write)."""
    event, account = change.event.event, change.event.aggregate_id
    delta = event.amount if isinstance(event, Credited) else -event.amount if isinstance(event, Debited) else 0
    in_order = Balance.last_version.does_not_exist() | (Balance.last_version == change.event.version - 1)
    actions = [Balance.amount.add(delta), Balance.last_version.set(change.event.version)]
    return UpdateItem(Balance(account), actions, condition=in_order)


@pytest.fixture(scope="module")
def balances_table(dynamodb_local: DynamoDBLocal) -> None:
    settings = dynamodb_local.settings()
    for model in (Balance, BigItem):
        model.Meta.host = settings.endpoint_url  # type: ignore[attr-defined]
        model.Meta.region = settings.region
        model.Meta.aws_access_key_id = settings.aws_access_key_id  # type: ignore[attr-defined]
        model.Meta.aws_secret_access_key = settings.aws_secret_access_key  # type: ignore[attr-defined]
        model._connection = None
    Balance.create_table(wait=True)


@pytest.fixture
def store(events_table: EventStoreSettings, balances_table: None) -> DynamoDBEventStore:
    return DynamoDBEventStore(events_table)


def account_with(store: DynamoDBEventStore, *amounts: int) -> tuple[str, list[Change]]:
    account = Account.open(f"rm-{uuid.uuid4().hex[:10]}")
    for amount in amounts:
        account.credit(amount) if amount > 0 else account.debit(-amount)
    Repository(Account, store).save(account)
    return account.id, [Change.stored(e) for e in store.load(account.id, "TestAccount")]


def projection(store: DynamoDBEventStore, name: str, settings: EventStoreSettings | None = None) -> Projection:
    checkpoints = DynamoDBCheckpointStore(settings or store.settings)
    return Projection(name, balance_writes, checkpoints, store, effects=checkpoints)


def amount(account_id: str) -> int:
    return int(Balance.get(account_id, consistent_read=True).amount)


class TestExactlyOnce:
    def test_writes_are_applied_with_the_checkpoint(self, store: DynamoDBEventStore) -> None:
        """Each event's write lands once; the checkpoint records the last version."""
        account_id, changes = account_with(store, 100, -30, 5)
        name = f"balances-{uuid.uuid4().hex[:6]}"
        outcome = projection(store, name).handle(changes)
        assert outcome.applied == 4 and not outcome.failed and amount(account_id) == 75
        stream_id = changes[0].event.stream_id
        assert DynamoDBCheckpointStore(store.settings).load_progress(name, [stream_id])[stream_id].version == 4

    def test_redelivery_changes_nothing(self, store: DynamoDBEventStore) -> None:
        """The same batch five times, by fresh workers: the balance counts each event once."""
        account_id, changes = account_with(store, 100, 20)
        name = f"balances-{uuid.uuid4().hex[:6]}"
        outcomes = [projection(store, name).handle(changes) for _ in range(5)]
        assert [o.applied for o in outcomes] == [3, 0, 0, 0, 0] and amount(account_id) == 120

    def test_concurrent_workers_apply_each_event_once(self, store: DynamoDBEventStore) -> None:
        """Six workers handle one batch at once: the balance is right and nobody sees a failure."""
        account_id, changes = account_with(store, 10, 20, 30)
        name = f"balances-{uuid.uuid4().hex[:6]}"
        outcomes: list[BatchOutcome] = []
        gate = threading.Barrier(6)

        def work() -> None:
            worker = projection(store, name)
            gate.wait()
            outcomes.append(worker.handle(changes))

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert amount(account_id) == 60 and all(not o.failed for o in outcomes)
        assert sum(o.applied for o in outcomes) == 4

    def test_reordered_and_gapped_delivery_is_applied_in_version_order(self, store: DynamoDBEventStore) -> None:
        """Reversed delivery without version 2: it is loaded from the store; the in-order conditions all hold."""
        account_id, changes = account_with(store, 5, 6, 7)
        projection(store, f"balances-{uuid.uuid4().hex[:6]}").handle([changes[3], changes[2], changes[0]])
        assert amount(account_id) == 18 and Balance.get(account_id, consistent_read=True).last_version == 4

    def test_the_checkpoint_condition_alone_stops_a_second_commit(self, store: DynamoDBEventStore) -> None:
        """commit_effects twice for one event, no condition of the handler's own: applied once, then False."""
        account_id, changes = account_with(store, 30)
        checkpoints = DynamoDBCheckpointStore(store.settings)
        name = f"balances-{uuid.uuid4().hex[:6]}"
        plain = UpdateItem(Balance(account_id), [Balance.amount.add(30)])
        assert checkpoints.commit_effects(name, changes[1].event, plain) is True
        assert checkpoints.commit_effects(name, changes[1].event, plain) is False
        assert checkpoints.commit_effects(name, changes[0].event, plain) is False  # an older version, too
        assert amount(account_id) == 30


class TestFailures:
    def test_a_failing_write_condition_writes_nothing_and_parks_after_three_attempts(
        self, store: DynamoDBEventStore
    ) -> None:
        """A ConditionCheck that never holds: WriteConditionError, no checkpoint, parked after max_attempts."""
        account_id, changes = account_with(store, 1)
        name = f"balances-{uuid.uuid4().hex[:6]}"
        never = ConditionCheck(Balance, "no-such-account", Balance.amount.exists())

        def handler(change: Change) -> Any:
            return [balance_writes(change), never]

        checkpoints = DynamoDBCheckpointStore(store.settings)
        worker = Projection(name, handler, checkpoints, store, effects=checkpoints, retry_delay=0)
        outcomes = [worker.handle(changes) for _ in range(3)]
        assert isinstance(outcomes[0].errors[0].__cause__, WriteConditionError)
        assert outcomes[0].errors[0].__cause__.write_index == 1
        assert outcomes[2].parked == (changes[0].event.stream_id,)
        with pytest.raises(Balance.DoesNotExist):
            Balance.get(account_id, consistent_read=True)

    def test_more_writes_than_a_transaction_holds_fail_the_event(self, store: DynamoDBEventStore) -> None:
        """100 writes plus the checkpoint cannot be one transaction: the event fails, nothing is written."""
        account_id, changes = account_with(store)
        name = f"balances-{uuid.uuid4().hex[:6]}"
        checkpoints = DynamoDBCheckpointStore(store.settings)

        def handler(change: Change) -> Any:
            return [PutItem(Balance(f"{account_id}-{n}")) for n in range(100)]

        outcome = Projection(name, handler, checkpoints, store, effects=checkpoints).handle(changes)
        assert "101 items" in str(outcome.errors[0].__cause__)
        with pytest.raises(Balance.DoesNotExist):
            Balance.get(f"{account_id}-0", consistent_read=True)

    def test_over_4_mb_of_writes_fail_the_event_before_sending(self, store: DynamoDBEventStore) -> None:
        """Twenty 300 KB items: TransactionTooLargeError with the bytes; nothing is written."""
        account_id, changes = account_with(store)
        checkpoints = DynamoDBCheckpointStore(store.settings)

        def handler(change: Change) -> Any:
            return [PutItem(BigItem(f"{account_id}-{n}", blob="x" * 300_000)) for n in range(20)]

        outcome = Projection(f"b-{uuid.uuid4().hex[:6]}", handler, checkpoints, store, effects=checkpoints).handle(
            changes
        )
        error = outcome.errors[0].__cause__
        assert isinstance(error, TransactionTooLargeError) and error.size > 4_000_000 and error.items == 21

    def test_two_writes_to_one_item_are_refused_with_a_clear_error(self, store: DynamoDBEventStore) -> None:
        """DynamoDB takes one action per item in a transaction: the handler is told to merge them."""
        account_id, changes = account_with(store)
        checkpoints = DynamoDBCheckpointStore(store.settings)

        def handler(change: Change) -> Any:
            return [PutItem(Balance(account_id)), UpdateItem(Balance(account_id), [Balance.amount.add(1)])]

        outcome = Projection(f"b-{uuid.uuid4().hex[:6]}", handler, checkpoints, store, effects=checkpoints).handle(
            changes
        )
        error = outcome.errors[0].__cause__
        assert isinstance(error, InvalidStreamError) and "writes 0 and 1 both target" in str(error)

    def test_a_handler_returning_something_else_fails_with_a_clear_error(self, store: DynamoDBEventStore) -> None:
        """A handler that returns a dict is told what it may return."""
        _, changes = account_with(store)
        checkpoints = DynamoDBCheckpointStore(store.settings)
        worker = Projection(
            f"b-{uuid.uuid4().hex[:6]}", lambda change: {"x": 1}, checkpoints, store, effects=checkpoints
        )
        outcome = worker.handle(changes)
        assert "PutItem, UpdateItem, DeleteItem or ConditionCheck" in str(outcome.errors[0].__cause__)

    def test_deletes_and_puts_go_in_the_same_transaction(self, store: DynamoDBEventStore) -> None:
        """A handler may replace one item by another: put and delete land together."""
        account_id, changes = account_with(store)
        Balance(f"{account_id}-old").save()
        checkpoints = DynamoDBCheckpointStore(store.settings)

        def handler(change: Change) -> Any:
            return [PutItem(Balance(f"{account_id}-new")), DeleteItem(Balance(f"{account_id}-old"))]

        Projection(f"b-{uuid.uuid4().hex[:6]}", handler, checkpoints, store, effects=checkpoints).handle(changes)
        assert Balance.count(f"{account_id}-new") == 1 and Balance.count(f"{account_id}-old") == 0


class TestCrashes:
    @pytest.fixture
    def proxied(
        self, store: DynamoDBEventStore, dynamodb_local: DynamoDBLocal
    ) -> Iterator[tuple[FaultProxy, EventStoreSettings]]:
        with FaultProxy(dynamodb_local.endpoint_url) as proxy:
            settings = store.settings
            yield (
                proxy,
                dynamodb_local.settings(
                    endpoint_url=proxy.endpoint_url,
                    events_table_name=settings.events_table_name,
                    checkpoints_table_name=settings.checkpoints_table_name,
                    retry_base_delay_ms=1,
                    max_transient_retries=1,
                    client_max_attempts=1,  # the store's retries only: botocore's back off for seconds
                ),
            )

    def test_a_commit_that_never_arrives_is_applied_on_redelivery_once(
        self, store: DynamoDBEventStore, proxied: tuple[FaultProxy, EventStoreSettings]
    ) -> None:
        """Connections broken before arrival (a crash before saving): nothing recorded; the redelivery applies once."""
        proxy, settings = proxied
        account_id, changes = account_with(store, 40)
        name = f"balances-{uuid.uuid4().hex[:6]}"
        proxy.inject("TransactWriteItems", "reset", times=100)
        first = projection(store, name, settings).handle(changes)
        proxy.clear()
        assert first.failed and not Balance.count(account_id)
        again = projection(store, name, settings).handle(changes)
        assert again.applied == 2 and amount(account_id) == 40

    def test_a_commit_whose_response_is_lost_is_not_applied_twice(
        self, store: DynamoDBEventStore, proxied: tuple[FaultProxy, EventStoreSettings]
    ) -> None:
        """Applied but never answered: the retry finds the checkpoint recorded; the balance counts it once."""
        proxy, settings = proxied
        account_id, changes = account_with(store, 40, 2)
        proxy.inject("TransactWriteItems", "drop", times=1)
        outcome = projection(store, f"balances-{uuid.uuid4().hex[:6]}", settings).handle(changes)
        proxy.clear()
        assert ("TransactWriteItems", "drop") in proxy.seen and amount(account_id) == 42
        assert outcome.applied == 3 and outcome.skipped == 0  # the retry's token recognised: applied, by this worker


class TestAsyncExactlyOnce:
    def test_async_workers_at_once_and_again_apply_each_event_once(self, store: DynamoDBEventStore) -> None:
        """Six AsyncProjection tasks handle one batch at once, then again: each write lands once, nobody fails."""
        account_id, changes = account_with(store, 10, 20, 30)
        name = f"balances-{uuid.uuid4().hex[:6]}"

        async def scenario() -> list[BatchOutcome]:
            async with (
                AsyncDynamoDBEventStore(store.settings) as events,
                AsyncDynamoDBCheckpointStore(store.settings) as checkpoints,
            ):
                workers = [
                    AsyncProjection(name, balance_writes, checkpoints, events, effects=checkpoints) for _ in range(6)
                ]
                first = await asyncio.gather(*(worker.handle(changes) for worker in workers))
                again = await workers[0].handle(changes)
                return [*first, again]

        outcomes = asyncio.run(scenario())
        assert amount(account_id) == 60 and all(not o.failed for o in outcomes)
        assert sum(o.applied for o in outcomes) == 4 and outcomes[-1].applied == 0

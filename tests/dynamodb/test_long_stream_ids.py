"""Every legal stream id can be projected: checkpoints and tracking for ids of 1,024, 1,025 and 2,048 bytes."""

from __future__ import annotations

import uuid

import attrs
import pytest

from dynamo_es import (
    Change,
    DynamoDBCheckpointStore,
    DynamoDBEventStore,
    Projection,
    Repository,
    Selection,
    UnitOfWork,
    process_manager,
)
from dynamo_es.dynamodb import PutItem, lambda_handler
from dynamo_es.dynamodb.flows.checkpoints import HASHED_PREFIX, stream_key
from dynamo_es.testing import lambda_payload

from ..conftest import Account
from .conftest import MakeProjection
from .test_read_models import Balance, balances_table  # noqa: F401  (the read-model table fixture)

pytestmark = pytest.mark.ddblocal

SIZES = [1024, 1025, 2048]


def long_id(size: int, prefix: str = "TestAccount:") -> str:
    """An aggregate id whose stream id (``prefix`` + id) is exactly ``size`` UTF-8 bytes, with multi-byte text."""
    head = f"{uuid.uuid4().hex}-é"
    rest = size - len(prefix.encode()) - len(head.encode())
    return head + "x" * rest


def saved_account(store: DynamoDBEventStore, size: int, credits: int = 2) -> Account:
    account = Account.open(long_id(size))
    for n in range(credits):
        account.credit(n + 1)
    Repository(Account, store).save(account)
    assert len(f"TestAccount:{account.id}".encode()) == size
    return account


class TestCheckpointKeys:
    @pytest.mark.parametrize("size", SIZES)
    def test_short_ids_stay_as_they_are_and_long_ones_are_hashed(self, size: int) -> None:
        """Up to 1,024 bytes the key is the id itself (existing checkpoints need no migration); above, a hash."""
        stream_id = f"TestAccount:{long_id(size)}"
        key = stream_key(stream_id)
        assert (key == stream_id) is (size <= 1024)
        assert len(key.encode()) <= 1024 and (size <= 1024 or key.startswith(HASHED_PREFIX))


class TestProjections:
    @pytest.mark.parametrize("size", SIZES)
    def test_run_saves_and_reads_back_progress(
        self, make_projection: MakeProjection, store: DynamoDBEventStore, size: int
    ) -> None:
        """A projection follows a long stream id on the real stream; its progress reads back under the full id."""
        account = saved_account(store, size)
        stream_id = f"TestAccount:{account.id}"
        seen: list[int] = []
        checkpoints = DynamoDBCheckpointStore(store.settings)
        name = f"long-{uuid.uuid4().hex[:8]}"

        def apply(change: Change) -> None:
            if change.event.stream_id == stream_id:
                seen.append(change.event.version)

        make_projection(name, apply, checkpoints, store, reads=Selection(aggregate_types=["TestAccount"])).run(
            stop_when_idle=True
        )
        assert seen == [1, 2, 3]
        assert checkpoints.load_progress(name, [stream_id])[stream_id].version == 3

    @pytest.mark.parametrize("size", SIZES)
    def test_a_parked_long_stream_is_listed_by_its_full_id(self, store: DynamoDBEventStore, size: int) -> None:
        """Failures, parking and unparking work on hashed keys; parked() names the stream, not its hash."""
        account = saved_account(store, size)
        stream_id = f"TestAccount:{account.id}"
        checkpoints = DynamoDBCheckpointStore(store.settings)
        name = f"park-{uuid.uuid4().hex[:8]}"

        def fail(change: Change) -> None:
            raise RuntimeError("poison")

        projection = Projection(name, fail, checkpoints, store, max_attempts=1)
        projection.handle([Change.stored(e) for e in store.load(account.id, "TestAccount")])
        assert list(checkpoints.parked(name)) == [stream_id]
        applied: list[int] = []
        Projection(name, lambda c: applied.append(c.event.version), checkpoints, store).replay_parked()
        assert applied == [1, 2, 3] and checkpoints.parked(name) == {}

    @pytest.mark.parametrize("size", SIZES)
    def test_lambda_handler(self, store: DynamoDBEventStore, size: int) -> None:
        """A Lambda batch holding a long stream and a short one: both applied, no ValidationException."""
        long_account, short = saved_account(store, size), saved_account(store, 60)
        payload = lambda_payload(
            [*store.load(long_account.id, "TestAccount"), *store.load(short.id, "TestAccount")],
            settings=store.settings,
        )
        seen: list[str] = []
        checkpoints = DynamoDBCheckpointStore(store.settings)
        handler = lambda_handler(Projection(f"l-{uuid.uuid4().hex[:6]}", lambda c: seen.append(c.event.aggregate_id),
                                            checkpoints, store))  # fmt: skip
        assert handler(payload, None) == {"batchItemFailures": []}
        assert seen.count(long_account.id) == 3 and seen.count(short.id) == 3


@attrs.define
class Mirror:
    """A process manager: for each upstream credit, credit a target account with a long id too."""

    size: int
    targets: list[str] = attrs.field(factory=list)

    def __call__(self, change: Change, unit: UnitOfWork) -> None:
        if change.event.version != 2:
            return
        target = Account.open(long_id(self.size))
        self.targets.append(target.id)
        unit.add(target)


class TestProcessManagers:
    @pytest.mark.parametrize("size", SIZES)
    def test_upstream_and_target_streams_of_any_legal_length(self, store: DynamoDBEventStore, size: int) -> None:
        """Tracking of a long upstream id commits with a long target stream; a redelivery changes nothing."""
        upstream = saved_account(store, size)
        changes = [Change.stored(e) for e in store.load(upstream.id, "TestAccount")]
        policy = Mirror(size)
        name = f"mirror-{uuid.uuid4().hex[:8]}"
        outcome = process_manager(name, policy, store).handle(changes)
        assert (outcome.applied, outcome.failed) == (3, ())
        (target,) = policy.targets
        assert len(f"TestAccount:{target}".encode()) == size and store.stream_version(target, "TestAccount") == 1
        again = process_manager(name, policy, store).handle(changes)
        assert again.applied == 0 and store.stream_version(target, "TestAccount") == 1


@pytest.mark.usefixtures("balances_table")
class TestExactlyOnceReadModels:
    @pytest.mark.parametrize("size", SIZES)
    def test_effects_commit_with_a_long_stream_ids_checkpoint(self, store: DynamoDBEventStore, size: int) -> None:
        """A read-model write and the checkpoint of a long stream id commit together, once."""
        account = saved_account(store, size)
        checkpoints = DynamoDBCheckpointStore(store.settings)
        name = f"eo-{uuid.uuid4().hex[:8]}"
        key = uuid.uuid4().hex

        def write(change: Change) -> PutItem:
            return PutItem(Balance(f"{key}-{change.event.version}", amount=change.event.version))

        changes = [Change.stored(e) for e in store.load(account.id, "TestAccount")]
        first = Projection(name, write, checkpoints, store, effects=checkpoints).handle(changes)
        again = Projection(name, write, checkpoints, store, effects=checkpoints).handle(changes)
        assert (first.applied, again.applied, again.skipped) == (3, 0, 3)
        assert Balance.get(f"{key}-3").amount == 3
        stream_id = f"TestAccount:{account.id}"
        assert checkpoints.load_progress(name, [stream_id])[stream_id].version == 3

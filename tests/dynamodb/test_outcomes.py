"""What an append reports when it cannot tell at first whether it wrote: never a known outcome it does not know.

DynamoDB Local never loses a response; a botocore ``after-call`` hook that raises
``ReadTimeoutError`` stands for a response lost after DynamoDB applied the request (the write
happened, the client never heard), and injected error responses stand for throttled reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from botocore.exceptions import ReadTimeoutError

from dynamo_es import ConcurrencyError, DynamoDBEventStore, EventStoreSettings, NewEvent, event
from dynamo_es.exceptions import OutcomeUnknownError, TransientStoreError

pytestmark = pytest.mark.ddblocal


@event(name="OutcomeNoted")
@attrs.frozen
class Noted:
    n: int


@pytest.fixture
def store(events_table: EventStoreSettings) -> DynamoDBEventStore:
    return DynamoDBEventStore(attrs.evolve(events_table, retry_base_delay_ms=1, max_transient_retries=2))


@pytest.fixture
def lose_every_response(store: DynamoDBEventStore) -> Iterator[None]:
    """Every TransactWriteItems response is lost after DynamoDB applied the request."""

    def lose(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="http://lost")

    events = store.client.meta.events
    events.register("after-call.dynamodb.TransactWriteItems", lose)
    yield
    events.unregister("after-call.dynamodb.TransactWriteItems", lose)


def versions(store: DynamoDBEventStore, aggregate_id: str) -> list[int]:
    return [e.version for e in store.load(aggregate_id, "Note")]


class TestLostResponses:
    @pytest.mark.usefixtures("lose_every_response")
    def test_a_write_whose_every_response_was_lost_is_reported_as_written(
        self, store: DynamoDBEventStore, aggregate_id: str
    ) -> None:
        """The slots are read back: they hold our events, so the append succeeded, at the right version."""
        result = store.append(aggregate_id, "Note", [Noted(n) for n in range(3)], 0)
        assert result.success and result.new_version == 3 and not result.outcome_unknown
        assert versions(store, aggregate_id) == [1, 2, 3]

    @pytest.mark.usefixtures("lose_every_response")
    def test_when_reading_back_fails_too_the_outcome_is_unknown_and_a_retry_is_safe(
        self, store: DynamoDBEventStore, aggregate_id: str, inject: Callable[..., None]
    ) -> None:
        """No false "nothing written": OutcomeUnknownError names the versions; the same append again writes once."""
        envelopes = [NewEvent(Noted(n)) for n in range(2)]
        inject(store, "Query", "ProvisionedThroughputExceededException", times=100)
        result = store.append(aggregate_id, "Note", envelopes, 0)
        assert not result.success and result.outcome_unknown and not result.conflict
        assert isinstance(result.error, OutcomeUnknownError) and result.error.versions == (1, 2)
        assert "retrying this same append is safe" in str(result.error)
        with pytest.raises(OutcomeUnknownError):
            result.raise_for_failure()

    def test_retrying_an_unknown_outcome_with_the_same_envelopes_writes_once(
        self, store: DynamoDBEventStore, aggregate_id: str
    ) -> None:
        """The same envelopes appended again after an unknown outcome (here: it was written) succeed, no duplicates."""
        envelopes = [NewEvent(Noted(n)) for n in range(2)]
        store.append(aggregate_id, "Note", envelopes, 0).raise_for_failure()
        again = DynamoDBEventStore(store.settings).append(aggregate_id, "Note", envelopes, 0)
        assert again.success and again.new_version == 2 and versions(store, aggregate_id) == [1, 2]

    def test_contention_that_never_wrote_says_nothing_is_stored(
        self, store: DynamoDBEventStore, aggregate_id: str, inject: Callable[..., None]
    ) -> None:
        """Transient refusals to the end, slots read back empty: TransientStoreError, outcome known."""
        inject(store, "TransactWriteItems", "TransactionCanceledException", reasons=["TransactionConflict"], times=9)
        result = store.append(aggregate_id, "Note", [Noted(1)], 0)
        assert isinstance(result.error, TransientStoreError) and not isinstance(result.error, OutcomeUnknownError)
        assert not result.outcome_unknown and versions(store, aggregate_id) == []


class TestMultiTransactionAppends:
    def test_a_conflict_in_a_later_transaction_says_which_versions_were_stored(
        self, store: DynamoDBEventStore, aggregate_id: str
    ) -> None:
        """150 events after version 100 meet a squatter at version 220: 101-199 stay, and the error says so."""
        store.append(aggregate_id, "Note", [Noted(n) for n in range(100)], 0).raise_for_failure()
        store.client.put_item(  # a foreign item in slot 220 (another writer's, or a corrupt one)
            TableName=store.settings.events_table_name,
            Item={"pk": {"S": f"Note:{aggregate_id}"}, "sk": {"N": "220"}, "eventId": {"S": "squat"}},
        )
        outcome = DynamoDBEventStore(store.settings).append(aggregate_id, "Note", [Noted(n) for n in range(150)], 100)
        assert outcome.conflict and outcome.new_version == 199 and outcome.actual_version == 220
        with pytest.raises(ConcurrencyError) as caught:
            outcome.raise_for_failure()
        assert caught.value.written_version == 199 and "wrote versions 101-199" in str(caught.value)


class TestReads:
    def test_transient_read_failures_are_retried(
        self, store: DynamoDBEventStore, aggregate_id: str, inject: Callable[..., None]
    ) -> None:
        """A throttled or dropped Query is retried with the store's backoff; the load succeeds."""
        store.append(aggregate_id, "Note", [Noted(1)], 0).raise_for_failure()
        inject(store, "Query", "ProvisionedThroughputExceededException", times=2)
        assert versions(store, aggregate_id) == [1]

    def test_reads_that_keep_failing_end_in_a_named_error(
        self, store: DynamoDBEventStore, aggregate_id: str, inject: Callable[..., None]
    ) -> None:
        """After the retries, TransientStoreError(action="read") names the stream."""
        inject(store, "Query", "ProvisionedThroughputExceededException", times=50)
        with pytest.raises(TransientStoreError, match=f"Note:{aggregate_id}: gave up on read") as caught:
            store.load(aggregate_id, "Note")
        assert caught.value.action == "read"

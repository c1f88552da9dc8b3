"""The error hierarchy: one base, data as attributes, pickling."""

from __future__ import annotations

import pickle

import pytest

from dynamo_es import exceptions
from dynamo_es.exceptions import (
    ConcurrencyError,
    DynamoESError,
    EventTooLargeError,
    SerializationError,
    TransientStoreError,
    UnknownEventTypeError,
)

ERRORS = [
    ConcurrencyError("Account:1", 3, 5),
    EventTooLargeError("Account:1", 2, "Deposited", 500_000, 409_600),
    UnknownEventTypeError("no class", stream_id="Account:1", version=4, event_type="Gone"),
    TransientStoreError("Account:1", "TransactionConflict", 7),
    exceptions.AggregateNotFoundError("Account", "1"),
    exceptions.ConfigurationError("max_batch_size", "too big"),
    exceptions.DuplicateEventTypeError("Deposited", "a.Deposited", "b.Deposited"),
    exceptions.TableSchemaError("Events", "HASH pk (S)", "HASH id (S)"),
    ConcurrencyError("A:1", 0, 1, conflicts=(exceptions.Conflict("A:1", 0, 1), exceptions.Conflict("B:2", 3, None))),
    exceptions.TransactionTooLargeError(101, 5_000, max_items=100, max_bytes=4_000_000, streams=("A:1", "B:2")),
    exceptions.WriteConditionError("balances", "A:1", 4, 2),
]


class TestErrors:
    def test_every_error_derives_from_the_base(self) -> None:
        """Each exported exception class is a DynamoESError (Conflict is the one data type beside them)."""
        for name in set(exceptions.__all__) - {"Conflict"}:
            assert issubclass(getattr(exceptions, name), DynamoESError)
        assert not issubclass(exceptions.Conflict, BaseException)

    @pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
    def test_errors_survive_pickling_with_their_data(self, error: DynamoESError) -> None:
        """Pickled and unpickled errors keep message and attributes."""
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)

    def test_concurrency_error_carries_versions(self) -> None:
        """ConcurrencyError names the stream and both versions."""
        error = ConcurrencyError("Account:1", 3, 5)
        assert (error.stream_id, error.expected_version, error.actual_version) == (
            "Account:1",
            3,
            5,
        )
        assert "Account:1" in str(error) and "3" in str(error) and "5" in str(error)

    def test_concurrency_error_names_every_conflicting_stream(self) -> None:
        """A multi-stream conflict lists each stream with its expected and actual version."""
        conflicts = (exceptions.Conflict("A:1", 0, 1), exceptions.Conflict("B:2", 3, None))
        error = ConcurrencyError("A:1", 0, 1, conflicts=conflicts)
        assert error.conflicts == conflicts
        assert "A:1: expected version 0, actual version 1" in str(error)
        assert "B:2: expected version 3, actual version unknown" in str(error)

    def test_transaction_too_large_says_how_much(self) -> None:
        """TransactionTooLargeError gives the items and bytes with their limits, and the streams."""
        error = exceptions.TransactionTooLargeError(
            130, 5_100_000, max_items=100, max_bytes=4_000_000, streams=tuple(f"A:{n}" for n in range(7))
        )
        assert "130 items (limit 100)" in str(error) and "5,100,000 bytes (limit 4,000,000)" in str(error)
        assert "A:0" in str(error) and "and 2 more" in str(error) and "nothing was written" in str(error)

    def test_unknown_type_is_a_serialization_error_naming_the_event(self) -> None:
        """UnknownEventTypeError is a SerializationError that names stream, version and type."""
        error = ERRORS[2]
        assert isinstance(error, SerializationError)
        assert all(part in str(error) for part in ("Account:1", "4", "Gone"))

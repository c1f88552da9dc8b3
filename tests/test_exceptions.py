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
]


class TestErrors:
    def test_every_error_derives_from_the_base(self) -> None:
        """Each exported exception class is a DynamoESError."""
        for name in exceptions.__all__:
            assert issubclass(getattr(exceptions, name), DynamoESError)

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

    def test_unknown_type_is_a_serialization_error_naming_the_event(self) -> None:
        """UnknownEventTypeError is a SerializationError that names stream, version and type."""
        error = ERRORS[2]
        assert isinstance(error, SerializationError)
        assert all(part in str(error) for part in ("Account:1", "4", "Gone"))

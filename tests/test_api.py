"""The public API is flat, sorted and exactly what is documented."""

from __future__ import annotations

from types import ModuleType

import dynamo_es
import dynamo_es.aio
import dynamo_es.dynamodb
import dynamo_es.dynamodb.aio
import dynamo_es.exceptions
import dynamo_es.memory
import dynamo_es.projections
import dynamo_es.testing


class TestPublicAPI:
    def test_all_is_sorted_and_exact(self) -> None:
        """``__all__`` lists every public name of the package, sorted, and nothing else."""
        public = {
            name: value
            for name, value in vars(dynamo_es).items()
            if not name.startswith(("_", "@"))  # "@": pytest's assertion rewriting
        }
        modules = {name for name, value in public.items() if isinstance(value, ModuleType)}
        assert modules <= {
            "aio",
            "app",
            "cli",
            "core",
            "domain",
            "dynamodb",
            "exceptions",
            "memory",
            "observability",
            "ports",
            "privacy",
            "projections",
            "settings",
            "testing",
        }
        assert sorted(dynamo_es.__all__) == dynamo_es.__all__
        assert set(dynamo_es.__all__) == set(public) - modules

    def test_exported_members_come_from_the_package(self) -> None:
        """Every exported name resolves, and its home is a dynamo_es module."""
        for name in dynamo_es.__all__:
            member = getattr(dynamo_es, name)
            assert getattr(member, "__module__", "").startswith("dynamo_es"), name

    def test_testing_exports(self) -> None:
        """The testing module exports the launcher, the script helper, the contract suites and the Lambda payloads."""
        assert dynamo_es.testing.__all__ == [
            "ArchivableStoreContract",
            "AsyncEventStoreContract",
            "DeletableStoreContract",
            "DynamoDBLocal",
            "DynamoDBLocalError",
            "EventStoreContract",
            "FaultProxy",
            "KeyStoreContract",
            "configured_or_local",
            "find_dynamodb_local",
            "lambda_payload",
        ]

    def test_the_async_front_door_is_sorted_and_exact(self) -> None:
        """dynamo_es.aio exports the async repository, unit of work, outbox, projection, protocols, memory store."""
        assert dynamo_es.aio.__all__ == [
            "AsyncArchivableStore",
            "AsyncChangeFeed",
            "AsyncCheckpointStore",
            "AsyncDeletableStore",
            "AsyncEventStore",
            "AsyncInMemoryEventStore",
            "AsyncOutboxDispatcher",
            "AsyncOutboxStore",
            "AsyncPolicy",
            "AsyncProjection",
            "AsyncReplayableStore",
            "AsyncRepository",
            "AsyncSnapshotStore",
            "AsyncTrackingStore",
            "AsyncUnitCommits",
            "AsyncUnitOfWork",
            "async_process_manager",
        ]
        public = {name for name in vars(dynamo_es.aio) if not name.startswith(("_", "@"))}
        assert public == set(dynamo_es.aio.__all__)
        assert dynamo_es.dynamodb.aio.__all__ == [
            "AsyncDynamoDBCheckpointStore",
            "AsyncDynamoDBEventStore",
            "AsyncDynamoDBSnapshotStore",
            "AsyncSubscription",
        ]

    def test_front_door_keeps_only_the_everyday_errors(self) -> None:
        """The top level exports the base error and the three users catch; the rest stay in exceptions."""
        errors = {name for name in dynamo_es.__all__ if name.endswith("Error")}
        assert errors == {"AggregateNotFoundError", "ConcurrencyError", "DynamoESError", "EventStoreError"}
        assert "DynamoDBLocalError" in dynamo_es.exceptions.__all__

    def test_adapters_export_their_stores(self) -> None:
        """Each adapter package exports its stores; the top level re-exports the same objects."""
        assert dynamo_es.memory.InMemoryEventStore is dynamo_es.InMemoryEventStore
        assert dynamo_es.dynamodb.DynamoDBEventStore is dynamo_es.DynamoDBEventStore
        assert dynamo_es.projections.Projection is dynamo_es.Projection

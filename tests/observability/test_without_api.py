"""Without the OpenTelemetry SDK, or the API, installed: dynamo-es works as before and records nothing (own process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from dynamo_es.testing import DynamoDBLocal

SCRIPT = textwrap.dedent(
    """
    import sys
    missing = sys.argv[2]  # "opentelemetry" (no otel extra) or "opentelemetry.sdk" (the API alone)
    sys.modules[missing] = None  # as if it were not installed: its import fails

    import attrs
    from dynamo_es import (
        Change, DynamoDBEventStore, EventMetadata, EventStoreSettings, InMemoryCheckpointStore,
        InMemoryEventStore, OutboxDispatcher, Projection, event,
    )
    from dynamo_es.observability import available, current_traceparent
    from dynamo_es.observability import tracing, operations

    @event(name="SilentThing")
    @attrs.frozen
    class Thing:
        n: int

    assert available is (missing != "opentelemetry") and current_traceparent() is None
    memory = InMemoryEventStore()
    dynamodb = DynamoDBEventStore(EventStoreSettings(endpoint_url=sys.argv[1], region="us-east-1",
        aws_access_key_id="local", aws_secret_access_key="local", events_table_name="Silent"))
    for store in (memory, dynamodb):
        store.append("t-1", "Thing", [Thing(1), Thing(2)], 0)
        assert store.append("t-1", "Thing", [Thing(3)], 0).conflict
        events = store.load("t-1", "Thing")
        assert [e.metadata for e in events] == [EventMetadata()] * 2, events
        seen = []
        Projection("things", seen.append, InMemoryCheckpointStore(), store).handle([Change.stored(e) for e in events])
        assert len(seen) == 2
    assert OutboxDispatcher(memory, lambda stored: None).dispatch_once().published == 2
    # every span is the one shared no-op context: nothing is made per call
    assert operations.appending("t", 0) is tracing.operation("x", None, {}) is tracing.batch("p", 1)
    loaded = sorted(name for name, module in sys.modules.items() if name.startswith(missing) and module)
    assert not loaded, loaded
    print("silent")
    """
)


@pytest.mark.ddblocal
@pytest.mark.parametrize("missing", ["opentelemetry", "opentelemetry.sdk"], ids=["no API", "API without SDK"])
def test_silent_and_no_span_made(dynamodb_local: DynamoDBLocal, missing: str) -> None:
    """Appends, loads, a projection, the outbox work on both stores: no traceparent, no span object, no import."""
    done = subprocess.run(  # noqa: S603 (our own script, in a clean interpreter)
        [sys.executable, "-c", SCRIPT, dynamodb_local.endpoint_url, missing],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "silent"

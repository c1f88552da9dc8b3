"""Forgetting on every read path (stream images, Lambda, the outbox, subscriptions) and the SubjectForgotten change."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import attrs
import pytest

from dynamo_es import (
    Change,
    DynamoDBEventStore,
    EventSerializer,
    EventStoreSettings,
    InMemoryCheckpointStore,
    InMemoryEventStore,
    OutboxDispatcher,
    Projection,
    StoredEvent,
    SubjectForgotten,
)
from dynamo_es.domain.personal import FORGOTTEN
from dynamo_es.dynamodb import lambda_handler

from ..dynamodb.conftest import capture_records, lambda_record
from .test_shredder import AGE, MARKER, Registered, Upgraded, shredder


@attrs.define
class Emails:
    """A read model of customers' emails that drops a customer once told it was forgotten."""

    emails: dict[str, str] = attrs.field(factory=dict)

    def __call__(self, change: Change) -> None:
        event = change.event.event
        if isinstance(event, Registered):
            self.emails[event.customer_id] = event.email
        elif isinstance(event, SubjectForgotten):
            self.emails.pop(event.subject, None)


def register(store: Any, customer: str) -> None:
    store.append(customer, "PrivacyCustomer", [Registered(customer, MARKER, AGE), Upgraded("gold")], 0)


class TestAnnouncing:
    def test_forget_announces_once_to_the_store(self) -> None:
        """forget(announce_to=store) appends SubjectForgotten as version 1 of $Subject:{subject}, once."""
        sealing = shredder()
        store = InMemoryEventStore(serializer=EventSerializer(shredder=sealing))
        assert sealing.forget("c-1", announce_to=store)
        assert not sealing.forget("c-1", announce_to=store)
        assert [e.event for e in store.load("c-1", "$Subject")] == [SubjectForgotten("c-1")]

    def test_a_projection_drops_what_it_derived_when_told(self) -> None:
        """The read model holds the email, then the announcement removes it; other customers stay."""
        sealing = shredder()
        store = InMemoryEventStore(serializer=EventSerializer(shredder=sealing))
        register(store, "kept")
        register(store, "gone")
        model = Emails()
        projection = Projection("emails", model, InMemoryCheckpointStore(), store)
        projection.run(stop_when_idle=True)
        assert model.emails == {"kept": MARKER, "gone": MARKER}
        sealing.forget("gone", announce_to=store)
        projection.run(stop_when_idle=True)
        assert model.emails == {"kept": MARKER}


def test_the_outbox_publishes_placeholders_after_forget() -> None:
    """An event still undispatched when its subject is forgotten is published with the placeholders."""
    sealing = shredder()
    store = InMemoryEventStore(serializer=EventSerializer(shredder=sealing))
    register(store, "c-2")
    sealing.forget("c-2")
    published: list[StoredEvent] = []
    OutboxDispatcher(store, published.append).dispatch_once()
    first = published[0].event
    assert isinstance(first, Registered) and (first.email, first.age, first.plan) == (FORGOTTEN, 0, "free")


@pytest.mark.ddblocal
def test_stream_images_hold_ciphertext_and_lambda_reads_placeholders_once_forgotten(
    streams_table: EventStoreSettings,
) -> None:
    """The stream's NewImage holds no marker byte; a handler reads it in the clear, then as placeholders."""
    sealing = shredder()
    store = DynamoDBEventStore(streams_table, serializer=EventSerializer(shredder=sealing))
    customer = f"c-{uuid.uuid4().hex[:8]}"
    records = capture_records(store, lambda: register(store, customer))
    images = [base64.b64decode(r["dynamodb"]["NewImage"]["eventData"]["S"]) for r in records]
    assert len(images) == 2 and not any(MARKER.encode() in image for image in images)
    payload = {"Records": [lambda_record(record) for record in records]}
    before, after = Emails(), Emails()
    lambda_handler(Projection("lambda-emails", before, InMemoryCheckpointStore(), store))(payload, None)
    sealing.forget(customer)
    lambda_handler(Projection("lambda-emails-2", after, InMemoryCheckpointStore(), store))(payload, None)
    assert before.emails == {customer: MARKER} and after.emails == {customer: FORGOTTEN}

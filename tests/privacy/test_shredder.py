"""Crypto-shredding: personal fields stored sealed, read back in the clear, and as placeholders once forgotten."""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

import attrs
import pytest
from cattrs.gen import make_dict_unstructure_fn, override

from dynamo_es import (
    AggregateRoot,
    DynamoDBEventStore,
    EventSerializer,
    EventStore,
    InMemoryEventStore,
    Repository,
    applies,
    event,
    make_converter,
)
from dynamo_es.domain.personal import FORGOTTEN, personal, subject
from dynamo_es.exceptions import KeyManagementError, SerializationError, SubjectForgottenError
from dynamo_es.privacy import CryptoShredder, InMemoryKeyStore, LocalKeyWrapper

MARKER = "marker-7f3a9c@example.com"
"""A known plaintext: no stored byte may hold it."""
AGE = 918_273_645
"""The personal int, as distinctive: its digits must not be stored either."""


@event(name="PrivacyRegistered")
@attrs.frozen
class Registered:
    customer_id: str = subject()
    email: str = personal()
    age: int = personal(forgotten=0)
    plan: str = "free"


@event(name="PrivacyUpgraded")
@attrs.frozen
class Upgraded:
    plan: str


class Customer(AggregateRoot, aggregate_type="PrivacyCustomer"):
    def __init__(self, aggregate_id: str) -> None:
        super().__init__(aggregate_id)
        self.email = ""
        self.age = -1
        self.plan = ""

    @applies(Registered)
    def _registered(self, event: Registered) -> None:
        self.email, self.age, self.plan = event.email, event.age, event.plan

    @applies(Upgraded)
    def _upgraded(self, event: Upgraded) -> None:
        self.plan = event.plan


def shredder(keys: InMemoryKeyStore | None = None, **options: Any) -> CryptoShredder:
    return CryptoShredder(keys or InMemoryKeyStore(), LocalKeyWrapper(b"k" * 32), **options)


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.ddblocal)])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_store(kind: str, request: pytest.FixtureRequest, serializer: EventSerializer) -> EventStore:
    if kind == "memory":
        return InMemoryEventStore(serializer=serializer)
    return DynamoDBEventStore(request.getfixturevalue("events_table"), serializer=serializer)


def stored_payloads(store: EventStore, customer: str) -> list[bytes]:
    """The payload bytes as stored: the in-memory records, or a raw Scan of the DynamoDB table."""
    if isinstance(store, InMemoryEventStore):
        return [base64.b64decode(r.event_data) for r in store._records(customer, "PrivacyCustomer", 1, None)]
    pages = store.client.get_paginator("scan").paginate(TableName=store.settings.events_table_name)
    return [
        base64.b64decode(item["eventData"]["S"])
        for page in pages
        for item in page["Items"]
        if item["pk"]["S"] == f"PrivacyCustomer:{customer}"
    ]


def register(store: EventStore, customer: str, email: str = MARKER) -> None:
    store.append(customer, "PrivacyCustomer", [Registered(customer, email, AGE, "pro"), Upgraded("gold")], 0)


class TestSealing:
    def test_marked_fields_round_trip_and_are_never_stored_in_the_clear(
        self, kind: str, request: pytest.FixtureRequest
    ) -> None:
        """Load and Repository.get give the plaintext; the stored bytes hold no byte of the marked value."""
        store = make_store(kind, request, EventSerializer(shredder=shredder()))
        customer = f"c-{uuid.uuid4()}"
        register(store, customer)
        assert [e.event for e in store.load(customer, "PrivacyCustomer")] == [
            Registered(customer, MARKER, AGE, "pro"),
            Upgraded("gold"),
        ]
        assert vars(Repository(Customer, store).get(customer))["email"] == MARKER
        payloads = stored_payloads(store, customer)
        assert len(payloads) == 2
        assert not any(MARKER.encode() in payload or str(AGE).encode() in payload for payload in payloads)
        assert b'"plan":"pro"' in payloads[0] and customer.encode() in payloads[0]  # the rest stays readable

    def test_an_event_without_marks_is_stored_as_without_a_shredder(self) -> None:
        """A serializer with a shredder writes unmarked events byte for byte as one without."""
        plain, sealing = EventSerializer(), EventSerializer(shredder=shredder())
        envelope = InMemoryEventStore(serializer=plain)
        envelope.append("x", "PrivacyCustomer", [Upgraded("gold")], 0)
        record = envelope._records("x", "PrivacyCustomer", 1, None)[0]
        assert sealing.decode(record).event == Upgraded("gold")
        assert base64.b64decode(record.event_data) == b'{"plan":"gold"}'

    def test_a_reader_without_the_shredder_reads_personal_fields_as_forgotten(self) -> None:
        """A serializer with no keys (a CLI, another service) gets the placeholders, never the sealed form as text."""
        store = InMemoryEventStore(serializer=EventSerializer(shredder=shredder()))
        register(store, "c-1")
        records = store._records("c-1", "PrivacyCustomer", 1, None)
        plain = EventSerializer()
        expected = [Registered("c-1", FORGOTTEN, 0, "pro"), Upgraded("gold")]
        assert [plain.decode(record).event for record in records] == expected
        assert [event.event for event in plain.decode_all(records)] == expected
        assert plain.decode_events(records) == expected


class TestForgetting:
    def test_after_forget_the_marked_fields_read_as_placeholders(
        self, kind: str, request: pytest.FixtureRequest
    ) -> None:
        """Every read gives the placeholders; the other fields, events and subjects are unchanged."""
        shred = shredder()
        store = make_store(kind, request, EventSerializer(shredder=shred))
        forgotten, kept = f"c-{uuid.uuid4()}", f"c-{uuid.uuid4()}"
        register(store, forgotten)
        register(store, kept)
        assert shred.forget(forgotten) is True
        assert [e.event for e in store.load(forgotten, "PrivacyCustomer")] == [
            Registered(forgotten, FORGOTTEN, 0, "pro"),
            Upgraded("gold"),
        ]
        customer = Repository(Customer, store).get(forgotten)
        assert (customer.email, customer.age, customer.plan, customer.version) == (FORGOTTEN, 0, "gold", 2)
        assert store.load(kept, "PrivacyCustomer")[0].event == Registered(kept, MARKER, AGE, "pro")

    def test_forgetting_is_idempotent(self) -> None:
        """A second forget changes nothing and says so."""
        shred = shredder()
        store = InMemoryEventStore(serializer=EventSerializer(shredder=shred))
        register(store, "c-1")
        assert shred.forget("c-1") is True and shred.forget("c-1") is False
        assert store.load("c-1", "PrivacyCustomer")[0].event.email == FORGOTTEN

    def test_an_append_for_a_forgotten_subject_is_refused_and_writes_nothing(
        self, kind: str, request: pytest.FixtureRequest
    ) -> None:
        """SubjectForgottenError names the subject; the stream keeps its version."""
        shred = shredder()
        store = make_store(kind, request, EventSerializer(shredder=shred))
        customer = f"c-{uuid.uuid4()}"
        register(store, customer)
        shred.forget(customer)
        with pytest.raises(SubjectForgottenError) as caught:
            store.append(customer, "PrivacyCustomer", [Upgraded("x"), Registered(customer, "again", 1)], 2)
        error = caught.value
        assert (error.subject, error.stream_id, error.version) == (customer, f"PrivacyCustomer:{customer}", 4)
        assert store.stream_version(customer, "PrivacyCustomer") == 2

    def test_another_process_forgetting_takes_effect_when_the_cached_key_expires(self) -> None:
        """Keys are cached for cache_seconds: a forget by another shredder on the same keys shows after that."""
        keys, now = InMemoryKeyStore(), [0.0]
        reader, other = shredder(keys, clock=lambda: now[0], cache_seconds=60), shredder(keys)
        store = InMemoryEventStore(serializer=EventSerializer(shredder=reader))
        register(store, "c-1")
        assert store.load("c-1", "PrivacyCustomer")[0].event.email == MARKER
        other.forget("c-1")
        now[0] = 61.0
        assert store.load("c-1", "PrivacyCustomer")[0].event.email == FORGOTTEN


class TestKeys:
    def test_the_key_cache_is_bounded(self) -> None:
        """With cache_size=2, reading five subjects keeps at most two unwrapped keys."""
        shred = shredder(cache_size=2)
        store = InMemoryEventStore(serializer=EventSerializer(shredder=shred))
        for n in range(5):
            register(store, f"c-{n}")
            store.load(f"c-{n}", "PrivacyCustomer")
            assert shred.cached_subjects <= 2
        assert [store.load(f"c-{n}", "PrivacyCustomer")[0].event.email for n in range(5)] == [MARKER] * 5

    def test_a_value_moved_to_another_field_or_subject_or_tampered_is_a_named_error(self) -> None:
        """Swapped fields, another subject's name on it, a flipped byte: SerializationError with stream and version."""
        store = InMemoryEventStore(serializer=EventSerializer(shredder=shredder()))
        register(store, "c-1")
        register(store, "c-2")
        record = store._records("c-1", "PrivacyCustomer", 1, None)[0]
        document = json.loads(base64.b64decode(record.event_data))
        swapped = {**document, "email": document["age"], "age": document["email"]}
        renamed = {**document, "email": {**document["email"], "subject": "c-2"}}
        box = bytearray(base64.b64decode(document["email"]["$sealed"]))
        box[-1] ^= 1
        flipped = {**document, "email": {**document["email"], "$sealed": base64.b64encode(bytes(box)).decode()}}
        for changed in (swapped, renamed, flipped):
            bad = attrs.evolve(record, event_data=base64.b64encode(json.dumps(changed).encode()).decode())
            with pytest.raises(SerializationError, match="does not open") as caught:
                store.serializer.decode(bad)
            assert (caught.value.stream_id, caught.value.version) == ("PrivacyCustomer:c-1", 1)

    def test_a_wrong_wrapping_key_is_a_key_management_error(self) -> None:
        """Keys wrapped by one key-encryption key do not unwrap with another; the error keeps the cause."""
        keys = InMemoryKeyStore()
        InMemoryEventStore(serializer=EventSerializer(shredder=shredder(keys))).append(
            "c-1", "PrivacyCustomer", [Registered("c-1", MARKER, 1)], 0
        )
        other = CryptoShredder(keys, LocalKeyWrapper(os.urandom(32)))
        with pytest.raises(KeyManagementError) as caught:
            other.open(Registered, {"customer_id": "c-1", "email": {"$sealed": "AAAA", "subject": "c-1"}})
        assert caught.value.subject == "c-1" and caught.value.__cause__ is not None

    def test_a_local_wrapping_key_has_32_bytes(self) -> None:
        """AES-256: another length is refused at once."""
        with pytest.raises(KeyManagementError, match="32 bytes"):
            LocalKeyWrapper(b"short")

    def test_a_forget_during_a_key_fetch_wins(self) -> None:
        """A read that fetched the key just before forget() does not put it back in the cache."""
        keys = RacingKeys()
        shred = shredder(keys)
        store = InMemoryEventStore(serializer=EventSerializer(shredder=shred))
        register(store, "c-1")
        reader_shredder = shredder(keys)
        reader = InMemoryEventStore(serializer=EventSerializer(shredder=reader_shredder))
        reader._streams = store._streams
        keys.forget_while_fetching = reader_shredder  # another thread forgets while this read holds the key
        reader.load("c-1", "PrivacyCustomer")
        assert reader.load("c-1", "PrivacyCustomer")[0].event.email == FORGOTTEN
        with pytest.raises(SubjectForgottenError):
            reader.append("c-1", "PrivacyCustomer", [Registered("c-1", "again", 1)], 2)


class RacingKeys(InMemoryKeyStore):
    """An in-memory key store whose next fetch is overtaken by a forget (the race, at the store's boundary)."""

    forget_while_fetching: CryptoShredder | None = None

    def wrapped_key(self, subject: str) -> bytes | None:
        wrapped = super().wrapped_key(subject)
        shredder, self.forget_while_fetching = self.forget_while_fetching, None
        if shredder is not None:
            shredder.forget(subject)
        return wrapped


class TestWriteChecks:
    def test_an_unmarked_field_shaped_like_a_sealed_value_is_refused(self) -> None:
        """A dict that reads could not tell from a sealed value is refused at append, naming the event."""

        @event(name="PrivacyOddNote")
        @attrs.frozen
        class OddNote:
            note: dict[str, str]

        store = InMemoryEventStore(serializer=EventSerializer(shredder=shredder()))
        with pytest.raises(SerializationError, match="shaped like a sealed value"):
            store.append("c-1", "PrivacyCustomer", [OddNote({"$sealed": "x", "subject": "y"})], 0)
        assert store.stream_version("c-1", "PrivacyCustomer") == 0

    def test_a_personal_field_the_converter_renames_is_refused(self) -> None:
        """A rename would leave the value in the clear under another key: refused, nothing written."""
        serializer = EventSerializer(converter=make_converter(), shredder=shredder())  # its own: the hook stays here
        hook = make_dict_unstructure_fn(Registered, serializer.converter, email=override(rename="mail"))
        serializer.converter.register_unstructure_hook(Registered, hook)
        store = InMemoryEventStore(serializer=serializer)
        with pytest.raises(SerializationError, match="would not be sealed"):
            store.append("c-1", "PrivacyCustomer", [Registered("c-1", MARKER, 1)], 0)
        assert store.stream_version("c-1", "PrivacyCustomer") == 0

    def test_not_a_number_in_a_personal_field_is_refused_as_elsewhere(self) -> None:
        """JSON cannot carry NaN back: refused in a sealed field as in a clear one."""

        @event(name="PrivacyMeasured")
        @attrs.frozen
        class Measured:
            who: str = subject()
            weight: float = personal(forgotten=0.0)

        store = InMemoryEventStore(serializer=EventSerializer(shredder=shredder()))
        with pytest.raises(SerializationError):
            store.append("c-1", "PrivacyCustomer", [Measured("c-1", float("nan"))], 0)

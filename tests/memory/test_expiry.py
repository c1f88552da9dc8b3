"""The in-memory store's temporary streams: the same expiry rules as on DynamoDB."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from dynamo_es import EventSerializer, InMemoryEventStore, StreamAppend
from dynamo_es.exceptions import ConfigurationError, StreamExpiredError
from dynamo_es.testing._contract_events import Noted, contract_registry


def temporary_store() -> InMemoryEventStore:
    return InMemoryEventStore(EventSerializer(registry=contract_registry), expire_after={"Cart": timedelta(hours=2)})


def test_appends_and_commits_carry_version_one_s_expiry() -> None:
    """A later append and a commit stamp the first event's expiry; other types stay without one."""
    store = temporary_store()
    store.append("c-1", "Cart", [Noted("a")], 0).raise_for_failure()
    store.append("c-1", "Cart", [Noted("b")], 1).raise_for_failure()
    store.append_many([StreamAppend("c-1", "Cart", [Noted("c")], 2)])
    store.append("n-1", "Note", [Noted("x")], 0).raise_for_failure()
    expiries = {record.expires_at for record in store._streams["Cart:c-1"]}
    (expiry,) = expiries
    assert expiry is not None and 7190 <= expiry - time.time() <= 7200
    assert store._streams["Note:n-1"][0].expires_at is None


def test_past_its_expiry_the_stream_reads_as_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three hours later (the clock moved on): load and append raise StreamExpiredError; another type loads."""
    store = temporary_store()
    store.append("c-2", "Cart", [Noted("a")], 0).raise_for_failure()
    store.append("n-2", "Note", [Noted("x")], 0).raise_for_failure()
    later = time.time() + 3 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(StreamExpiredError):
        store.load("c-2", "Cart")
    with pytest.raises(StreamExpiredError):
        store.append("c-2", "Cart", [Noted("b")], 1)
    assert len(store.load("n-2", "Note")) == 1


def test_a_lifetime_must_be_positive() -> None:
    """expire_after={"Cart": timedelta(0)} is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="expire_after"):
        InMemoryEventStore(expire_after={"Cart": timedelta(0)})

"""Pausing the cyclic collector: nested pauses, and no pause that lasts for good."""

from __future__ import annotations

import gc

import pytest

from dynamo_es.core import gc as pausing


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nested_pauses_keep_the_collector_off_until_the_last_ends() -> None:
    """The collector is off while any pause is held and back on after the last one."""
    assert gc.isenabled()
    with pausing.collection_paused():
        with pausing.collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_still_collect_every_longest_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pauses that overlap for longer than LONGEST_PAUSE run a full collection as the next one begins."""
    collections: list[int] = []
    monkeypatch.setattr(pausing.gc, "collect", lambda *args: collections.append(1) or 0)
    clock = Clock()
    pause = pausing._Pause(clock)
    pause.enter()
    clock.now = 1.0
    pause.enter()  # within the longest pause: no collection
    assert collections == []
    clock.now = 1.0 + pausing.LONGEST_PAUSE + 0.5
    pause.enter()
    assert collections == [1]
    pause.enter()  # the clock restarted at that collection
    assert collections == [1]
    for _ in range(4):
        pause.leave()
    assert gc.isenabled()

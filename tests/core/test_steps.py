"""Runner steps: one generator of port calls, run by a sync runner and by an async one."""

from __future__ import annotations

import asyncio
import contextvars
import time

import pytest

from dynamo_es.core.steps import Concurrently, Sleep, Steps, Use, run_steps, run_steps_async


class Ledger:
    """Ports that record what they were asked; ``fail`` raises."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def note(self, text: str) -> str:
        self.calls.append(text)
        return text.upper()

    async def note_later(self, text: str) -> str:
        await asyncio.sleep(0)
        return self.note(text)

    def fail(self) -> None:
        raise KeyError("port failed")


def recovering(ledger: Ledger, note: object) -> Steps[list[str]]:
    """Calls ``note`` twice around a failing port whose error it handles."""
    first = yield Use(note, "a")
    try:
        yield Use(ledger.fail)
    except KeyError:
        handled = "handled"
    second = yield Use(note, "b")
    return [first, handled, second]


def saving_on_error(ledger: Ledger, wait: object) -> Steps[None]:
    """Waits on ``wait``; if anything but closing interrupts it, records "saved" first."""
    try:
        yield Use(wait)
    except GeneratorExit:
        raise
    except BaseException:
        yield Use(ledger.note, "saved")
        raise


class TestRunners:
    def test_the_sync_runner_calls_ports_and_throws_their_errors_where_they_were_called(self) -> None:
        """A port's error is raised inside the steps, which may handle it and go on."""
        ledger = Ledger()
        assert run_steps(recovering(ledger, ledger.note)) == ["A", "handled", "B"]
        assert ledger.calls == ["a", "b"]

    def test_the_async_runner_awaits_async_ports_and_calls_sync_ones(self) -> None:
        """The same steps with an async port, then a sync one: the same result."""
        ledger = Ledger()
        assert asyncio.run(run_steps_async(recovering(ledger, ledger.note_later))) == ["A", "handled", "B"]
        assert asyncio.run(run_steps_async(recovering(ledger, ledger.note))) == ["A", "handled", "B"]

    def test_a_cancelled_async_run_lets_the_steps_save_then_is_cancelled(self) -> None:
        """Cancelled while a port is awaited: the steps' error handling runs its step, the task ends cancelled."""
        ledger = Ledger()

        async def scenario() -> None:
            task = asyncio.create_task(run_steps_async(saving_on_error(ledger, asyncio.Event().wait)))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(scenario())
        assert ledger.calls == ["saved"]


def waiting(ledger: Ledger, name: str, seconds: float, *, fail: bool = False) -> Steps[str]:
    """Sleeps ``seconds`` (a port call), records ``name`` as it ends, and returns it (or raises)."""
    yield Sleep(seconds)
    yield Use(ledger.note, name)
    if fail:
        raise ValueError(name)
    return name


class TestConcurrently:
    def test_the_sync_runner_runs_them_at_once_and_returns_results_in_order(self) -> None:
        """Three 0.2 s waits take about 0.2 s, not 0.6; the results keep the order given, whoever ends first."""
        ledger = Ledger()

        def steps() -> Steps[list[str]]:
            return (
                yield Concurrently(
                    [waiting(ledger, "slow", 0.2), waiting(ledger, "quick", 0.01), waiting(ledger, "mid", 0.1)]
                )
            )

        began = time.perf_counter()
        assert run_steps(steps()) == ["slow", "quick", "mid"]
        assert time.perf_counter() - began < 0.5
        assert ledger.calls.index("quick") < ledger.calls.index("slow")

    def test_the_async_runner_runs_them_as_tasks(self) -> None:
        """The same on the loop: concurrent tasks, results in order."""
        ledger = Ledger()

        def steps() -> Steps[list[str]]:
            return (yield Concurrently([waiting(ledger, "slow", 0.2), waiting(ledger, "quick", 0.01)]))

        began = time.perf_counter()
        assert asyncio.run(run_steps_async(steps())) == ["slow", "quick"]
        assert time.perf_counter() - began < 0.35

    def test_an_error_is_raised_once_every_one_has_ended_in_a_thread(self) -> None:
        """The sync runner waits for the others before raising the first error: nothing is left running."""
        ledger = Ledger()

        def steps() -> Steps[list[str]]:
            return (yield Concurrently([waiting(ledger, "bad", 0.0, fail=True), waiting(ledger, "late", 0.2)]))

        with pytest.raises(ValueError, match="bad"):
            run_steps(steps())
        assert ledger.calls == ["bad", "late"]

    def test_an_async_error_cancels_the_others(self) -> None:
        """On the loop an error cancels the other tasks (they never finish), then is raised."""
        ledger = Ledger()

        def steps() -> Steps[list[str]]:
            return (yield Concurrently([waiting(ledger, "bad", 0.0, fail=True), waiting(ledger, "late", 0.2)]))

        async def scenario() -> None:
            with pytest.raises(ValueError, match="bad"):
                await run_steps_async(steps())
            await asyncio.sleep(0.3)

        asyncio.run(scenario())
        assert ledger.calls == ["bad"]

    def test_none_is_an_empty_list(self) -> None:
        """No generators, no threads: the result is []."""

        def steps() -> Steps[list[str]]:
            return (yield Concurrently([]))

        assert run_steps(steps()) == []


CURRENT: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="none")


class TestContextInThreads:
    def test_concurrent_steps_see_the_callers_context(self) -> None:
        """Each thread of a Concurrently step runs in a copy of the caller's context (a current span stays current)."""

        def read() -> Steps[str]:
            value: str = yield Use(CURRENT.get)
            return value

        def both() -> Steps[list[str]]:
            return (yield Concurrently([read(), read(), read()]))

        token = CURRENT.set("the caller's")
        try:
            assert run_steps(both()) == ["the caller's"] * 3
        finally:
            CURRENT.reset(token)

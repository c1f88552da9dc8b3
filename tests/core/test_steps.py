"""Runner steps: one generator of port calls, run by a sync runner and by an async one."""

from __future__ import annotations

import asyncio

import pytest

from dynamo_es.core.steps import Steps, Use, run_steps, run_steps_async


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

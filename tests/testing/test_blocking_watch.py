"""The async contract's watch: a blocking call on the event loop's thread fails the test that made it."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from dynamo_es.dynamodb.wire.client import make_client
from dynamo_es.testing import DynamoDBLocal
from dynamo_es.testing._aio_contract import BlockingCallError, LoopThread


def run_and_stop(work: object) -> None:
    runner = LoopThread(watch_blocking=True)
    try:
        runner.run(work)  # type: ignore[arg-type]
    finally:
        runner.stop()


class TestBlockingWatch:
    def test_time_sleep_on_the_loop_is_caught(self) -> None:
        """time.sleep inside a coroutine: stop() raises BlockingCallError naming it and where it was called."""

        async def nap() -> None:
            time.sleep(0.001)

        with pytest.raises(BlockingCallError, match=r"1 blocking call\(s\) on the event loop:\ntime\.sleep") as caught:
            run_and_stop(nap())
        assert "in nap" in str(caught.value)

    def test_a_blocking_socket_on_the_loop_is_caught(self) -> None:
        """A blocking socket's connect on the loop is caught (asyncio's non-blocking ones are not)."""
        listener = socket.create_server(("127.0.0.1", 0))

        async def dial() -> None:
            with socket.create_connection(listener.getsockname(), timeout=5):
                pass

        with listener, pytest.raises(BlockingCallError, match=r"socket\.connect"):
            run_and_stop(dial())

    @pytest.mark.ddblocal
    def test_a_sync_botocore_client_on_the_loop_is_caught(self, dynamodb_local: DynamoDBLocal) -> None:
        """A sync client's request made on the loop (say, a sync store's table check) is caught."""
        client = make_client(dynamodb_local.settings())

        async def describe() -> None:
            client.list_tables()

        with pytest.raises(BlockingCallError, match=r"BaseClient\._make_api_call"):
            run_and_stop(describe())

    def test_awaiting_and_other_threads_are_fine(self) -> None:
        """asyncio.sleep, and time.sleep in a worker thread (asyncio.to_thread), are not blocking the loop."""

        async def polite() -> None:
            await asyncio.sleep(0.001)
            await asyncio.to_thread(time.sleep, 0.001)

        run_and_stop(polite())

    def test_the_watch_is_removed_with_its_loop(self) -> None:
        """After stop(), time.sleep is the original function again."""
        original = time.sleep
        LoopThread(watch_blocking=True).stop()
        assert time.sleep is original

"""aiobotocore clients with the same lean path as the sync ones (the ``async`` extra).

The store's requests are sent in DynamoDB's wire format and Query pages come back as the JSON
body, exactly as with `make_client()`; credentials, signing,
endpoints, retries and error parsing are aiobotocore's (botocore's, awaited).
"""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs
from aiobotocore.parsers import AioJSONParser, AioResponseParserFactory
from aiobotocore.session import AioSession

from ...exceptions import EventStoreError
from ...settings import EventStoreSettings
from ..flows.errors import count_client_retries
from .client import WIRE_OUTPUTS, WireJSONSerializer, client_options

__all__ = [
    "AsyncClientOwner",
    "AsyncEventClientOwner",
    "AsyncStreamClientOwner",
    "LazyAsyncClient",
    "open_async_client",
]


class _AioWireJSONParser(AioJSONParser):  # type: ignore[misc]  # aiobotocore is untyped
    async def _do_parse(self, response: dict[str, Any], shape: Any) -> dict[str, Any]:
        if shape is None or shape.name not in WIRE_OUTPUTS:
            parsed: dict[str, Any] = await super()._do_parse(response, shape)
            return parsed
        body = response["body"]
        document: dict[str, Any] = json.loads(body) if body else {}
        self._inject_response_metadata(document, response["headers"])
        return document


class _AioWireParserFactory(AioResponseParserFactory):  # type: ignore[misc]  # idem
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _AioWireJSONParser(**self._defaults)
        return super().create_parser(protocol_name)


async def open_async_client(settings: EventStoreSettings, service: str = "dynamodb") -> tuple[Any, Any]:
    """An open aiobotocore client for ``settings``, and the context to close it with (``await ctx.__aexit__``)."""
    session = AioSession()
    session.register_component("response_parser_factory", _AioWireParserFactory())
    context = session.create_client(service, **client_options(settings))
    client = await context.__aenter__()
    client._serializer = WireJSONSerializer()
    count_client_retries(client, settings.client_max_attempts)
    return client, context


@attrs.define
class LazyAsyncClient:
    """An aiobotocore client opened on first use (in the running loop), once, and closed on request."""

    settings: EventStoreSettings
    service: str = "dynamodb"
    _client: Any = attrs.field(default=None, init=False)
    _context: Any = attrs.field(default=None, init=False)
    _opening: asyncio.Lock | None = attrs.field(default=None, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)

    async def get(self) -> Any:
        """The open client.

        Raises:
            EventStoreError: it was opened in another event loop (and not closed there).
        """
        loop = asyncio.get_running_loop()
        if self._client is not None and self._loop is not loop:
            raise EventStoreError(
                "this async store's client was opened in another event loop: close() it in that loop, "
                "or use one store per event loop"
            )
        if self._client is None:
            self._opening = self._opening or asyncio.Lock()
            async with self._opening:
                if self._client is None:
                    self._client, self._context = await open_async_client(self.settings, self.service)
                    self._loop = loop
        return self._client

    async def close(self) -> None:
        """Close the client (its connection pool); the next use opens a new one."""
        if self._context is not None:
            context, self._context, self._client, self._loop = self._context, None, None, None
            self._opening = None
            await context.__aexit__(None, None, None)


class AsyncClientOwner:
    """The async context manager and ``close()`` of an async store whose client is ``self._client``."""

    __slots__ = ()
    _client: LazyAsyncClient

    async def __aenter__(self) -> Self:
        await self._client.get()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the client (its connection pool); the store reopens it when used again."""
        await self._client.close()


class AsyncEventClientOwner(AsyncClientOwner):
    """`AsyncClientOwner` for the event store (the sync one also lends its client and its PynamoDB connection)."""

    __slots__ = ()


class AsyncStreamClientOwner:
    """The async context manager and ``close()`` of a subscription whose client is ``self.client``.

    Entering starts the subscription; a failed start closes the client (no ``__aexit__`` follows
    a failed ``__aenter__``).
    """

    __slots__ = ()
    client: LazyAsyncClient

    if TYPE_CHECKING:

        async def start(self) -> Self:
            """Start the subscription (the subscription's own)."""

    async def __aenter__(self) -> Self:
        try:
            return await self.start()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the streams client."""
        await self.client.close()

"""botocore clients with a lean path: requests and pages of items go as DynamoDB's wire format.

botocore walks every request and response against the service's shape definitions, which for
a 100-item transaction or a page of 1,000 items costs more than the round trip to DynamoDB
Local. The store builds its requests in wire format already (from the model's codec), and its
decoder reads items in wire format, so for the operations named in `WIRE_INPUTS` and
`WIRE_OUTPUTS` these clients send the parameters as JSON and return the JSON body itself.
Everything else is botocore's own: credentials, region and endpoint resolution, signing, the
connection pool, retries, error parsing and event hooks.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

import attrs
import botocore.session
from botocore.config import Config
from botocore.parsers import JSONParser, ResponseParser, ResponseParserFactory
from botocore.serialize import JSONSerializer
from pynamodb.connection import Connection
from pynamodb.models import Model

from ...core.changes import Change, StreamPosition
from ...settings import EventStoreSettings
from ..flows.errors import count_client_retries
from .credentials import credentials_for

__all__ = [
    "WIRE_INPUTS",
    "WIRE_OUTPUTS",
    "ClientOwner",
    "EventClientOwner",
    "LazyClient",
    "StreamClientOwner",
    "WireJSONSerializer",
    "client_options",
    "make_client",
]

WIRE_OUTPUTS = frozenset({"QueryOutput", "ScanOutput", "GetRecordsOutput"})
"""Output shapes returned as the raw JSON body."""
WIRE_INPUTS = frozenset({"TransactWriteItemsInput", "PutItemInput", "QueryInput", "ScanInput", "GetRecordsInput"})
"""Input shapes sent as the parameters are (they hold only JSON types: no blobs, no timestamps)."""


class WireJSONSerializer(JSONSerializer):
    """botocore's JSON protocol serializer, except that `WIRE_INPUTS` are sent as given."""

    def _serialize(self, serialized: Any, value: Any, shape: Any, key: Any = None) -> None:
        if key is None and shape.name in WIRE_INPUTS:
            serialized.update(value)
            return
        super()._serialize(serialized, value, shape, key)  # type: ignore[misc]  # not in botocore-stubs


class _WireJSONParser(JSONParser):
    """botocore's JSON protocol parser, except that `WIRE_OUTPUTS` keep the wire format."""

    def _do_parse(self, response: dict[str, Any], shape: Any) -> dict[str, Any]:
        if shape is None or shape.name not in WIRE_OUTPUTS:
            parsed: dict[str, Any] = super()._do_parse(response, shape)  # type: ignore[misc]  # not in botocore-stubs
            return parsed
        body = response["body"]
        document: dict[str, Any] = json.loads(body) if body else {}
        self._inject_response_metadata(document, response["headers"])  # type: ignore[attr-defined]  # idem
        return document


class _WireParserFactory(ResponseParserFactory):
    def create_parser(self, protocol_name: str) -> ResponseParser:
        if protocol_name == "json":
            return _WireJSONParser(**self._defaults)  # type: ignore[attr-defined]  # idem
        parser: ResponseParser = super().create_parser(protocol_name)
        return parser


def client_options(settings: EventStoreSettings) -> dict[str, Any]:
    """``create_client`` options for ``settings``: region, endpoint, credentials, botocore's attempts, no validation."""
    access_key, secret = credentials_for(settings)
    return {
        "region_name": settings.region,
        "endpoint_url": settings.endpoint_url,
        "aws_access_key_id": access_key,
        "aws_secret_access_key": secret,
        "config": Config(
            retries={"mode": "standard", "total_max_attempts": settings.client_max_attempts}, parameter_validation=False
        ),
    }


_SESSION_LOCK = threading.Lock()
_SESSIONS: list[botocore.session.Session] = []


def _shared_session() -> botocore.session.Session:
    """One botocore session per process (call under `_SESSION_LOCK`: sessions are not thread-safe).

    A session loads the service models and endpoint rules once (about 200 ms); every client of
    the process shares them. Each client still gets the credentials of its own settings.
    """
    if not _SESSIONS:
        session = botocore.session.get_session()
        session.register_component("response_parser_factory", _WireParserFactory())
        _SESSIONS.append(session)
    return _SESSIONS[0]


def make_client(settings: EventStoreSettings, service: str = "dynamodb") -> Any:
    """A botocore client of ``service`` ("dynamodb" or "dynamodbstreams") for ``settings``.

    botocore retries throttling and connection errors itself (standard mode,
    ``client_max_attempts`` in all: four by default); the store's own retries and idempotency
    tokens sit above that. botocore's client-side
    parameter validation is off: every request is built from the model's codec, and DynamoDB
    validates it anyway (its errors are mapped like any other).
    """
    with _SESSION_LOCK:
        client = _shared_session().create_client(service, **client_options(settings))
    client._serializer = WireJSONSerializer()  # type: ignore[attr-defined]  # botocore has no public seam for it
    count_client_retries(client, settings.client_max_attempts)
    return client


@attrs.define
class LazyClient:
    """A botocore client made on first use, once; `close()` closes it (the next use makes a new one)."""

    settings: EventStoreSettings
    service: str = "dynamodb"
    _client: Any = attrs.field(default=None, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def get(self) -> Any:
        """The client."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = make_client(self.settings, self.service)
        return self._client

    def __getattr__(self, name: str) -> Any:
        """The client's own operations and attributes (``lazy.get_records(...)``), as botocore's."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.get(), name)

    def close(self) -> None:
        """Close the client (its connection pool)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()


class ClientOwner:
    """The context manager and ``close()`` of a store whose client is ``self._client``."""

    __slots__ = ()
    _client: LazyClient

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the client (its connection pool); the store reopens it when used again."""
        self._client.close()


class EventClientOwner(ClientOwner):
    """`ClientOwner` for the sync event store, which also lends its botocore client and PynamoDB connection."""

    __slots__ = ()

    if TYPE_CHECKING:
        _model: type[Model]

    @property
    def client(self) -> Any:
        """The botocore client the store's appends and reads go through; not a general-purpose client.

        For Query, Scan, GetRecords, PutItem and TransactWriteItems it sends the parameters as
        given (JSON types only: no bytes) and returns DynamoDB's JSON as sent (binary values stay
        base64 text); every other operation behaves as botocore's. Use ``connection.client`` or
        your own client for anything else.
        """
        return self._client.get()

    @property
    def connection(self) -> Connection:
        """The PynamoDB connection of the store's model (its ``client`` is botocore's own)."""
        connection: Connection = self._model._get_connection().connection
        return connection


class _Polled(Protocol):
    """What `StreamClientOwner.read_changes` uses of the subscription."""

    position: StreamPosition
    _idle: bool

    @property
    def stopped(self) -> bool: ...
    def start(self) -> object: ...
    def poll(self) -> list[Change]: ...
    def _delay(self) -> float: ...


class StreamClientOwner:
    """The context manager and ``close()`` of a subscription whose client is ``self.client``, and `read_changes`.

    Entering starts the subscription; a failed start closes the client.
    """

    __slots__ = ()
    client: LazyClient

    if TYPE_CHECKING:

        def start(self) -> Self:
            """Start the subscription (the subscription's own)."""

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the streams client."""
        self.client.close()

    async def read_changes(self: _Polled, *, stop_when_idle: bool = False) -> AsyncIterator[Change]:
        """The changes as an async iterator; reads run in a worker thread (`AsyncSubscription` needs none)."""
        await asyncio.to_thread(self.start)
        while not self.stopped:
            batch = await asyncio.to_thread(self.poll)
            for change in batch:
                self.position = self.position.after(change)
                yield change
                if self.stopped:
                    return
            if not batch:
                if stop_when_idle and self._idle:
                    return
                await asyncio.sleep(self._delay())

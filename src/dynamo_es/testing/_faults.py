"""FaultProxy: a local HTTP proxy in front of DynamoDB (Local) that loses, resets, delays or fails chosen calls.

DynamoDB Local never loses a response, resets a connection or stalls; real networks do. Point
the settings' ``endpoint_url`` at the proxy and tell it, per DynamoDB operation, what to do to
the next calls::

    with FaultProxy(local.endpoint_url) as proxy:
        store = DynamoDBEventStore(local.settings(endpoint_url=proxy.endpoint_url))
        proxy.inject("TransactWriteItems", "drop", times=2)  # applied, but the client never hears

Faults: ``"drop"`` forwards the request and closes the connection instead of answering (the
write happened); ``"reset"`` closes the connection before forwarding (nothing happened);
``"delay"`` waits ``seconds`` before forwarding; ``"error"`` answers with DynamoDB's error
``code`` instead of forwarding (errors AWS returns that DynamoDB Local never does, such as an
expired shard iterator or throttling).
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

import attrs

__all__ = ["Fault", "FaultProxy"]

Fault = Literal["drop", "reset", "delay", "error"]


@attrs.define
class _Rule:
    fault: Fault
    times: int
    seconds: float
    code: str = "InternalServerError"


@attrs.define
class FaultProxy:
    """A forwarding proxy on 127.0.0.1 with per-operation faults; a context manager."""

    upstream: str
    _rules: dict[str, list[_Rule]] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    _server: ThreadingHTTPServer | None = attrs.field(default=None, init=False, repr=False)
    seen: list[tuple[str, str]] = attrs.field(factory=list, init=False)
    """Every call, as (operation, what happened: "forwarded" or the fault)."""

    @property
    def endpoint_url(self) -> str:
        """The URL to give the store instead of the upstream's."""
        assert self._server is not None, "start the proxy first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(
        self, operation: str, fault: Fault, *, times: int = 1, seconds: float = 0.0, code: str = "InternalServerError"
    ) -> None:
        """Apply ``fault`` to the next ``times`` calls of ``operation`` (e.g. "Query").

        "drop" forwards the call and loses the response, "reset" closes the connection unsent,
        "delay" waits ``seconds`` first, "error" answers HTTP 400 with DynamoDB's error ``code``
        (such as "ExpiredIteratorException") without forwarding.
        """
        with self._lock:
            self._rules.setdefault(operation, []).append(_Rule(fault, times, seconds, code))

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._rules.clear()

    def take(self, operation: str) -> _Rule | None:
        """The fault for this call of ``operation``, if one is pending."""
        with self._lock:
            rules = self._rules.get(operation, [])
            if not rules:
                return None
            rule = rules[0]
            rule.times -= 1
            if rule.times <= 0:
                rules.pop(0)
            return rule

    def start(self) -> FaultProxy:
        """Listen on a free port, in a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
            rule = proxy.take(operation)
            proxy.seen.append((operation, "forwarded" if rule is None else rule.fault))
            if rule is not None and rule.fault == "reset":
                self.close_connection = True
                return
            if rule is not None and rule.fault == "error":
                self._answer(400, [("Content-Type", "application/x-amz-json-1.0")], _error_body(rule.code))
                return
            if rule is not None and rule.fault == "delay":
                threading.Event().wait(rule.seconds)
            status, headers, payload = self._forward(body)
            if rule is not None and rule.fault == "drop":
                self.close_connection = True
                return
            self._answer(status, headers, payload)

        def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
            self.send_response(status)  # sends its own Server and Date headers
            for name, value in headers:
                if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            connection = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = upstream.netloc
                connection.request("POST", self.path, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.getheaders(), response.read()
            finally:
                connection.close()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests read ``proxy.seen`` instead."""

    return Handler


def _error_body(code: str) -> bytes:
    """A DynamoDB (Streams) JSON error document, as the service sends it."""
    return json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "injected"}).encode()

"""Spans for what dynamo-es does, and the W3C trace context it keeps in event metadata.

Store operations are CLIENT spans with OpenTelemetry's DynamoDB attributes (``db.system``,
``aws.dynamodb.table_names``); handling an event is a CONSUMER span with messaging attributes,
a child of the trace the event was written in (its ``traceparent``), linked to the batch that
delivered it. So one trace runs from a command through its events into every reaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

from ._otel import available, context_api, propagator, trace_api

__all__ = [
    "MESSAGING_SYSTEM",
    "TRACEPARENT",
    "batch",
    "current_traceparent",
    "failed",
    "handling",
    "invocation",
    "links_to",
    "operation",
    "retried_in_span",
    "set_attributes",
    "use_tracer_provider",
]

TRACEPARENT = "traceparent"
"""The metadata key (and W3C header name) of the trace context an event was written in."""
_GLOBAL_TRACER: Any = trace_api.get_tracer("dynamo_es") if available else None
"""dynamo-es' tracer from the API's global provider (None without the API)."""
_OWN_TRACER: Any = None
"""dynamo-es' tracer from the provider given to `use_tracer_provider`, if any."""
_RETRIES: ContextVar[list[int] | None] = ContextVar("dynamo_es_retries", default=None)
_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def use_tracer_provider(provider: Any) -> None:
    """Trace dynamo-es with ``provider`` rather than the API's global one (None: the global one again)."""
    global _OWN_TRACER
    _OWN_TRACER = trace_api.get_tracer("dynamo_es", tracer_provider=provider) if available and provider else None


def _tracer() -> Any:
    """The tracer to record with; None when nothing would record (no API, or no provider set anywhere).

    With no provider set, not even the API's no-op spans are made: a call pays one lookup of the
    global provider (about a microsecond).
    """
    if _OWN_TRACER is not None:
        return _OWN_TRACER
    if _GLOBAL_TRACER is None or isinstance(trace_api.get_tracer_provider(), trace_api.ProxyTracerProvider):
        return None
    return _GLOBAL_TRACER


DYNAMODB = "dynamodb"
MAX_LINKS = 32
"""Links a Lambda invocation's span makes to the spans its events were written in (the SDK keeps 128)."""
MESSAGING_SYSTEM = "dynamo_es"
"""``messaging.system`` of the spans that handle events."""


def operation(name: str, table: str | Sequence[str] | None, attributes: Mapping[str, Any]) -> Any:
    """A CLIENT span ``name`` on ``table`` (a context manager giving the span; None without the API)."""
    tracer = _tracer()
    if tracer is None:
        return _NO_SPAN
    return _client_span(tracer, name, table, attributes)


@contextlib.contextmanager
def _client_span(
    tracer: Any, name: str, table: str | Sequence[str] | None, attributes: Mapping[str, Any]
) -> Iterator[Any]:
    tables = [table] if isinstance(table, str) else list(table or ())
    with tracer.start_as_current_span(name, kind=trace_api.SpanKind.CLIENT) as span:
        if span.is_recording():
            span.set_attributes({"db.system": DYNAMODB, "aws.dynamodb.table_names": tables, **attributes})
        retries = [0]
        token = _RETRIES.set(retries)
        try:
            yield span
        finally:
            _RETRIES.reset(token)
            if retries[0] and span.is_recording():
                span.set_attribute("dynamo_es.retries", retries[0])


def links_to(traceparents: Iterable[str | None], *, limit: int = MAX_LINKS) -> list[Any]:
    """Span links to the spans ``traceparents`` name, each once, at most ``limit`` (invalid ones skipped)."""
    links: dict[tuple[int, int], Any] = {}
    for traceparent in traceparents:
        if len(links) >= limit:
            break
        if not traceparent:
            continue
        span_context = trace_api.get_current_span(propagator.extract({TRACEPARENT: traceparent})).get_span_context()
        if span_context.is_valid:
            links.setdefault((span_context.trace_id, span_context.span_id), trace_api.Link(span_context))
    return list(links.values())


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span; None when there is none (or no API)."""
    if _tracer() is None or not trace_api.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def failed(span: Any, error: BaseException | None) -> None:
    """Record ``error`` on ``span`` and set its status to ERROR (nothing when ``error`` is None)."""
    if error is not None and span is not None and span.is_recording():
        span.record_exception(error)
        span.set_status(trace_api.Status(trace_api.StatusCode.ERROR, str(error)))


def set_attributes(span: Any, attributes: Mapping[str, Any]) -> None:
    """Set ``attributes`` on ``span`` when it records (``span`` None: nothing)."""
    if span is not None and span.is_recording():
        span.set_attributes(attributes)


def retried_in_span(reason: str, attempt: int) -> None:
    """Count a retry into the current store operation's span, with an event saying why."""
    retries = _RETRIES.get()
    if retries is not None:
        retries[0] += 1
        span = trace_api.get_current_span()
        if span.is_recording():
            span.add_event("dynamo_es.retry", {"reason": reason, "attempt": attempt})


def batch(projection: str, changes: int) -> Any:
    """The CONSUMER span of one batch of ``changes`` changes handled by ``projection`` (a child of the current span)."""
    tracer = _tracer()
    if tracer is None:
        return _NO_SPAN
    attributes = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "process",
        "messaging.consumer.group.name": projection,
        "messaging.batch.message_count": changes,
        "dynamo_es.projection": projection,
    }
    return tracer.start_as_current_span("dynamo_es.batch", kind=trace_api.SpanKind.CONSUMER, attributes=attributes)


def handling(name: str, consumer: str, event: Any, *, producer: bool = False) -> Any:
    """The CONSUMER span ``name`` of ``consumer`` handling one `StoredEvent`.

    A child of the span the event was written in (its ``traceparent``), linked to the current
    span (the batch that delivered it): so the trace of the command goes on into the reaction.
    """
    tracer = _tracer()  # looked up once: this runs for every event a projection handles
    if tracer is None:
        return _NO_SPAN
    attributes = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "send" if producer else "process",
        "messaging.consumer.group.name": consumer,
        "messaging.message.id": event.event_id,
        "dynamo_es.projection": consumer,
        "dynamo_es.stream_id": event.stream_id,
        "dynamo_es.version": event.version,
        "dynamo_es.event_type": event.event_type,
    }
    current = context_api.get_current()
    traceparent = event.metadata.trace_parent
    parent = propagator.extract({TRACEPARENT: traceparent}, context=current) if traceparent else current
    batch_span = trace_api.get_current_span(current).get_span_context()
    links = [trace_api.Link(batch_span)] if batch_span.is_valid else []
    kind = trace_api.SpanKind.PRODUCER if producer else trace_api.SpanKind.CONSUMER
    return tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes, links=links)


def invocation(consumer: str, context: Any, events: Sequence[Any]) -> Any:
    """The span of one AWS Lambda invocation feeding ``consumer`` ``events`` (`StoredEvent`).

    FaaS attributes come from Lambda's ``context``; the span links to the spans the events were
    written in (at most `MAX_LINKS`), so a trace backend finds the invocation from the command.
    """
    tracer = _tracer()
    if tracer is None:
        return _NO_SPAN
    attributes: dict[str, Any] = {
        "faas.trigger": "datasource",
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.batch.message_count": len(events),
        "dynamo_es.projection": consumer,
    }
    for attribute, name in (("faas.invocation_id", "aws_request_id"), ("cloud.resource_id", "invoked_function_arn")):
        value = getattr(context, name, None)
        if isinstance(value, str):
            attributes[attribute] = value
    links = links_to(event.metadata.trace_parent for event in events)
    kind = trace_api.SpanKind.CONSUMER
    return tracer.start_as_current_span("dynamo_es.lambda", kind=kind, attributes=attributes, links=links)

"""The OpenTelemetry API when it is installed (the ``otel`` extra), else nothing at all.

Everything dynamo-es records goes through the API: with no tracer or meter provider set, the
API's own no-op objects are used (a span costs about a microsecond); without the package,
not even those are made.
"""

from __future__ import annotations

from typing import Any

__all__ = ["available", "context_api", "metrics_api", "propagator", "trace_api"]

trace_api: Any
metrics_api: Any
context_api: Any
propagator: Any
try:
    from opentelemetry import context as _context
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - the suite runs with the API; tests/observability runs a process without it
    trace_api = metrics_api = context_api = propagator = None
else:
    trace_api, metrics_api, context_api, propagator = _trace, _metrics, _context, TraceContextTextMapPropagator()

available = trace_api is not None
"""Whether the OpenTelemetry API is installed."""

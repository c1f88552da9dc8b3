"""Observability: OpenTelemetry traces and metrics (the ``otel`` extra), CloudWatch EMF lines, log fields.

dynamo-es records through the OpenTelemetry API only; the application installs the SDK and an
exporter, and sets its providers (OpenTelemetry's ``set_tracer_provider`` and
``set_meter_provider``), or hands them to `configure()`. Without the API installed, or with no
provider set, nothing is recorded. See the Observability page of the docs for every span,
attribute, instrument and log field.
"""

from __future__ import annotations

from typing import Any

from ._otel import available
from .emf import emf_document, emf_line
from .logs import LOG_FIELDS, log_fields
from .metrics import INSTRUMENTS, use_meter_provider
from .tracing import TRACEPARENT, current_traceparent, use_tracer_provider

__all__ = [
    "INSTRUMENTS",
    "LOG_FIELDS",
    "TRACEPARENT",
    "available",
    "configure",
    "current_traceparent",
    "emf_document",
    "emf_line",
    "log_fields",
]


def configure(*, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Send dynamo-es' spans and metrics to these providers instead of OpenTelemetry's global ones.

    For an application that keeps its providers to itself (or a test with in-memory exporters).
    ``configure()`` with neither goes back to the global providers.

    Args:
        tracer_provider: an OpenTelemetry ``TracerProvider``, or None for the global one.
        meter_provider: an OpenTelemetry ``MeterProvider``, or None for the global one.
    """
    use_tracer_provider(tracer_provider)
    use_meter_provider(meter_provider)

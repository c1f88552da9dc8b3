"""Observability: OpenTelemetry traces and metrics (the ``otel`` extra) and CloudWatch EMF lines.

dynamo-es records through the OpenTelemetry API only; the application installs the SDK and an
exporter. See the Observability page of the docs for every span, attribute and instrument.
"""

from ._otel import available
from .emf import emf_document, emf_line
from .metrics import INSTRUMENTS
from .tracing import TRACEPARENT, current_traceparent

__all__ = ["INSTRUMENTS", "TRACEPARENT", "available", "current_traceparent", "emf_document", "emf_line"]

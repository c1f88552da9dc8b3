"""botocore clients with a lean response path: pages of items are handed over as DynamoDB sent them.

botocore walks every response against the service's shape definitions before returning it,
which costs more than the HTTP round trip for a page of 1,000 items. For the outputs named in
:data:`WIRE_OUTPUTS` (Query, Scan and GetRecords pages), these clients return the JSON body
itself: items stay in DynamoDB's wire format (``{"S": ...}``, ``{"N": "7"}``), which is what the
event decoder reads anyway. Everything else is botocore's own: credentials, region and endpoint
resolution, signing, the connection pool, retries, error parsing and event hooks.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.parsers import JSONParser, ResponseParser, ResponseParserFactory

from ..settings import EventStoreSettings

__all__ = ["WIRE_OUTPUTS", "make_client"]

WIRE_OUTPUTS = frozenset({"QueryOutput", "ScanOutput", "GetRecordsOutput"})
"""Output shapes returned as the raw JSON body."""


class _WireJSONParser(JSONParser):
    """botocore's JSON protocol parser, except that :data:`WIRE_OUTPUTS` keep the wire format."""

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


def make_client(settings: EventStoreSettings, service: str = "dynamodb") -> Any:
    """A botocore client of ``service`` ("dynamodb" or "dynamodbstreams") for ``settings``.

    botocore retries throttling and connection errors itself (standard mode, three attempts);
    the store's own retries and idempotency tokens sit above that.
    """
    session = botocore.session.get_session()
    session.register_component("response_parser_factory", _WireParserFactory())
    return session.create_client(
        service,
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )

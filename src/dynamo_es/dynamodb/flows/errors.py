"""How DynamoDB failures are told apart, and the one retry flow: transient ones sent again after a jittered backoff."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

import attrs
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError
from pynamodb.exceptions import PynamoDBException

from ...core.retry import backoff_delay
from ...observability.logs import log_fields
from ...observability.metrics import record_retry
from ...observability.tracing import retried_in_span
from ...settings import EventStoreSettings
from .base import Call, Flow, Sleep

__all__ = [
    "BOUNDARY_ERRORS",
    "NO_CREDENTIALS",
    "Failure",
    "GaveUp",
    "cancellation_codes",
    "classify",
    "count_client_retries",
    "lacks_credentials",
    "send",
    "unanswered",
]

log = logging.getLogger("dynamo_es")

BOUNDARY_ERRORS = (PynamoDBException, BotoCoreError, ClientError)
"""Everything PynamoDB and botocore raise; the store turns them into dynamo-es errors."""

THROTTLING = frozenset(
    {
        "ThrottlingError",
        "ThrottlingException",
        "ProvisionedThroughputExceeded",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
    }
)
"""The contention codes that mean DynamoDB throttled the request (counted as throttles too)."""

_SENT_AGAIN_BY_BOTOCORE = THROTTLING | {
    "TransactionInProgressException",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
}
"""The error codes below HTTP 500 that botocore's standard mode sends again by itself (for DynamoDB)."""

_CONTENTION = frozenset(
    {
        "TransactionConflict",
        *THROTTLING,
        "TransactionInProgressException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


_NOT_TRANSIENT = (ParamValidationError, NoCredentialsError)
"""botocore errors that no retry can cure."""

NO_CREDENTIALS = (
    "no AWS credentials found. For DynamoDB Local, set DYNAMO_ES_ENDPOINT_URL (`dynamo-es local` "
    "starts one and prints the line to paste); for AWS, configure credentials (AWS_PROFILE, or "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or DYNAMO_ES_AWS_ACCESS_KEY_ID and DYNAMO_ES_AWS_SECRET_ACCESS_KEY)"
)
"""What to do when botocore finds no credentials: a newcomer usually meant DynamoDB Local."""


def lacks_credentials(error: BaseException | None) -> bool:
    """Whether ``error`` comes from botocore finding no credentials (anywhere in its causes)."""
    while error is not None:
        if isinstance(error, NoCredentialsError):
            return True
        error = error.__cause__ or getattr(error, "cause", None)
    return False


class Failure(enum.Enum):
    """What a failed write means for the caller."""

    CONFLICT = "conflict"
    """A condition failed: a slot was taken, or the expected version does not exist."""
    TRANSIENT = "transient"
    """Contention, throttling or a lost connection: retry the same request."""
    IDEMPOTENCY_MISMATCH = "idempotency-mismatch"
    """The request token was used for another payload: check what is stored."""
    FATAL = "fatal"
    """Anything else (validation, access denied, missing table)."""


def classify(error: BaseException) -> tuple[Failure, str]:
    """Tell what ``error`` (from PynamoDB or botocore) means, with a short reason."""
    cause = error.cause if isinstance(error, PynamoDBException) else error
    if isinstance(cause, NoCredentialsError):
        return Failure.FATAL, NO_CREDENTIALS
    if isinstance(cause, _NOT_TRANSIENT):
        return Failure.FATAL, f"{type(cause).__name__}: {cause}"
    if isinstance(cause, BotoCoreError):
        return Failure.TRANSIENT, type(cause).__name__
    code = error.cause_response_code if isinstance(error, PynamoDBException) else _client_code(cause)
    if code == "TransactionCanceledException":
        codes = cancellation_codes(error)
        if "ConditionalCheckFailed" in codes:
            return Failure.CONFLICT, "ConditionalCheckFailed"
        contention = [c for c in codes if c in _CONTENTION]
        if contention:
            return Failure.TRANSIENT, contention[0]
        return Failure.FATAL, f"transaction cancelled: {codes}"
    if code == "ConditionalCheckFailedException":
        return Failure.CONFLICT, code
    if code == "IdempotentParameterMismatchException":
        return Failure.IDEMPOTENCY_MISMATCH, code
    if code in _CONTENTION:
        return Failure.TRANSIENT, code
    return Failure.FATAL, code or str(error)


def cancellation_codes(error: BaseException) -> list[str]:
    """Per-item reasons of a cancelled transaction (``"None"`` for an item that was fine), in item order."""
    if isinstance(error, ClientError):
        return [str(reason.get("Code")) for reason in error.response.get("CancellationReasons", [])]
    reasons = getattr(error, "cancellation_reasons", [])
    return ["None" if reason is None else reason.code for reason in reasons]


def cancelled_item(error: BaseException, index: int) -> dict[str, Any] | None:
    """The item a cancelled transaction's ``index``-th request found, when it asked for it (ALL_OLD)."""
    reasons = error.response.get("CancellationReasons", []) if isinstance(error, ClientError) else []
    item = reasons[index].get("Item") if index < len(reasons) else None
    return dict(item) if item else None


def _client_code(error: BaseException | None) -> str | None:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code"))
    return None


@attrs.frozen
class GaveUp:
    """A request that failed for good: not transient, or transient past ``max_transient_retries``."""

    kind: Failure
    reason: str
    error: BaseException
    attempts: int


def send(call: Call, settings: EventStoreSettings, what: Callable[[], str]) -> Flow[Any]:
    """Send ``call``; after a transient failure wait and send it again (the same request, the same token).

    Returns the response, or a `GaveUp` saying why and after how many attempts. ``what()`` names
    the request in the INFO line logged before each retry (called only then: sends are hot).
    """
    retries = 0
    while True:
        try:
            return (yield call)
        except BOUNDARY_ERRORS as error:
            kind, reason = classify(error)
            if kind is not Failure.TRANSIENT or retries >= settings.max_transient_retries:
                return GaveUp(kind, reason, error, retries + 1)
        delay = backoff_delay(retries, settings.retry_base_delay_ms / 1000, settings.retry_max_delay_ms / 1000)
        retries += 1
        record_retry(reason, throttled=reason in THROTTLING, operation=call.operation)
        retried_in_span(reason, retries)
        log.info("%s: %s, retry %d in %.3fs", what(), reason, retries, delay, extra=log_fields(attempt=retries + 1))
        yield Sleep(delay)


def count_client_retries(client: Any, max_attempts: int) -> None:
    """Count the retries botocore makes by itself (throttling, 5xx, lost connections) in metrics and span.

    Registered on ``client``'s ``needs-retry`` event: a failed attempt before the last is sent
    again by botocore's standard mode (its retry quota aside), out of the store's sight.
    """

    def counted(attempts: int, operation: Any, response: Any = None, caught_exception: Any = None, **_: Any) -> None:
        if attempts >= max_attempts:
            return  # botocore gives up here: the store's own retries (counted in send) take over
        reason = _retried_for(response, caught_exception)
        if reason is not None:
            record_retry(reason, throttled=reason in THROTTLING, operation=xform_name(operation.name))
            retried_in_span(reason, attempts)

    client.meta.events.register("needs-retry", counted)


def _retried_for(response: Any, caught_exception: BaseException | None) -> str | None:
    """What a failed attempt was (an error code, an HTTP status, an exception's name); None for a success."""
    if caught_exception is not None:
        return type(caught_exception).__name__
    if response is None:
        return None
    http, parsed = response
    code = parsed.get("Error", {}).get("Code") if isinstance(parsed, dict) else None
    if code in _SENT_AGAIN_BY_BOTOCORE or (code and http.status_code >= 500):
        return str(code)
    return f"HTTP {http.status_code}" if http.status_code >= 500 else None


def unanswered(error: BaseException) -> bool:
    """Whether DynamoDB never answered (a timeout or a lost connection), so the write may still land."""
    cause = error.cause if isinstance(error, PynamoDBException) else error
    return isinstance(cause, BotoCoreError)

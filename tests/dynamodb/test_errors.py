"""The one retry flow: transient failures are sent again after a backoff, others give up at once."""

from __future__ import annotations

from botocore.exceptions import ClientError

from dynamo_es import EventStoreSettings
from dynamo_es.dynamodb.flows.base import Call, Sleep
from dynamo_es.dynamodb.flows.errors import Failure, GaveUp, send

CALL = Call("query", {"TableName": "T"})


def error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Query")


def run(flow: object, outcomes: list[object]) -> tuple[object, list[object]]:
    """Drive ``flow`` by hand: each Call gets the next outcome (an error is thrown in); the steps it yielded."""
    steps, step = [], next(flow)  # type: ignore[call-overload]
    try:
        while True:
            steps.append(step)
            if isinstance(step, Sleep):
                step = flow.send(None)  # type: ignore[attr-defined]
                continue
            outcome = outcomes.pop(0)
            step = flow.throw(outcome) if isinstance(outcome, BaseException) else flow.send(outcome)  # type: ignore[attr-defined]
    except StopIteration as done:
        return done.value, steps


class TestSend:
    def test_a_transient_failure_is_sent_again_after_a_pause(self) -> None:
        """Throttling, then success: the same call twice with one Sleep between; the response returned."""
        result, steps = run(
            send(CALL, EventStoreSettings(), lambda: "q"), [error("ThrottlingException"), {"Items": []}]
        )
        assert result == {"Items": []}
        assert [type(step) for step in steps] == [Call, Sleep, Call] and steps[0] == steps[2] == CALL

    def test_it_gives_up_after_max_transient_retries(self) -> None:
        """With max_transient_retries=2: three attempts, then GaveUp(TRANSIENT, attempts=3)."""
        settings = EventStoreSettings(max_transient_retries=2, retry_base_delay_ms=1)
        result, steps = run(send(CALL, settings, lambda: "q"), [error("ThrottlingException")] * 3)
        assert isinstance(result, GaveUp) and (result.kind, result.attempts) == (Failure.TRANSIENT, 3)
        assert sum(isinstance(step, Call) for step in steps) == 3

    def test_a_fatal_failure_gives_up_at_once(self) -> None:
        """ValidationException is not retried: one attempt, GaveUp(FATAL) with the error kept."""
        failure = error("ValidationException")
        result, steps = run(send(CALL, EventStoreSettings(), lambda: "q"), [failure])
        assert isinstance(result, GaveUp) and result.kind is Failure.FATAL and result.error is failure
        assert steps == [CALL]

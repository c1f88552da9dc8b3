"""Every script in examples/ runs and says what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dynamo_es.testing import DynamoDBLocal

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

pytestmark = pytest.mark.ddblocal


def run(script: Path, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(  # noqa: S603 (our own example scripts)
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def env_for(local: DynamoDBLocal) -> dict[str, str]:
    settings = local.settings()
    return {
        **os.environ,
        "DYNAMO_ES_ENDPOINT_URL": local.endpoint_url,
        "DYNAMO_ES_AWS_ACCESS_KEY_ID": settings.aws_access_key_id or "",
        "DYNAMO_ES_AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key or "",
        "DYNAMO_ES_EVENTS_TABLE_NAME": f"ex-{uuid.uuid4().hex[:10]}",
        "DYNAMO_ES_CHECKPOINTS_TABLE_NAME": f"exc-{uuid.uuid4().hex[:10]}",
    }


SCRIPTS = sorted(p for p in EXAMPLES.rglob("*.py") if '__name__ == "__main__"' in p.read_text())
EXPECTED = {
    "aws_lambda/handler.py": [
        "first delivery: {'batchItemFailures': []}",
        "redelivered: {'batchItemFailures': []}",
        "balance in the read model: 70",
    ],
    "async_service.py": [
        "50 concurrent deposits: {'async-0': '100', 'async-1': '100', 'async-2': '100', 'async-3': '100', "
        "'async-4': '100'}",
        "conflicts retried: True",
        "after 5 concurrent transfers: {'async-0': '104', 'async-1': '99', 'async-2': '99', 'async-3': '99', "
        "'async-4': '99'}, total 500",
        "read model, from the stream: {'async-0': '104', 'async-1': '99', 'async-2': '99', 'async-3': '99', "
        "'async-4': '99'}",
    ],
    "balances_read_model.py": [
        "first run: 5 changes, balances {'alice': Decimal('70'), 'bob': Decimal('50')}",
        "resumed: 1 new change(s), balances {'alice': Decimal('70'), 'bob': Decimal('30')}",
        "equal to replay: True",
    ],
    "money_transfer.py": [
        *(
            line
            for store in ("memory", "dynamodb")
            for line in (
                f"{store}: after the transfer {{'alice': '50', 'bob': '150', 'promotions': '1000'}}",
                f"{store}: refused, concurrency conflict on BankAccount:alice: expected version 3, actual version 4; "
                "BankAccount:bob: expected version 2, actual version 3",
                f"{store}: after the bonuses {{'alice': '35', 'bob': '175', 'promotions': '990'}}",
                f"{store}: everything delivered again, 0 applied, {{'alice': '35', 'bob': '175', 'promotions': '990'}}",
            )
        ),
        "read model, first run: 13 applied, {'alice': '35', 'bob': '175', 'promotions': '990'}",
        "read model, redelivered: 0 applied, {'alice': '35', 'bob': '175', 'promotions': '990'}",
    ],
    "quickstart.py": ["writer 2: success=False, conflict=True: expected 2, actual 3", "balance after replay: 75"],
    "bank_account/usage.py": [
        "refused: balance 100.00 is less than 500.00",
        "teller B lost the race: concurrency conflict on BankAccount:acc-42: expected version 2, actual version 3",
        "final balance 75.00 at v4",
        "as of v2: balance 100.00",
    ],
}


def test_every_runnable_example_has_expectations() -> None:
    """No example script escapes the suite."""
    assert {str(p.relative_to(EXAMPLES)) for p in SCRIPTS} == set(EXPECTED)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_runs_on_dynamodb_local(script: Path, dynamodb_local: DynamoDBLocal) -> None:
    """Each example script exits 0 on DynamoDB Local and prints what it promises."""
    output = run(script, env_for(dynamodb_local))
    for line in EXPECTED[str(script.relative_to(EXAMPLES))]:
        assert line in output


class TestQuickstart:
    def test_it_runs_again_on_kept_data(self, dynamodb_local: DynamoDBLocal) -> None:
        """Run twice against the same table (as on `dynamo-es local --data-dir`): both runs succeed."""
        env = env_for(dynamodb_local)
        for _ in range(2):
            output = run(EXAMPLES / "quickstart.py", env)
            assert "appended: now at version 2" in output and "writer 1: success=True, version 3" in output

    def test_demo_starts_its_own_dynamodb_and_shows_a_conflict(self) -> None:
        """`make demo` (no endpoint configured) starts DynamoDB Local, appends, loads, conflicts."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DYNAMO_ES_") or k.endswith("LOCAL_DIR")}
        output = run(EXAMPLES / "quickstart.py", env)
        assert "DynamoDB at http://127.0.0.1:" in output
        assert "writer 2: success=False, conflict=True: expected 2, actual 3" in output
        assert "balance after replay: 75" in output

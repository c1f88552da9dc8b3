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
    }


class TestQuickstart:
    def test_demo_starts_its_own_dynamodb_and_shows_a_conflict(self) -> None:
        """`make demo` (no endpoint configured) starts DynamoDB Local, appends, loads, conflicts."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DYNAMO_ES_") or k.endswith("LOCAL_DIR")}
        output = run(EXAMPLES / "quickstart.py", env)
        assert "DynamoDB Local is up" in output
        assert "writer 2: success=False, conflict=True: expected 2, actual 3" in output
        assert "balance after replay: 75" in output

    def test_demo_uses_a_configured_endpoint(self, dynamodb_local: DynamoDBLocal) -> None:
        """With DYNAMO_ES_ENDPOINT_URL set, the demo uses that DynamoDB."""
        output = run(EXAMPLES / "quickstart.py", env_for(dynamodb_local))
        assert "DynamoDB Local is up" not in output
        assert "balance after replay: 75" in output

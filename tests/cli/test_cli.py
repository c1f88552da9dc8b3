"""The dynamo-es command against DynamoDB Local: commands, output, errors and exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import attrs
import pytest

from dynamo_es import DynamoDBEventStore, EventMetadata, EventStoreSettings, event
from dynamo_es.cli import run

from ..conftest import cli

pytestmark = pytest.mark.ddblocal


@event(name="CliTestShipped")
@attrs.frozen
class Shipped:
    parcel: str
    weight: int


def seed(settings: EventStoreSettings, count: int = 3) -> str:
    aggregate_id = f"p-{uuid.uuid4().hex[:8]}"
    store = DynamoDBEventStore(settings)
    store.append(aggregate_id, "Parcel", [Shipped(f"box {n}", n) for n in range(1, count + 1)], 0).raise_for_failure()
    return aggregate_id


class TestCommands:
    def test_create_table_then_describe(self, cli_env: EventStoreSettings) -> None:
        """create-table --all makes the five tables (and says so, or that they exist); describe reports them."""
        code, output = cli("create-table", "--all")
        assert code == 0 and output.count("created, ACTIVE") == 5
        code, output = cli("create-table", "--all")
        assert code == 0 and output.count("exists, ACTIVE") == 5
        code, output = cli("describe")
        assert code == 0
        fields = dict(line.split(None, 1) for line in output.splitlines())
        assert fields["table"] == cli_env.events_table_name and fields["status"] == "ACTIVE"
        assert json.loads(fields["keys"]) == {"HASH": "pk", "RANGE": "sk"}
        assert fields["stream"] == "NEW_AND_OLD_IMAGES" and json.loads(fields["indexes"]) == ["outbox"]
        assert fields["billing"] == "PAY_PER_REQUEST" and "itemCountEstimate" in fields

    def test_describe_all_reports_the_five_tables(self, cli_env: EventStoreSettings) -> None:
        """Describe --all describes the events, checkpoints, snapshots, keys and archive tables, a block each."""
        assert cli("create-table", "--all")[0] == 0
        code, output = cli("describe", "--all")
        blocks = [dict(line.split(None, 1) for line in block.splitlines()) for block in output.split("\n\n")]
        names = [
            cli_env.events_table_name,
            cli_env.checkpoints_table_name,
            cli_env.snapshots_table_name,
            cli_env.keys_table_name,
            cli_env.archive_table_name,
        ]
        assert code == 0 and [block["table"] for block in blocks] == names
        assert all(block["status"] == "ACTIVE" for block in blocks)

    def test_describe_all_with_a_missing_table_exits_4(
        self, cli_env: EventStoreSettings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Describe --all when only the events table exists: exit 4 naming the missing checkpoints table."""
        DynamoDBEventStore(cli_env).ensure_table()
        assert cli("describe", "--all")[0] == 4
        err = capsys.readouterr().err
        assert cli_env.checkpoints_table_name in err and "run: dynamo-es create-table --all" in err

    def test_events_as_json_lines_with_a_version_range(self, cli_env: EventStoreSettings) -> None:
        """Events TYPE ID prints one JSON document per event; --from/--to bound them."""
        aggregate_id = seed(cli_env, 4)
        code, output = cli("events", "Parcel", aggregate_id, "--from", "2", "--to", "3")
        documents = [json.loads(line) for line in output.splitlines()]
        assert code == 0 and [d["version"] for d in documents] == [2, 3]
        assert documents[0]["data"] == {"parcel": "box 2", "weight": 2}
        assert documents[0]["eventType"] == "CliTestShipped" and documents[0]["streamId"] == f"Parcel:{aggregate_id}"

    def test_events_show_the_traceparent(self, cli_env: EventStoreSettings) -> None:
        """An event written in a trace prints its traceparent beside the correlation id."""
        traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        store = DynamoDBEventStore(cli_env)
        metadata = EventMetadata(correlation_id="c-1", trace_parent=traceparent)
        store.append("p-1", "Parcel", [Shipped("box", 1)], 0, metadata=metadata)
        code, output = cli("events", "Parcel", "p-1")
        assert code == 0 and json.loads(output)["metadata"] == {"correlationId": "c-1", "traceparent": traceparent}

    def test_events_as_a_table(self, cli_env: EventStoreSettings) -> None:
        """--format table prints a header and one row per event."""
        aggregate_id = seed(cli_env, 2)
        code, output = cli("events", "Parcel", aggregate_id, "--format", "table")
        lines = output.splitlines()
        assert code == 0 and lines[0].split() == ["VERSION", "TIMESTAMP", "TYPE", "DATA"]
        assert len(lines) == 3 and "CliTestShipped" in lines[2] and '"box 2"' in lines[2]

    def test_outbox_counts_and_lists(self, cli_env: EventStoreSettings) -> None:
        """Outbox prints the undispatched count and the oldest events."""
        aggregate_id = seed(cli_env, 3)
        DynamoDBEventStore(cli_env).mark_dispatched(aggregate_id, "Parcel", 1)
        code, output = cli("outbox", "--limit", "1")
        lines = output.splitlines()
        assert code == 0 and lines[0] == "undispatched: 2"
        assert [json.loads(line)["version"] for line in lines[1:]] == [2]

    def test_tail_prints_one_line_per_change(self, cli_env: EventStoreSettings) -> None:
        """Tail follows live changes; --max ends it."""
        DynamoDBEventStore(cli_env).ensure_table()
        result: list[tuple[int, str]] = []
        follower = threading.Thread(target=lambda: result.append(cli("tail", "--max", "2")))
        follower.start()
        seeded: list[str] = []
        deadline = time.monotonic() + 30
        while follower.is_alive() and time.monotonic() < deadline:  # tail starts "now": keep writing until it sees
            seeded.append(seed(cli_env, 2))
            follower.join(timeout=0.5)
        assert not follower.is_alive()
        code, output = result[0]
        changes = [json.loads(line) for line in output.splitlines()]
        assert code == 0 and [(c["kind"], c["version"]) for c in changes] == [("INSERT", 1), ("INSERT", 2)]
        assert len({c["streamId"] for c in changes}) == 1
        assert changes[0]["streamId"] in {f"Parcel:{aggregate_id}" for aggregate_id in seeded}

    def test_tail_from_start_until_idle(self, cli_env: EventStoreSettings) -> None:
        """--from-start --until-idle prints what the stream holds and exits."""
        seed(cli_env, 2)
        code, output = cli("tail", "--from-start", "--until-idle")
        assert code == 0 and len(output.splitlines()) == 2


class TestErrors:
    def test_missing_table_exits_4(self, cli_env: EventStoreSettings, capsys: pytest.CaptureFixture[str]) -> None:
        """Read commands never create tables: a missing one is exit code 4 with a hint."""
        assert cli("describe")[0] == 4
        assert "create-table" in capsys.readouterr().err

    def test_unreachable_endpoint_exits_3(
        self, cli_env: EventStoreSettings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A closed port is exit code 3 with a clear message, no traceback."""
        assert cli("--endpoint-url", "http://127.0.0.1:9", "describe")[0] == 3
        assert "cannot connect to DynamoDB at http://127.0.0.1:9" in capsys.readouterr().err

    def test_bad_input_exits_2(self, cli_env: EventStoreSettings, monkeypatch: pytest.MonkeyPatch) -> None:
        """A bad version range or setting is a usage error."""
        DynamoDBEventStore(cli_env).ensure_table()
        assert cli("events", "Parcel", "x", "--from", "0")[0] == 2
        monkeypatch.setenv("DYNAMO_ES_MAX_BATCH_SIZE", "lots")
        assert cli("describe")[0] == 2

    def test_unknown_command_exits_2(self) -> None:
        """Argparse rejects an unknown command with exit code 2."""
        with pytest.raises(SystemExit) as caught:
            run(["frobnicate"])
        assert caught.value.code == 2


def test_console_script_is_installed(cli_env: EventStoreSettings) -> None:
    """The dynamo-es executable runs the same command (here: an empty stream, exit 0)."""
    DynamoDBEventStore(cli_env).ensure_table()
    script = Path(sys.executable).parent / "dynamo-es"
    completed = subprocess.run(  # noqa: S603 (our own console script)
        [str(script), "events", "Parcel", "nobody"], capture_output=True, text=True, env=os.environ.copy(), check=False
    )
    assert completed.returncode == 0 and completed.stdout == ""
    assert "no events in Parcel:nobody" in completed.stderr


class TestPolish:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the installed version and exits 0."""
        with pytest.raises(SystemExit) as caught:
            run(["--version"])
        assert caught.value.code == 0 and capsys.readouterr().out.startswith("dynamo-es 0.")

    def test_global_options_after_the_command(self, cli_env: EventStoreSettings) -> None:
        """`dynamo-es describe --table X` uses table X, like `dynamo-es --table X describe`."""
        DynamoDBEventStore(cli_env).ensure_table()
        code, output = cli("describe", "--table", cli_env.events_table_name)
        assert code == 0 and cli_env.events_table_name in output

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["local", "--table", "T"], "unrecognized arguments: --table T"),
            (["--table", "T", "local"], "--table does not apply to local"),
            (
                ["--endpoint-url", "http://127.0.0.1:1", "template", "terraform"],
                "--endpoint-url does not apply to template",
            ),
            (["template", "terraform", "--region", "eu-west-1"], "unrecognized arguments: --region"),
            (["local", "--port", "99999"], "a port is 1 to 65535, not 99999"),
            (["local", "--port", "0"], "a port is 1 to 65535, not 0"),
        ],
    )
    def test_global_options_are_refused_where_they_do_nothing(
        self, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Local takes none of --table/--endpoint-url/--region, template only --table: others exit 2."""
        with pytest.raises(SystemExit) as caught:
            run(argv)
        assert caught.value.code == 2 and message in capsys.readouterr().err

    def test_template_takes_the_table_name(self) -> None:
        """`template ... --table X` names the events table X in the output."""
        code, output = cli("template", "cloudformation", "--table", "Ledger")
        assert code == 0 and '"TableName": "Ledger"' in output

    @pytest.mark.parametrize(
        "argv",
        [
            ["events", "Parcel", "p-1", "--from", "5", "--to", "2"],
            ["outbox", "--limit", "-1"],
            ["tail", "--max", "-3"],
        ],
        ids=["inverted-range", "negative-limit", "negative-max"],
    )
    def test_bad_arguments_exit_2(self, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
        """Usage errors exit 2 with a message, before any request."""
        with pytest.raises(SystemExit) as caught:
            run(argv)
        assert caught.value.code == 2 and "error" in capsys.readouterr().err

    def test_a_malformed_endpoint_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--endpoint-url "not a url" exits 2 with the setting named, not a traceback."""
        assert run(["--endpoint-url", "not a url", "describe"]) == 2
        assert "endpoint_url" in capsys.readouterr().err

    def test_tail_max_zero_prints_nothing(self) -> None:
        """Tail --max 0 returns at once with no output."""
        out = io.StringIO()
        assert run(["tail", "--max", "0"], out=out) == 0 and out.getvalue() == ""

    def test_missing_credentials_against_aws_is_one_line_naming_the_variables(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No keys anywhere and a non-local endpoint: one line naming what to set; no "provision" for a read."""
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        for name in ("DYNAMO_ES_AWS_ACCESS_KEY_ID", "DYNAMO_ES_AWS_SECRET_ACCESS_KEY", "DYNAMO_ES_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup from a test
        monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        assert run(["--endpoint-url", "https://dynamodb.invalid", "describe"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "AWS_ACCESS_KEY_ID" in err and "provision" not in err
        assert "DYNAMO_ES_ENDPOINT_URL" in err and "dynamo-es local" in err  # what a newcomer usually meant

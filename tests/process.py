"""Runs the real server (``python -m server``) as a child process, for tests of its
behaviour as a process: start-up, readiness, shutdown on a signal, its log output.

Every wait has a deadline, stderr goes to a file (a pipe that nobody reads could fill
up and block the server), and ``stop``/``kill`` always leave no child behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from server.config import Config

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 15
REQUEST_TIMEOUT_SECONDS = 10

# Every setting the server reads from the environment: the child gets none of the
# test runner's own (a developer's MONGODB_URI must not leak in), only what a test sets.
_CONFIG_VARIABLES = {name.upper() for name in Config.__dataclass_fields__} \
    | {"JWT_SECRET", "JWT_PREVIOUS_SECRETS"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def connection_refused(port: int, timeout: float = 1.0) -> bool:
    """True if a new TCP connection to the port is refused (nothing listens there)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARIABLES and k != "PYTHONWARNINGS"}
    base["PYTHONUNBUFFERED"] = "1"
    # The child runs in a directory of its own (no developer's .env there), importing from the repository.
    base["PYTHONPATH"] = str(REPO_ROOT)
    base.update(env)
    return base


@dataclasses.dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

    @property
    def json(self):
        return json.loads(self.body)


def request(port: int, method: str, path: str, *, json_body=None, headers: Mapping[str, str] | None = None,
            timeout: float = REQUEST_TIMEOUT_SECONDS, host: str = HOST) -> Reply:
    """One HTTP request on a fresh connection; never raises on a status. ``seconds``
    is the wall time from connecting to the end of the body."""
    headers = dict(headers or {})
    body = None
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, response.headers, data, time.monotonic() - started)
    finally:
        conn.close()


class ServerProcess:
    """``python -m server`` on a free port of 127.0.0.1, with the given environment, in a
    working directory of its own (``cwd``, or a fresh empty one): a developer's ``.env``
    in the repository never reaches it. ``host`` is where requests go."""

    def __init__(self, env: Mapping[str, str] | None = None, port: int | None = None,
                 cwd: Path | str | None = None, host: str = HOST):
        self.port = port or free_port()
        self.host = host
        self._env = child_environment({"PORT": str(self.port), **(env or {})})
        self._own_cwd = tempfile.TemporaryDirectory() if cwd is None else None  # removed in close()
        self.cwd = Path(cwd if cwd is not None else self._own_cwd.name)
        self._stderr = tempfile.TemporaryFile()  # closed in close()
        self.proc: subprocess.Popen | None = None
        self._output: str | None = None  # what it wrote, kept once the file is closed

    # ----- life cycle -----------------------------------------------------------------

    def spawn(self) -> ServerProcess:
        """Starts the process without waiting for it to serve."""
        # Our own interpreter running our own module.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server"],
            cwd=self.cwd,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,  # the server prints nothing on stdout; if it did, the test sees it
            stderr=self._stderr,
        )
        return self

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> ServerProcess:
        """Starts the process and returns once ``/healthz`` answers 200."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited with {self.proc.returncode} before serving:\n{self.stderr}")
            try:
                if request(self.port, "GET", "/healthz", timeout=1, host=self.host).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not answer /healthz within {timeout} s:\n{self.stderr}")
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
        """Every output line parsed as JSON; fails naming the first line that is not an object."""
        entries = []
        output = self.stderr
        for number, line in enumerate(output.splitlines(), 1):
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


def connections_drained(server_port: int, client_ports: set[int]) -> bool | None:
    """True once each connection from ``client_ports`` to ``server_port`` is established
    on the server's side with an empty receive queue: the server process accepted it
    and read the request. None where /proc/net/tcp cannot be read."""
    try:
        with open("/proc/net/tcp", encoding="ascii") as fh:
            rows = fh.read().splitlines()[1:]
    except OSError:
        return None
    drained = set()
    for row in rows:
        fields = row.split()
        local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
        if state != "01":  # ESTABLISHED
            continue
        if int(local.rsplit(":", 1)[1], 16) != server_port:
            continue
        client_port = int(remote.rsplit(":", 1)[1], 16)
        if client_port in client_ports and int(queues.split(":")[1], 16) == 0:
            drained.add(client_port)
    return drained == client_ports


@contextlib.contextmanager
def running_server(env: Mapping[str, str] | None = None, port: int | None = None, **kwargs) -> Iterator[ServerProcess]:
    """A started server, always killed on the way out."""
    with ServerProcess(env, port, **kwargs) as server:
        server.start()
        yield server

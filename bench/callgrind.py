"""Instructions per request, counted by valgrind's callgrind: exact and repeatable where
wrk's requests/s drift by several per cent between runs (and more while anything else
runs on the machine), so this is how a code change is judged A/B.

    python -m bench.callgrind [api|ceiling|peer] [load,load,...]     (needs valgrind)

The loads are bench/steady.py's (dashboard, stream, videos, progress) or any other path
(``healthz``: GET /healthz). The chosen server runs under callgrind with instrumentation
off; for each load, 200 requests warm it up on one keep-alive connection, then the
counters are zeroed, REQUESTS (500) requests are sent one after another, and the dump's
total is divided by REQUESTS. The API always runs (the user and tokens come from it), at
bcrypt cost 4 since logins are not measured here (``peer``: the FastAPI peer, bench/peer.py,
with a user of its own). Every server runs on the loop EVENT_LOOP names (uvloop by default).
Each run takes about half a minute.

``CALLGRIND_TIMERS=off`` holds the API's two timers out of the window: plays are written only
in full batches of 500 (as under load) and the dashboard's catalog is read once, so that two
runs of the same code count the same work. With them on (the default, as the server runs),
the 1 s plays flush writes batches of a few dozen plays at valgrind's pace, and /stream
moves by up to 0.08 M between two windows of one run (bench/README.md, "perf-svc").
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.machine import MeasuredServer
from bench.run import prepare_user
from bench.settings import RESULTS
from bench.steady import steady_loads

REQUESTS = int(os.environ.get("REQUESTS", "500"))
# The API's settings with CALLGRIND_TIMERS=off: no flush but of full batches, no catalog re-read.
TIMERS_OFF = {"PLAYS_FLUSH_SECONDS": "100000", "CATALOG_CACHE_SECONDS": "100000"}
WARMUP_REQUESTS = 200
START_TIMEOUT_SECONDS = 120  # everything runs some 50 times slower under valgrind


class UnderCallgrind(MeasuredServer):
    out_dir: Path

    def spawn(self) -> UnderCallgrind:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out_dir}/callgrind.out.%p",
                   "--dump-instr=no", "--instr-atstart=no", sys.executable, *self._args]
        self.proc = subprocess.Popen(command, cwd=self.cwd, env=self.env,  # noqa: S603 - argv built here
                                     stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr)
        return self


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=60)  # noqa: S603, S607


def instructions_per_request(server: MeasuredServer, out_dir: Path, load: dict, label: str) -> float:
    method = "PUT" if load.get("script") == "put.lua" else "GET"
    body = (load.get("env") or {}).get("BENCH_BODY")
    headers = {**load["headers"], **({"Content-Type": "application/json"} if body else {})}
    connection = http.client.HTTPConnection(server.host, server.port, timeout=60)

    def send(count: int) -> None:
        for _ in range(count):
            connection.request(method, load["path"], body=body, headers=headers)
            reply = connection.getresponse()
            reply.read()
            if reply.status >= 300:
                raise RuntimeError(f"{label} answered {reply.status}")

    pid = str(server.proc.pid)
    try:
        send(WARMUP_REQUESTS)
        callgrind_control("--instr=on", pid)
        callgrind_control("--zero", pid)
        send(REQUESTS)
        callgrind_control(f"--dump={label}", pid)
        callgrind_control("--instr=off", pid)
    finally:
        connection.close()
    newest = max(out_dir.glob("callgrind.out.*"), key=os.path.getmtime)
    total = re.search(r"^(?:summary|totals): (\d+)", newest.read_text(errors="replace"), re.MULTILINE)
    return int(total.group(1)) / REQUESTS


def main(argv: list[str]) -> int:
    which = argv[0] if argv else "api"
    labels = (argv[1] if len(argv) > 1 else "dashboard,stream,videos,progress").split(",")
    out_dir = Path(tempfile.mkdtemp(prefix="callgrind-"))
    UnderCallgrind.out_dir = out_dir
    email = f"bench-{secrets.token_hex(6)}@example.com"
    api_class = UnderCallgrind if which == "api" else MeasuredServer
    timers = TIMERS_OFF if os.environ.get("CALLGRIND_TIMERS", "on") == "off" else {}
    api = api_class({"APP_ENV": "development", "JWT_SECRET": secrets.token_urlsafe(36), "ADMIN_EMAILS": email,
                     "BCRYPT_ROUNDS": "4", **timers}, log_path=RESULTS / "callgrind-api.log", name="the API")
    servers = [api]
    try:
        api.start(START_TIMEOUT_SECONDS)
        measured = api
        if which == "ceiling":
            measured = UnderCallgrind({"LISTEN_BACKLOG": "2048"}, args=["-m", "bench.ceiling"], health_path="/",
                                      log_path=RESULTS / "callgrind-ceiling.log", name="the ceiling app")
            servers.append(measured)
            measured.start(START_TIMEOUT_SECONDS)
        if which == "peer":
            measured = UnderCallgrind({"JWT_SECRET": secrets.token_urlsafe(36), "BCRYPT_ROUNDS": "4"},
                                      args=["-m", "bench.peer"], health_path="/healthz",
                                      log_path=RESULTS / "callgrind-peer.log", name="the FastAPI peer")
            servers.append(measured)
            measured.start(START_TIMEOUT_SECONDS)
        user = prepare_user(measured if which == "peer" else api, email, operator=which != "peer")
        loads = steady_loads(user)
        for label in labels:
            load = loads.get(label) or {"path": f"/{label}", "headers": {}}
            count = instructions_per_request(measured, out_dir, load, label)
            print(f"{which} {label}: {count / 1e6:.3f} M instructions/request", flush=True)
    finally:
        for server in servers:
            server.stop()
    print(f"callgrind files: {out_dir}")
    return 0


if __name__ == "__main__":
    RESULTS.mkdir(parents=True, exist_ok=True)
    sys.exit(main(sys.argv[1:]))

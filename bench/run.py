"""``make bench``: throughput, latency and memory of the API, measured against ceilings
taken on the same machine in the same run.

What one run does:

1. starts the API (``python -m server``: embedded store, production bcrypt cost) and the
   ceiling app (bench/ceiling.py: one Tornado process that only writes {"status":"ok"});
2. signs a user up, logs in, and takes the first dashboard video's id and playback token;
3. times bcrypt.checkpw at the server's cost in this process: the login ceiling is
   cores / (one check's time);
4. drives with wrk: the ceiling, GET /dashboard, GET /video/{id}/stream, then 16
   connections logging in alone (for reference), then the login storm (the same while 8
   load /dashboard as fast as they are answered), the same with /dashboard paced (a
   reference: each connection pauses 8 ms between requests), then the closed-loop storm
   on the ceiling app (bcrypt and nothing else behind its POST /login, a constant JSON
   behind its GET: the best any Tornado process could do here, for reference), then a
   request-count limited /dashboard load that reads the server's RSS after 20k and after
   100k requests;
5. prints a table, writes it to bench/results/latest.json, and stops both servers.

It is a measurement: it exits 0 whether or not the targets are met (each is printed as
MET or MISSED), and non-zero only when it could not measure (no wrk, a server that did
not start, a setup request that failed).

Environment knobs (defaults in brackets): BENCH_SECONDS [10] per measured load (the
steady loads split into BENCH_ROUNDS [3] turns each),
BENCH_WARMUP_SECONDS [2], BENCH_MEMORY_FIRST [20000] and BENCH_MEMORY_TOTAL [100000]
requests, BENCH_MEMORY_MAX_SECONDS [300] as the time bound of the memory phase.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import bcrypt
import yaml

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
HOST = "127.0.0.1"

# The targets, as agreed for the service. Throughput is a fraction of the ceiling app.
TARGET_DASHBOARD_RATIO = 0.60
TARGET_STREAM_RATIO = 0.60
TARGET_STORM_DASHBOARD_P99_MS = 15.0
TARGET_LOGIN_RATIO = 0.85
TARGET_RSS_GROWTH = 0.05

CONNECTIONS = 32
THREADS = 2
STORM_LOGIN_CONNECTIONS = 16
STORM_DASHBOARD_CONNECTIONS = 8
# For reference beside the storm as the issue defines it (closed-loop: the 8 connections
# take all the CPU the event loop gets): the same storm with the dashboard at a steady
# rate, at most 8 connections x 1000/8 ms = 1000 requests/s.
STORM_PACED_PAUSE_MS = 8
BCRYPT_SAMPLES = 5
# How the API is started, after the interpreter; run from the repository root.
SERVER_ARGS = ["-m", "server"]
PASSWORD = "bench-password-0123"  # noqa: S105 - the throwaway benchmark user's password

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 15  # the server's own shutdown grace is 10 s
WRK_SLACK_SECONDS = 30  # on top of a run's duration before wrk itself is killed
# CPU used by processes other than the harness, its servers and wrk, as a share of the
# whole machine: above this the figures are skewed (both servers and wrk lose CPU to it).
NOISY_SHARE = 0.05
SETTLE_TIMEOUT_SECONDS = 30
SETTLE_WINDOW_SECONDS = 0.5
SETTLE_IDLE_SHARE = 0.05  # of one core: "idle" for a server between phases


class BenchError(Exception):
    """The harness could not measure; the message says why."""


@dataclasses.dataclass(frozen=True)
class Settings:
    seconds: float
    rounds: int
    warmup_seconds: float
    memory_first: int
    memory_total: int
    memory_max_seconds: float

    @classmethod
    def from_env(cls) -> Settings:
        def number(name: str, default: float, kind=float):
            raw = os.environ.get(name, "")
            try:
                value = kind(raw) if raw.strip() else default
            except ValueError:
                raise BenchError(f"{name} must be a number, not {raw!r}") from None
            if value < 0:
                raise BenchError(f"{name} must not be negative")
            return value

        settings = cls(
            seconds=max(1.0, number("BENCH_SECONDS", 10.0)),
            rounds=max(1, number("BENCH_ROUNDS", 3, int)),
            warmup_seconds=number("BENCH_WARMUP_SECONDS", 2.0),
            memory_first=max(1, number("BENCH_MEMORY_FIRST", 20000, int)),
            memory_total=max(1, number("BENCH_MEMORY_TOTAL", 100000, int)),
            memory_max_seconds=max(1.0, number("BENCH_MEMORY_MAX_SECONDS", 300.0)),
        )
        if settings.memory_total <= settings.memory_first:
            raise BenchError("BENCH_MEMORY_TOTAL must be larger than BENCH_MEMORY_FIRST")
        return settings


# ----- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """A server subprocess whose output goes to a log file: a pipe nobody reads would
    fill up and block the server once it has logged ~64 KiB of access lines."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.port = int(env["PORT"])
        self.base = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(  # noqa: S603 - argv built here, no shell
            argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                if get_json(self.base + path, timeout=1)[0] == 200:
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer {path} within {START_TIMEOUT_SECONDS} s; see {self.log_path}")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise BenchError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far, all threads."""
        return self._cpu_seconds(f"/proc/{self.process.pid}/stat")

    @staticmethod
    def _cpu_seconds(stat_path: str) -> float:
        with open(stat_path, encoding="ascii") as stat:
            # The command name, field 2, may hold spaces: count the fields after its ')'.
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def thread_cpu_seconds(self) -> dict[str, float]:
        """CPU seconds of the main thread (the event loop) and of all the other threads."""
        split = {"event_loop": 0.0, "other_threads": 0.0}
        for tid in os.listdir(f"/proc/{self.process.pid}/task"):
            try:
                used = self._cpu_seconds(f"/proc/{self.process.pid}/task/{tid}/stat")
            except OSError:
                continue  # the thread ended meanwhile
            split["event_loop" if int(tid) == self.process.pid else "other_threads"] += used
        return split

    def settle(self) -> float:
        """Waits (bounded) until the process is about idle; returns how long that took.
        When wrk stops, the server may still have work queued (logins waiting for a
        bcrypt thread): the next phase should not pay for it."""
        started = time.monotonic()
        while time.monotonic() - started < SETTLE_TIMEOUT_SECONDS:
            before = self.cpu_seconds()
            time.sleep(SETTLE_WINDOW_SECONDS)
            if self.cpu_seconds() - before <= SETTLE_IDLE_SHARE * SETTLE_WINDOW_SECONDS:
                break
        return round(time.monotonic() - started, 2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self._log.close()


def server_env(port: int) -> dict[str, str]:
    """The environment of the API: this one without any setting the service reads (so a
    developer's MONGODB_URI or BCRYPT_ROUNDS cannot leak in), plus the benchmark's own."""
    with open(REPO / "config.yaml", encoding="utf-8") as fh:
        settings = {key.upper() for key in yaml.safe_load(fh) or {}}
    settings |= {"JWT_SECRET", "JWT_PREVIOUS_SECRETS", "MONGODB_URI", "BCRYPT_ROUNDS"}
    env = {k: v for k, v in os.environ.items() if k not in settings}
    env.update(PORT=str(port), APP_ENV="development", JWT_SECRET=secrets.token_urlsafe(36))  # 48 chars
    # The storm logs one account in from 16 clients at once; the throttle counts every attempt
    # before its check, so its per-account limit would turn all but 5 of them into 429s.
    env.update(LOGIN_MAX_FAILURES_PER_ACCOUNT="1000000", PASSWORD_QUEUE_LIMIT="64")  # noqa: S106 - a count
    return env


# ----- CPU accounting: is anything else running? ------------------------------------------


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as stat:
        # cpu  user nice system idle iowait irq softirq steal [guest guest_nice: already in user]
        ticks = [int(t) for t in stat.readline().split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, sum(ticks) / hz


def own_cpu_seconds(servers: list[Server]) -> float:
    """CPU of this process, of its finished children (every wrk) and of the live servers."""
    mine = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime
            + sum(server.cpu_seconds() for server in servers))


class CpuNoise:
    """Measures the CPU that processes outside the benchmark took while it ran."""

    def __init__(self):
        self._busy, self._total = machine_cpu_seconds()
        self._own = own_cpu_seconds([])

    def other_share(self, servers: list[Server]) -> float:
        busy, total = machine_cpu_seconds()
        other = (busy - self._busy) - (own_cpu_seconds(servers) - self._own)
        return round(max(0.0, other) / max(total - self._total, 1e-9), 3)


def busy_share_now(seconds: float = 1.0) -> float:
    """How busy the machine is right now, all cores together (0..1)."""
    busy, total = machine_cpu_seconds()
    time.sleep(seconds)
    busy2, total2 = machine_cpu_seconds()
    return (busy2 - busy) / max(total2 - total, 1e-9)


# ----- HTTP set-up requests ---------------------------------------------------------------

# No proxy: an http_proxy in the environment must not capture requests to loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request_json(method: str, url: str, body=None, token: str | None = None, timeout: float = 30):
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 - loopback http
    try:
        with _OPENER.open(request, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:500]


def get_json(url: str, token: str | None = None, timeout: float = 30):
    return request_json("GET", url, token=token, timeout=timeout)


def prepare_user(api: Server) -> dict:
    """A fresh user, its auth token, and the first dashboard video with its playback token."""
    email = f"bench-{secrets.token_hex(6)}@example.com"
    status, reply = request_json("POST", api.base + "/auth/signup",
                                 {"name": "Bench", "email": email, "password": PASSWORD})
    if status != 201:
        raise BenchError(f"signup answered {status}: {reply!r}")
    status, reply = request_json("POST", api.base + "/auth/login", {"email": email, "password": PASSWORD})
    if status != 200:
        raise BenchError(f"login answered {status}: {reply!r}")
    token = reply["token"]
    # The server seeds the demo catalog in the background after it starts listening.
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        status, reply = get_json(api.base + "/dashboard", token=token)
        if status != 200:
            raise BenchError(f"/dashboard answered {status}: {reply!r}")
        if reply["videos"]:
            break
        if time.monotonic() > deadline:
            raise BenchError("the dashboard stayed empty: the catalog was not seeded")
        time.sleep(0.2)
    video = reply["videos"][0]
    stream_path = f"/video/{video['id']}/stream?token={quote(video['playback_token'], safe='')}"
    status, reply = get_json(api.base + stream_path, token=token)
    if status != 200:
        raise BenchError(f"{stream_path.split('?')[0]} answered {status}: {reply!r}")
    return {"email": email, "token": token, "video_id": video["id"], "stream_path": stream_path}


# ----- bcrypt ceiling -----------------------------------------------------------------------


def bcrypt_ceiling(rounds: int, cores: int) -> dict:
    """Logins a second the machine could do if it did nothing but bcrypt on every core."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds))
    samples = []
    for _ in range(BCRYPT_SAMPLES):
        started = time.perf_counter()
        if not bcrypt.checkpw(PASSWORD.encode(), hashed):
            raise BenchError("bcrypt.checkpw refused its own hash")
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples)
    return {"rounds": rounds, "cores": cores, "checkpw_seconds_median": round(median, 5),
            "checkpw_seconds_samples": [round(s, 5) for s in samples],
            "logins_per_s": round(cores / median, 2)}


def server_setting(name: str, default: int) -> int:
    """What the server will use: config.yaml's value (the harness unsets the environment's)."""
    with open(REPO / "config.yaml", encoding="utf-8") as fh:
        return int((yaml.safe_load(fh) or {}).get(name, default))


def server_bcrypt_rounds() -> int:
    return server_setting("bcrypt_rounds", 12)


def server_bcrypt_threads(cores: int) -> int:
    return server_setting("bcrypt_threads", 0) or cores  # 0: one per core, as the server reads it


# ----- wrk ------------------------------------------------------------------------------------


class Wrk:
    """One wrk process, started at once so that two can run side by side; result() waits."""

    def __init__(self, label: str, url: str, *, connections: int, threads: int, seconds: float,
                 script: str = "get.lua", headers: dict[str, str] | None = None,
                 env: dict[str, str] | None = None, timeout_seconds: float = 2):
        self.label = label
        self.seconds = seconds
        argv = ["wrk", f"-c{connections}", f"-t{threads}", f"-d{math.ceil(seconds)}s",
                f"--timeout={math.ceil(timeout_seconds)}s", "-s", str(BENCH / script)]
        for name, value in (headers or {}).items():
            argv += ["-H", f"{name}: {value}"]
        argv.append(url)
        # cwd=bench/ so that the scripts' `require "report"` finds report.lua.
        self.process = subprocess.Popen(  # noqa: S603 - argv built here, no shell
            argv, cwd=BENCH, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    def result(self) -> dict:
        try:
            output, _ = self.process.communicate(timeout=self.seconds + WRK_SLACK_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(f"wrk ({self.label}) did not finish in time") from None
        lines = [line for line in output.splitlines() if line.startswith("BENCH_JSON ")]
        if self.process.returncode != 0 or not lines:
            raise BenchError(f"wrk ({self.label}) failed with {self.process.returncode}:\n{output}")
        raw = json.loads(lines[-1].removeprefix("BENCH_JSON "))
        seconds = raw["duration_us"] / 1e6
        errors = raw["errors"]
        latency = raw["latency_us"]
        return {
            "requests": raw["requests"],
            "seconds": round(seconds, 3),
            "requests_per_s": round(raw["requests"] / seconds, 1) if seconds else 0.0,
            "latency_ms": {k: round(v / 1000, 3) for k, v in latency.items()},
            "non_2xx": errors["status"],
            "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
            "errors": errors,
        }

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)


def run_wrk(label: str, url: str, **options) -> dict:
    wrk = Wrk(label, url, **options)
    try:
        return wrk.result()
    finally:
        wrk.kill()


# ----- the phases -----------------------------------------------------------------------------


def measure(settings: Settings, api: Server, ceiling: Server, user: dict) -> dict:
    auth = {"Authorization": f"Bearer {user['token']}"}
    steady = {"connections": CONNECTIONS, "threads": THREADS}
    targets = {
        "ceiling": (ceiling.base + "/", {}),
        "dashboard": (api.base + "/dashboard", auth),
        "stream": (api.base + user["stream_path"], auth),
    }
    runs: dict[str, dict] = {}
    rss: dict[str, int] = {"after_setup": api.rss_kib()}

    for label, (url, headers) in targets.items():
        if settings.warmup_seconds:
            run_wrk(f"{label} warm-up", url, seconds=settings.warmup_seconds, headers=headers, **steady)
    # The ceiling and the API take turns, round after round, and each figure is the sum of
    # its rounds: this machine's speed drifts by several per cent from one ten-second
    # stretch to the next, and taking turns spreads that drift over both sides of a ratio.
    per_round = max(1, round(settings.seconds / settings.rounds))
    print(f"  ceiling, /dashboard, /stream in turn: {settings.rounds} rounds of {per_round} s each "
          f"at {CONNECTIONS} connections ...", flush=True)
    rounds: dict[str, list[dict]] = {label: [] for label in targets}
    for _ in range(settings.rounds):
        for label, (url, headers) in targets.items():
            (ceiling if label == "ceiling" else api).settle()
            rounds[label].append(run_wrk(label, url, seconds=per_round, headers=headers, **steady))
    for label, results in rounds.items():
        runs[label] = combine_rounds(results)
    rss["after_steady_runs"] = api.rss_kib()

    cpu_cores = {}
    login_body = json.dumps({"email": user["email"], "password": PASSWORD})
    api.settle()
    print(f"  logins alone: {STORM_LOGIN_CONNECTIONS} logging in, {settings.seconds:g} s ...", flush=True)
    runs["logins_alone"], _, cpu_cores["logins_alone"] = login_load(
        settings, api, "/auth/login", login_body, None)
    api.settle()
    print(f"  login storm: {STORM_LOGIN_CONNECTIONS} logging in, {STORM_DASHBOARD_CONNECTIONS} on /dashboard, "
          f"{settings.seconds:g} s ...", flush=True)
    runs["storm_logins"], runs["storm_dashboard"], cpu_cores["storm"] = login_load(
        settings, api, "/auth/login", login_body, ("/dashboard", auth))
    rss["after_storm"] = api.rss_kib()
    settled = {"after_storm": api.settle()}
    print(f"  the storm with /dashboard paced ({STORM_PACED_PAUSE_MS} ms between an answer and the next "
          f"request), {settings.seconds:g} s ...", flush=True)
    runs["paced_storm_logins"], runs["paced_storm_dashboard"], cpu_cores["paced_storm"] = login_load(
        settings, api, "/auth/login", login_body, ("/dashboard", auth), pause_ms=STORM_PACED_PAUSE_MS)
    settled["after_paced_storm"] = api.settle()
    ceiling.settle()
    print(f"  the same storm on the ceiling app, {settings.seconds:g} s ...", flush=True)
    runs["ceiling_storm_logins"], runs["ceiling_storm_get"], cpu_cores["ceiling_storm"] = login_load(
        settings, ceiling, "/login", "{}", ("/", {}))
    settled["after_ceiling_storm"] = ceiling.settle()  # its queued logins must not slow what follows

    memory = measure_memory(settings, api, auth)
    runs.update(memory.pop("runs"))
    return {"runs": runs, "rss_kib": rss, "memory": memory, "settle_seconds": settled,
            "cpu_cores_by_thread": cpu_cores}


def combine_rounds(results: list[dict]) -> dict:
    """One figure from several wrk runs of the same load: requests/s over all of them;
    the median of their p50s and the worst of their p99s."""
    requests = sum(r["requests"] for r in results)
    seconds = sum(r["seconds"] for r in results)
    errors = {key: sum(r["errors"][key] for r in results) for key in results[0]["errors"]}
    latency = {key: max(r["latency_ms"][key] for r in results) for key in results[0]["latency_ms"]}
    latency["p50"] = statistics.median(r["latency_ms"]["p50"] for r in results)
    return {
        "requests": requests,
        "seconds": round(seconds, 3),
        "requests_per_s": round(requests / seconds, 1) if seconds else 0.0,
        "latency_ms": latency,
        "non_2xx": sum(r["non_2xx"] for r in results),
        "socket_errors": sum(r["socket_errors"] for r in results),
        "errors": errors,
        "rounds_requests_per_s": [r["requests_per_s"] for r in results],
    }


def login_load(settings: Settings, server: Server, login_path: str, body: str,
               also_get: tuple[str, dict] | None, pause_ms: float | None = None):
    """16 connections logging in continuously, alone or (the storm) while 8 load a GET
    (path, headers), as fast as they are answered or, with ``pause_ms``, each pausing that
    long between an answer and its next request. Returns the two wrk results and how many cores the event loop thread
    and the other threads (the bcrypt pool) used meanwhile: the storm's figures are
    mostly that split."""
    before, started = server.thread_cpu_seconds(), time.monotonic()
    # A login waits behind the others for a bcrypt thread: allow far more than wrk's 2 s.
    logins = Wrk("logins", server.base + login_path, connections=STORM_LOGIN_CONNECTIONS, threads=1,
                 seconds=settings.seconds, script="login.lua", env={"BENCH_LOGIN_BODY": body},
                 timeout_seconds=30)
    try:
        loaded = None
        if also_get is not None:
            path, headers = also_get
            pacing = {} if pause_ms is None else {"script": "paced.lua", "env": {"BENCH_PAUSE_MS": str(pause_ms)}}
            load = Wrk("storm GET", server.base + path, connections=STORM_DASHBOARD_CONNECTIONS,
                       threads=1, seconds=settings.seconds, headers=headers, **pacing)
            try:
                loaded = load.result()
            finally:
                load.kill()
        result = logins.result()
    finally:
        logins.kill()
    after, wall = server.thread_cpu_seconds(), time.monotonic() - started
    cores = {part: round((after[part] - before[part]) / wall, 2) for part in after}
    return result, loaded, cores


def measure_memory(settings: Settings, api: Server, auth: dict) -> dict:
    """RSS after the first N and after the total number of /dashboard requests of this phase.
    wrk stops each run after its share of requests, give or take the few that were in
    flight; the counts reported are the ones wrk saw answered."""
    print(f"  memory: {settings.memory_total} /dashboard requests ...", flush=True)
    runs = {}
    served = 0
    points = {}
    started = time.monotonic()
    for label, goal in (("memory_first", settings.memory_first), ("memory_rest", settings.memory_total)):
        remaining = goal - served
        budget = settings.memory_max_seconds - (time.monotonic() - started)
        if budget < 1:
            raise BenchError(f"the memory phase ran out of its {settings.memory_max_seconds:g} s")
        # One wrk thread: the request limit is counted per thread (see limited.lua).
        runs[label] = run_wrk(
            label, api.base + "/dashboard", connections=CONNECTIONS, threads=1, seconds=budget,
            headers=auth, script="limited.lua", env={"BENCH_LIMIT": str(remaining)},
        )
        served += runs[label]["requests"]
        points[label] = {"requests": served, "rss_kib": api.rss_kib()}
    first, total = points["memory_first"], points["memory_rest"]
    return {
        "runs": runs,
        "first": first,
        "total": total,
        "growth": round(total["rss_kib"] / first["rss_kib"] - 1, 4),
    }


# ----- the report -----------------------------------------------------------------------------


def evaluate(runs: dict, memory: dict, login_ceiling: dict, settings: Settings) -> list[dict]:
    ceiling_rps = runs["ceiling"]["requests_per_s"]

    def ratio(label: str) -> float:
        return round(runs[label]["requests_per_s"] / ceiling_rps, 3) if ceiling_rps else 0.0

    logins_per_s = runs["storm_logins"]["requests_per_s"]
    login_ratio = round(logins_per_s / login_ceiling["logins_per_s"], 3)
    errors = {label: run["non_2xx"] + run["socket_errors"] for label, run in runs.items()}
    reached = memory["total"]["requests"] >= settings.memory_total and \
        memory["first"]["requests"] >= settings.memory_first
    return [
        {"name": "/dashboard throughput / ceiling", "value": ratio("dashboard"),
         "target": f">= {TARGET_DASHBOARD_RATIO}", "met": ratio("dashboard") >= TARGET_DASHBOARD_RATIO},
        {"name": "/video/{id}/stream throughput / ceiling", "value": ratio("stream"),
         "target": f">= {TARGET_STREAM_RATIO}", "met": ratio("stream") >= TARGET_STREAM_RATIO},
        {"name": "/dashboard p99 under login storm (ms)", "value": runs["storm_dashboard"]["latency_ms"]["p99"],
         "target": f"<= {TARGET_STORM_DASHBOARD_P99_MS}",
         "met": runs["storm_dashboard"]["latency_ms"]["p99"] <= TARGET_STORM_DASHBOARD_P99_MS},
        {"name": "logins/s / bcrypt ceiling", "value": login_ratio,
         "target": f">= {TARGET_LOGIN_RATIO}", "met": login_ratio >= TARGET_LOGIN_RATIO},
        {"name": f"RSS growth {memory['first']['requests']} -> {memory['total']['requests']} requests",
         "value": memory["growth"], "target": f"<= {TARGET_RSS_GROWTH}",
         # Growth measured over fewer requests than asked for proves nothing.
         "met": reached and memory["growth"] <= TARGET_RSS_GROWTH},
        {"name": "non-2xx + socket errors, all runs", "value": sum(errors.values()),
         "target": "== 0", "met": not any(errors.values()), "by_run": errors},
    ]


def print_report(report: dict) -> None:
    runs = report["runs"]
    ceiling_rps = runs["ceiling"]["requests_per_s"]
    print()
    print(f"{'run':<22} {'conns':>5} {'req/s':>9} {'x ceiling':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'non-2xx':>8} {'sock err':>8}")
    conns = {"storm_dashboard": STORM_DASHBOARD_CONNECTIONS, "storm_logins": STORM_LOGIN_CONNECTIONS,
             "logins_alone": STORM_LOGIN_CONNECTIONS, "ceiling_storm_get": STORM_DASHBOARD_CONNECTIONS,
             "ceiling_storm_logins": STORM_LOGIN_CONNECTIONS, "paced_storm_logins": STORM_LOGIN_CONNECTIONS,
             "paced_storm_dashboard": STORM_DASHBOARD_CONNECTIONS}
    for label, run in runs.items():
        share = run["requests_per_s"] / ceiling_rps if ceiling_rps else 0
        print(f"{label:<22} {conns.get(label, CONNECTIONS):>5} {run['requests_per_s']:>9.1f} {share:>9.3f} "
              f"{run['latency_ms']['p50']:>8.2f} {run['latency_ms']['p99']:>8.2f} "
              f"{run['non_2xx']:>8} {run['socket_errors']:>8}")
    bc = report["bcrypt"]
    mem = report["memory"]
    print()
    print(f"bcrypt cost {bc['rounds']}: checkpw median {bc['checkpw_seconds_median'] * 1000:.1f} ms, "
          f"ceiling {bc['cores']} cores / that = {bc['logins_per_s']:.2f} logins/s; "
          f"storm: {runs['storm_logins']['requests_per_s']:.2f} logins/s")
    alone, storm = report["cpu_cores_by_thread"]["logins_alone"], report["cpu_cores_by_thread"]["storm"]
    print(f"logins alone: {runs['logins_alone']['requests_per_s']:.2f}/s "
          f"({runs['logins_alone']['requests_per_s'] / bc['logins_per_s']:.2f} of the bcrypt ceiling); "
          f"cores used, event loop + other threads: alone {alone['event_loop']} + {alone['other_threads']}, "
          f"storm {storm['event_loop']} + {storm['other_threads']}")
    reference = report["cpu_cores_by_thread"]["ceiling_storm"]
    print(f"the same storm on the ceiling app ({bc['threads']} bcrypt threads, nothing else): logins "
          f"{runs['ceiling_storm_logins']['requests_per_s'] / bc['logins_per_s']:.3f} of the bcrypt ceiling, "
          f"GET p99 {runs['ceiling_storm_get']['latency_ms']['p99']:.2f} ms; cores used "
          f"{reference['event_loop']} + {reference['other_threads']}")
    print(f"the storm with /dashboard paced ({STORM_PACED_PAUSE_MS} ms pauses, "
          f"{runs['paced_storm_dashboard']['requests_per_s']:.0f} req/s): logins "
          f"{runs['paced_storm_logins']['requests_per_s'] / bc['logins_per_s']:.3f} of the bcrypt ceiling, "
          f"/dashboard p99 {runs['paced_storm_dashboard']['latency_ms']['p99']:.2f} ms (for reference, not a target)")
    print(f"other processes' CPU during the run: {report['machine']['other_processes_cpu_share']:.1%} of the machine")
    print(f"RSS: {mem['first']['rss_kib'] / 1024:.1f} MiB after {mem['first']['requests']} requests, "
          f"{mem['total']['rss_kib'] / 1024:.1f} MiB after {mem['total']['requests']}")
    print()
    print(f"{'target':<48} {'value':>10} {'wanted':>10}  result")
    for target in report["targets"]:
        print(f"{target['name']:<48} {target['value']:>10} {target['target']:>10}  "
              f"{'MET' if target['met'] else 'MISSED'}")
    met = sum(t["met"] for t in report["targets"])
    print(f"\n{met} of {len(report['targets'])} targets met; JSON in {RESULTS / 'latest.json'}")
    other = report["machine"]["other_processes_cpu_share"]
    if other > NOISY_SHARE:
        print(f"warning: other processes took {other:.0%} of the machine's CPU during the run: "
              "these figures are skewed; run again on a quiet machine")


# ----- main -----------------------------------------------------------------------------------


def wrk_version() -> str:
    # wrk prints its version, then its usage, and exits 1: only the first line is wanted.
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)  # noqa: S607
    lines = (done.stdout or done.stderr).splitlines()
    return lines[0].strip() if lines else "unknown"


def main() -> int:
    if shutil.which("wrk") is None:
        print("bench: wrk is not on PATH; install it with: apt-get install -y wrk", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    # Anything else running on the machine (a test suite, a build) takes CPU from both the
    # servers and wrk and skews every figure: say so, and keep the numbers in the JSON.
    busy_before = busy_share_now()
    if busy_before > NOISY_SHARE:
        print(f"bench: warning: the machine is already {busy_before:.0%} busy; expect lower, noisier figures",
              file=sys.stderr)
    noise = CpuNoise()
    servers: list[Server] = []
    try:
        api_port, ceiling_port = free_port(), free_port()
        api = Server("the API", [sys.executable, *SERVER_ARGS], server_env(api_port), RESULTS / "server.log")
        servers.append(api)
        ceiling = Server("the ceiling app", [sys.executable, str(BENCH / "ceiling.py")],
                         {**os.environ, "PORT": str(ceiling_port), "BCRYPT_ROUNDS": str(server_bcrypt_rounds()),
                          "BCRYPT_THREADS": str(server_bcrypt_threads(cores))}, RESULTS / "ceiling.log")
        servers.append(ceiling)
        api.wait_healthy("/healthz")
        ceiling.wait_healthy("/")
        user = prepare_user(api)

        # bcrypt is timed while both servers are idle: it is the ceiling, not a load figure.
        print(f"bench: {cores} cores; timing bcrypt ...", flush=True)
        login_ceiling = {**bcrypt_ceiling(server_bcrypt_rounds(), cores), "threads": server_bcrypt_threads(cores)}
        measured = measure(settings, api, ceiling, user)
        other_share = noise.other_share(servers)
    except (BenchError, OSError) as error:  # OSError: a server went away mid-run
        print(f"bench: {error}", file=sys.stderr)
        for server in servers:
            if server.process.poll() is not None:  # the likely cause: say so
                print(f"bench: {server.name} had exited with {server.process.returncode}; see {server.log_path}",
                      file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.stop()

    report = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": cores, "python": platform.python_version(), "wrk": wrk_version(),
                    "platform": platform.platform(),
                    "busy_share_before": round(busy_before, 3),
                    # CPU taken by processes outside the benchmark during the run, as a share
                    # of all cores: above NOISY_SHARE the figures are not trustworthy.
                    "other_processes_cpu_share": other_share},
        "settings": {**dataclasses.asdict(settings), "connections": CONNECTIONS, "threads": THREADS,
                     "storm_login_connections": STORM_LOGIN_CONNECTIONS,
                     "storm_dashboard_connections": STORM_DASHBOARD_CONNECTIONS},
        "bcrypt": login_ceiling,
        **measured,
    }
    report["targets"] = evaluate(report["runs"], report["memory"], login_ceiling, settings)
    report["all_met"] = all(t["met"] for t in report["targets"])
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(report)
    return 0  # a measurement: missed targets are reported, not failed


if __name__ == "__main__":
    sys.exit(main())

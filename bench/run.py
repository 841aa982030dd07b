"""``make bench`` (``python -m bench.run``): throughput, latency and memory of the API,
measured against ceilings taken on the same machine in the same run.

What one run does:

1. starts the API (``python -m server``: embedded store, production bcrypt cost) and the
   ceiling app (bench/ceiling.py: one Tornado process that only writes {"status":"ok"}),
   each as a server process of tests/support, the harness the tests use;
2. signs a user up, logs in, and takes the first dashboard video's id and playback token;
3. times bcrypt.checkpw at the server's cost (read through load_config, as the server
   reads it) in this process: the login ceiling is cores / (one check's time);
4. drives with wrk, one module per phase:
   - bench/steady.py: GET /dashboard, GET /video/{id}/stream, GET /videos?limit=20 and
     PUT /video/{id}/progress, each in turn with the ceiling app sent the same request;
   - bench/crowd.py: /dashboard on 2,000 connections, in turns with the ceiling app;
   - bench/versus.py: /dashboard and /stream of the API against the FastAPI peer
     (bench/peer.py), access logs on and off, four fresh processes in turns;
   - bench/storm.py: 16 connections logging in alone (for reference), then the login
     storm (the same while 8 load /dashboard as fast as they are answered), the same
     with /dashboard paced (a reference: each connection pauses 8 ms between requests),
     then the closed-loop storm on the ceiling app (bcrypt on cores + 1 threads and nothing
     else behind its POST /auth/login, a constant JSON behind its GET: the best any
     Tornado process could do here, what the API's storm is judged against);
   - bench/memory.py: a request-count limited /dashboard load that reads the server's
     RSS after 20k and after 100k requests;
   - bench/analytics.py: /admin/stats?days=30 with 20k and then 100k plays made through
     /stream, /healthz and the event loop's lag meanwhile, and no play lost (alone:
     ``python -m bench.analytics``);
5. checks that the API counted what it served: its /metrics count of /stream answers
   against wrk's, and the plays it wrote against that count (play counting and metrics
   are on, as they are in production);
6. prints a table (bench/report.py), writes it to bench/results/latest.json, and stops
   both servers.

It is a measurement: it exits 0 whether or not the targets are met (each is printed as
MET or MISSED), and non-zero only when it could not measure (no wrk, a server that did
not start, a setup request that failed).

Environment knobs (defaults in brackets): BENCH_SECONDS [12] per measured load (the
steady loads split into BENCH_ROUNDS [4] turns each, an even number: the order of the
turns is reversed every other round),
BENCH_WARMUP_SECONDS [2], BENCH_MEMORY_FIRST [20000] and BENCH_MEMORY_TOTAL [100000]
requests, BENCH_MEMORY_MAX_SECONDS [300] as the time bound of the memory phase.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import re
import resource
import secrets
import shutil
import sys
import time
from urllib.parse import quote

from bench.analytics import evaluate_analytics, measure_analytics, print_analytics, sizes_from_env
from bench.crowd import measure_crowd
from bench.machine import NOISY_SHARE, CpuNoise, MeasuredServer, busy_share_now
from bench.memory import measure_memory
from bench.report import evaluate, print_report
from bench.settings import (
    CONNECTIONS,
    CROWD_CONNECTIONS,
    OPEN_FILES_NEEDED,
    RESULTS,
    START_TIMEOUT_SECONDS,
    STORM_DASHBOARD_CONNECTIONS,
    STORM_LOGIN_CONNECTIONS,
    THREADS,
    BenchError,
    Settings,
)
from bench.steady import measure_steady
from bench.storm import bcrypt_ceiling, measure_storms
from bench.versus import measure_versus
from bench.wrk import wrk_version
from server.config import Config, load_config
from tests.support import PASSWORD, ServerFailed
from tests.support.devmail import mailed_verification_token

SETUP_TIMEOUT_SECONDS = 30


def prepare_user(api: MeasuredServer, email: str, *, operator: bool = True) -> dict:
    """A fresh user, its auth token (and the headers that present it), and the first
    dashboard video with its playback token. ``operator``: the address is verified too (for
    /admin/stats); the FastAPI peer serves no verification, and needs none."""
    reply = api.request("POST", "/auth/signup", json_body={"name": "Bench", "email": email, "password": PASSWORD},
                        timeout=SETUP_TIMEOUT_SECONDS)
    if reply.status != 201:
        raise BenchError(f"signup answered {reply.status}: {reply.body[:500]!r}")
    if operator:
        # An operator (for /admin/stats) needs a verified address: from the development mail
        # the API wrote to MAIL_DIR (.mail/ in its working directory), as a developer would.
        token = mailed_verification_token(api.cwd / ".mail", email, timeout=SETUP_TIMEOUT_SECONDS)
        reply = api.request("POST", "/auth/verify-email/confirm", json_body={"token": token},
                            timeout=SETUP_TIMEOUT_SECONDS)
        if reply.status != 200:
            raise BenchError(f"verify-email/confirm answered {reply.status}: {reply.body[:500]!r}")
    reply = api.request("POST", "/auth/login", json_body={"email": email, "password": PASSWORD},
                        timeout=SETUP_TIMEOUT_SECONDS)
    if reply.status != 200:
        raise BenchError(f"login answered {reply.status}: {reply.body[:500]!r}")
    token = reply.json["token"]
    # The server seeds the demo catalog in the background after it starts listening.
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        reply = api.request("GET", "/dashboard", token=token, timeout=SETUP_TIMEOUT_SECONDS)
        if reply.status != 200:
            raise BenchError(f"/dashboard answered {reply.status}: {reply.body[:500]!r}")
        videos = reply.json["videos"]
        if videos:
            break
        if time.monotonic() > deadline:
            raise BenchError("the dashboard stayed empty: the catalog was not seeded")
        time.sleep(0.2)
    video = videos[0]
    stream_path = f"/video/{video['id']}/stream?token={quote(video['playback_token'], safe='')}"
    reply = api.request("GET", stream_path, token=token, timeout=SETUP_TIMEOUT_SECONDS)
    if reply.status != 200:
        raise BenchError(f"{stream_path.split('?')[0]} answered {reply.status}: {reply.body[:500]!r}")
    return {"email": email, "token": token, "auth_headers": {"Authorization": f"Bearer {token}"},
            "video_id": video["id"], "stream_path": stream_path}


def counted_streams(api: MeasuredServer, user: dict, config: Config) -> dict:
    """What the API itself counted of its /stream answers: the 200s in its /metrics, and
    the plays it wrote (through the admin stats, once the buffer's flush has run)."""
    time.sleep(2 * config.plays_flush_seconds)  # a whole flush period after the last play, whatever its phase
    metrics = api.request("GET", "/metrics", timeout=SETUP_TIMEOUT_SECONDS)
    pattern = r'http_requests_total\{route="/video/\{video_id\}/stream",status="200"\} ([0-9.e+]+)'
    found = re.search(pattern, metrics.body.decode()) if metrics.status == 200 else None
    stats = api.request("GET", "/admin/stats?days=1", token=user["token"], timeout=SETUP_TIMEOUT_SECONDS)
    if found is None or stats.status != 200:
        raise BenchError(f"could not read what the API counted: /metrics {metrics.status}, "
                         f"/admin/stats {stats.status}")
    plays = sum(v["plays"] for v in stats.json["videos"] if v["id"] == user["video_id"])
    return {"metrics_stream_200": int(float(found.group(1))), "plays_written": plays}


def measure(settings: Settings, api: MeasuredServer, ceiling: MeasuredServer, user: dict, config: Config) -> dict:
    """Every phase in turn: the steady loads, the crowd, the login phases, memory."""
    rss: dict[str, int] = {"after_setup": api.rss_kib()}
    runs = measure_steady(settings, api, ceiling, user)
    rss["after_steady_runs"] = api.rss_kib()
    counted = counted_streams(api, user, config)
    runs.update(measure_crowd(settings, api, ceiling, user))
    runs.update(measure_versus(settings, event_loop=config.event_loop))
    storms = measure_storms(settings, api, ceiling, user)
    runs.update(storms["runs"])
    rss["after_storm"] = storms["rss_after_storm"]
    memory = measure_memory(settings, api, user)
    runs.update(memory.pop("runs"))
    analytics = measure_analytics(api, user, *sizes_from_env())
    runs.update(analytics.pop("runs"))
    return {"runs": runs, "rss_kib": rss, "memory": memory, "counted": counted, "analytics": analytics,
            "settle_seconds": storms["settle_seconds"],
            "cpu_cores_by_thread": storms["cpu_cores_by_thread"]}


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
    # wrk and both servers (children: they inherit it) hold the crowd's connections open.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < OPEN_FILES_NEEDED:
        if hard != resource.RLIM_INFINITY and hard < OPEN_FILES_NEEDED:
            print(f"bench: the crowd needs {OPEN_FILES_NEEDED} open files, the hard limit is {hard} "
                  f"(ulimit -Hn): raise it", file=sys.stderr)
            return 2
        resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES_NEEDED, hard))
    # Anything else running on the machine (a test suite, a build) takes CPU from both the
    # servers and wrk and skews every figure: say so, and keep the numbers in the JSON.
    busy_before = busy_share_now()
    if busy_before > NOISY_SHARE:
        print(f"bench: warning: the machine is already {busy_before:.0%} busy; expect lower, noisier figures",
              file=sys.stderr)
    noise = CpuNoise()
    servers: list[MeasuredServer] = []
    try:
        # The API as a developer runs it, with a throwaway secret; what it will use is
        # read the way it reads it (config.yaml, then this environment).
        # The storm logs one account in from 16 clients at once; the throttle counts every
        # attempt before its check, so its per-account limit would turn all but 5 into 429s.
        # The bench's user is an operator (ADMIN_EMAILS), to read the plays the API wrote.
        email = f"bench-{secrets.token_hex(6)}@example.com"
        api = MeasuredServer({"APP_ENV": "development", "JWT_SECRET": secrets.token_urlsafe(36),
                              "LOGIN_MAX_FAILURES_PER_ACCOUNT": "1000000", "PASSWORD_QUEUE_LIMIT": "64",
                              "ADMIN_EMAILS": email},
                             log_path=RESULTS / "server.log", name="the API")
        config = load_config(env=api.env)
        servers.append(api)
        # The storm's reference: bcrypt on cores + 1 threads (one to spare while another
        # thread's check hands its result back), whatever the API is configured with.
        bcrypt_threads = cores + 1
        ceiling = MeasuredServer({"BCRYPT_ROUNDS": str(config.bcrypt_rounds), "BCRYPT_THREADS": str(bcrypt_threads),
                                  "LISTEN_BACKLOG": str(config.listen_backlog), "EVENT_LOOP": config.event_loop},
                                 args=["-m", "bench.ceiling"], log_path=RESULTS / "ceiling.log",
                                 health_path="/", name="the ceiling app")
        servers.append(ceiling)
        api.start(START_TIMEOUT_SECONDS)
        ceiling.start(START_TIMEOUT_SECONDS)
        user = prepare_user(api, email)

        # bcrypt is timed while both servers are idle: it is the ceiling, not a load figure.
        print(f"bench: {cores} cores; timing bcrypt ...", flush=True)
        login_ceiling = {**bcrypt_ceiling(config.bcrypt_rounds, cores), "threads": bcrypt_threads,
                         "api_threads": config.bcrypt_threads or cores}
        measured = measure(settings, api, ceiling, user, config)
        other_share = noise.other_share(servers)
    except (BenchError, ServerFailed, OSError) as error:  # OSError: a server went away mid-run
        print(f"bench: {error}", file=sys.stderr)
        for server in servers:
            if server.proc is not None and server.proc.poll() is not None:  # the likely cause: say so
                print(f"bench: {server.name} had exited with {server.proc.returncode}; see {server.log_path}",
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
                     "crowd_connections": CROWD_CONNECTIONS, "listen_backlog": config.listen_backlog,
                     "event_loop": config.event_loop,
                     "storm_login_connections": STORM_LOGIN_CONNECTIONS,
                     "storm_dashboard_connections": STORM_DASHBOARD_CONNECTIONS},
        "bcrypt": login_ceiling,
        **measured,
    }
    report["targets"] = evaluate(report["runs"], report["memory"], report["counted"], settings)
    analytics_targets = evaluate_analytics(report["analytics"])
    report["targets"] += analytics_targets
    report["all_met"] = all(t["met"] for t in report["targets"])
    (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(report)
    print_analytics(report["analytics"], [])  # its targets are among those print_report printed
    return 0  # a measurement: missed targets are reported, not failed


if __name__ == "__main__":
    sys.exit(main())

"""The API against the FastAPI peer (bench/peer.py), access logs on and off, in turns in
one run: ``GET /dashboard`` and ``GET /video/{id}/stream`` at 32 connections.

Four fresh processes, so that neither side carries what an earlier phase left in its
embedded store: the API as it runs by default (every request logged) and with
``LOG_LEVEL=warning`` (no access lines), the peer with uvicorn's access log and without.
Each gets its own user (sign-up, login, the first dashboard video's playback token) and
the same requests; all four take turns round after round (bench/wrk.py take_turns), the
order reversed every other round, and each ratio is read within the one run.

    python -m bench.versus [--rounds 4] [--seconds 12]

``make bench`` runs it as one of its phases (bench/run.py) and judges the ratios against
the targets of issue 24.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys

from bench.machine import MeasuredServer
from bench.settings import CONNECTIONS, RESULTS, START_TIMEOUT_SECONDS, THREADS, Settings
from bench.steady import steady_loads
from bench.wrk import run_wrk, take_turns

LOADS = ("dashboard", "stream")
# side -> (module, the setting that turns its access log off)
SIDES = {
    "api": (("-m", "server"), {"LOG_LEVEL": "warning"}),
    "peer": (("-m", "bench.peer"), {"ACCESS_LOG": "0"}),
}


def start(side: str, access_log: bool, bcrypt_rounds: int, event_loop: str) -> tuple[MeasuredServer, str]:
    args, quiet = SIDES[side]
    email = f"bench-{secrets.token_hex(6)}@example.com"
    env = {"APP_ENV": "development", "JWT_SECRET": secrets.token_urlsafe(36), "BCRYPT_ROUNDS": str(bcrypt_rounds),
           "ADMIN_EMAILS": email, "EVENT_LOOP": event_loop, **({} if access_log else quiet)}
    name = f"{side} log {'on' if access_log else 'off'}"
    server = MeasuredServer(env, args=args, log_path=RESULTS / f"versus-{side}-log-{'on' if access_log else 'off'}.log",
                            name=name)
    server.start(START_TIMEOUT_SECONDS)
    return server, email


def label(side: str, access_log: bool, load: str) -> str:
    return f"{side}_log_{'on' if access_log else 'off'}_{load}"


def measure_versus(settings: Settings, *, bcrypt_rounds: int = 4, event_loop: str = "uvloop") -> dict[str, dict]:
    """wrk figures per ``<side>_log_<on|off>_<load>``, rounds combined."""
    from bench.run import prepare_user  # bench.run imports this module

    servers: list[MeasuredServer] = []
    try:
        targets = {}
        for access_log in (True, False):
            for side in SIDES:
                server, email = start(side, access_log, bcrypt_rounds, event_loop)
                servers.append(server)
                loads = steady_loads(prepare_user(server, email, operator=side == "api"))
                for load in LOADS:
                    request = loads[load]
                    targets[label(side, access_log, load)] = (
                        server, server.base_url + request["path"], {"headers": request["headers"]})
        if settings.warmup_seconds:
            for name, (_, url, options) in targets.items():
                run_wrk(f"{name} warm-up", url, connections=CONNECTIONS, threads=THREADS,
                        seconds=settings.warmup_seconds, **options)
        return take_turns(settings, targets, rounds=settings.rounds, connections=CONNECTIONS, min_seconds=1,
                          announce="the API and the FastAPI peer, access logs on and off: {rounds} rounds of "
                                   "{seconds} s each at {connections} connections")
    finally:
        for server in servers:
            server.stop()


def ratios(runs: dict[str, dict]) -> dict[str, float]:
    """``<load>_log_<on|off>`` -> the API's requests/s over the peer's."""
    found = {}
    for load in LOADS:
        for access_log in (True, False):
            peer = runs[label("peer", access_log, load)]["requests_per_s"]
            api = runs[label("api", access_log, load)]["requests_per_s"]
            found[f"{load}_log_{'on' if access_log else 'off'}"] = round(api / peer, 3) if peer else 0.0
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.versus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="an even number: the order is reversed every round")
    parser.add_argument("--seconds", type=int, default=12, help="per load and server, over all rounds")
    parser.add_argument("--event-loop", default="uvloop", choices=("uvloop", "asyncio"), help="the API's")
    options = parser.parse_args(argv)
    settings = dataclasses.replace(Settings.from_env(), seconds=options.seconds, rounds=options.rounds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = measure_versus(settings, event_loop=options.event_loop)
    for name, run in runs.items():
        print(f"{name:24s} {run['requests_per_s']:9.1f} req/s  p99 {run['latency_ms']['p99']:7.2f} ms  "
              f"errors {run['non_2xx'] + run['socket_errors']}")
    for name, value in ratios(runs).items():
        print(f"API / peer, {name:18s} {value:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

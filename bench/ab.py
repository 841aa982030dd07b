"""A/B under load: this checkout's API against another version of it, both against the
ceiling, in turns in one run. wrk's figures drift by several per cent between stretches of
ten seconds on this machine, so two versions are only compared this way, never across runs;
two identical versions differ by up to 3 % (bench/README.md).

    python -m bench.ab --other /tmp/b                      (git worktree add /tmp/b <commit>)
    python -m bench.ab --other-env LOG_LEVEL=warning       (the same code, another setting)
    python -m bench.ab --other /tmp/b --loads dashboard,stream --rounds 4 --seconds 12

``A`` is this checkout, ``B`` the other checkout (imported through PYTHONPATH) and/or the
same code with the other settings. Prints each load's requests/s for the ceiling, A and B,
A and B as fractions of the ceiling, and B/A. Logins are not measured (bcrypt cost 4).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from bench.machine import MeasuredServer
from bench.run import prepare_user
from bench.settings import CONNECTIONS, RESULTS, START_TIMEOUT_SECONDS, THREADS
from bench.steady import steady_loads
from bench.wrk import combine_rounds, run_wrk


def start_api(name: str, checkout: str | None, settings: dict[str, str]) -> tuple[MeasuredServer, str]:
    email = f"bench-{secrets.token_hex(6)}@example.com"
    env = {"APP_ENV": "development", "JWT_SECRET": secrets.token_urlsafe(36), "ADMIN_EMAILS": email,
           "BCRYPT_ROUNDS": "4", **settings}
    if checkout:
        env["PYTHONPATH"] = os.path.abspath(checkout)
    server = MeasuredServer(env, log_path=RESULTS / f"ab-{name}.log", name=f"API {name}")
    server.start(START_TIMEOUT_SECONDS)
    return server, email


def setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", help="B's checkout (default: this one)")
    parser.add_argument("--other-env", action="append", default=[], type=setting, metavar="NAME=VALUE",
                        help="a setting of B's (repeatable)")
    parser.add_argument("--loads", default="dashboard,stream,videos,progress")
    parser.add_argument("--rounds", type=int, default=4, help="an even number: A and B swap places each round")
    parser.add_argument("--seconds", type=int, default=12, help="per load and version, over all rounds")
    options = parser.parse_args(argv)
    other_settings = dict(options.other_env)
    labels = options.loads.split(",")
    seconds_per_run = max(1, round(options.seconds / options.rounds))
    RESULTS.mkdir(parents=True, exist_ok=True)

    servers: list[MeasuredServer] = []
    try:
        api_a, email_a = start_api("A", None, {})
        servers.append(api_a)
        api_b, email_b = start_api("B", options.other, other_settings)
        servers.append(api_b)
        ceiling = MeasuredServer({"LISTEN_BACKLOG": "2048"}, args=["-m", "bench.ceiling"], health_path="/",
                                 log_path=RESULTS / "ab-ceiling.log", name="the ceiling app")
        servers.append(ceiling)
        ceiling.start(START_TIMEOUT_SECONDS)
        loads = {"A": steady_loads(prepare_user(api_a, email_a)), "B": steady_loads(prepare_user(api_b, email_b))}
        targets = {}
        for label in labels:
            for side, server in (("ceiling", ceiling), ("A", api_a), ("B", api_b)):
                load = loads["B" if side == "ceiling" else side][label]
                targets[side, label] = (server, server.base_url + load["path"], {
                    "headers": load["headers"], "script": load.get("script", "get.lua"), "env": load.get("env")})
        print(f"  {', '.join(labels)}: the ceiling, A and B in turn, {options.rounds} rounds of {seconds_per_run} s "
              f"at {CONNECTIONS} connections ...", flush=True)
        runs: dict[tuple[str, str], list[dict]] = {key: [] for key in targets}
        for round_number in range(options.rounds):
            # A and B swap places every round: of two identical versions, the one that ran
            # second each time measured up to 5 % lower.
            order = ("ceiling", "A", "B") if round_number % 2 == 0 else ("ceiling", "B", "A")
            for label in labels:
                for side in order:
                    server, url, wrk_options = targets[side, label]
                    server.settle()
                    runs[side, label].append(run_wrk(f"{side} {label}", url, connections=CONNECTIONS,
                                                     threads=THREADS, seconds=seconds_per_run, **wrk_options))
        results = {key: combine_rounds(measured) for key, measured in runs.items()}
    finally:
        for server in servers:
            server.stop()
    print(f"{'load':10s} {'ceiling':>9s} {'A':>9s} {'B':>9s}  {'A/ceil':>6s} {'B/ceil':>6s}  {'B/A':>6s}")
    for label in labels:
        ceiling_rate, a_rate, b_rate = (results[side, label]["requests_per_s"] for side in ("ceiling", "A", "B"))
        print(f"{label:10s} {ceiling_rate:9.1f} {a_rate:9.1f} {b_rate:9.1f}  "
              f"{a_rate / ceiling_rate:6.3f} {b_rate / ceiling_rate:6.3f}  {b_rate / a_rate:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A/B under load: this checkout's API against another version of it, both against the
ceiling, in turns in one run. wrk's figures drift by several per cent between stretches of
ten seconds on this machine, so two versions are only compared this way, never across runs;
two identical versions differ by a few per cent (bench/README.md).

    python -m bench.ab --other /tmp/b                      (git worktree add /tmp/b <commit>)
    python -m bench.ab --other-env LOG_LEVEL=warning       (the same code, another setting)
    python -m bench.ab --other /tmp/b --loads dashboard,stream --rounds 4 --seconds 12

``A`` is this checkout, ``B`` the other checkout (imported through PYTHONPATH) and/or the
same code with the other settings. Prints each load's requests/s for the ceiling, A and B,
A and B as fractions of the ceiling, and B/A. Logins are not measured (bcrypt cost 4).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys

from bench.machine import MeasuredServer
from bench.run import prepare_user
from bench.settings import CONNECTIONS, RESULTS, START_TIMEOUT_SECONDS, Settings
from bench.steady import steady_loads
from bench.wrk import take_turns


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
    parser.add_argument("--rounds", type=int, default=4, help="an even number: A and B swap places every round")
    parser.add_argument("--seconds", type=int, default=12, help="per load and version, over all rounds")
    options = parser.parse_args(argv)
    other_settings = dict(options.other_env)
    labels = options.loads.split(",")
    settings = dataclasses.replace(Settings.from_env(), seconds=options.seconds, rounds=options.rounds)
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
            # The ceiling between A and B: take_turns reverses the order every other round,
            # so A and B swap places and each is first as often as last.
            for side, server in (("A", api_a), ("ceiling", ceiling), ("B", api_b)):
                load = loads["B" if side == "ceiling" else side][label]
                targets[f"{side} {label}"] = (server, server.base_url + load["path"], {
                    "headers": load["headers"], "script": load.get("script", "get.lua"), "env": load.get("env")})
        results = take_turns(settings, targets, rounds=options.rounds, connections=CONNECTIONS, min_seconds=1,
                             announce="{targets} in turn: {rounds} rounds of {seconds} s at {connections} connections")
    finally:
        for server in servers:
            server.stop()
    print(f"{'load':10s} {'ceiling':>9s} {'A':>9s} {'B':>9s}  {'A/ceil':>6s} {'B/ceil':>6s}  {'B/A':>6s}")
    for label in labels:
        ceiling_rate, a_rate, b_rate = (results[f"{side} {label}"]["requests_per_s"] for side in ("ceiling", "A", "B"))
        print(f"{label:10s} {ceiling_rate:9.1f} {a_rate:9.1f} {b_rate:9.1f}  "
              f"{a_rate / ceiling_rate:6.3f} {b_rate / ceiling_rate:6.3f}  {b_rate / a_rate:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

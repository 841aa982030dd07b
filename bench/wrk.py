"""Driving load with wrk: one process per load, its JSON report (report.lua) parsed."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess

from bench.machine import MeasuredServer
from bench.settings import BENCH, STOP_TIMEOUT_SECONDS, THREADS, BenchError, Settings

WRK_SLACK_SECONDS = 30  # on top of a run's duration before wrk itself is killed


class Wrk:
    """One wrk process, started at once so that two can run side by side; result() waits."""

    def __init__(self, label: str, url: str, *, connections: int, threads: int, seconds: float,
                 script: str = "get.lua", headers: dict[str, str] | None = None,
                 env: dict[str, str] | None = None, timeout_seconds: float = 2):
        self.label = label
        self.connections = connections
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
            "connections": self.connections,
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


def combine_rounds(results: list[dict]) -> dict:
    """One figure from several wrk runs of the same load: requests/s over all of them;
    the median of their p50s and the worst of their p99s."""
    requests = sum(r["requests"] for r in results)
    seconds = sum(r["seconds"] for r in results)
    errors = {key: sum(r["errors"][key] for r in results) for key in results[0]["errors"]}
    latency = {key: max(r["latency_ms"][key] for r in results) for key in results[0]["latency_ms"]}
    latency["p50"] = statistics.median(r["latency_ms"]["p50"] for r in results)
    return {
        "connections": results[0]["connections"],
        "requests": requests,
        "seconds": round(seconds, 3),
        "requests_per_s": round(requests / seconds, 1) if seconds else 0.0,
        "latency_ms": latency,
        "non_2xx": sum(r["non_2xx"] for r in results),
        "socket_errors": sum(r["socket_errors"] for r in results),
        "errors": errors,
        "rounds_requests_per_s": [r["requests_per_s"] for r in results],
        "rounds_errors": [r["non_2xx"] + r["socket_errors"] for r in results],
    }


def take_turns(settings: Settings, targets: dict[str, tuple[MeasuredServer, str, dict]], *, rounds: int,
               connections: int, min_seconds: int, announce: str) -> dict[str, dict]:
    """Runs each target (label -> server, URL, wrk options) in turn, ``rounds`` times over,
    each run BENCH_SECONDS / BENCH_ROUNDS long (at least ``min_seconds``), and combines each
    label's rounds. ``announce`` is printed first, formatted with the targets, rounds,
    seconds of a round and connections.

    The ceiling and the API take turns, round after round, and each figure is the sum of its
    rounds: this machine's speed drifts by several per cent from one ten-second stretch to
    the next, and taking turns spreads that drift over both sides of a ratio. Every other
    round runs the targets in the reverse order: of two identical servers, the one that ran
    second in every round measured a few per cent lower (bench/README.md); with an even number of
    rounds, each of two targets run one after the other is first as often as second."""
    per_round = max(min_seconds, round(settings.seconds / settings.rounds))
    print("  " + announce.format(targets=", ".join(targets), rounds=rounds, seconds=per_round,
                                 connections=connections) + " ...", flush=True)
    results: dict[str, list[dict]] = {label: [] for label in targets}
    for round_number in range(rounds):
        in_turn = list(targets.items())
        for label, (server, url, options) in in_turn if round_number % 2 == 0 else reversed(in_turn):
            server.settle()  # what the previous run left queued must not slow this one
            results[label].append(run_wrk(label, url, connections=connections, threads=THREADS,
                                          seconds=per_round, **options))
    return {label: combine_rounds(runs) for label, runs in results.items()}


def wrk_version() -> str:
    # wrk prints its version, then its usage, and exits 1: only the first line is wanted.
    done = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)  # noqa: S607
    lines = (done.stdout or done.stderr).splitlines()
    return lines[0].strip() if lines else "unknown"

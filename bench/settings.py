"""What one run measures against, and the knobs it reads from the environment."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

# The targets, as agreed for the service (issue 13). Throughput is a fraction of the
# ceiling app sent the same request (method, path, query string, headers, body).
TARGET_DASHBOARD_RATIO = 0.85
TARGET_STREAM_RATIO = 0.80  # issue 24
TARGET_CROWD_RATIO = 0.85
TARGET_VIDEOS_RATIO = 0.50
TARGET_PROGRESS_RATIO = 0.40
TARGET_STORM_DASHBOARD_P99_MS = 15.0
# Logins under the storm, as a fraction of the ceiling app's logins (bcrypt only, on
# cores + 1 threads) under the same storm in the same run.
TARGET_LOGIN_RATIO = 0.90
TARGET_RSS_GROWTH = 0.05
# Issue 24: the API's requests/s over the FastAPI peer's (bench/peer.py, bench/versus.py)
# for /dashboard and /stream, with both sides' access logs on, and with both off.
TARGET_PEER_RATIO_LOG_ON = 1.25
TARGET_PEER_RATIO_LOG_OFF = 1.10

CONNECTIONS = 32
THREADS = 2
# The crowd: this many keep-alive connections at once, opened together by wrk, in
# CROWD_RUNS runs each of the API and the ceiling, taking turns.
CROWD_CONNECTIONS = 2000
CROWD_RUNS = 4
# File descriptors wrk and each server need for the crowd, with room for the rest.
OPEN_FILES_NEEDED = CROWD_CONNECTIONS + 512
STORM_LOGIN_CONNECTIONS = 16
STORM_DASHBOARD_CONNECTIONS = 8
# For reference beside the storm as the issue defines it (closed-loop: the 8 connections
# take all the CPU the event loop gets): the same storm with the dashboard at a steady
# rate, at most 8 connections x 1000/8 ms = 1000 requests/s.
STORM_PACED_PAUSE_MS = 8

START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 15  # the server's own shutdown grace is 10 s


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
            seconds=max(1.0, number("BENCH_SECONDS", 12.0)),
            rounds=max(1, number("BENCH_ROUNDS", 4, int)),
            warmup_seconds=number("BENCH_WARMUP_SECONDS", 2.0),
            memory_first=max(1, number("BENCH_MEMORY_FIRST", 20000, int)),
            memory_total=max(1, number("BENCH_MEMORY_TOTAL", 100000, int)),
            memory_max_seconds=max(1.0, number("BENCH_MEMORY_MAX_SECONDS", 300.0)),
        )
        if settings.memory_total <= settings.memory_first:
            raise BenchError("BENCH_MEMORY_TOTAL must be larger than BENCH_MEMORY_FIRST")
        return settings

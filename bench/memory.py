"""The memory phase: the API's resident memory after a first and after a total number
of /dashboard requests."""

from __future__ import annotations

import time

from bench.machine import MeasuredServer
from bench.settings import CONNECTIONS, BenchError, Settings
from bench.wrk import run_wrk


def measure_memory(settings: Settings, api: MeasuredServer, user: dict) -> dict:
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
            label, api.base_url + "/dashboard", connections=CONNECTIONS, threads=1, seconds=budget,
            headers=user["auth_headers"], script="limited.lua", env={"BENCH_LIMIT": str(remaining)},
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

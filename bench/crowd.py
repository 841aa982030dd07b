"""The crowd: GET /dashboard on 2,000 keep-alive connections that wrk opens all at once,
against the ceiling app sent the same request on as many, in turns (CROWD_RUNS each).

All 2,000 connect within milliseconds: whatever the listen backlog cannot queue has its
SYN dropped and retried by the kernel 1 s, then 3 s later, which wrk reports as timeouts
(over its 2 s) or connect errors. Both servers listen with the API's LISTEN_BACKLOG."""

from __future__ import annotations

from bench.machine import MeasuredServer
from bench.settings import CROWD_CONNECTIONS, CROWD_RUNS, THREADS, Settings
from bench.wrk import combine_rounds, run_wrk


def measure_crowd(settings: Settings, api: MeasuredServer, ceiling: MeasuredServer, user: dict) -> dict:
    auth = {"Authorization": f"Bearer {user['token']}"}
    per_run = max(2, round(settings.seconds / settings.rounds))
    print(f"  the crowd: /dashboard on {CROWD_CONNECTIONS} connections, {CROWD_RUNS} runs of {per_run} s each "
          f"for the ceiling and the API in turn ...", flush=True)
    runs: dict[str, list[dict]] = {"ceiling_crowd": [], "crowd": []}
    for _ in range(CROWD_RUNS):
        for label, server in (("ceiling_crowd", ceiling), ("crowd", api)):
            server.settle()
            runs[label].append(run_wrk(label, server.base_url + "/dashboard", connections=CROWD_CONNECTIONS,
                                       threads=THREADS, seconds=per_run, headers=auth))
    return {label: combine_rounds(results) for label, results in runs.items()}

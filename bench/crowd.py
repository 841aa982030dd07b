"""The crowd: GET /dashboard on 2,000 keep-alive connections that wrk opens all at once,
against the ceiling app sent the same request on as many, in turns (CROWD_RUNS each).

All 2,000 connect within milliseconds: whatever the listen backlog cannot queue has its
SYN dropped and retried by the kernel 1 s, then 3 s later, which wrk reports as timeouts
(over its 2 s) or connect errors. Both servers listen with the API's LISTEN_BACKLOG."""

from __future__ import annotations

from bench.machine import MeasuredServer
from bench.settings import CROWD_CONNECTIONS, CROWD_RUNS, Settings
from bench.wrk import take_turns


def measure_crowd(settings: Settings, api: MeasuredServer, ceiling: MeasuredServer, user: dict) -> dict:
    options = {"headers": user["auth_headers"]}
    targets = {"ceiling_crowd": (ceiling, ceiling.base_url + "/dashboard", options),
               "crowd": (api, api.base_url + "/dashboard", options)}
    return take_turns(settings, targets, rounds=CROWD_RUNS, connections=CROWD_CONNECTIONS, min_seconds=2,
                      announce="the crowd: /dashboard on {connections} connections, {rounds} runs of {seconds} s "
                               "each for the ceiling and the API in turn")

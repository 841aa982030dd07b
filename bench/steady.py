"""The steady loads at 32 connections: GET /dashboard, GET /video/{id}/stream,
GET /videos?limit=20 and PUT /video/{id}/progress, each against the ceiling app sent the
very same request (path, query string, headers with the bearer token, body), all taking
turns round after round."""

from __future__ import annotations

import json

from bench.machine import MeasuredServer
from bench.settings import CONNECTIONS, THREADS, Settings
from bench.wrk import run_wrk, take_turns

# What the progress load saves: a position a user could report.
PROGRESS_BODY = json.dumps({"position_seconds": 42.5, "duration_seconds": 212})


def steady_loads(user: dict) -> dict[str, dict]:
    """label -> the request of that load (path with its query, headers, wrk script and its env)."""
    auth = user["auth_headers"]
    return {
        "dashboard": {"path": "/dashboard", "headers": auth},
        "stream": {"path": user["stream_path"], "headers": auth},
        "videos": {"path": "/videos?limit=20", "headers": auth},
        "progress": {"path": f"/video/{user['video_id']}/progress", "headers": auth,
                     "script": "put.lua", "env": {"BENCH_BODY": PROGRESS_BODY}},
    }


def measure_steady(settings: Settings, api: MeasuredServer, ceiling: MeasuredServer, user: dict) -> dict:
    """Each load's wrk figures and its ceiling's (``ceiling_<label>``), rounds combined."""
    targets = {}
    for label, load in steady_loads(user).items():
        wrk_options = {"headers": load["headers"], "script": load.get("script", "get.lua"), "env": load.get("env")}
        # The ceiling first: it is what the API's figure is read against.
        targets[f"ceiling_{label}"] = (ceiling, ceiling.base_url + load["path"], wrk_options)
        targets[label] = (api, api.base_url + load["path"], wrk_options)
    for label, (_, url, options) in targets.items():
        if settings.warmup_seconds:
            run_wrk(f"{label} warm-up", url, connections=CONNECTIONS, threads=THREADS,
                    seconds=settings.warmup_seconds, **options)
    return take_turns(settings, targets, rounds=settings.rounds, connections=CONNECTIONS, min_seconds=1,
                      announce="{targets} in turn: {rounds} rounds of {seconds} s each at {connections} connections")

"""The steady loads at 32 connections: GET /dashboard, GET /video/{id}/stream,
GET /videos?limit=20 and PUT /video/{id}/progress, each against the ceiling app sent the
very same request (path, query string, headers with the bearer token, body), all taking
turns round after round."""

from __future__ import annotations

import json

from bench.machine import MeasuredServer
from bench.settings import CONNECTIONS, THREADS, Settings
from bench.wrk import combine_rounds, run_wrk

# What the progress load saves: a position a user could report.
PROGRESS_BODY = json.dumps({"position_seconds": 42.5, "duration_seconds": 212})


def steady_loads(user: dict) -> dict[str, dict]:
    """label -> the request of that load (path with its query, headers, wrk script and its env)."""
    auth = {"Authorization": f"Bearer {user['token']}"}
    return {
        "dashboard": {"path": "/dashboard", "headers": auth},
        "stream": {"path": user["stream_path"], "headers": auth},
        "videos": {"path": "/videos?limit=20", "headers": auth},
        "progress": {"path": f"/video/{user['video_id']}/progress", "headers": auth,
                     "script": "put.lua", "env": {"BENCH_BODY": PROGRESS_BODY}},
    }


def ceiling_label(label: str) -> str:
    return f"ceiling_{label}"


def measure_steady(settings: Settings, api: MeasuredServer, ceiling: MeasuredServer, user: dict) -> dict:
    """Each load's wrk figures and its ceiling's (``ceiling_<label>``), rounds combined."""
    steady = {"connections": CONNECTIONS, "threads": THREADS}
    targets = {}
    for label, load in steady_loads(user).items():
        wrk_options = {"headers": load["headers"], "script": load.get("script", "get.lua"), "env": load.get("env")}
        # The ceiling first: it is what the API's figure is read against.
        targets[ceiling_label(label)] = (ceiling, ceiling.base_url + load["path"], wrk_options)
        targets[label] = (api, api.base_url + load["path"], wrk_options)
    for label, (_, url, options) in targets.items():
        if settings.warmup_seconds:
            run_wrk(f"{label} warm-up", url, seconds=settings.warmup_seconds, **options, **steady)
    # The ceiling and the API take turns, round after round, and each figure is the sum of
    # its rounds: this machine's speed drifts by several per cent from one ten-second
    # stretch to the next, and taking turns spreads that drift over both sides of a ratio.
    per_round = max(1, round(settings.seconds / settings.rounds))
    print(f"  {', '.join(targets)} in turn: {settings.rounds} rounds of {per_round} s each "
          f"at {CONNECTIONS} connections ...", flush=True)
    rounds: dict[str, list[dict]] = {label: [] for label in targets}
    for _ in range(settings.rounds):
        for label, (server, url, options) in targets.items():
            server.settle()
            rounds[label].append(run_wrk(label, url, seconds=per_round, **options, **steady))
    return {label: combine_rounds(results) for label, results in rounds.items()}

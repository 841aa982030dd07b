"""The steady loads: the ceiling app, GET /dashboard and GET /video/{id}/stream, taking
turns round after round at the same wrk settings."""

from __future__ import annotations

from bench.machine import MeasuredServer
from bench.settings import CONNECTIONS, THREADS, Settings
from bench.wrk import combine_rounds, run_wrk


def measure_steady(settings: Settings, api: MeasuredServer, ceiling: MeasuredServer, user: dict) -> dict:
    """Each load's wrk figures, its rounds combined."""
    auth = {"Authorization": f"Bearer {user['token']}"}
    steady = {"connections": CONNECTIONS, "threads": THREADS}
    targets = {
        "ceiling": (ceiling.base_url + "/", {}),
        "dashboard": (api.base_url + "/dashboard", auth),
        "stream": (api.base_url + user["stream_path"], auth),
    }
    for label, (url, headers) in targets.items():
        if settings.warmup_seconds:
            run_wrk(f"{label} warm-up", url, seconds=settings.warmup_seconds, headers=headers, **steady)
    # The ceiling and the API take turns, round after round, and each figure is the sum of
    # its rounds: this machine's speed drifts by several per cent from one ten-second
    # stretch to the next, and taking turns spreads that drift over both sides of a ratio.
    per_round = max(1, round(settings.seconds / settings.rounds))
    print(f"  ceiling, /dashboard, /stream in turn: {settings.rounds} rounds of {per_round} s each "
          f"at {CONNECTIONS} connections ...", flush=True)
    rounds: dict[str, list[dict]] = {label: [] for label in targets}
    for _ in range(settings.rounds):
        for label, (url, headers) in targets.items():
            (ceiling if label == "ceiling" else api).settle()
            rounds[label].append(run_wrk(label, url, seconds=per_round, headers=headers, **steady))
    return {label: combine_rounds(results) for label, results in rounds.items()}

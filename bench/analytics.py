"""The analytics phase (issue 20): /admin/stats with 20,000 and then 100,000 plays stored,
every one of them made through GET /video/{id}/stream (wrk, limited.lua), and what the
rest of the server sees meanwhile.

At each size, once the plays are flushed: sequential GET /admin/stats?days=30 (their
median), at least ``STATS_REQUESTS`` of them and for at least ``STATS_SECONDS``, while a
thread asks /healthz in a loop (its slowest answer), and the event loop's lag over that time from the server's own
``event_loop_lag_seconds`` histogram (p99 as the bucket bound it falls in). Then the
stats' plays total against the /stream 200s the server counted in /metrics: none lost.

``python -m bench.analytics`` runs this phase alone against its own API server (the quick
mode: minutes instead of make bench's whole run). BENCH_ANALYTICS_FIRST [20000] and
BENCH_ANALYTICS_TOTAL [100000] set the sizes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import sys
import threading
import time

from prometheus_client.parser import text_string_to_metric_families

from bench.machine import MeasuredServer
from bench.settings import CONNECTIONS, RESULTS, START_TIMEOUT_SECONDS, BenchError
from bench.wrk import run_wrk

STATS_PATH = "/admin/stats?days=30"
STATS_REQUESTS = 20
STATS_SECONDS = 5.0  # at least this long, for the loop-lag histogram to see ~50 ticks
FLUSH_WAIT_SECONDS = 30
TIMEOUT_SECONDS = 30
TARGET_STATS_MEDIAN_MS = 100.0
TARGET_STATS_GROWTH = 1.5
TARGET_HEALTHZ_MS = 50.0
TARGET_LOOP_LAG_P99_MS = 50.0
STREAM_COUNTED = r'http_requests_total\{route="/video/\{video_id\}/stream",status="200"\} ([0-9.e+]+)'


def sizes_from_env() -> tuple[int, int]:
    first = int(os.environ.get("BENCH_ANALYTICS_FIRST") or 20000)
    total = int(os.environ.get("BENCH_ANALYTICS_TOTAL") or 100000)
    if not 0 < first < total:
        raise BenchError("BENCH_ANALYTICS_FIRST must be positive and below BENCH_ANALYTICS_TOTAL")
    return first, total


def _metrics(api: MeasuredServer) -> str:
    reply = api.request("GET", "/metrics", timeout=TIMEOUT_SECONDS)
    if reply.status != 200:
        raise BenchError(f"/metrics answered {reply.status}")
    return reply.body.decode()


def _lag_buckets(text: str) -> dict[float, float]:
    for family in text_string_to_metric_families(text):
        if family.name == "event_loop_lag_seconds":
            return {float(s.labels["le"]): s.value for s in family.samples if s.name.endswith("_bucket")}
    raise BenchError("/metrics has no event_loop_lag_seconds")


def _lag_p99_ms(before: dict[float, float], after: dict[float, float]) -> tuple[float, int]:
    """The bound of the bucket holding the 99th percentile of the ticks between two scrapes."""
    counts = {bound: after[bound] - before.get(bound, 0) for bound in sorted(after)}
    total = counts[float("inf")]
    for bound, cumulative in counts.items():
        if cumulative >= 0.99 * total:
            return bound * 1000, int(total)
    return float("inf"), int(total)


def _served(api: MeasuredServer) -> int:
    found = re.search(STREAM_COUNTED, _metrics(api))
    return int(float(found.group(1))) if found else 0


def _stats(api: MeasuredServer, token: str) -> tuple[float, dict]:
    started = time.perf_counter()
    reply = api.request("GET", STATS_PATH, token=token, timeout=TIMEOUT_SECONDS)
    elapsed = time.perf_counter() - started
    if reply.status != 200:
        raise BenchError(f"{STATS_PATH} answered {reply.status}: {reply.body[:300]!r}")
    return elapsed, reply.json


def _plays_total(stats: dict) -> int:
    return sum(video["plays"] for video in stats["videos"])


class HealthProbe(threading.Thread):
    """/healthz in a loop, every answer's time kept, until stopped."""

    def __init__(self, api: MeasuredServer):
        super().__init__(daemon=True)
        self.api = api
        self.seconds: list[float] = []
        self.failures = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            started = time.perf_counter()
            reply = self.api.request("GET", "/healthz", timeout=TIMEOUT_SECONDS)
            self.seconds.append(time.perf_counter() - started)
            if reply.status != 200:
                self.failures += 1
            self._stop_event.wait(0.01)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(TIMEOUT_SECONDS)


def measure_analytics(api: MeasuredServer, user: dict, first: int, total: int) -> dict:
    """Both sizes in turn; the stream loads are counted in ``runs``."""
    print(f"  analytics: {first} then {total} plays through /stream, {STATS_PATH} for {STATS_SECONDS:g} s each ...",
          flush=True)
    runs: dict = {}
    points: dict = {}
    for label, goal in ((f"analytics_{first // 1000}k", first), (f"analytics_{total // 1000}k", total)):
        remaining = goal - _served(api)
        lag_before = _lag_buckets(_metrics(api))
        if remaining > 0:
            # One wrk thread: the request limit is counted per thread (limited.lua).
            runs[label] = run_wrk(label, api.base_url + user["stream_path"], connections=CONNECTIONS, threads=1,
                                  seconds=600, headers=user["auth_headers"], script="limited.lua",
                                  env={"BENCH_LIMIT": str(remaining)})
        stream_lag_p99, _ = _lag_p99_ms(lag_before, _lag_buckets(_metrics(api)))
        served = _served(api)
        deadline = time.monotonic() + FLUSH_WAIT_SECONDS
        while True:  # the last plays are written within a flush period
            _, stats = _stats(api, user["token"])
            if _plays_total(stats) >= served or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        probe = HealthProbe(api)
        lag_before = _lag_buckets(_metrics(api))
        probe.start()
        timings: list[float] = []
        until = time.monotonic() + STATS_SECONDS
        try:
            while len(timings) < STATS_REQUESTS or time.monotonic() < until:
                elapsed, stats = _stats(api, user["token"])
                timings.append(elapsed)
        finally:
            probe.stop()
        lag_p99, ticks = _lag_p99_ms(lag_before, _lag_buckets(_metrics(api)))
        points[label] = {
            "plays_served": served,
            "plays_in_stats": _plays_total(stats),
            "stats_median_ms": round(statistics.median(timings) * 1000, 2),
            "stats_max_ms": round(max(timings) * 1000, 2),
            "stats_requests": len(timings),
            "healthz_max_ms": round(max(probe.seconds) * 1000, 2) if probe.seconds else None,
            "healthz_requests": len(probe.seconds),
            "healthz_failures": probe.failures,
            "loop_lag_p99_ms": lag_p99,
            "loop_lag_ticks": ticks,
            "loop_lag_p99_during_stream_load_ms": stream_lag_p99,
        }
    return {"runs": runs, "points": points}


def evaluate_analytics(analytics: dict) -> list[dict]:
    small, large = analytics["points"].values()
    growth = round(large["stats_median_ms"] / small["stats_median_ms"], 2) if small["stats_median_ms"] else 0.0
    healthz = max(small["healthz_max_ms"] or 0, large["healthz_max_ms"] or 0)
    lag = max(small["loop_lag_p99_ms"], large["loop_lag_p99_ms"])
    return [
        {"name": f"{STATS_PATH} median at {large['plays_served']} plays (ms)", "value": large["stats_median_ms"],
         "target": f"<= {TARGET_STATS_MEDIAN_MS}", "met": large["stats_median_ms"] <= TARGET_STATS_MEDIAN_MS},
        {"name": f"  / its median at {small['plays_served']} plays", "value": growth,
         "target": f"<= {TARGET_STATS_GROWTH}", "met": growth <= TARGET_STATS_GROWTH},
        {"name": "  /healthz slowest answer while stats run (ms)", "value": healthz,
         "target": f"<= {TARGET_HEALTHZ_MS}", "met": healthz <= TARGET_HEALTHZ_MS},
        {"name": "  event loop lag p99 while stats run (ms, bucket bound)", "value": lag,
         "target": f"<= {TARGET_LOOP_LAG_P99_MS}", "met": lag <= TARGET_LOOP_LAG_P99_MS},
        {"name": "  plays in the stats = /stream 200s served", "value": f"{large['plays_in_stats']} / "
         f"{large['plays_served']}", "target": "equal", "met": large["plays_in_stats"] == large["plays_served"]},
    ]


def print_analytics(analytics: dict, targets: list[dict]) -> None:
    print()
    for label, point in analytics["points"].items():
        run = analytics.get("runs", {}).get(label)
        rate = f"{run['requests_per_s']:.0f} /stream req/s, " if run else ""
        print(f"{label}: {rate}stats median {point['stats_median_ms']} ms (max {point['stats_max_ms']}), "
              f"/healthz max {point['healthz_max_ms']} ms over {point['healthz_requests']}, loop lag p99 "
              f"{point['loop_lag_p99_ms']:g} ms ({point['loop_lag_ticks']} ticks; during the stream load "
              f"{point['loop_lag_p99_during_stream_load_ms']:g} ms), plays {point['plays_in_stats']} / "
              f"{point['plays_served']} served")
    for row in targets:
        print(f"{row['name']:<60} {row['value']!s:>16} {row['target']:>10} {'MET' if row['met'] else 'MISSED'}")


def main() -> int:
    """The quick mode: this phase alone, against its own API server."""
    from bench.run import prepare_user

    try:
        first, total = sizes_from_env()
    except (BenchError, ValueError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    email = f"bench-{secrets.token_hex(6)}@example.com"
    api = MeasuredServer({"APP_ENV": "development", "JWT_SECRET": secrets.token_urlsafe(36),
                          "ADMIN_EMAILS": email}, log_path=RESULTS / "analytics-server.log", name="the API")
    try:
        api.start(START_TIMEOUT_SECONDS)
        user = prepare_user(api, email)
        analytics = measure_analytics(api, user, first, total)
    except (BenchError, OSError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    finally:
        api.stop()
    targets = evaluate_analytics(analytics)
    (RESULTS / "analytics.json").write_text(json.dumps({**analytics, "targets": targets}, indent=2) + "\n",
                                            encoding="utf-8")
    print_analytics(analytics, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())

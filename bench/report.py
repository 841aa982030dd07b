"""The verdict on each target, and the table a run prints."""

from __future__ import annotations

from bench.machine import NOISY_SHARE
from bench.settings import (
    CONNECTIONS,
    CROWD_CONNECTIONS,
    CROWD_RUNS,
    RESULTS,
    STORM_PACED_PAUSE_MS,
    TARGET_CROWD_RATIO,
    TARGET_DASHBOARD_RATIO,
    TARGET_LOGIN_RATIO,
    TARGET_PEER_RATIO_LOG_OFF,
    TARGET_PEER_RATIO_LOG_ON,
    TARGET_PROGRESS_RATIO,
    TARGET_RSS_GROWTH,
    TARGET_STORM_DASHBOARD_P99_MS,
    TARGET_STREAM_RATIO,
    TARGET_VIDEOS_RATIO,
    Settings,
)
from bench.versus import ratios


def evaluate(runs: dict, memory: dict, counted: dict, settings: Settings) -> list[dict]:
    """One row per target of the issue, each with its value, what is wanted and whether it is met."""
    def ratio(label: str) -> float:
        ceiling_rps = runs[f"ceiling_{label}"]["requests_per_s"]
        return round(runs[label]["requests_per_s"] / ceiling_rps, 3) if ceiling_rps else 0.0

    def errors_of(*labels: str) -> int:
        return sum(runs[label]["non_2xx"] + runs[label]["socket_errors"] for label in labels)

    rows = []
    for label, name, target in (
        ("dashboard", f"/dashboard, {CONNECTIONS} conns / same-request ceiling", TARGET_DASHBOARD_RATIO),
        ("stream", f"/video/{{id}}/stream, {CONNECTIONS} conns / ceiling", TARGET_STREAM_RATIO),
        ("videos", f"GET /videos?limit=20, {CONNECTIONS} conns / ceiling", TARGET_VIDEOS_RATIO),
        ("progress", f"PUT /video/{{id}}/progress, {CONNECTIONS} conns / ceiling", TARGET_PROGRESS_RATIO),
    ):
        value = ratio(label)
        rows.append({"name": name, "value": value, "target": f">= {target}", "met": value >= target})
    crowd = ratio("crowd")
    crowd_errors = errors_of("crowd", "ceiling_crowd")
    rows.append({"name": f"/dashboard, {CROWD_CONNECTIONS} conns / ceiling at {CROWD_CONNECTIONS}", "value": crowd,
                 "target": f">= {TARGET_CROWD_RATIO}", "met": crowd >= TARGET_CROWD_RATIO})
    rows.append({"name": f"  timeouts + errors, {CROWD_RUNS} runs each (API, ceiling)",
                 "value": f"{errors_of('crowd')}, {errors_of('ceiling_crowd')}", "target": "0, 0",
                 "met": crowd_errors == 0})
    logins = ratio("storm_logins")
    rows.append({"name": "logins under the storm / bcrypt-only ceiling app", "value": logins,
                 "target": f">= {TARGET_LOGIN_RATIO}", "met": logins >= TARGET_LOGIN_RATIO})
    p99 = runs["storm_dashboard"]["latency_ms"]["p99"]
    rows.append({"name": "  /dashboard p99 under the storm (ms)", "value": p99,
                 "target": f"<= {TARGET_STORM_DASHBOARD_P99_MS}", "met": p99 <= TARGET_STORM_DASHBOARD_P99_MS})
    # Growth measured over fewer requests than asked for proves nothing.
    reached = memory["total"]["requests"] >= settings.memory_total and \
        memory["first"]["requests"] >= settings.memory_first
    rows.append({"name": f"RSS growth {memory['first']['requests']} -> {memory['total']['requests']} requests",
                 "value": memory["growth"], "target": f"<= {TARGET_RSS_GROWTH}",
                 "met": reached and memory["growth"] <= TARGET_RSS_GROWTH})
    # Metrics and play counting were on: every /stream answer counted, every play written.
    rows.append({"name": "/stream 200s in /metrics >= wrk's; plays written == them",
                 "value": f"{counted['metrics_stream_200']}, {counted['plays_written']}",
                 "target": f">= {runs['stream']['requests']}",
                 "met": counted["metrics_stream_200"] >= runs["stream"]["requests"]
                 and counted["plays_written"] == counted["metrics_stream_200"]})
    versus = ratios(runs)
    for load, path in (("dashboard", "/dashboard"), ("stream", "/video/{id}/stream")):
        for logs, target in (("on", TARGET_PEER_RATIO_LOG_ON), ("off", TARGET_PEER_RATIO_LOG_OFF)):
            value = versus[f"{load}_log_{logs}"]
            rows.append({"name": f"{path} / FastAPI peer, access logs {logs}", "value": value,
                         "target": f">= {target}", "met": value >= target})
    errors = {label: run["non_2xx"] + run["socket_errors"] for label, run in runs.items()}
    rows.append({"name": "non-2xx + socket errors, all runs", "value": sum(errors.values()),
                 "target": "== 0", "met": not any(errors.values()), "by_run": errors})
    return rows


def print_report(report: dict) -> None:
    runs = report["runs"]
    width = max(map(len, runs))
    print()
    print(f"{'run':<{width}} {'conns':>5} {'req/s':>9} {'x ceiling':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'non-2xx':>8} {'sock err':>8}")
    for label, run in runs.items():
        ceiling = runs.get(f"ceiling_{label}")  # the ceiling app sent the same request, if it was
        share = f"{run['requests_per_s'] / ceiling['requests_per_s']:>9.3f}" \
            if ceiling and ceiling["requests_per_s"] else f"{'':>9}"
        print(f"{label:<{width}} {run['connections']:>5} {run['requests_per_s']:>9.1f} {share} "
              f"{run['latency_ms']['p50']:>8.2f} {run['latency_ms']['p99']:>8.2f} "
              f"{run['non_2xx']:>8} {run['socket_errors']:>8}")
    bc = report["bcrypt"]
    mem = report["memory"]
    print()
    print(f"bcrypt cost {bc['rounds']}: checkpw median {bc['checkpw_seconds_median'] * 1000:.1f} ms, "
          f"ceiling {bc['cores']} cores / that = {bc['logins_per_s']:.2f} logins/s; "
          f"storm: {runs['storm_logins']['requests_per_s']:.2f} logins/s")
    alone, storm = report["cpu_cores_by_thread"]["logins_alone"], report["cpu_cores_by_thread"]["storm"]
    print(f"logins alone: {runs['logins_alone']['requests_per_s']:.2f}/s "
          f"({runs['logins_alone']['requests_per_s'] / bc['logins_per_s']:.2f} of the bcrypt ceiling); "
          f"cores used, event loop + other threads: alone {alone['event_loop']} + {alone['other_threads']}, "
          f"storm {storm['event_loop']} + {storm['other_threads']}")
    reference = report["cpu_cores_by_thread"]["ceiling_storm"]
    print(f"the same storm on the ceiling app ({bc['threads']} bcrypt threads, nothing else; the API has "
          f"{bc['api_threads']}): logins "
          f"{runs['ceiling_storm_logins']['requests_per_s'] / bc['logins_per_s']:.3f} of the bcrypt ceiling, "
          f"GET p99 {runs['ceiling_storm_dashboard']['latency_ms']['p99']:.2f} ms; cores used "
          f"{reference['event_loop']} + {reference['other_threads']}")
    print(f"the storm with /dashboard paced ({STORM_PACED_PAUSE_MS} ms pauses, "
          f"{runs['paced_storm_dashboard']['requests_per_s']:.0f} req/s): logins "
          f"{runs['paced_storm_logins']['requests_per_s'] / bc['logins_per_s']:.3f} of the bcrypt ceiling, "
          f"/dashboard p99 {runs['paced_storm_dashboard']['latency_ms']['p99']:.2f} ms (for reference, not a target)")
    print(f"other processes' CPU during the run: {report['machine']['other_processes_cpu_share']:.1%} of the machine")
    print(f"RSS: {mem['first']['rss_kib'] / 1024:.1f} MiB after {mem['first']['requests']} requests, "
          f"{mem['total']['rss_kib'] / 1024:.1f} MiB after {mem['total']['requests']}")
    print()
    print(f"{'target':<56} {'value':>14} {'wanted':>10}  result")
    for target in report["targets"]:
        print(f"{target['name']:<56} {target['value']!s:>14} {target['target']:>10}  "
              f"{'MET' if target['met'] else 'MISSED'}")
    met = sum(t["met"] for t in report["targets"])
    print(f"\n{met} of {len(report['targets'])} targets met; JSON in {RESULTS / 'latest.json'}")
    other = report["machine"]["other_processes_cpu_share"]
    if other > NOISY_SHARE:
        print(f"warning: other processes took {other:.0%} of the machine's CPU during the run: "
              "these figures are skewed; run again on a quiet machine")

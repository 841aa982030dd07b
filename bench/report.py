"""The verdict on each target, and the table a run prints."""

from __future__ import annotations

from bench.machine import NOISY_SHARE
from bench.settings import (
    CONNECTIONS,
    RESULTS,
    STORM_DASHBOARD_CONNECTIONS,
    STORM_LOGIN_CONNECTIONS,
    STORM_PACED_PAUSE_MS,
    TARGET_DASHBOARD_RATIO,
    TARGET_LOGIN_RATIO,
    TARGET_RSS_GROWTH,
    TARGET_STORM_DASHBOARD_P99_MS,
    TARGET_STREAM_RATIO,
    Settings,
)


def evaluate(runs: dict, memory: dict, login_ceiling: dict, settings: Settings) -> list[dict]:
    ceiling_rps = runs["ceiling"]["requests_per_s"]

    def ratio(label: str) -> float:
        return round(runs[label]["requests_per_s"] / ceiling_rps, 3) if ceiling_rps else 0.0

    logins_per_s = runs["storm_logins"]["requests_per_s"]
    login_ratio = round(logins_per_s / login_ceiling["logins_per_s"], 3)
    errors = {label: run["non_2xx"] + run["socket_errors"] for label, run in runs.items()}
    reached = memory["total"]["requests"] >= settings.memory_total and \
        memory["first"]["requests"] >= settings.memory_first
    return [
        {"name": "/dashboard throughput / ceiling", "value": ratio("dashboard"),
         "target": f">= {TARGET_DASHBOARD_RATIO}", "met": ratio("dashboard") >= TARGET_DASHBOARD_RATIO},
        {"name": "/video/{id}/stream throughput / ceiling", "value": ratio("stream"),
         "target": f">= {TARGET_STREAM_RATIO}", "met": ratio("stream") >= TARGET_STREAM_RATIO},
        {"name": "/dashboard p99 under login storm (ms)", "value": runs["storm_dashboard"]["latency_ms"]["p99"],
         "target": f"<= {TARGET_STORM_DASHBOARD_P99_MS}",
         "met": runs["storm_dashboard"]["latency_ms"]["p99"] <= TARGET_STORM_DASHBOARD_P99_MS},
        {"name": "logins/s / bcrypt ceiling", "value": login_ratio,
         "target": f">= {TARGET_LOGIN_RATIO}", "met": login_ratio >= TARGET_LOGIN_RATIO},
        {"name": f"RSS growth {memory['first']['requests']} -> {memory['total']['requests']} requests",
         "value": memory["growth"], "target": f"<= {TARGET_RSS_GROWTH}",
         # Growth measured over fewer requests than asked for proves nothing.
         "met": reached and memory["growth"] <= TARGET_RSS_GROWTH},
        {"name": "non-2xx + socket errors, all runs", "value": sum(errors.values()),
         "target": "== 0", "met": not any(errors.values()), "by_run": errors},
    ]


def print_report(report: dict) -> None:
    runs = report["runs"]
    ceiling_rps = runs["ceiling"]["requests_per_s"]
    print()
    print(f"{'run':<22} {'conns':>5} {'req/s':>9} {'x ceiling':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'non-2xx':>8} {'sock err':>8}")
    conns = {"storm_dashboard": STORM_DASHBOARD_CONNECTIONS, "storm_logins": STORM_LOGIN_CONNECTIONS,
             "logins_alone": STORM_LOGIN_CONNECTIONS, "ceiling_storm_get": STORM_DASHBOARD_CONNECTIONS,
             "ceiling_storm_logins": STORM_LOGIN_CONNECTIONS, "paced_storm_logins": STORM_LOGIN_CONNECTIONS,
             "paced_storm_dashboard": STORM_DASHBOARD_CONNECTIONS}
    for label, run in runs.items():
        share = run["requests_per_s"] / ceiling_rps if ceiling_rps else 0
        print(f"{label:<22} {conns.get(label, CONNECTIONS):>5} {run['requests_per_s']:>9.1f} {share:>9.3f} "
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
    print(f"the same storm on the ceiling app ({bc['threads']} bcrypt threads, nothing else): logins "
          f"{runs['ceiling_storm_logins']['requests_per_s'] / bc['logins_per_s']:.3f} of the bcrypt ceiling, "
          f"GET p99 {runs['ceiling_storm_get']['latency_ms']['p99']:.2f} ms; cores used "
          f"{reference['event_loop']} + {reference['other_threads']}")
    print(f"the storm with /dashboard paced ({STORM_PACED_PAUSE_MS} ms pauses, "
          f"{runs['paced_storm_dashboard']['requests_per_s']:.0f} req/s): logins "
          f"{runs['paced_storm_logins']['requests_per_s'] / bc['logins_per_s']:.3f} of the bcrypt ceiling, "
          f"/dashboard p99 {runs['paced_storm_dashboard']['latency_ms']['p99']:.2f} ms (for reference, not a target)")
    print(f"other processes' CPU during the run: {report['machine']['other_processes_cpu_share']:.1%} of the machine")
    print(f"RSS: {mem['first']['rss_kib'] / 1024:.1f} MiB after {mem['first']['requests']} requests, "
          f"{mem['total']['rss_kib'] / 1024:.1f} MiB after {mem['total']['requests']}")
    print()
    print(f"{'target':<48} {'value':>10} {'wanted':>10}  result")
    for target in report["targets"]:
        print(f"{target['name']:<48} {target['value']:>10} {target['target']:>10}  "
              f"{'MET' if target['met'] else 'MISSED'}")
    met = sum(t["met"] for t in report["targets"])
    print(f"\n{met} of {len(report['targets'])} targets met; JSON in {RESULTS / 'latest.json'}")
    other = report["machine"]["other_processes_cpu_share"]
    if other > NOISY_SHARE:
        print(f"warning: other processes took {other:.0%} of the machine's CPU during the run: "
              "these figures are skewed; run again on a quiet machine")

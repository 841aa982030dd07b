"""The login phases: logins alone, the login storm (logins while /dashboard is loaded),
the same with /dashboard paced, and the same storm on the ceiling app; and their
reference, the bcrypt ceiling."""

from __future__ import annotations

import json
import statistics
import time

import bcrypt

from bench.machine import MeasuredServer
from bench.settings import (
    STORM_DASHBOARD_CONNECTIONS,
    STORM_LOGIN_CONNECTIONS,
    STORM_PACED_PAUSE_MS,
    BenchError,
    Settings,
)
from bench.wrk import Wrk
from tests.support import PASSWORD

BCRYPT_SAMPLES = 5


def bcrypt_ceiling(rounds: int, cores: int) -> dict:
    """Logins a second the machine could do if it did nothing but bcrypt on every core."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds))
    samples = []
    for _ in range(BCRYPT_SAMPLES):
        started = time.perf_counter()
        if not bcrypt.checkpw(PASSWORD.encode(), hashed):
            raise BenchError("bcrypt.checkpw refused its own hash")
        samples.append(time.perf_counter() - started)
    median = statistics.median(samples)
    return {"rounds": rounds, "cores": cores, "checkpw_seconds_median": round(median, 5),
            "checkpw_seconds_samples": [round(s, 5) for s in samples],
            "logins_per_s": round(cores / median, 2)}


def measure_storms(settings: Settings, api: MeasuredServer, ceiling: MeasuredServer, user: dict) -> dict:
    """The wrk figures of each login phase, the cores each used (event loop, other
    threads), and how long each server took to settle after a storm."""
    dashboard = ("/dashboard", user["auth_headers"])
    runs: dict[str, dict] = {}
    cpu_cores = {}
    login_body = json.dumps({"email": user["email"], "password": PASSWORD})
    api.settle()
    print(f"  logins alone: {STORM_LOGIN_CONNECTIONS} logging in, {settings.seconds:g} s ...", flush=True)
    runs["logins_alone"], _, cpu_cores["logins_alone"] = login_load(settings, api, login_body, None)
    api.settle()
    print(f"  login storm: {STORM_LOGIN_CONNECTIONS} logging in, {STORM_DASHBOARD_CONNECTIONS} on /dashboard, "
          f"{settings.seconds:g} s ...", flush=True)
    runs["storm_logins"], runs["storm_dashboard"], cpu_cores["storm"] = login_load(
        settings, api, login_body, dashboard)
    rss_after_storm = api.rss_kib()
    settled = {"after_storm": api.settle()}
    ceiling.settle()
    print(f"  the same storm on the ceiling app, {settings.seconds:g} s ...", flush=True)
    runs["ceiling_storm_logins"], runs["ceiling_storm_dashboard"], cpu_cores["ceiling_storm"] = login_load(
        settings, ceiling, login_body, dashboard)
    settled["after_ceiling_storm"] = ceiling.settle()  # its queued logins must not slow what follows
    print(f"  the storm with /dashboard paced ({STORM_PACED_PAUSE_MS} ms between an answer and the next "
          f"request), {settings.seconds:g} s ...", flush=True)
    runs["paced_storm_logins"], runs["paced_storm_dashboard"], cpu_cores["paced_storm"] = login_load(
        settings, api, login_body, dashboard, pause_ms=STORM_PACED_PAUSE_MS)
    settled["after_paced_storm"] = api.settle()
    return {"runs": runs, "cpu_cores_by_thread": cpu_cores, "settle_seconds": settled,
            "rss_after_storm": rss_after_storm}


def login_load(settings: Settings, server: MeasuredServer, body: str,
               also_get: tuple[str, dict] | None, pause_ms: float | None = None):
    """16 connections logging in continuously, alone or (the storm) while 8 load a GET
    (path, headers), as fast as they are answered or, with ``pause_ms``, each pausing that
    long between an answer and its next request. Returns the two wrk results and how many cores the event loop thread
    and the other threads (the bcrypt pool) used meanwhile: the storm's figures are
    mostly that split."""
    before, started = server.thread_cpu_seconds(), time.monotonic()
    # A login waits behind the others for a bcrypt thread: allow far more than wrk's 2 s.
    logins = Wrk("logins", server.base_url + "/auth/login", connections=STORM_LOGIN_CONNECTIONS, threads=1,
                 seconds=settings.seconds, script="login.lua", env={"BENCH_LOGIN_BODY": body},
                 timeout_seconds=30)
    try:
        loaded = None
        if also_get is not None:
            path, headers = also_get
            pacing = {} if pause_ms is None else {"script": "paced.lua", "env": {"BENCH_PAUSE_MS": str(pause_ms)}}
            load = Wrk("storm GET", server.base_url + path, connections=STORM_DASHBOARD_CONNECTIONS,
                       threads=1, seconds=settings.seconds, headers=headers, **pacing)
            try:
                loaded = load.result()
            finally:
                load.kill()
        result = logins.result()
    finally:
        logins.kill()
    after, wall = server.thread_cpu_seconds(), time.monotonic() - started
    cores = {part: round((after[part] - before[part]) / wall, 2) for part in after}
    return result, loaded, cores

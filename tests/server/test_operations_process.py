"""The real server process and its operational settings: HOST, LOG_LEVEL, WEB_CONCURRENCY,
METRICS_TOKEN, and .env for local runs (tests/support/process.py starts ``python -m server``)."""

from __future__ import annotations

import concurrent.futures
import http.client
import os
import signal
import time
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import SHARE_SECONDS
from tests.support import (
    HOST,
    SUITE_EVENT_LOOP,
    TEST_SECRET,
    ServerProcess,
    connection_refused,
    free_port,
    request,
    running_server,
    wait_until_sync,
)

SECRET = TEST_SECRET  # the child's JWT_SECRET
OTHER_LOOPBACK = "127.0.0.2"  # on Linux all of 127/8 is this machine: another local address
GRACE_SECONDS = 8


def refused(host: str, port: int) -> bool:
    try:
        request(port, "GET", "/healthz", host=host, timeout=2)
    except ConnectionRefusedError:
        return True
    return False


def config_error(env: dict) -> str:
    """Starts a server expected to refuse its configuration; returns what it said."""
    with ServerProcess(env) as server:
        server.spawn()
        assert server.wait(timeout=15) == 2, server.stderr
        return server.stderr


def no_database_env(**extra) -> dict[str, str]:
    """A MongoDB address where nothing listens: the process serves, database calls wait
    for MONGODB_TIMEOUT_MS and answer 503."""
    return {"MONGODB_URI": f"mongodb://{HOST}:{free_port()}/video_app_test", "MONGODB_TIMEOUT_MS": "1500",
            "JWT_SECRET": SECRET, **extra}


# ----- HOST ---------------------------------------------------------------------------------


def test_by_default_it_listens_on_the_loopback_address_only():
    with running_server() as server:
        assert server.request("GET", "/healthz").status == 200
        assert refused(OTHER_LOOPBACK, server.port)
        [listening] = [e for e in server.log_lines() if e.get("message") == "listening"]
        assert listening["host"] == "127.0.0.1"


def test_host_0_0_0_0_listens_on_every_address():
    with running_server({"HOST": "0.0.0.0"}) as server:  # noqa: S104 - what the test is about
        assert server.request("GET", "/healthz").status == 200
        assert request(server.port, "GET", "/healthz", host=OTHER_LOOPBACK).status == 200


def test_host_names_the_one_address_to_listen_on():
    with running_server({"HOST": OTHER_LOOPBACK}, host=OTHER_LOOPBACK) as server:
        assert server.request("GET", "/healthz").status == 200
        assert refused(HOST, server.port)


# ----- LOG_LEVEL ----------------------------------------------------------------------------


def test_log_level_warning_leaves_out_info_lines_and_the_access_log():
    with running_server({"LOG_LEVEL": "WARNING"}) as server:
        assert server.request("GET", "/healthz").status == 200
        assert server.request("GET", "/no-such-path").status == 404
        assert server.stop() == 0
    levels = {e["level"] for e in server.log_lines()}
    assert levels <= {"warning", "error"}, server.stderr
    assert not [e for e in server.log_lines() if e.get("logger") == "app.access"]


def test_log_level_info_writes_access_lines_with_client_and_user_agent():
    with running_server({"LOG_LEVEL": "info", "TRUST_PROXY": "true"}) as server:
        server.request("GET", "/healthz", headers={"User-Agent": "VideoApp/2.0 " + "x" * 500,
                                                   "X-Forwarded-For": "198.51.100.4"})
        entry = server.wait_for_log(lambda e: e.get("user_agent", "").startswith("VideoApp/"), timeout=5)
    assert entry["client"] == "198.51.100.4"
    assert entry["user_agent"].startswith("VideoApp/2.0 ") and len(entry["user_agent"]) < 200


@pytest.mark.parametrize("level", ["loud", "trace", ""])
def test_an_unknown_log_level_is_a_configuration_error(level):
    output = config_error({"LOG_LEVEL": level})
    assert "LOG_LEVEL must be one of debug, info, warning, error" in output
    assert "Traceback" not in output


# ----- WEB_CONCURRENCY -----------------------------------------------------------------------


def test_workers_need_mongodb_uri_and_say_so():
    output = config_error({"WEB_CONCURRENCY": "3"})
    assert "WEB_CONCURRENCY above 1 needs MONGODB_URI" in output
    assert "Traceback" not in output


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    stat = fh.read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def test_workers_share_the_port_and_all_drain_on_sigterm():
    env = no_database_env(WEB_CONCURRENCY="3", SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS))
    with running_server(env) as server:
        listening = [server.wait_for_log(lambda e, i=i: e.get("message") == "listening" and e.get("worker") == i,
                                         timeout=10) for i in range(3)]
        worker_pids = {e["pid"] for e in listening}
        assert len(worker_pids) == 3 and server.proc.pid not in worker_pids
        assert {e["event_loop"] for e in listening} == {SUITE_EVENT_LOOP}  # chosen before the fork
        assert worker_pids == children_of(server.proc.pid)

        # Requests in flight on several connections (each waits for the absent database).
        connections = [http.client.HTTPConnection(HOST, server.port, timeout=GRACE_SECONDS) for _ in range(6)]
        try:
            for conn in connections:
                conn.request("GET", "/readyz")
            server.wait_for_log(lambda e: e.get("message") == "database not reachable yet; retrying", timeout=10)
            # Every request accepted and read by a worker (not still in the listen backlog, which
            # the signal closes), however long that takes on a loaded machine...
            ports = {conn.sock.getsockname()[1] for conn in connections}
            assert wait_until_sync(lambda: server.has_read(ports) is not False, interval=0.005), \
                "the workers did not read all six requests"
            time.sleep(0.3)  # ...and its handler running: a loop iteration or two after the read
            signalled = time.monotonic()
            server.signal(signal.SIGTERM)
            statuses = [conn.getresponse().status for conn in connections]
        finally:
            for conn in connections:
                conn.close()
        assert statuses == [503] * 6  # answered, not cut off
        assert server.wait(timeout=GRACE_SECONDS + 2) == 0, server.stderr
        assert time.monotonic() - signalled < GRACE_SECONDS
        assert connection_refused(server.port)
        assert not children_of(server.proc.pid)
    stopped = [e for e in server.log_lines() if e.get("message") == "stopped"]
    assert len(stopped) == 4, server.stderr  # three workers and the parent
    assert not [e for e in server.log_lines() if "traceback" in e]


def test_a_worker_that_dies_stops_the_service_so_the_platform_restarts_it():
    with running_server(no_database_env(WEB_CONCURRENCY="2")) as server:
        first = server.wait_for_log(lambda e: e.get("message") == "listening" and e.get("worker") == 0, timeout=10)
        server.wait_for_log(lambda e: e.get("message") == "listening" and e.get("worker") == 1, timeout=10)
        os.kill(first["pid"], signal.SIGKILL)
        assert server.wait(timeout=15) != 0
        assert connection_refused(server.port)
    assert [e for e in server.log_lines() if e.get("message") == "a worker exited on its own; stopping the others"]


# ----- METRICS_TOKEN ------------------------------------------------------------------------


def test_metrics_with_a_token_answer_only_its_bearer():
    token = "metrics-token-0123456789abcdef"
    with running_server({"METRICS_TOKEN": token}) as server:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {token}x"},
                        {"Authorization": token}, {"Authorization": f"Basic {token}"}):
            reply = server.request("GET", "/metrics", headers=headers)
            assert reply.status == 401, headers
            assert set(reply.json) == {"error"}
        server.request("GET", f"/video/{'a' * 24}/play?token=x", headers={"Accept": "application/json"})
        reply = server.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 200
    text = reply.body.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"http_requests", "http_request_duration_seconds", "http_requests_in_flight",
            "password_checks_waiting", "database_unavailable_responses"} <= set(families)
    statuses = {(s.labels["route"], s.labels["status"]): s.value for s in families["http_requests"].samples
                if s.name == "http_requests_total"}
    assert statuses[("/metrics", "401")] == 5
    assert statuses[("/healthz", "200")] >= 1
    assert ("/video/{video_id}/play", "401") in statuses
    assert "a" * 24 not in text and token not in text


# ----- .env -----------------------------------------------------------------------------------


def test_dotenv_in_the_working_directory_is_read_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("LOG_LEVEL=warning\nDASHBOARD_VIDEO_COUNT=1\nPORT=1\n", encoding="utf-8")
    with running_server({}, cwd=tmp_path) as server:  # PORT from the environment wins over .env's
        assert server.request("GET", "/healthz").status == 200
        assert server.stop() == 0
    assert not [e for e in server.log_lines() if e["level"] == "info"], server.stderr

    with running_server({"LOG_LEVEL": "info"}, cwd=tmp_path) as server:
        assert server.request("GET", "/healthz").status == 200
        server.wait_for_log(lambda e: e.get("logger") == "app.access", timeout=5)


# ----- metrics of every worker ----------------------------------------------------------------


def served_by(counter_file: Path) -> float:
    """The ``GET /`` requests one worker's own multiprocess file counts."""
    if not counter_file.exists():
        return 0
    return sum(s.value for family in MultiProcessCollector.merge([str(counter_file)], accumulate=True)
               for s in family.samples
               if s.name == "http_requests_total" and s.labels == {"route": "/", "status": "200"})


def scrape(server: ServerProcess) -> dict:
    reply = server.request("GET", "/metrics")
    assert reply.status == 200
    return {f.name: f for f in text_string_to_metric_families(reply.body.decode())}


def test_one_scrape_counts_the_requests_every_worker_served(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by an earlier run")  # removed at start
    env = no_database_env(WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    with running_server(env) as server:
        pids = [server.wait_for_log(lambda e, i=i: e.get("message") == "listening" and e.get("worker") == i,
                                    timeout=10)["pid"] for i in range(2)]
        # Fresh connections, several at once, until each worker has counted some of them in
        # its own file (each writes what it counted every SHARE_SECONDS)...
        sent, deadline = 0, time.monotonic() + 30
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            while True:
                statuses = list(pool.map(lambda _: server.request("GET", "/").status, range(16)))
                assert statuses == [200] * 16
                sent += 16
                time.sleep(SHARE_SECONDS)
                served = [served_by(metrics_dir / f"counter_{pid}.db") for pid in pids]
                if all(served):
                    break
                assert time.monotonic() < deadline, f"one worker answered every request: {served}"
        # ...and until every request is in the files.
        while sum(served) != sent:
            assert time.monotonic() < deadline, f"requests counted per worker: {served}, sent: {sent}"
            time.sleep(0.1)
            served = [served_by(metrics_dir / f"counter_{pid}.db") for pid in pids]
        for _ in range(4):  # whichever worker answers the scrape, it answers for both
            families = scrape(server)
            counts = {(s.labels["route"], s.labels["status"]): s.value for s in families["http_requests"].samples
                      if s.name == "http_requests_total"}
            assert counts[("/", "200")] == sent
            durations = {s.labels["le"]: s.value for s in families["http_request_duration_seconds"].samples
                         if s.name == "http_request_duration_seconds_bucket" and s.labels["route"] == "/"}
            assert durations["+Inf"] == sent
            # livesum: one figure for the service, not one per process
            [in_flight] = families["http_requests_in_flight"].samples
            assert in_flight.labels == {} and in_flight.value >= 1  # the scrape itself
            assert families["http_requests_in_flight"].documentation
        assert server.stop() == 0, server.stderr
    # The workers were marked dead: their live gauges are gone, their counters kept.
    assert not list(metrics_dir.glob("gauge_live*.db"))
    assert {p.name for p in metrics_dir.glob("counter_*.db")} == {f"counter_{pid}.db" for pid in pids}


def test_workers_share_a_metrics_directory_of_their_own_that_is_removed_at_shutdown():
    with running_server(no_database_env(WEB_CONCURRENCY="2")) as server:
        started = server.wait_for_log(lambda e: e.get("message") == "workers started", timeout=10)
        directory = Path(started["metrics_dir"])
        assert directory.is_dir()
        for index in range(2):
            server.wait_for_log(lambda e, i=index: e.get("message") == "listening" and e.get("worker") == i, timeout=10)
        assert server.request("GET", "/healthz").status == 200
        deadline = time.monotonic() + 10
        while "http_requests" not in scrape(server):  # the other worker shares its counts within a second
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert server.stop() == 0, server.stderr
    assert not directory.exists()


def test_one_process_keeps_its_metrics_in_memory(tmp_path):
    with running_server({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}) as server:
        assert server.request("GET", "/healthz").status == 200
        families = scrape(server)
        assert [s.value for s in families["http_requests"].samples
                if s.labels == {"route": "/healthz", "status": "200"} and s.name == "http_requests_total"] != []
        assert families["http_requests_in_flight"].samples[0].value == 1
        assert families["database_unavailable_responses"].samples[0].value == 0
    assert not list(tmp_path.glob("*.db"))  # the fast in-memory path, no files


def test_a_metrics_directory_that_does_not_exist_is_a_configuration_error(tmp_path):
    output = config_error({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "missing")})
    assert "PROMETHEUS_MULTIPROC_DIR must name an existing directory" in output

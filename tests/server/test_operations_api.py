"""GET /metrics and GET /docs through HTTP (the browser's view of /docs: tests/server/test_browser.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading

import pytest
from bson import ObjectId
from prometheus_client.parser import text_string_to_metric_families

from handlers.operations import DOCS_CSP
from services.accounts.passwords import PasswordHasher
from services.catalog import rollups as rollups_module
from tests.support import PASSWORD, wait_until


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, sorted label pairs): value} of a Prometheus text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(api) -> dict[tuple, float]:
    reply = await api.get("/metrics")
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"].startswith("text/plain; version=")
    return samples(reply.body.decode())


def requests_total(found, route: str, status: int) -> float:
    return found.get(("http_requests_total", (("route", route), ("status", str(status)))), 0)


# ----- /metrics ---------------------------------------------------------------------------

LOOP_HEALTH = {"http_requests_in_flight", "password_checks_waiting", "plays_dropped",
               "database_unavailable_responses", "http_requests", "http_request_duration_seconds"}


@pytest.mark.gen_test
async def test_every_metric_says_in_a_sentence_what_it_measures(api):
    reply = await api.get("/metrics")
    families = list(text_string_to_metric_families(reply.body.decode()))
    assert LOOP_HEALTH <= {f.name for f in families}
    for family in families:
        if family.name.startswith(("python_", "process_")):
            continue  # prometheus_client's own (not in an app's registry today)
        assert re.fullmatch(r"[A-Z].{15,}\.", family.documentation), (family.name, family.documentation)


@pytest.mark.parametrize("config_overrides", [{"plays_buffer_size": 2}])
@pytest.mark.gen_test
async def test_dropped_plays_are_counted_in_the_metrics(api, app):
    for _ in range(5):
        app.services.plays.record(ObjectId(), "someone")  # no flusher runs here: 2 fit, 3 are dropped
    assert (await scrape(api))[("plays_dropped", ())] == 3


@pytest.mark.gen_test
async def test_dropped_watch_time_is_counted_in_the_metrics(api, app, monkeypatch):
    monkeypatch.setattr(rollups_module, "WATCHING_KEPT", 2)
    rollups = app.services.plays._rollups
    for _ in range(5):  # no flusher runs here: two videos' sums fit, the other three are dropped
        rollups.add_watching(ObjectId(), dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), 30.0, 0)
    assert (await scrape(api))[("watch_time_dropped", ())] == 3

@pytest.mark.gen_test
async def test_requests_are_counted_by_route_pattern_and_status_never_by_raw_path(api):
    token = await api.user()
    videos = await api.dashboard(token)
    await api.get("/dashboard")  # 401
    await api.get(f"/video/{videos[0]['id']}/stream?token={videos[0]['playback_token']}", token=token)
    stranger = str(ObjectId())
    await api.get(f"/video/{stranger}/stream?token={videos[0]['playback_token']}", token=token)  # 403/404
    await api.get(f"/no/such/path/{stranger}")

    reply = await api.get("/metrics")
    text = reply.body.decode()
    found = samples(text)
    assert requests_total(found, "/dashboard", 200) == 1
    assert requests_total(found, "/dashboard", 401) == 1
    assert requests_total(found, "/auth/signup", 201) == 1
    assert requests_total(found, "/auth/login", 200) == 1
    assert requests_total(found, "/video/{video_id}/stream", 200) == 1
    assert requests_total(found, "unmatched", 404) == 1
    # The ids and paths that were asked for never become label values.
    assert stranger not in text and videos[0]["id"] not in text and "/no/such" not in text
    routes = {dict(labels).get("route") for name, labels in found if name == "http_requests_total"}
    assert routes <= {"/dashboard", "/auth/signup", "/auth/login", "/video/{video_id}/stream", "unmatched"}


@pytest.mark.gen_test
async def test_latency_is_a_histogram_by_route(api):
    for _ in range(3):
        assert (await api.get("/healthz")).status == 200
    found = await scrape(api)
    route = (("route", "/healthz"),)
    assert found[("http_request_duration_seconds_count", route)] == 3
    assert 0 < found[("http_request_duration_seconds_sum", route)] < 3
    assert found[("http_request_duration_seconds_bucket", (("le", "+Inf"), *route))] == 3


@pytest.mark.gen_test
async def test_the_scrape_itself_is_in_flight(api):
    found = await scrape(api)
    assert found[("http_requests_in_flight", ())] == 1


@pytest.mark.gen_test
async def test_answers_the_database_was_too_slow_for_are_counted(api, services, monkeypatch):
    async def database_is_away() -> bool:
        return False

    monkeypatch.setattr(services.health, "database_answers", database_is_away)
    assert (await api.get("/readyz")).status == 503
    assert (await api.get("/readyz")).status == 503
    found = await scrape(api)
    assert found[("database_unavailable_responses_total", ())] == 2
    assert requests_total(found, "/readyz", 503) == 2


@pytest.mark.gen_test(timeout=30)
async def test_password_checks_waiting_for_a_bcrypt_thread(api, executor):
    await api.signup()
    # Both bcrypt threads (the fixture's executor has 2) are busy until released.
    release = threading.Event()
    blockers = [executor.submit(release.wait, 20) for _ in range(2)]
    logins = [asyncio.ensure_future(api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD}))
              for _ in range(3)]
    try:
        async def three_waiting() -> bool:
            return (await scrape(api))[("password_checks_waiting", ())] == 3

        await wait_until(three_waiting)
        assert (await scrape(api))[("password_checks_waiting", ())] == 3
    finally:
        release.set()
    assert [r.status for r in await asyncio.gather(*logins)] == [200] * 3
    assert all(b.result() for b in blockers)
    assert (await scrape(api))[("password_checks_waiting", ())] == 0


@pytest.mark.gen_test
async def test_a_hash_cancelled_while_queued_stops_waiting(executor):
    hasher = PasswordHasher(4, executor)
    release = threading.Event()
    blockers = [executor.submit(release.wait, 20) for _ in range(2)]
    queued = asyncio.ensure_future(hasher.hash("a password"))
    await asyncio.sleep(0.05)
    assert hasher.waiting == 1
    queued.cancel()
    await asyncio.sleep(0)
    assert hasher.waiting == 0
    release.set()
    assert all(b.result() for b in blockers)
    assert await hasher.check("a password", await hasher.hash("a password")) is True
    assert hasher.waiting == 0


@pytest.mark.gen_test
async def test_each_app_has_its_own_registry(app, services, config):
    from server.app import VideoApp

    other = VideoApp(config, services)
    assert other.metrics.registry is not app.metrics.registry


# ----- /docs ------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_docs_is_a_page_that_loads_only_files_of_this_server(api):
    reply = await api.get("/docs")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert reply.headers["Content-Security-Policy"] == DOCS_CSP
    assert "default-src 'none'" in DOCS_CSP and "'unsafe-inline'" not in DOCS_CSP
    page = reply.body.decode()
    references = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(references) == ["docs/docs.js", "docs/favicon-32x32.png", "docs/swagger-ui-bundle.js",
                                  "docs/swagger-ui.css"]
    assert "http" not in page and "<script>" not in page  # nothing remote, no inline script
    for reference in references:
        asset = await api.get("/" + reference)
        assert asset.status == 200, reference
        assert len(asset.body) > 300, reference
        expected = {"css": "text/css", "js": "javascript", "png": "image/png"}[reference.rsplit(".", 1)[1]]
        assert expected in asset.headers["Content-Type"], (reference, asset.headers["Content-Type"])
        assert b"fonts.googleapis" not in asset.body and b"unpkg.com" not in asset.body


@pytest.mark.parametrize("path", [
    "/docs/swagger-editor-bundle.js", "/docs/index.html", "/docs/../config.yaml", "/docs/%2e%2e/config.yaml",
    "/docs/docs.js/x", "/docs/LICENSE",
])
@pytest.mark.gen_test
async def test_docs_serves_no_other_file(api, path):
    reply = await api.get(path)
    assert reply.status == 404
    assert reply.error == "Endpoint not found"


@pytest.mark.gen_test
async def test_docs_refuses_other_methods(api):
    reply = await api.post("/docs", {})
    assert reply.status == 405
    assert reply.error


@pytest.mark.gen_test
async def test_the_event_loops_lag_is_a_histogram_that_sees_a_held_loop(api, app):
    import time

    app.loop_lag.start()
    try:
        await asyncio.sleep(0.25)  # a tick or two on time
        time.sleep(0.3)  # noqa: ASYNC251 - holding the loop on purpose, as a scanning request would

        async def late_tick_counted() -> bool:  # it runs once the loop is free (later on a loaded machine)
            found = await scrape(api)
            ticks = found[("event_loop_lag_seconds_count", ())]
            return ticks >= 2 and found[("event_loop_lag_seconds_bucket", (("le", "0.1"),))] < ticks

        await wait_until(late_tick_counted)
        found = await scrape(api)
    finally:
        await app.loop_lag.stop()
    ticks = found[("event_loop_lag_seconds_count", ())]
    assert ticks >= 2
    # The tick due during the 0.3 s hold ran at least 0.1 s late.
    assert found[("event_loop_lag_seconds_bucket", (("le", "0.1"),))] < ticks

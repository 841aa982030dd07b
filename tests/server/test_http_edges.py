"""What every endpoint shares: health, unknown paths and methods, bodies, CORS, headers."""

import asyncio
import json
import os
import re
from urllib.parse import quote

import pytest

from tests.support import PASSWORD, assert_json_error


@pytest.mark.gen_test
async def test_root_health_and_readiness(api):
    root = await api.get("/")
    assert root.status == 200
    assert root.json == {"message": "Video App API", "status": "running", "version": "1.0.0"}
    assert (await api.get("/healthz")).json == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status == 200
    assert ready.json == {"status": "ready"}


@pytest.mark.gen_test
async def test_readiness_is_503_with_retry_after_when_the_database_does_not_answer(api, services, monkeypatch):
    async def down():
        return False

    monkeypatch.setattr(services.health, "database_answers", down)
    reply = await api.get("/readyz")
    assert_json_error(reply, 503)
    assert reply.headers["Retry-After"].isdigit()


@pytest.mark.parametrize("path", ["/nope", "/auth", "/auth/signup/extra", "/video/x", "/video//stream", "/DASHBOARD"])
@pytest.mark.gen_test
async def test_unknown_paths_are_json_404(api, path):
    reply = await api.get(path)
    assert reply.status == 404
    assert reply.json == {"error": "Endpoint not found"}
    assert reply.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("method, path", [
    ("GET", "/auth/signup"), ("GET", "/auth/login"), ("PUT", "/auth/signup"), ("DELETE", "/dashboard"),
    ("POST", "/dashboard"), ("POST", "/"), ("PATCH", "/auth/me"), ("GET", "/auth/logout"),
    ("POST", "/video/5f0000000000000000000000/stream"), ("HEAD", "/auth/login"), ("HEAD", "/auth/logout"),
])
@pytest.mark.gen_test
async def test_wrong_methods_are_405_before_any_authentication(api, method, path):
    reply = await api.request(method, path, body=b"{}" if method in ("POST", "PUT", "PATCH") else None)
    assert reply.status == 405
    assert "OPTIONS" in reply.headers["Allow"] and method not in reply.headers["Allow"].split(", ")
    if method != "HEAD":
        assert_json_error(reply, 405)


@pytest.mark.gen_test
async def test_a_body_over_the_limit_is_413_without_being_read(api, database):
    too_big = json.dumps({"name": "A", "email": "big@example.com", "password": PASSWORD, "pad": "x" * 70_000})
    reply = await api.request("POST", "/auth/signup", body=too_big)
    assert reply.status == 413
    assert "too large" in reply.error
    assert await database["users"].count_documents({}) == 0


@pytest.mark.parametrize("config_overrides", [{"max_body_bytes": 1024}])
@pytest.mark.gen_test
async def test_the_body_limit_is_configurable(api, config_overrides):
    body = {"name": "A", "email": "a@example.com", "password": PASSWORD}
    assert (await api.post("/auth/signup", {**body, "pad": "x" * 2000})).status == 413
    assert (await api.post("/auth/signup", body)).status == 201


@pytest.mark.gen_test
async def test_cors_preflight_allows_the_headers_the_app_sends(api):
    reply = await api.request("OPTIONS", "/dashboard", headers={
        "Origin": "http://localhost:8081",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    allowed = reply.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert reply.headers["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    login = await api.request("OPTIONS", "/auth/login", headers={"Origin": "http://localhost:8081"})
    assert login.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"


@pytest.mark.parametrize("path", ["/video/5f0000000000000000000000/stream", "/video/anything/play"])
@pytest.mark.gen_test
async def test_cors_preflight_of_routes_with_an_id(api, path):
    reply = await api.request("OPTIONS", path, headers={"Origin": "http://localhost:8081"})
    assert reply.status == 204
    assert "Authorization" in reply.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("config_overrides", [{"cors_origins": ("https://app.example.com",)}])
@pytest.mark.gen_test
async def test_cors_echoes_only_configured_origins(api, config_overrides):
    allowed = await api.get("/", headers={"Origin": "https://app.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "Origin" in allowed.headers["Vary"]
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    other = await api.get("/", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Expose-Headers" not in other.headers


@pytest.mark.gen_test
async def test_cors_headers_answer_a_browser_origin_and_only_that(api):
    browser = await api.get("/", headers={"Origin": "http://localhost:8081"})
    assert browser.headers["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in browser.headers["Access-Control-Expose-Headers"]
    app = await api.get("/")  # the mobile app sends no Origin: nothing to allow
    assert not [name for name in app.headers if name.lower().startswith("access-control-")]


@pytest.mark.gen_test
async def test_every_response_carries_a_request_id_and_security_headers(api):
    mine = await api.get("/", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["X-Request-ID"] == "abc-123"
    ours = set()
    for path in ("/", "/nope", "/dashboard", "/", "/"):
        reply = await api.get(path)
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["X-Request-ID"])
        ours.add(reply.headers["X-Request-ID"])
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Cache-Control"] == "no-store"
        assert "Server" not in reply.headers  # no version banner
    # A request id that could forge log lines or headers is replaced, not echoed.
    odd = await api.get("/", headers={"X-Request-ID": "x" * 200})
    assert odd.headers["X-Request-ID"] != "x" * 200
    assert len(ours) == 5  # one of our own per request, never the same twice


def test_a_forked_worker_draws_request_ids_of_its_own():
    """Workers are forked (WEB_CONCURRENCY): their ids must not repeat the parent's, nor each other's."""
    from handlers.headers import new_request_id

    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then out without running anything of pytest's
        os.write(writing, new_request_id().encode())
        os._exit(0)
    os.close(writing)
    child = os.read(reading, 64).decode()
    os.close(reading)
    os.waitpid(pid, 0)
    parent = [new_request_id(), new_request_id()]
    assert re.fullmatch(r"[0-9a-f]{32}", child) and parent[0] != parent[1]
    assert child[:16] != parent[0][:16]  # another random half


@pytest.mark.gen_test
async def test_an_unexpected_failure_is_a_bare_500_and_the_log_has_the_details(api, services, monkeypatch, caplog):
    async def broken(*_):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(services.accounts, "signup", broken)
    reply = await api.post("/auth/signup", {"name": "A", "email": "a@example.com", "password": PASSWORD})
    assert reply.status == 500
    assert reply.json == {"error": "Internal server error"}
    logged = [r for r in caplog.records if r.name == "app.errors"]
    assert logged and logged[0].request_id == reply.headers["X-Request-ID"]
    assert "secret internal detail" in caplog.text


@pytest.mark.gen_test
async def test_concurrent_requests_never_see_each_others_data(api):
    emails = [f"user{i}@example.com" for i in range(6)]
    tokens = await asyncio.gather(*(api.user(email) for email in emails))
    for _ in range(3):
        replies = await asyncio.gather(*(api.get("/auth/me", token=t) for t in tokens))
        assert [r.json["user"]["email"] for r in replies] == emails


@pytest.mark.gen_test
async def test_concurrent_dashboards_and_streams_keep_each_users_tokens(api):
    """The hot paths cache verified tokens and recent playback tokens: none of that may
    hand one user's token to another, or let one user's cached grant serve another."""
    emails = [f"viewer{i}@example.com" for i in range(5)]
    tokens = await asyncio.gather(*(api.user(email) for email in emails))
    for _ in range(3):
        dashboards = await asyncio.gather(*(api.dashboard(t) for t in tokens))
        links = [(videos[0]["id"], videos[0]["playback_token"]) for videos in dashboards]
        assert len({token for _, token in links}) == len(emails)  # one token per user, no sharing
        own = await asyncio.gather(*(_stream(api, t, link) for t, link in zip(tokens, links, strict=True)))
        assert [r.status for r in own] == [200] * len(emails)
        swapped = links[1:] + links[:1]  # each user presents the next user's (verified, cached) link
        others = await asyncio.gather(*(_stream(api, t, link) for t, link in zip(tokens, swapped, strict=True)))
        assert [r.status for r in others] == [403] * len(emails)


def _stream(api, auth_token: str, link: tuple[str, str]):
    video_id, playback_token = link
    return api.get(f"/video/{video_id}/stream?token={quote(playback_token)}", token=auth_token)


async def _raw_exchange(base_url: str, payload: bytes, wait: float) -> tuple[bytes, float]:
    """Sends raw bytes, then reads until the server closes or ``wait`` passes."""
    port = base_url.rsplit(":", 1)[-1]
    reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
    loop = asyncio.get_running_loop()
    started = loop.time()
    writer.write(payload)
    await writer.drain()
    try:
        received = await asyncio.wait_for(reader.read(), wait)
    finally:
        writer.close()
    return received, loop.time() - started


@pytest.mark.parametrize("config_overrides", [{"body_timeout_seconds": 0.5}])
@pytest.mark.gen_test
async def test_a_stalled_upload_is_dropped_after_the_body_timeout(base_url, http_server, config_overrides):
    head = b"POST /auth/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    received, elapsed = await _raw_exchange(base_url, head, wait=5)
    assert b"201" not in received
    assert elapsed < 3  # closed by the server, not by our own wait


def _chunked_signup(pad: int) -> bytes:
    body = json.dumps({"name": "A", "email": "chunk@example.com", "password": PASSWORD, "pad": "x" * pad}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 512]), body[i:i + 512]) for i in range(0, len(body), 512))
    return (b"POST /auth/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n")


@pytest.mark.parametrize("config_overrides", [{"max_body_bytes": 1024}])
@pytest.mark.gen_test
async def test_a_chunked_body_over_the_limit_is_a_json_413(base_url, http_server, database, config_overrides):
    received, _ = await _raw_exchange(base_url, _chunked_signup(pad=2000), wait=5)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert "too large" in json.loads(body)["error"]
    assert await database["users"].count_documents({}) == 0


@pytest.mark.parametrize("config_overrides", [{"max_body_bytes": 1024}])
@pytest.mark.gen_test
async def test_a_chunked_body_far_over_the_limit_is_cut_off(base_url, http_server, database, config_overrides):
    received, _ = await _raw_exchange(base_url, _chunked_signup(pad=20_000), wait=5)
    assert b"201" not in received.split(b"\r\n", 1)[0]
    assert await database["users"].count_documents({}) == 0


@pytest.mark.parametrize("config_overrides", [{"max_body_bytes": 1024}])
@pytest.mark.gen_test
async def test_a_chunked_body_within_the_limit_is_accepted(base_url, http_server, config_overrides):
    received, _ = await _raw_exchange(base_url, _chunked_signup(pad=10), wait=5)
    assert received.startswith(b"HTTP/1.1 201")


@pytest.mark.gen_test
async def test_responses_carry_no_etag_to_revalidate(api):
    token = await api.user()
    reply = await api.get("/dashboard", token=token)
    assert "Etag" not in reply.headers
    again = await api.get("/", headers={"If-None-Match": "*"})
    assert again.status == 200 and again.json["status"] == "running"


@pytest.mark.parametrize("path", ["/", "/healthz", "/readyz", "/openapi.json", "/dashboard", "/auth/me",
                                  "/video/5f0000000000000000000000/stream", "/video/5f0000000000000000000000/play"])
@pytest.mark.gen_test
async def test_head_answers_wherever_get_does_with_gets_status_and_no_body(api, path):
    token = await api.user()
    for auth in (token, None):
        got = await api.get(path, token=auth)
        head = await api.request("HEAD", path, token=auth)
        assert head.status == got.status, (path, auth)
        assert head.body == b""
        assert head.headers["Content-Type"] == got.headers["Content-Type"]
        assert "HEAD" in (await api.request("OPTIONS", path)).headers["Access-Control-Allow-Methods"]

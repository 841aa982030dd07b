"""Fuzzes the running server against its own description, server/openapi.yaml (schemathesis).

Every operation gets FUZZ_EXAMPLES generated requests (25 by default; `make fuzz` runs
500), valid and invalid ones, on top of schemathesis' boundary ("coverage") cases. Each
answer must be no server error, a status the document lists for that operation, and a
body and headers that match the document's schema for that status.

The server is real: the Tornado app on 127.0.0.1 with its own event loop in a
background thread (schemathesis makes blocking HTTP calls), on a fresh embedded store
seeded with the demo catalog plus an inactive video. Generation is derandomized, so a
run is the same every time.

Random ids and tokens rarely reach the interesting branches of the playback
endpoints, so part of the time a generated request gets a real video id, a real
playback token (valid, another user's, another video's, revoked, or the JWT itself),
a valid bearer token, or `Accept: application/json` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import schemathesis
from bson import ObjectId
from schemathesis.core import NotSet
from tornado.netutil import bind_sockets

from seeds.loader import CATALOG_PATH, load_catalog, read_catalog
from server.app import VideoApp, build_services, make_http_server
from server.config import load_config
from server.database import connect
from services.playback import PlaybackSigner
from services.sessions import AuthTokenCodec
from tests.conftest import TEST_SECRET

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "server" / "openapi.yaml"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = 20240229
PASSWORD = "fuzzing password"
INACTIVE_VIDEO = {
    "youtube_id": "aaaaaaaaaaa",
    "title": "Withdrawn",
    "description": "An inactive video: playing it is 403.",
    "thumbnail_url": "https://i.ytimg.com/vi/aaaaaaaaaaa/hqdefault.jpg",
    "is_active": False,
}

# What this test asserts: no 5xx, and nothing the document does not promise. Left out:
# positive_data_acceptance (the server refuses emails at special-use domains such as .test,
# which `format: email` cannot say), negative_data_rejection (the server trims input and
# counts password bytes, not characters, so it accepts some requests the schema does not
# describe), and ignored_auth and
# missing_required_header (they misread the valid bearer token this test puts in).
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
)

schema = schemathesis.openapi.from_path(
    OPENAPI_PATH,
    config=schemathesis.Config.from_dict({
        "seed": SEED,
        "generation": {
            "mode": "all",  # valid and invalid requests
            "max-examples": FUZZ_EXAMPLES,
            "deterministic": True,
            "database": "none",  # no .hypothesis/ replay: every run is the same run
        },
        "phases": {
            "coverage": {
                # Every method but OPTIONS, the CORS preflight: 204 on every route, not 405.
                "unexpected-methods": ["get", "put", "post", "delete", "patch", "trace", "query"],
            },
        },
        "checks": {
            "enabled": False,
            **{name: {"enabled": True} for name in CHECKS},
        },
    }),
)


@dataclasses.dataclass
class LiveServer:
    url: str
    email: str
    token: str  # the fuzzing user's bearer token; never logged out
    # (video id, playback token) to put into a generated request; None keeps the generated value.
    playback_cases: list[tuple[str | None, str | None]]
    playable: tuple[str, str]  # a video id and the fuzzing user's playback token for it

    def fresh_token(self) -> str:
        """A bearer token of its own, for a logout to revoke."""
        return _login(self.url, self.email)


def _login(url: str, email: str) -> str:
    reply = requests.post(f"{url}/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["token"]


def _new_user(url: str, email: str) -> tuple[str, list[dict]]:
    """Signs up and logs in; returns the bearer token and the dashboard's videos."""
    reply = requests.post(f"{url}/auth/signup", json={"name": "Fuzz", "email": email, "password": PASSWORD},
                          timeout=10)
    assert reply.status_code == 201, reply.text
    token = _login(url, email)
    reply = requests.get(f"{url}/dashboard", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 200, reply.text
    return token, reply.json()["videos"]


@contextlib.contextmanager
def _serving(config):
    """The app on 127.0.0.1 (a free port), its event loop in a thread; yields the base
    URL and the inactive video's id."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzz-server", daemon=True)
    thread.start()
    executor = ThreadPoolExecutor(max_workers=2)

    def on_loop(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    async def start():
        client, db = connect(config)
        services = build_services(config, db, executor)
        await services.ensure_indexes()
        await load_catalog(services.catalog, [*read_catalog(CATALOG_PATH), INACTIVE_VIDEO])
        inactive = await db["videos"].find_one({"youtube_id": INACTIVE_VIDEO["youtube_id"]})
        server = make_http_server(VideoApp(config, services))  # as server/__main__.py serves it
        sockets = bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        return client, server, sockets[0].getsockname()[1], str(inactive["_id"])

    async def stop(client, server):
        server.stop()
        await server.close_all_connections()
        client.close()

    try:
        client, server, port, inactive_id = on_loop(start())
        try:
            yield f"http://127.0.0.1:{port}", inactive_id
        finally:
            on_loop(stop(client, server))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        executor.shutdown(wait=True)


@pytest.fixture(scope="module")
def live_server():
    config = load_config(
        env={},
        jwt_secrets=(TEST_SECRET,),
        bcrypt_rounds=4,
        # The fuzzer fails many logins from 127.0.0.1; the per-address lock-out would
        # otherwise turn every later login, ours included, into a 429.
        login_max_failures_per_address=1_000_000,
        # The fuzzing user is an operator, so /admin is fuzzed past its 403.
        admin_emails=("fuzzer@example.com",),
    )
    with _serving(config) as (url, inactive_id):
        email = "fuzzer@example.com"
        token, videos = _new_user(url, email)
        (first, first_token), (second, second_token) = [(v["id"], v["playback_token"]) for v in videos]
        _, others_videos = _new_user(url, "other@example.com")
        gone, gone_videos = _new_user(url, "gone@example.com")
        reply = requests.post(f"{url}/auth/logout", headers={"Authorization": f"Bearer {gone}"}, timeout=10)
        assert reply.status_code == 200, reply.text
        # Tokens the dashboard never hands out, minted as the server mints them.
        principal = AuthTokenCodec(config.jwt_secrets, config.jwt_ttl_seconds).verify(token)
        signer = PlaybackSigner(config.jwt_secrets, config.playback_ttl_seconds)
        absent = str(ObjectId())
        playback_cases = [
            (None, None),  # all generated
            (None, None),
            (first, None),  # a real video, a generated token
            (None, first_token),  # a generated id, a real token
            (first, first_token),  # 200 (or 302)
            (second, second_token),
            (second, first_token),  # 403: another video's token
            (first, others_videos[0]["playback_token"]),  # another user's: 403 on /stream, 200 on /play
            (first, gone_videos[0]["playback_token"]),  # 401: revoked by a logout
            (first, token),  # 401: a JWT is not a playback token
            (inactive_id, signer.sign(inactive_id, principal)),  # 403: not active
            (absent, signer.sign(absent, principal)),  # 404
        ]
        yield LiveServer(url, email, token, playback_cases, playable=(first, first_token))


def _needs_bearer(operation) -> bool:
    return bool(operation.definition.raw.get("security", schema.raw_schema["security"]))


def _chooser(case):
    """Picks among options by a hash of the request as generated, so a case always gets
    the same picks: runs repeat exactly and a failing case replays and shrinks. (Drawing
    from Hypothesis instead, with ``schema.given``, would switch the coverage phase off.)"""
    body = None if isinstance(case.body, NotSet) else case.body
    generated = repr((case.method, case.path_parameters, case.query, case.headers, body))

    def pick(salt: str, options: list):
        return options[zlib.crc32(f"{salt}:{generated}".encode("utf-8", "surrogatepass")) % len(options)]

    return pick


@schema.parametrize()
def test_server_conforms_to_its_openapi_document(case, live_server):
    operation = case.operation
    pick = _chooser(case)
    if operation.path.startswith("/video/"):
        video_id, token = pick("playback", live_server.playback_cases)
        if video_id is not None:
            case.path_parameters = {**(case.path_parameters or {}), "video_id": video_id}
        if token is not None:
            case.query = {**(case.query or {}), "token": token}
        if operation.path.endswith("/play") and pick("accept", [False, True]):
            case.headers = {**(case.headers or {}), "Accept": "application/json"}
    if _needs_bearer(operation) and pick("bearer", [True, True, True, False]):
        token = live_server.fresh_token() if operation.path == "/auth/logout" else live_server.token
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    case.call_and_validate(base_url=live_server.url, allow_redirects=False, timeout=10)


@pytest.mark.parametrize("path", ["/auth/signup", "/auth/login", "/auth/logout"])
def test_a_body_over_the_limit_is_a_documented_413(path, live_server):
    """Bodies this large are beyond what the fuzzer generates."""
    case = schema[path]["POST"].Case(
        body={"name": "Big", "email": "big@example.com", "password": "x" * (65 * 1024)},
        media_type="application/json",
        headers={"Authorization": f"Bearer {live_server.fresh_token()}"},
    )
    response = case.call_and_validate(base_url=live_server.url, timeout=10)
    assert response.status_code == 413


# A bug this fuzzer found: the preflight of routes with a named group was a 500.
@pytest.mark.parametrize("path", ["/video/{video_id}/stream", "/video/{video_id}/play"])
def test_cors_preflight_of_the_video_routes(path, live_server):
    video_id, token = live_server.playable
    reply = requests.options(live_server.url + path.format(video_id=video_id), params={"token": token}, timeout=10,
                             headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
                                      "Access-Control-Request-Headers": "authorization"})
    assert reply.status_code == 204, reply.text
    assert "Authorization" in reply.headers["Access-Control-Allow-Headers"]


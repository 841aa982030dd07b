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

import contextlib
import dataclasses
import itertools
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor

import hypothesis
import pytest
import requests
import schemathesis
from bson import ObjectId
from schemathesis.core import NotSet
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario

from server.app import VideoApp
from server.config import load_config
from server.database import close, connect
from services.accounts.sessions import AuthTokenCodec
from services.catalog.playback import PlaybackSigner
from services.common.validation import normalize_email
from tests.support import (
    HOST,
    PASSWORD,
    REPO_ROOT,
    TEST_SECRET,
    close_server,
    listen,
    loop_in_thread,
    prepared_services,
)
from tests.support.devmail import mailed_verification_token

OPENAPI_PATH = REPO_ROOT / "server" / "openapi.yaml"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = 20240229
INACTIVE_VIDEO = {
    "youtube_id": "aaaaaaaaaaa",
    "title": "Withdrawn",
    "description": "An inactive video: playing it is 403.",
    "thumbnail_url": "https://i.ytimg.com/vi/aaaaaaaaaaa/hqdefault.jpg",
    "is_active": False,
}

# What this test asserts: no 5xx, and nothing the document does not promise. Left out:
# positive_data_acceptance (the server refuses emails at special-use domains such as .test,
# which `format: email` cannot say), negative_data_rejection (the server trims input, so it
# accepts some requests the schema does not describe), and ignored_auth and
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
        "checks": {"enabled": True},
    }),
)


@dataclasses.dataclass
class LiveServer:
    url: str
    email: str
    token: str  # the fuzzing user's bearer token; never logged out
    leaver_email: str  # logs in afresh for each logout, which may end all of its sessions
    # (video id, playback token) to put into a generated request; None keeps the generated value.
    playback_cases: list[tuple[str | None, str | None]]
    playable: tuple[str, str]  # a video id and the fuzzing user's playback token for it
    # A real next_cursor of each paged list: a cursor is signed, which no schema can say,
    # so a generated "valid" one is replaced by a real one (a negative one goes as it is).
    cursors: dict[str, str] = dataclasses.field(default_factory=dict)

    def cursor_for(self, path: str, query: dict) -> str | None:
        """A real cursor bound to the case's own query (``q``, ``active``: a cursor of another
        query is a 400), or None if that query has no second page."""
        filters = {name: value for name, value in query.items() if name not in ("cursor", "limit")}
        if not filters:
            return self.cursors[path]
        reply = requests.get(f"{self.url}{path}", params={**filters, "limit": 1}, timeout=10,
                             headers={"Authorization": f"Bearer {self.token}"})
        return reply.json()["next_cursor"] if reply.status_code == 200 else None

    def fresh_refresh_token(self) -> str:
        """A refresh token of a login of its own, for a refresh to spend."""
        reply = requests.post(f"{self.url}/auth/login", json={"email": self.leaver_email, "password": PASSWORD},
                              timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.json()["refresh_token"]

    def fresh_token(self) -> str:
        """A bearer token of its own, for a logout to revoke: another user's, since a
        logout with scope `others` or `all` ends every session of its user."""
        return _login(self.url, self.leaver_email)


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

    async def start():
        client, db = connect(config)
        services = await prepared_services(config, db, executor, extra_videos=(INACTIVE_VIDEO,))
        inactive = await db["videos"].find_one({"youtube_id": INACTIVE_VIDEO["youtube_id"]})
        server, port = listen(VideoApp(config, services))
        return client, server, port, str(inactive["_id"])

    async def stop(client, server):
        await close_server(server)
        await close(client)

    with ThreadPoolExecutor(max_workers=2) as executor, loop_in_thread("fuzz-server") as thread:
        client, server, port, inactive_id = thread.run(start())
        try:
            yield f"http://{HOST}:{port}", inactive_id
        finally:
            thread.run(stop(client, server))


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    mail_dir = tmp_path_factory.mktemp("mail")
    config = load_config(
        env={},
        mail_dir=str(mail_dir),
        jwt_secrets=(TEST_SECRET,),
        bcrypt_rounds=4,
        # The fuzzer fails many logins from 127.0.0.1; the per-address lock-out would
        # otherwise turn every later login, ours included, into a 429.
        login_max_failures_per_address=1_000_000,
        login_max_failures_per_account=1_000_000,  # the fuzzing user logs in for every logout
        signup_max_per_address=1_000_000,
        # The fuzzing user is an operator, so /admin is fuzzed past its 403.
        admin_emails=("fuzzer@example.com",),
        # Sign in with Google and Apple on, so their bodies are fuzzed past the 404; their keys
        # on a local port where nothing listens (a fetch is a 503), never the providers'.
        google_client_ids=("fuzz.apps.googleusercontent.com",),
        apple_client_ids=("com.example.fuzz",),
        google_jwks_url="http://127.0.0.1:9/google",
        apple_jwks_url="http://127.0.0.1:9/apple",
    )
    with _serving(config) as (url, inactive_id):
        email = "fuzzer@example.com"
        token, videos = _new_user(url, email)
        # An operator's address must be verified: from the development mail, as a developer would.
        reply = requests.post(f"{url}/auth/verify-email/confirm", timeout=10,
                              json={"token": mailed_verification_token(mail_dir, email)})
        assert reply.status_code == 200, reply.text
        (first, first_token), (second, second_token) = [(v["id"], v["playback_token"]) for v in videos]
        _, others_videos = _new_user(url, "other@example.com")
        gone, gone_videos = _new_user(url, "gone@example.com")
        _new_user(url, "leaver@example.com")
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
        yield LiveServer(url, email, token, "leaver@example.com", playback_cases, playable=(first, first_token),
                         cursors=_real_cursors(url, token, [first, second]))


def _real_cursors(url: str, token: str, video_ids: list[str]) -> dict[str, str]:
    """The next_cursor of a one-item first page of each paged list (the fuzzing user
    watches two videos first, so its history has a second page)."""
    auth = {"Authorization": f"Bearer {token}"}
    for video_id in video_ids:
        reply = requests.put(f"{url}/video/{video_id}/progress", headers=auth, timeout=10,
                             json={"position_seconds": 1, "duration_seconds": 100})
        assert reply.status_code == 200, reply.text
    cursors = {}
    for path in ("/videos", "/me/history", "/admin/videos"):
        reply = requests.get(f"{url}{path}", params={"limit": 1}, headers=auth, timeout=10)
        assert reply.status_code == 200, reply.text
        cursors[path] = reply.json()["next_cursor"]
        assert cursors[path], path
    return cursors


def _needs_bearer(operation) -> bool:
    return bool(operation.definition.raw.get("security", schema.raw_schema["security"]))


def _leaves_out_the_credential(case) -> bool:
    """A coverage case that omits Authorization on purpose (the missing_required_header check)."""
    data = case.meta.phase.data if case.meta is not None else None
    return isinstance(data, CoveragePhaseData) and (data.parameter or "").lower() == "authorization" \
        and data.scenario == CoverageScenario.MISSING_PARAMETER


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
    hypothesis.assume(_means_what_it_was_generated_to_mean(case))
    if operation.path.startswith("/video/"):
        video_id, token = pick("playback", live_server.playback_cases)
        # Real values replace only what was generated valid: a deliberately invalid id or
        # query must reach the server as it was generated (negative_data_rejection).
        if video_id is not None and not _negative_at(case, ParameterLocation.PATH):
            case.path_parameters = {**(case.path_parameters or {}), "video_id": video_id}
        if token is not None and not _negative_at(case, ParameterLocation.QUERY):
            case.query = {**(case.query or {}), "token": token}
        if operation.path.endswith("/play") and pick("accept", [False, True]):
            case.headers = {**(case.headers or {}), "Accept": "application/json"}
    _put_real_values(case, live_server, pick)
    if operation.path == "/auth/refresh" and isinstance(case.body, dict) and pick("refresh", [False, True]):
        case.body = {**case.body, "refresh_token": live_server.fresh_refresh_token()}  # a 200 to check
    if pick("bearer", [True, True, True, False]):
        _authorize(case, live_server)
    case.call_and_validate(base_url=live_server.url, allow_redirects=False, timeout=10)


def _put_real_values(case, live_server, pick) -> None:
    """What a schema cannot describe, made real where the case was generated valid: a
    cursor is signed, and of the strings that look like a YouTube link only real ids and
    links are one. A case generated invalid goes as it is."""
    path = case.operation.path
    if path in live_server.cursors and "cursor" in (case.query or {}) \
            and not _negative_at(case, ParameterLocation.QUERY):
        case.query = {**case.query, "cursor": live_server.cursor_for(path, case.query)}
        if case.query["cursor"] is None:  # this query has one page: no cursor of it exists
            case.query = {name: value for name, value in case.query.items() if name != "cursor"}
    if path == "/admin/videos" and case.method == "POST" and isinstance(case.body, dict) \
            and not _negative_at(case, ParameterLocation.BODY) and "youtube" in case.body:
        case.body = {**case.body, "youtube": pick("youtube", YOUTUBE_FORMS).format(id=_new_youtube_id(case))}


def _negative_at(case, location) -> bool:
    return case.meta is not None and case.meta.is_negative_at(location)


def _authorize(case, live_server) -> None:
    """Puts a real bearer token into a case whose operation needs one, unless the case is
    about a missing or invalid Authorization header."""
    if not _needs_bearer(case.operation) or _leaves_out_the_credential(case) \
            or _negative_at(case, ParameterLocation.HEADER):
        return
    token = live_server.fresh_token() if case.operation.path == "/auth/logout" else live_server.token
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    # A real credential, as schemathesis' own auth providers mark theirs: the auth checks
    # then probe without it and with a wrong one instead of calling it "generated".
    case._has_explicit_auth = True


YOUTUBE_FORMS = ["{id}", "https://www.youtube.com/watch?v={id}", "https://youtu.be/{id}?si=x",
                 "https://m.youtube.com/shorts/{id}", "https://www.youtube-nocookie.com/embed/{id}"]


def _new_youtube_id(case) -> str:
    """An 11-character id of the case's own (the same case, the same id: runs repeat)."""
    digest = zlib.crc32(repr((case.body, case.headers)).encode("utf-8", "surrogatepass"))
    return f"fz{digest:09d}"[-11:].replace(" ", "0")


_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _means_what_it_was_generated_to_mean(case) -> bool:
    """False for the cases where the document cannot say what the server checks, so a
    generated "valid" or "invalid" label would be wrong:

    - a password is 6 to 72 UTF-8 *bytes*, and JSON Schema's lengths count characters;
    - a lone high surrogate followed by a lone low one (invalid text) becomes one valid
      character once sent as JSON, whose "\\ud83d\\ude00" escapes are a surrogate pair;
    - a progress position past its duration (a rule between two fields).

    Both are tested directly (tests/accounts/test_accounts_api.py, tests/accounts/test_services.py)."""
    body = case.body if isinstance(case.body, dict) else {}
    position, duration = body.get("position_seconds"), body.get("duration_seconds")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (position, duration)) \
            and position > duration and not _negative_at(case, ParameterLocation.BODY):
        return False  # "position <= duration" relates two fields: no schema says it
    for field, shortest in (("password", 6), ("new_password", 6), ("current_password", 1)):
        password = body.get(field)
        if isinstance(password, str):
            size = len(password.encode("utf-8", "surrogatepass"))
            if (shortest <= len(password) <= 72) != (shortest <= size <= 72):
                return False
    return not any(isinstance(v, str) and _SURROGATE_PAIR.search(v) for v in body.values())


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



STATEFUL_EXAMPLES = max(FUZZ_EXAMPLES // 5, 5)


def test_stateful_sequences_conform_too(live_server):
    """The stateful phase: sequences that follow the document's links (sign up then log in,
    the dashboard then its videos' stream and play), each answer checked as above."""

    class Sequences(schema.as_state_machine()):
        def before_call(self, case):
            hypothesis.assume(_means_what_it_was_generated_to_mean(case))
            _put_real_values(case, live_server, _chooser(case))
            _authorize(case, live_server)
            # Hypothesis wants a sequence to unfold the same way when it is drawn again, but
            # the server remembers: the same generated email would be 201 once, then 409. A
            # valid email is made unique instead (the invalid ones stay as generated).
            body = case.body if isinstance(case.body, dict) else {}
            if case.operation.path == "/auth/signup" and isinstance(body.get("email"), str) \
                    and normalize_email(body["email"]) is not None:
                case.body = {**body, "email": f"seq{next(unique)}@example.com"}

        def get_call_kwargs(self, case):
            return {"base_url": live_server.url, "allow_redirects": False, "timeout": 10}

    unique = itertools.count()
    Sequences.run(settings=hypothesis.settings(
        max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        # No shrinking: a shrunk sequence meets a server that remembers the first one.
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    ))

"""Shared fixtures.

Without ``MONGODB_URI`` every test gets a fresh embedded store. With it, every test
gets its own database on that server, dropped afterwards, so the same suite runs
against a real MongoDB unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from server.app import VideoApp, build_services
from server.config import load_config
from server.database import connect
from seeds.loader import CATALOG_PATH, load_catalog, read_catalog

TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
PASSWORD = "correct horse"


@pytest.fixture
def config_overrides() -> dict:
    """Tests override single settings by redefining this fixture or updating it."""
    return {}


@pytest.fixture
def config(config_overrides):
    uri = os.environ.get("MONGODB_URI", "")
    return load_config(
        env={},
        mongodb_uri=uri,
        mongodb_database=f"video_app_test_{uuid.uuid4().hex[:12]}",
        jwt_secrets=(TEST_SECRET,),
        bcrypt_rounds=4,  # the product default is 12; tests only need a real hash
        **config_overrides,
    )


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


@pytest.fixture
def database(config, io_loop):
    client, db = connect(config)
    yield db
    if not config.uses_embedded_store:
        io_loop.run_sync(lambda: client.drop_database(db.name))
    client.close()


@pytest.fixture
def services(config, database, executor, io_loop):
    built = build_services(config, database, executor)

    async def prepare():
        await built.ensure_indexes()
        await load_catalog(built.catalog, read_catalog(CATALOG_PATH))

    io_loop.run_sync(prepare)
    return built


@pytest.fixture
def app(config, services):
    return VideoApp(config, services)


@dataclasses.dataclass
class Reply:
    status: int
    headers: object
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def error(self) -> str:
        body = self.json
        assert set(body) == {"error"}, body
        assert isinstance(body["error"], str) and body["error"].strip()
        return body["error"]


class Api:
    """A small JSON client over the test server that never raises on a status."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self._http = AsyncHTTPClient()

    async def request(self, method: str, path: str, *, json_body=None, body=None, token=None,
                      headers=None, follow_redirects=False) -> Reply:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        request = HTTPRequest(
            self.base_url + path, method=method, body=body, headers=headers,
            follow_redirects=follow_redirects, allow_nonstandard_methods=True, request_timeout=20,
        )
        response = await self._http.fetch(request, raise_error=False)
        return Reply(response.code, response.headers, response.body or b"")

    async def get(self, path, **kw) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path, json_body=None, **kw) -> Reply:
        return await self.request("POST", path, json_body=json_body, **kw)

    async def signup(self, email="ann@example.com", name="Ann", password=PASSWORD) -> str:
        reply = await self.post("/auth/signup", {"name": name, "email": email, "password": password})
        assert reply.status == 201, reply.body
        return reply.json["user_id"]

    async def login(self, email="ann@example.com", password=PASSWORD) -> str:
        reply = await self.post("/auth/login", {"email": email, "password": password})
        assert reply.status == 200, reply.body
        return reply.json["token"]

    async def user(self, email="ann@example.com") -> str:
        """Signs a user up and logs them in; returns the auth token."""
        await self.signup(email=email)
        return await self.login(email=email)

    async def dashboard(self, token) -> list[dict]:
        reply = await self.get("/dashboard", token=token)
        assert reply.status == 200, reply.body
        return reply.json["videos"]


@pytest.fixture
def api(http_server, base_url) -> Api:
    return Api(base_url)


def query_token(play_url: str) -> str:
    return urlsplit(play_url).query.split("token=", 1)[1]

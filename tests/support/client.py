"""Talking to a server under test: one ``Reply`` for every client, the one check of a
JSON error, the async JSON client ``Api`` (tests on the event loop) and the blocking
``request`` (a server in another process or thread; the bench's set-up)."""

from __future__ import annotations

import dataclasses
import http.client
import json
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.support.constants import HOST, PASSWORD

REQUEST_TIMEOUT_SECONDS = 10


@dataclasses.dataclass
class Reply:
    status: int
    headers: object  # tornado's HTTPHeaders or http.client's HTTPMessage: both have .get()
    body: bytes
    seconds: float = 0.0  # wall time of the exchange, where the client measured it

    @property
    def json(self):
        return json.loads(self.body)

    @property
    def error(self) -> str:
        """The readable sentence of a JSON error body, which must be nothing else."""
        body = self.json
        assert set(body) == {"error"}, body
        assert isinstance(body["error"], str) and body["error"].strip(), body
        return body["error"]


def assert_json_error(reply: Reply, status: int, *context: object) -> str:
    """``reply`` is a JSON error with this status (``context``, say the case of a loop, is shown
    when it is not); returns its sentence."""
    assert reply.status == status, (*context, reply.status, reply.body)
    assert reply.headers.get("Content-Type", "").startswith("application/json"), dict(reply.headers)
    return reply.error


def query_token(play_url: str) -> str:
    return urlsplit(play_url).query.split("token=", 1)[1]


class Api:
    """A small JSON client over the test server that never raises on a status."""

    def __init__(self, base_url: str, *, own_connections: int = 0):
        """With ``own_connections``, an HTTP client of its own making that many requests at
        a time, instead of the loop's shared one (10 at a time, the rest queued): its
        requests never wait behind another ``Api``'s, as an independent user's would not.
        ``close()`` it when done."""
        self.base_url = base_url
        if own_connections:
            self._http = AsyncHTTPClient(force_instance=True, max_clients=own_connections)
        else:
            self._http = AsyncHTTPClient()
        self._own_connections = bool(own_connections)

    def close(self) -> None:
        """Closes a client of its own (``own_connections``); the shared one stays open."""
        if self._own_connections:
            self._http.close()

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
        return Reply(response.code, response.headers, response.body or b"", response.request_time or 0.0)

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

    async def all_pages(self, path: str, *, token: str | None = None, key: str = "videos",
                        limit: int = 3) -> tuple[list[dict], int]:
        """Every item of a cursor-paged list (``path`` may carry a query), ``limit`` at a
        time, following ``next_cursor`` until it is null; each page must be a 200 of at
        most ``limit`` items under ``key``. Returns the items in order and the page count."""
        seen, cursor, pages = [], None, 0
        separator = "&" if "?" in path else "?"
        while True:
            url = f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            reply = await self.get(url, token=token)
            assert reply.status == 200, reply.body
            assert len(reply.json[key]) <= limit
            seen += reply.json[key]
            cursor = reply.json["next_cursor"]
            pages += 1
            if cursor is None:
                return seen, pages

    async def dashboard(self, token) -> list[dict]:
        reply = await self.get("/dashboard", token=token)
        assert reply.status == 200, reply.body
        return reply.json["videos"]


def request(port: int, method: str, path: str, *, json_body=None, token: str | None = None,
            headers: Mapping[str, str] | None = None, timeout: float = REQUEST_TIMEOUT_SECONDS,
            host: str = HOST) -> Reply:
    """One blocking HTTP request on a fresh connection (to 127.0.0.1 unless ``host``);
    never raises on a status. ``seconds`` is the wall time from connecting to the end of the body."""
    headers = dict(headers or {})
    body = None
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, response.headers, data, time.monotonic() - started)
    finally:
        conn.close()

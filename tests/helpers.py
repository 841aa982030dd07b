"""Test helpers: a JSON client over the test server."""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

PASSWORD = "correct horse"


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



def query_token(play_url: str) -> str:
    return urlsplit(play_url).query.split("token=", 1)[1]

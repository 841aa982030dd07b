"""The peer: what a competent Python developer would build instead of this service's HTTP
layer, FastAPI on uvicorn (uvloop and httptools), doing the same work per request for
``GET /dashboard`` and ``GET /video/{id}/stream``. ``make bench`` measures the API against
it (bench/versus.py); bench/README.md says what it does and does not do.

The same work, because it is the same domain code: the services of this repository
(``server.app.build_services``) over the same embedded store, with the same settings read
by ``load_config``. So each request verifies the JWT with PyJWT (through the same verified
token cache), reads the session from the store (logout takes effect at once), reads the
catalog through its cache, signs one itsdangerous playback token per video (the same
reuse cache), and counts the play (the same bounded buffer, written in the background).
Answers are orjson bytes with the API's headers (JSON content type, ``nosniff``,
``no-store``, ``X-Request-ID``: the caller's if sane, else a new one), no ``Server``
header; failures are ``{"error": ...}`` with the API's statuses.

Written as such an app is usually tuned: a dependency for the caller, one exception
handler, ``Response`` built from orjson bytes (no response model, no JSON encoder pass),
uvicorn's ``server_header`` off, the garbage collector tuned as the API's is. The access
log is uvicorn's own (``uvicorn.access`` through logging, to stderr), on unless
``ACCESS_LOG=0``.

    PORT=8124 JWT_SECRET=... ACCESS_LOG=1 python -m bench.peer

Only for the bench: its dependencies are in bench/requirements.txt, never the service's.
It also answers what the bench's set-up needs (sign-up, login) and ``/healthz``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import orjson
import uvicorn
from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.responses import Response

from seeds.loader import seed_if_empty
from server.app import Services, build_services
from server.config import load_config
from server.database import connect
from server.runtime import tune_garbage_collector
from services.accounts.sessions import Principal
from services.common.errors import (
    Conflict,
    DatabaseUnavailable,
    FeatureUnavailable,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    Overloaded,
    ServiceError,
    TooManyAttempts,
)

STATUS = {InvalidInput: 400, NotAuthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409,
          TooManyAttempts: 429, Overloaded: 503, DatabaseUnavailable: 503, FeatureUnavailable: 503}
JSON = "application/json; charset=UTF-8"
STATIC_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BEARER = re.compile(r"Bearer +(\S+)", re.IGNORECASE)

config = load_config()
services: Services | None = None


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global services
    _, db = connect(config)
    executor = ThreadPoolExecutor(max_workers=config.bcrypt_threads or os.cpu_count() or 1)
    services = build_services(config, db, executor)
    await services.ensure_indexes()
    await seed_if_empty(services.catalog)
    services.plays.start()
    tune_garbage_collector()
    yield
    await services.plays.stop(timeout_seconds=2)
    executor.shutdown(wait=False, cancel_futures=True)


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


def answer(request: Request, payload: Any, status: int = 200) -> Response:
    incoming = request.headers.get("x-request-id", "")
    request_id = incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(16)
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON,
                    headers={**STATIC_HEADERS, "X-Request-ID": request_id})


@app.exception_handler(ServiceError)
async def service_error(request: Request, error: ServiceError) -> Response:
    status = next((code for kind, code in STATUS.items() if isinstance(error, kind)), 500)
    return answer(request, {"error": str(error)}, status)


async def caller(authorization: Annotated[str, Header()] = "") -> Principal:
    match = _BEARER.fullmatch(authorization.strip())
    if not match:
        raise NotAuthenticated("Please log in: this request needs an 'Authorization: Bearer <token>' header.")
    return await services.accounts.authenticate(match.group(1))


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


@app.get("/dashboard")
async def dashboard(request: Request, principal: Annotated[Principal, Depends(caller)]) -> Response:
    videos = await services.playback.dashboard(principal, base_url(request))
    return answer(request, {"videos": videos})


@app.get("/video/{video_id}/stream")
async def stream(request: Request, video_id: str, principal: Annotated[Principal, Depends(caller)],
                 token: str | None = None) -> Response:
    return answer(request, await services.playback.stream(principal, video_id, token))


@app.post("/auth/signup")
async def signup(request: Request, body: Annotated[dict, Body()]) -> Response:
    user_id = await services.accounts.signup(body, request.client.host if request.client else None)
    return answer(request, {"id": user_id}, 201)


@app.post("/auth/login")
async def login(request: Request, body: Annotated[dict, Body()]) -> Response:
    client = request.client.host if request.client else None
    return answer(request, await services.accounts.login(body, client, request.headers.get("user-agent", "")))


@app.get("/healthz")
async def healthz(request: Request) -> Response:
    return answer(request, {"status": "ok"})


def main() -> None:
    access_log = os.environ.get("ACCESS_LOG", "1") not in ("0", "false", "no", "off")
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), loop="uvloop", http="httptools",
                access_log=access_log, server_header=False, backlog=config.listen_backlog,
                log_level="info")


if __name__ == "__main__":
    main()

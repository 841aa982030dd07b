"""Shared fixtures.

Every loop of the suite (pytest-tornado's ``io_loop``, ``asyncio.run``, the server
processes it starts) is the kind ``EVENT_LOOP`` names, uvloop by default, as the server's:
``EVENT_LOOP=asyncio make test`` runs the suite on asyncio's own loop (CI runs both).

Without ``MONGODB_URI`` every test gets a fresh embedded store. With it, every test
gets its own database on that server, dropped afterwards, so the same suite runs
against a real MongoDB unchanged.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from server.app import VideoApp
from server.config import load_config
from server.database import close, connect
from server.runtime import use_event_loop
from tests.support import HOST, SUITE_EVENT_LOOP, TEST_SECRET, Api, close_server, listen, prepared_services

# Before pytest-tornado's io_loop fixture makes the first loop.
use_event_loop(SUITE_EVENT_LOOP)


@pytest.fixture
def config_overrides() -> dict:
    """Tests override single settings by redefining this fixture or updating it."""
    return {}


@pytest.fixture
def mail_dir(tmp_path):
    """Where development mail (no SMTP_URL) is written: the test's own directory."""
    return tmp_path / "mail"


@pytest.fixture
def config(config_overrides, mail_dir):
    uri = os.environ.get("MONGODB_URI", "")
    return load_config(
        env={},
        mail_dir=str(mail_dir),
        mongodb_uri=uri,
        # CI runs the suite against a MongoDB through each driver (.github/workflows/ci.yml).
        mongodb_driver=os.environ.get("MONGODB_DRIVER", "motor"),
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
    client, _ = connect(config)
    # Always the test's own database, even if MONGODB_URI names one: it is dropped afterwards.
    db = client[config.mongodb_database]
    yield db
    if not config.uses_embedded_store:
        io_loop.run_sync(lambda: client.drop_database(db.name))
    io_loop.run_sync(lambda: close(client))


@pytest.fixture
def services(config, database, executor, io_loop):
    services = io_loop.run_sync(lambda: prepared_services(config, database, executor))
    yield services
    # Mails still queued (every sign-up sends one) go out before the loop closes, as at shutdown.
    io_loop.run_sync(services.mailboxes.idle, timeout=30)


@pytest.fixture
def app(config, services):
    return VideoApp(config, services)


@pytest.fixture
def _listening(app, io_loop):
    """The app served as production builds it (body limit, timeouts) on a free port."""
    server, port = listen(app)
    yield server, port
    io_loop.run_sync(lambda: close_server(server), timeout=10)


@pytest.fixture
def http_server(_listening):
    return _listening[0]


@pytest.fixture
def http_port(_listening) -> int:
    """Replaces pytest-tornado's own, so that its port fixtures are never used."""
    return _listening[1]


@pytest.fixture
def base_url(http_port) -> str:
    return f"http://{HOST}:{http_port}"


@pytest.fixture
def api(http_server, base_url) -> Api:
    return Api(base_url)

"""Shared fixtures.

Without ``MONGODB_URI`` every test gets a fresh embedded store. With it, every test
gets its own database on that server, dropped afterwards, so the same suite runs
against a real MongoDB unchanged.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from seeds.loader import CATALOG_PATH, load_catalog, read_catalog
from server.app import VideoApp, build_services, make_http_server
from server.config import load_config
from server.database import connect
from tests.helpers import Api

TEST_SECRET = "test-secret-long-enough-for-hs256-and-hs512-0123456789abcdefghijklmnop"


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
    client, _ = connect(config)
    # Always the test's own database, even if MONGODB_URI names one: it is dropped afterwards.
    db = client[config.mongodb_database]
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


@pytest.fixture
def http_server(app, io_loop, _unused_port):
    """pytest-tornado's server, but built as production builds it (body limit, timeouts)."""
    server = make_http_server(app)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections, timeout=10)


@pytest.fixture
def api(http_server, base_url) -> Api:
    return Api(base_url)

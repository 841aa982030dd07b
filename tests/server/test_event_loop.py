"""EVENT_LOOP: uvloop by default, asyncio's own loop on request or where uvloop cannot be
imported; chosen once at start-up, before any loop exists, and followed by the suite."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys

import pytest
import tornado.ioloop

from server.config import ConfigError, load_config
from server.runtime import running_loop_kind, use_event_loop
from tests.support import REPO_ROOT, SUITE_EVENT_LOOP, running_server


@pytest.fixture
def restore_policy():
    """Each test here changes the process's loop policy; the suite's is put back after."""
    yield
    use_event_loop(SUITE_EVENT_LOOP)


def loop_kind_of_a_new_loop() -> str:
    async def kind() -> str:
        return running_loop_kind()

    return asyncio.run(kind())


def test_the_event_loop_is_uvloop_unless_asyncio_is_chosen():
    assert load_config(env={}).event_loop == "uvloop"
    assert load_config(env={"EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ConfigError, match="EVENT_LOOP must be one of uvloop, asyncio, not 'trio'"):
        load_config(env={"EVENT_LOOP": "trio"})


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_every_loop_made_after_the_choice_is_of_that_kind(choice, restore_policy):
    assert use_event_loop(choice) == choice
    assert loop_kind_of_a_new_loop() == choice
    io_loop = tornado.ioloop.IOLoop()  # what pytest-tornado and Tornado's own code make
    try:
        assert io_loop.run_sync(lambda: asyncio.sleep(0, result=running_loop_kind())) == choice
    finally:
        io_loop.close()


def test_without_uvloop_it_says_so_and_runs_on_asyncio(restore_policy, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what `import uvloop` sees where it does not install
    with caplog.at_level(logging.WARNING, logger="server.runtime"):
        assert use_event_loop("uvloop") == "asyncio"
    assert loop_kind_of_a_new_loop() == "asyncio"
    assert any("uvloop cannot be imported" in r.getMessage() for r in caplog.records)


@pytest.mark.gen_test
async def test_the_suite_runs_on_the_loop_event_loop_names():
    assert running_loop_kind() == SUITE_EVENT_LOOP


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_the_server_process_runs_on_the_chosen_loop_and_stops_cleanly(choice):
    with running_server({"EVENT_LOOP": choice}) as server:
        assert server.request("GET", "/healthz").status == 200
        [listening] = [e for e in server.log_lines() if e.get("message") == "listening"]
        assert listening["event_loop"] == choice
        server.signal(signal.SIGTERM)  # the loop's signal handler stops it
        assert server.wait(timeout=15) == 0, server.stderr
    assert not [e for e in server.log_lines() if "traceback" in e]


def _pins(path) -> dict[str, str]:
    """name -> the rest of the line (version and marker) of each pin in a requirements file."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, rest = line.partition("==")
            found[name.strip().lower().replace("_", "-")] = rest.strip()
    return found


def test_uvloop_is_pinned_where_it_installs_and_the_peer_stays_out_of_the_service():
    service = _pins(REPO_ROOT / "requirements.txt")
    assert re.fullmatch(r'[\d.]+; sys_platform != "win32" and platform_python_implementation == "CPython"',
                        service["uvloop"])
    bench_only = _pins(REPO_ROOT / "bench" / "requirements.txt")
    assert {"fastapi", "uvicorn", "httptools"} <= set(bench_only)
    for name in ("fastapi", "uvicorn", "starlette"):  # the peer's, never the service's
        assert name not in service and name not in _pins(REPO_ROOT / "requirements-dev.txt")
    # The HTTP parser is both's (server/connection.py, and uvicorn's): one version.
    assert service["httptools"] == bench_only["httptools"]

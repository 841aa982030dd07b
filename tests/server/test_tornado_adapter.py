"""Tornado's internals in one guarded place (server/connection.py): the copies of Tornado's
code match the installed Tornado's own, every private name it uses exists there and is used
nowhere else, start-up refuses another Tornado; and the cap on open connections."""

from __future__ import annotations

import ast
import http.client
import inspect
import re
import socket
import textwrap
import time
from pathlib import Path

import pytest
import tornado

from server.app import DESCRIPTOR_MARGIN, connection_cap, make_http_server
from server.config import ConfigError
from server.connection import COPIED_FROM_TORNADO, TORNADO_PRIVATE_NAMES, VALIDATED_TORNADO, check_tornado_version
from tests.support import HOST, REPO_ROOT, ServerProcess

ADAPTER = REPO_ROOT / "server" / "connection.py"
TORNADO_DIR = Path(tornado.__file__).parent
# The Tornado modules whose objects this code touches (handlers, the application, the HTTP
# server and its connections, streams, headers, routing, the loop).
TORNADO_MODULES = ("web", "httpserver", "http1connection", "tcpserver", "iostream", "httputil", "netutil",
                   "routing", "ioloop")


def normalised(function) -> str:
    """The function's code without its name, annotations, docstring, comments or layout."""
    node = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0]
    node.name = "f"
    node.returns = None
    for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs):
        arg.annotation = None
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        node.body = body[1:]
    return ast.unparse(node)


@pytest.mark.parametrize("copied", COPIED_FROM_TORNADO, ids=lambda c: c.theirs.__qualname__)
def test_each_copy_is_the_installed_tornados_code_with_its_declared_edits(copied):
    expected = normalised(copied.theirs)
    for original, ours in copied.edits:
        assert original in expected, f"Tornado's {copied.theirs.__qualname__} no longer has {original!r}"
        expected = expected.replace(original, ours)
    assert normalised(copied.ours) == expected, (
        f"Tornado's {copied.theirs.__qualname__} changed since server/connection.py copied it")


def test_the_comparison_sees_an_edit_that_is_not_declared():
    for copied in COPIED_FROM_TORNADO:
        assert normalised(copied.ours) != normalised(copied.theirs)


def test_every_private_name_the_adapter_declares_is_in_the_installed_tornado():
    source = "\n".join((TORNADO_DIR / f"{module}.py").read_text(encoding="utf-8")
                       for module in ("http1connection", "httpserver"))
    assert [name for name in sorted(TORNADO_PRIVATE_NAMES) if not re.search(rf"\b{name}\b", source)] == []


def _private_names_used(path: Path) -> set[str]:
    """Single-underscore names the file reads as attributes or imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        name = node.attr if isinstance(node, ast.Attribute) else node.name if isinstance(node, ast.alias) else None
        if name and name.startswith("_") and not name.startswith("__"):
            names.add(name)
    return names


def _names_defined(path: Path) -> set[str]:
    """What the file defines itself: functions, classes, class attributes, ``self.x = ...``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                if isinstance(target, ast.Name):
                    names.add(target.id)
    return names


def test_the_adapter_declares_every_private_tornado_name_it_uses():
    """Read, imported or overridden: each is in TORNADO_PRIVATE_NAMES (and its own
    private names are none of Tornado's)."""
    used = (_private_names_used(ADAPTER) | _names_defined(ADAPTER)) & tornado_private_names()
    assert used == TORNADO_PRIVATE_NAMES


def tornado_private_names() -> set[str]:
    names = set()
    for module in TORNADO_MODULES:
        source = (TORNADO_DIR / f"{module}.py").read_text(encoding="utf-8")
        names |= set(re.findall(r"\.(_[a-z]\w*)", source))
        names |= {node.name for node in ast.walk(ast.parse(source))
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.name.startswith("_") and not node.name.startswith("__")}
    return names


def test_no_private_tornado_name_outside_the_adapter():
    private = tornado_private_names()
    assert TORNADO_PRIVATE_NAMES <= private
    found = [f"{path.relative_to(REPO_ROOT)}: {name}"
             for folder in ("server", "handlers", "tests", "bench")  # services/ never imports tornado
             for path in sorted((REPO_ROOT / folder).rglob("*.py")) if path != ADAPTER
             for name in sorted(_private_names_used(path) & private)]
    assert found == []


def test_start_up_refuses_a_tornado_other_than_the_validated_one(app, monkeypatch):
    check_tornado_version()  # the installed one passes
    with pytest.raises(ConfigError, match=r"tornado==6\.6\.1 .* but 9\.9\.9 is installed"):
        check_tornado_version(installed="9.9.9")
    monkeypatch.setattr(tornado, "version", "9.9.9")
    with pytest.raises(ConfigError, match=r"9\.9\.9 is installed"):
        make_http_server(app)


def test_requirements_pin_the_validated_tornado():
    pins = re.findall(r"^tornado==(\S+)", (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8"), re.M)
    assert pins == [VALIDATED_TORNADO] == [tornado.version]


# ----- MAX_CONNECTIONS --------------------------------------------------------------------

def test_the_cap_defaults_to_the_open_files_limit_less_a_margin(monkeypatch):
    assert connection_cap(7) == 7
    for soft, cap in [(20000, 20000 - DESCRIPTOR_MARGIN), (1024, 1024 - DESCRIPTOR_MARGIN), (300, 150)]:
        monkeypatch.setattr("resource.getrlimit", lambda _, soft=soft: (soft, soft))
        assert connection_cap(0) == cap
    monkeypatch.setattr("resource.getrlimit", lambda _: (-1, -1))  # RLIM_INFINITY
    assert connection_cap(0) is None


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, f"no {name} in:\n{text}"
    return float(match.group(1))


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, str]:
    conn.request("GET", path)
    reply = conn.getresponse()
    return reply.status, reply.read().decode()


def _closed_at_once(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_past_max_connections_new_ones_are_closed_and_counted_while_the_rest_are_served():
    cap, extra = 4, 3
    with ServerProcess({"MAX_CONNECTIONS": str(cap), "LOG_LEVEL": "warning"}) as server:
        server.start()
        # The start-up checks' connections close on the server's side a moment later.
        deadline = time.monotonic() + 10
        while _metric(server.request("GET", "/metrics").body.decode(), "http_connections_open") != 1:
            assert time.monotonic() < deadline, "the server still counts connections closed long ago"
            time.sleep(0.05)
        kept = [http.client.HTTPConnection(HOST, server.port, timeout=10) for _ in range(cap)]
        refused = []
        try:
            for conn in kept:  # each accepted and answering, kept alive
                assert _get(conn, "/healthz")[0] == 200
            for _ in range(extra):
                sock = socket.create_connection((HOST, server.port), timeout=10)
                refused.append(sock)
                assert _closed_at_once(sock)
            status, metrics = _get(kept[0], "/metrics")
            assert status == 200
            assert _metric(metrics, "http_connections_open") == cap
            assert _metric(metrics, "http_connections_refused_total") == extra
            assert "# HELP http_connections_refused_total" in metrics
            for conn in kept:  # the open connections are still served
                assert _get(conn, "/healthz")[0] == 200
            kept.pop().close()  # one leaves: a new connection gets in
            deadline = time.monotonic() + 10
            while True:
                try:
                    if server.request("GET", "/healthz").status == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "no new connection was served after one closed"
                time.sleep(0.05)
        finally:
            for conn in kept:
                conn.close()
            for sock in refused:
                sock.close()

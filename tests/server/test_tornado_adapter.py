"""Tornado through its public interfaces only: the HTTP layer (server/connection.py) serves
the Application as an ``HTTPServerConnectionDelegate`` with its own ``HTTPConnection``, and no
module uses a private Tornado name; and the cap on open connections."""

from __future__ import annotations

import ast
import http.client
import re
import socket
import time
from pathlib import Path

import tornado

from server.app import DESCRIPTOR_MARGIN, connection_cap
from tests.support import HOST, REPO_ROOT, ServerProcess

TORNADO_DIR = Path(tornado.__file__).parent
# The Tornado modules whose objects this code touches (handlers, the application, the HTTP
# server and its connections, streams, headers, routing, the loop).
TORNADO_MODULES = ("web", "httpserver", "http1connection", "tcpserver", "iostream", "httputil", "netutil",
                   "routing", "ioloop")


def _private_names_used(path: Path) -> set[str]:
    """Single-underscore names the file reads as attributes or imports."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        name = node.attr if isinstance(node, ast.Attribute) else node.name if isinstance(node, ast.alias) else None
        if name and name.startswith("_") and not name.startswith("__"):
            names.add(name)
    return names


def tornado_private_names() -> set[str]:
    names = set()
    for module in TORNADO_MODULES:
        source = (TORNADO_DIR / f"{module}.py").read_text(encoding="utf-8")
        names |= set(re.findall(r"\.(_[a-z]\w*)", source))
        names |= {node.name for node in ast.walk(ast.parse(source))
                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.name.startswith("_") and not node.name.startswith("__")}
    return names


def test_the_check_knows_tornados_private_names():
    assert {"_HTTPRequestContext", "_read_body", "_server_request_loop", "_connections"} <= tornado_private_names()


def test_no_private_tornado_name_anywhere():
    """Not even in the HTTP layer: a Tornado upgrade cannot break it from underneath."""
    private = tornado_private_names()
    found = [f"{path.relative_to(REPO_ROOT)}: {name}"
             for folder in ("server", "handlers", "tests", "bench")  # services/ never imports tornado
             for path in sorted((REPO_ROOT / folder).rglob("*.py"))
             for name in sorted(_private_names_used(path) & private)]
    assert found == []


def test_the_http_layer_imports_only_tornados_public_modules():
    source = (REPO_ROOT / "server" / "connection.py").read_text(encoding="utf-8")
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)}
    assert {name for name in imported if name and name.startswith("tornado")} <= {
        "tornado", "tornado.httputil", "tornado.ioloop", "tornado.log", "tornado.netutil", "tornado.iostream"}


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

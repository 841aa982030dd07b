"""Ports and connections on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from tests.support.constants import HOST


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


async def open_raw_connection(base_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to the server of ``base_url`` (``http://host:port``), for
    tests that write raw, even malformed, HTTP and read what comes back."""
    parts = urlsplit(base_url)
    return await asyncio.open_connection(parts.hostname, parts.port)


def connection_refused(port: int, timeout: float = 1.0) -> bool:
    """True if a new TCP connection to the port is refused (nothing listens there)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True


def connections_drained(server_port: int, client_ports: set[int]) -> bool | None:
    """True once each connection from ``client_ports`` to ``server_port`` is established
    on the server's side with an empty receive queue: the server process accepted it
    and read the request. None where /proc/net/tcp cannot be read."""
    try:
        with open("/proc/net/tcp", encoding="ascii") as fh:
            rows = fh.read().splitlines()[1:]
    except OSError:
        return None
    drained = set()
    for row in rows:
        fields = row.split()
        local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
        if state != "01":  # ESTABLISHED
            continue
        if int(local.rsplit(":", 1)[1], 16) != server_port:
            continue
        client_port = int(remote.rsplit(":", 1)[1], 16)
        if client_port in client_ports and int(queues.split(":")[1], 16) == 0:
            drained.add(client_port)
    return drained == client_ports

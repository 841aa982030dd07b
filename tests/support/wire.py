"""What every MongoDB wire-protocol stand-in (mockupdb) answers the same way: the commands a
driver sends on its own (handshake, pings, sessions, index creation)."""

from __future__ import annotations

from typing import Any

DRIVER_HOUSEKEEPING = ("ping", "endsessions", "createindexes")


def answer_housekeeping(request: Any) -> bool | None:
    """Answers ``request`` if it is one of the driver's own commands (True); None otherwise,
    for the stand-in to answer what its test is about."""
    name = (request.command_name or "").lower()
    if name in DRIVER_HOUSEKEEPING:
        return request.ok()
    if name == "buildinfo":
        return request.ok(version="7.0.0", versionArray=[7, 0, 0, 0])
    return None

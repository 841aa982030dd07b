"""Waiting for something to happen: poll its condition until a deadline, never a fixed sleep.

A loaded 2-core machine (CI runs both suites there, other runs share it) can take many times
longer than a quiet one for what is "a moment" on the quiet one: a mail through the SMTP
thread, a batch of connections, a background flush. A test that polls a fixed number of
times (``for _ in range(100): ... sleep(0.02)``) gives up after two quiet seconds; these
helpers give up only at a deadline in wall-clock seconds (``WAIT_SECONDS`` by default,
well within the 30 s of ``--async-test-timeout``) and return as soon as the condition
holds, so a quick machine waits no longer than before. They return the condition's last
value and do not raise: the test asserts it afterwards, with its own message.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

WAIT_SECONDS = 15.0
POLL_SECONDS = 0.02


async def wait_until(condition: Callable[[], Any | Awaitable[Any]], within: float = WAIT_SECONDS,
                     interval: float = POLL_SECONDS) -> Any:
    """``condition()`` (awaited when it returns an awaitable) until it is truthy or
    ``within`` seconds have passed; its last value."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


def wait_until_sync(condition: Callable[[], Any], within: float = WAIT_SECONDS, interval: float = POLL_SECONDS) -> Any:
    """The same for tests outside an event loop (a server in a child process)."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)

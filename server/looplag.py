"""The event loop's lag: how late a periodic tick runs, as a histogram on /metrics.

Everything in a process shares one event loop, and the embedded store answers every query
on it, so one request that holds the loop (a scan, a long computation) delays every other
request by as long. A tick scheduled every ``TICK_SECONDS`` measures that delay from the
outside: ``event_loop_lag_seconds`` counts how late each tick ran. A p99 above a few tens
of milliseconds means something holds the loop (bench/README.md measures it under load).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.metrics import Metrics

TICK_SECONDS = 0.1
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopLagMonitor:
    def __init__(self, metrics: Metrics, tick_seconds: float = TICK_SECONDS):
        self._tick_seconds = tick_seconds
        # Declared as every metric is, so that with several workers it adds up across them.
        self._lag = metrics.histogram(
            "event_loop_lag_seconds", f"How late a tick scheduled every {tick_seconds} s ran on the event loop.",
            buckets=LAG_BUCKETS)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._measure())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _measure(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self._tick_seconds
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            self._lag.observe(max(0.0, now - due))
            due = now + self._tick_seconds

"""Interpreter settings for a long-running server process."""

from __future__ import annotations

import asyncio
import gc
import logging

log = logging.getLogger(__name__)

# CPython collects its youngest generation every 700 container allocations, and every so
# often all three, walking every object the process holds. Under load that is hundreds of
# collections a second, and the full ones grow with what the process keeps (the embedded
# store's documents, caches): they showed as long p99 latencies of PUT progress and of
# /dashboard during the login storm (figures: bench/README.md). Almost everything here is freed by
# reference counting the moment it is done with, so collecting less often costs little memory.
GC_THRESHOLDS = (50_000, 20, 100)

# EVENT_LOOP: uvloop (libuv, written in Cython) where it installs; asyncio's own loop
# elsewhere, or on request (to rule the loop out when chasing a problem).
EVENT_LOOPS = ("uvloop", "asyncio")


def tune_garbage_collector() -> None:
    """Moves what start-up created out of the collector's way for good (``gc.freeze``:
    modules, routes, configuration are never garbage) and collects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def use_event_loop(choice: str) -> str:
    """Makes every event loop created from here on the chosen kind: ``asyncio.run``'s,
    Tornado's ``IOLoop()`` and those of workers forked later (they inherit the policy).
    Call it once at start-up, before any loop exists. Falls back to asyncio's loop, with
    a log line, where uvloop cannot be imported. Returns the kind now in use."""
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("EVENT_LOOP=uvloop but uvloop cannot be imported on this platform; "
                        "running on asyncio's event loop")
        else:
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            return "uvloop"
    asyncio.set_event_loop_policy(None)  # asyncio's default policy
    return "asyncio"


def running_loop_kind() -> str:
    """``uvloop`` or ``asyncio``: the kind of the loop this coroutine runs on."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"

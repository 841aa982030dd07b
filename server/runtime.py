"""Interpreter settings for a long-running server process."""

from __future__ import annotations

import gc

# CPython collects its youngest generation every 700 container allocations, and every so
# often all three, walking every object the process holds. Under load that is hundreds of
# collections a second, and the full ones grow with what the process keeps (the embedded
# store's documents, caches): they showed as long p99 latencies of PUT progress and of
# /dashboard during the login storm (figures: bench/README.md). Almost everything here is freed by
# reference counting the moment it is done with, so collecting less often costs little memory.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """Moves what start-up created out of the collector's way for good (``gc.freeze``:
    modules, routes, configuration are never garbage) and collects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

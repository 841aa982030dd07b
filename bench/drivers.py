"""CPU per database round trip, through Motor and through PyMongo's ``AsyncMongoClient``.

The embedded store does a request's database work in the API's own process; against a
real MongoDB that work moves to the database and the API pays its driver instead: BSON,
the socket, and for Motor a hop to a thread and back for every operation. No MongoDB
server can run on the bench machine, so the database here is a wire-protocol stand-in
(mockupdb) in ANOTHER process, answering at once: what is measured is the API process's
CPU (``time.process_time``: every thread of this process, the driver's included, and none
of the stand-in's) over N round trips of each kind the API makes most:

- ``find_one`` by ``_id`` (the session read of every authenticated request, the video
  read of every play);
- ``update_one`` by ``_id`` with ``$set`` (``last_used_at``, counters).

Each runs through the services' data layer as they use it (``guarded``, and the durable
view of services/common/durability.py: majority writes, primary reads), on the event loop
chosen (``EVENT_LOOP``, uvloop by default), one operation at a time.

    python -m bench.drivers [--round-trips 3000] [--loops uvloop,asyncio]

Prints µs of CPU per round trip for each driver, operation and loop; bench/README.md's
capacity plan reads its endpoint costs from these figures.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

from bson import ObjectId

from server.config import load_config
from server.database import close, connect
from server.runtime import use_event_loop
from services.common.datastore import guarded
from services.common.durability import DurableDatabase
from tests.support.wire import answer_housekeeping

SESSION_ID = ObjectId()
SESSION = {"_id": SESSION_ID, "user_id": "0123456789abcdef01234567", "created_at": 1_700_000_000.0,
           "last_used_at": 1_700_000_000.0, "expires_at": 1_800_000_000.0, "user_agent": "bench"}
WARM_UP = 300
START_TIMEOUT_SECONDS = 15


def serve() -> None:
    """The stand-in: answers the handshake, pings, ``find`` (with SESSION) and ``update``
    (one matched and modified) until its standard input closes."""
    from mockupdb import MockupDB

    def answer(request) -> bool:
        answered = answer_housekeeping(request)
        if answered is not None:
            return answered
        name = (request.command_name or "").lower()
        if name == "find":
            doc = request.doc
            return request.ok(cursor={"id": 0, "ns": f"{doc['$db']}.{doc['find']}", "firstBatch": [SESSION]})
        if name == "update":
            return request.ok(n=1, nModified=1)
        return False

    mock = MockupDB(auto_ismaster={"ismaster": True, "minWireVersion": 0, "maxWireVersion": 21})
    mock.autoresponds(answer)
    port = mock.run()
    print(port, flush=True)
    sys.stdin.read()  # until the parent closes it or goes away
    mock.stop()


async def per_round_trip(driver: str, uri: str, round_trips: int) -> dict[str, float]:
    """µs of this process's CPU (and of wall time) per round trip, by operation."""
    config = load_config(env={}, mongodb_uri=uri, mongodb_driver=driver, mongodb_timeout_ms=5000,
                         jwt_secrets=("x" * 40,))
    client, db = connect(config)
    sessions = guarded(DurableDatabase(db, config))["sessions"]
    operations = {
        "find_one": lambda: sessions.find_one({"_id": SESSION_ID}),
        "update_one": lambda: sessions.update_one({"_id": SESSION_ID}, {"$set": {"last_used_at": time.time()}}),
    }
    found: dict[str, float] = {}
    try:
        for name, operation in operations.items():
            for _ in range(WARM_UP):  # connections made, code paths warm
                await operation()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(round_trips):
                await operation()
            found[f"{name}_cpu_us"] = round((time.process_time() - cpu) / round_trips * 1e6, 1)
            found[f"{name}_wall_us"] = round((time.perf_counter() - wall) / round_trips * 1e6, 1)
    finally:
        await close(client)
    return found


def measure(round_trips: int, loops: list[str], drivers: tuple[str, ...] = ("motor", "pymongo")) -> dict:
    stand_in = subprocess.Popen(
        [sys.executable, "-m", "bench.drivers", "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(stand_in.stdout.readline())
        uri = f"mongodb://127.0.0.1:{port}/bench_drivers"
        results = {}
        for loop in loops:
            use_event_loop(loop)
            for driver in drivers:
                results[f"{driver} on {loop}"] = asyncio.run(per_round_trip(driver, uri, round_trips))
        return results
    finally:
        stand_in.stdin.close()
        try:
            stand_in.wait(timeout=START_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            stand_in.kill()
            stand_in.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drivers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-trips", type=int, default=3000)
    parser.add_argument("--loops", default="uvloop,asyncio")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.serve:
        serve()
        return 0
    results = measure(options.round_trips, options.loops.split(","))
    print(f"{'driver, loop':20s} {'find_one CPU µs':>16s} {'update_one CPU µs':>18s} {'(wall µs)':>16s}")
    for name, found in results.items():
        print(f"{name:20s} {found['find_one_cpu_us']:16.1f} {found['update_one_cpu_us']:18.1f} "
              f"{found['find_one_wall_us']:7.1f} {found['update_one_wall_us']:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""bcrypt hashing, always off the event loop, with a bounded queue.

bcrypt releases the GIL while it works, so a thread pool checks several passwords at
once while the loop keeps serving everyone else. Each check costs a fixed, deliberate
amount of CPU, so the work waiting for the pool is bounded: past ``queue_limit`` checks
queued or running, a new one is refused at once (``Overloaded``: 503 with Retry-After)
instead of waiting behind the rest, and sign-ups (new hashes) may take at most half of
the queue, so a flood of sign-ups never leaves logins without room.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

import bcrypt

from services.common.errors import Overloaded

BUSY = "The service is busy checking passwords. Please try again in a moment."
RETRY_AFTER_SECONDS = 2


class PasswordHasher:
    def __init__(self, rounds: int, executor: Executor, queue_limit: int = 64):
        self._rounds = rounds
        self._executor = executor
        self._queue_limit = queue_limit
        self._waiting = 0
        self._dummy_hash: bytes | None = None

    @property
    def waiting(self) -> int:
        """Password hashes and checks queued or running right now (for metrics)."""
        return self._waiting

    async def hash(self, password: str) -> str:
        hashed = await self._run(self._hash_sync, password, room=max(self._queue_limit // 2, 1))
        return hashed.decode("ascii")

    async def check(self, password: str, hashed: str | None) -> bool:
        """True if the password matches. With ``hashed=None`` (no such user) it still
        spends one bcrypt check, so the answer takes as long as for a real account."""
        if hashed is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self._run(self._hash_sync, "not-a-real-password")
            await self._run(bcrypt.checkpw, password.encode(), self._dummy_hash)
            return False
        return await self._run(bcrypt.checkpw, password.encode(), hashed.encode("ascii"))

    def _hash_sync(self, password: str) -> bytes:
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(self._rounds))

    async def _run(self, fn, *args, room: int | None = None):
        if self._waiting >= (self._queue_limit if room is None else room):
            raise Overloaded(BUSY, retry_after=RETRY_AFTER_SECONDS)
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._waiting -= 1

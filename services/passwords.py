"""bcrypt hashing, always off the event loop.

bcrypt releases the GIL while it works, so a thread pool the size of the machine's
cores checks that many passwords at once while the loop keeps serving everyone else.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor

import bcrypt


class PasswordHasher:
    def __init__(self, rounds: int, executor: Executor):
        self._rounds = rounds
        self._executor = executor
        self._dummy_hash: bytes | None = None
        self._waiting = 0
        self._waiting_lock = threading.Lock()  # the loop adds, the bcrypt threads take away

    @property
    def waiting(self) -> int:
        """Password hashes and checks queued for a bcrypt thread, not yet started (a metric:
        when it grows, logins wait on the threads, see BCRYPT_THREADS)."""
        return self._waiting

    async def hash(self, password: str) -> str:
        hashed = await self._run(self._hash_sync, password)
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

    async def _run(self, fn, *args):
        queued = [True]  # until a thread takes the call; both sides change it under the lock
        with self._waiting_lock:
            self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._take, queued, fn, args)
        finally:
            # A call cancelled (or refused) before any thread took it stops waiting here.
            with self._waiting_lock:
                if queued[0]:
                    queued[0] = False
                    self._waiting -= 1

    def _take(self, queued: list, fn, args):
        with self._waiting_lock:
            if queued[0]:
                queued[0] = False
                self._waiting -= 1
        return fn(*args)

"""Verify a token once, then trust the cached answer only while the token is current.

Every request of a session carries the same auth token, and a player asks for the same
playback link on every play: checking a signature again each time would be pure cost.
``VerifiedTokens`` runs the owner's ``decode`` (signature and claims) once per token,
keeps the answer in a bounded LRU cache (a flood of distinct valid tokens evicts old
entries instead of growing memory; failures are not cached), and on every use asks the
owner's ``is_current(stamp, now)`` whether the token's age still allows it, so a cached
verification never outlives its token. Used by services/accounts/sessions.py (the JWT) and
services/catalog/playback.py (playback links).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from services.common.errors import NotAuthenticated

VERIFIED_TOKEN_CACHE_SIZE = 4096

Value = TypeVar("Value")


class VerifiedTokens(Generic[Value]):
    """``decode(token) -> (value, stamp)`` raises NotAuthenticated for a bad token;
    ``is_current(stamp, now)`` says whether a good one may still be used at ``now``
    (``time.time()``); when it may not, ``verify`` raises NotAuthenticated(``expired``).
    One instance per set of signing keys: the cache belongs to them."""

    def __init__(self, decode: Callable[[str], tuple[Value, float]],
                 is_current: Callable[[float, float], bool], expired: str,
                 maxsize: int = VERIFIED_TOKEN_CACHE_SIZE):
        self._decoded = functools.lru_cache(maxsize=maxsize)(decode)
        self._is_current = is_current
        self._expired = expired

    def verify(self, token: str) -> Value:
        value, stamp = self._decoded(token)
        if not self._is_current(stamp, time.time()):
            raise NotAuthenticated(self._expired)
        return value

"""Deleting an account, in an order that survives being cut off half-way.

Everything a user owns lives in stores that each know how to delete one user's share:
the *user data owners*. Deletion runs, every step idempotent:

1. mark the user as being deleted: from here on login refuses the account, and a
   password reset cannot set a new password on it;
2. delete what the owners hold, sessions first: once they are gone every access token,
   refresh token and playback link of the account is refused;
3. delete the user document: only now is the email free to sign up again.

A database outage between two steps leaves the mark, and nothing that still logs in.
``finish_pending`` (run at start-up and now and then afterwards) completes such a
deletion; so does the same request, repeated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from services.accounts.users import UserStore

log = logging.getLogger("app.accounts")


class UserDataOwner(Protocol):
    """A store holding data of users. ``delete_user_data`` removes all of one user's,
    and succeeds (does nothing) when there is none: it may run more than once."""

    async def delete_user_data(self, user_id: str) -> None: ...


class AccountDeletion:
    def __init__(self, users: UserStore, owners: Sequence[UserDataOwner]):
        # In order: the session store first, so that logins end before anything else.
        self._users = users
        self._owners = tuple(owners)

    async def delete(self, user_id: str) -> None:
        await self._users.mark_deleting(user_id)
        await self._finish(user_id)

    async def _finish(self, user_id: str) -> None:
        for owner in self._owners:
            await owner.delete_user_data(user_id)
        await self._users.delete(user_id)

    async def finish_pending(self) -> int:
        """Completes every deletion that was cut off; returns how many there were."""
        pending = await self._users.pending_deletions()
        for user_id in pending:
            await self._finish(user_id)
        if pending:
            log.info("finished interrupted account deletions", extra={"accounts": len(pending)})
        return len(pending)

"""Sign-in identities: an account at Google or Apple, stored as ``(provider, sub)`` (the
provider's stable id of the person), never by address alone, linked to one of our accounts.
The unique index on ``(provider, sub)`` decides every race between first sign-ins."""

from __future__ import annotations

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from services.common.clock import utcnow
from services.common.datastore import GuardedDatabase

MAX_IDENTITIES_PER_USER = 10  # one per provider in practice; bounds what a lookup reads


class IdentityStore:
    def __init__(self, db: GuardedDatabase) -> None:
        self._identities = db["identities"]

    async def ensure_indexes(self) -> None:
        await self._identities.create_index([("provider", 1), ("sub", 1)], unique=True, name="provider_sub_unique")
        await self._identities.create_index("user_id", name="user_id")

    async def user_of(self, provider: str, sub: str) -> str | None:
        """The id of the account this identity signs in to, if it is linked to one."""
        doc = await self._identities.find_one({"provider": provider, "sub": sub}, projection={"user_id": 1})
        return None if doc is None else doc["user_id"]

    async def link(self, provider: str, sub: str, user_id: str, email: str | None) -> str | None:
        """Links the identity to ``user_id`` unless it is linked already (a concurrent first
        sign-in won): returns the account it is linked to, ours or the winner's (None in the
        rare case that the winner's link was removed again meanwhile)."""
        try:
            await self._identities.insert_one({"_id": ObjectId(), "provider": provider, "sub": sub,
                                               "user_id": user_id, "email": email, "created_at": utcnow()})
        except DuplicateKeyError:
            return await self.user_of(provider, sub)
        return user_id

    async def unlink(self, provider: str, sub: str, user_id: str) -> None:
        """Removes the link, only if it is still to ``user_id``."""
        await self._identities.delete_one({"provider": provider, "sub": sub, "user_id": user_id})

    async def owns(self, user_id: str, provider: str, sub: str) -> bool:
        return await self._identities.count_documents(
            {"provider": provider, "sub": sub, "user_id": user_id}, limit=1) == 1

    async def providers_of(self, user_id: str) -> list[str]:
        return [doc["provider"] async for doc in self._identities.find(
            {"user_id": user_id}, projection={"provider": 1}).limit(MAX_IDENTITIES_PER_USER)]

    async def delete_user_data(self, user_id: str) -> None:
        await self._identities.delete_many({"user_id": user_id})

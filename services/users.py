"""User accounts: creation, lookup and password checks."""

from __future__ import annotations

import datetime as dt

from pymongo.errors import DuplicateKeyError

from services.clock import as_utc, utcnow
from services.errors import Conflict, NotFound
from services.ids import parse_object_id
from services.passwords import PasswordHasher


def public_user(doc: dict, with_created_at: bool = False) -> dict:
    """The fields of a user that a client may see (never the password hash)."""
    user = {"id": str(doc["_id"]), "name": doc["name"], "email": doc["email"]}
    if with_created_at:
        user["created_at"] = as_utc(doc["created_at"]).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return user


class UserStore:
    def __init__(self, db, hasher: PasswordHasher):
        self._users = db["users"]
        self._hasher = hasher

    async def ensure_indexes(self) -> None:
        # The unique index, not a find-before-insert, is what makes duplicate signups
        # (including two that race) impossible.
        await self._users.create_index("email", unique=True, name="email_unique")

    async def create(self, name: str, email: str, password: str) -> str:
        """Creates the account; ``email`` is already normalised. Returns the new id."""
        doc = {
            "name": name,
            "email": email,
            "password_hash": await self._hasher.hash(password),
            "created_at": utcnow(),
        }
        try:
            result = await self._users.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("An account with this email already exists. Try logging in instead.") from None
        return str(result.inserted_id)

    async def check_credentials(self, email: str, password: str) -> dict | None:
        """The user doc if the password is right, else None. Takes one bcrypt check
        either way, so timing does not tell whether the email is registered."""
        doc = await self._users.find_one({"email": email})
        hashed = doc["password_hash"] if doc else None
        if await self._hasher.check(password, hashed) and doc is not None:
            return doc
        return None

    async def get(self, user_id: str) -> dict:
        oid = parse_object_id(user_id)
        doc = await self._users.find_one({"_id": oid}) if oid else None
        if doc is None:
            raise NotFound("This account no longer exists.")
        return doc

"""User accounts: creation, lookup and password checks."""

from __future__ import annotations

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.accounts.passwords import PasswordHasher
from services.common.clock import isoformat, utcnow
from services.common.datastore import Database
from services.common.errors import Conflict, NotFound
from services.common.ids import parse_object_id


def public_user(doc: dict, with_created_at: bool = False) -> dict:
    """The fields of a user that a client may see (never the password hash). An account
    stored before addresses were verified has no ``email_verified``: it reads as false."""
    user = {"id": str(doc["_id"]), "name": doc["name"], "email": doc["email"],
            "email_verified": doc.get("email_verified") is True}
    if with_created_at:
        user["created_at"] = isoformat(doc["created_at"])
    return user


EMAIL_TAKEN = "An account with this email already exists. Try logging in instead."
ADDRESS_TAKEN = "Another account already uses this email address."


class UserStore:
    def __init__(self, db: Database, hasher: PasswordHasher):
        self._users = db["users"]
        self._hasher = hasher

    async def ensure_indexes(self) -> None:
        # The unique index, not a find-before-insert, is what makes duplicate signups
        # (including two that race) impossible.
        await self._users.create_index("email", unique=True, name="email_unique")
        # Deletions left half done (a database outage, a crash): only those carry it.
        await self._users.create_index("deleting_at", name="deleting",
                                      partialFilterExpression={"deleting_at": {"$exists": True}})

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
            raise Conflict(EMAIL_TAKEN) from None
        return str(result.inserted_id)

    async def create_for_identity(self, user_id: str, name: str, email: str, email_verified: bool) -> bool:
        """Creates the account ``user_id`` of a first sign-in with Google or Apple, with no
        password, unless it exists already (a concurrent first sign-in of the same identity
        made it: the same id). True if this call created it. Conflict if another account has
        the address."""
        oid = parse_object_id(user_id)
        doc = {"name": name, "email": email, "email_verified": email_verified, "created_at": utcnow()}
        try:
            result = await self._users.update_one({"_id": oid}, {"$setOnInsert": doc}, upsert=True)
        except DuplicateKeyError:
            if await self._users.count_documents({"_id": oid}, limit=1):
                return False  # two upserts of the same id raced; the other one inserted it
            raise Conflict("An account with this email already exists. Try logging in instead.") from None
        return result.upserted_id is not None

    async def check_credentials(self, email: str, password: str) -> dict | None:
        """The user doc if the password is right, else None. Takes one bcrypt check
        either way, so timing does not tell whether the email is registered. An account
        being deleted counts as no account."""
        doc = await self.find_by_email(email)
        # An account made by signing in with Google or Apple has no password (yet).
        hashed = doc.get("password_hash") if doc else None
        if await self._hasher.check(password, hashed) and doc is not None:
            return doc
        return None

    async def find_by_email(self, email: str) -> dict | None:
        """The account with this (normalised) email, unless it is being deleted."""
        doc = await self._users.find_one({"email": email})
        return None if doc is None or doc.get("deleting_at") is not None else doc

    async def password_matches(self, doc: dict, password: str) -> bool:
        return await self._hasher.check(password, doc.get("password_hash"))

    async def is_active(self, user_id: str) -> bool:
        """Exists and is not being deleted."""
        oid = parse_object_id(user_id)
        doc = await self._users.find_one({"_id": oid}, projection={"deleting_at": 1}) if oid else None
        return doc is not None and doc.get("deleting_at") is None

    async def set_password(self, user_id: str, password: str) -> bool:
        """False if the account is gone or being deleted."""
        hashed = await self._hasher.hash(password)
        result = await self._users.update_one(
            {"_id": parse_object_id(user_id), "deleting_at": None}, {"$set": {"password_hash": hashed}})
        return result.matched_count == 1

    async def mark_verified(self, user_id: str, email: str) -> dict | None:
        """Marks the address verified, provided the account still has this address (a link
        sent to a former address verifies nothing) and is not being deleted. Returns the
        account as it is now, or None. One atomic update: racing confirmations agree."""
        oid = parse_object_id(user_id)
        if oid is None:
            return None
        return await self._users.find_one_and_update(
            {"_id": oid, "email": email, "deleting_at": None}, {"$set": {"email_verified": True}},
            return_document=ReturnDocument.AFTER)

    async def verify_address(self, email: str) -> bool:
        """The operator's way (``python -m server verify-email``): False if no account has it."""
        result = await self._users.update_one({"email": email, "deleting_at": None},
                                              {"$set": {"email_verified": True}})
        return result.matched_count == 1

    async def email_taken(self, email: str) -> bool:
        return await self._users.find_one({"email": email}, projection={"_id": 1}) is not None

    async def change_email(self, user_id: str, old_email: str, new_email: str) -> dict | None:
        """Moves the account from ``old_email`` to ``new_email`` (verified: the link to it
        was opened). None if the account is gone, being deleted or no longer at
        ``old_email``; Conflict if another account has ``new_email`` (the unique index
        decides, atomically, however many changes and sign-ups race for it)."""
        oid = parse_object_id(user_id)
        if oid is None:
            return None
        try:
            return await self._users.find_one_and_update(
                {"_id": oid, "email": old_email, "deleting_at": None},
                {"$set": {"email": new_email, "email_verified": True}}, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            raise Conflict(ADDRESS_TAKEN) from None

    async def mark_deleting(self, user_id: str) -> None:
        """The first step of a deletion: from here on login refuses the account."""
        await self._users.update_one({"_id": parse_object_id(user_id), "deleting_at": None},
                                     {"$set": {"deleting_at": utcnow()}})

    async def pending_deletions(self) -> list[str]:
        return [str(doc["_id"]) async for doc in
                self._users.find({"deleting_at": {"$exists": True}}, projection={"_id": 1})]

    async def delete(self, user_id: str) -> None:
        """The last step of a deletion; the email is free to sign up again."""
        await self._users.delete_one({"_id": parse_object_id(user_id)})

    async def get(self, user_id: str) -> dict:
        oid = parse_object_id(user_id)
        doc = await self._users.find_one({"_id": oid}) if oid else None
        if doc is None:
            raise NotFound("This account no longer exists.")
        return doc

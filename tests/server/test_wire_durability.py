"""What reaches a replica set: the write concern and read preference of every revocation
and every session or throttle check, seen on the wire.

MongoDB's mock server (mockupdb) plays the primary of a one-member replica set and
records every command. The services are the ones the handlers call, built by
``build_services`` on a Motor client made as the server makes it (``connect``). Each
operation runs as a task on the event loop while mockupdb's threads answer.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
import pytest
from bson import ObjectId
from mockupdb import MockupDB
from motor.motor_asyncio import AsyncIOMotorClient

from server.app import build_services
from server.config import load_config
from server.database import connect
from services.accounts.sessions import AuthTokenCodec, Principal
from services.common.errors import DatabaseUnavailable, NotAuthenticated
from tests.support import HOST, PASSWORD, TEST_SECRET, free_port

SET_NAME = "rs0"
DATABASE = "video_app_wire"
TIMEOUT_MS = 2500
# Every collection holding a credential, its revocation or a throttle's count.
DURABLE = {"users", "sessions", "refresh_tokens", "login_failures",
           "password_reset_tokens", "password_reset_requests",
           "email_verification_tokens", "email_change_tokens", "mail_requests"}
WRITES = {"insert", "update", "delete", "findandmodify"}
ADDRESS = "203.0.113.7"
EMAIL = "ann@example.com"
# What the connection string may ask for; none of it may reach the durable collections.
URI_OPTIONS = ["", "readPreference=secondaryPreferred&w=1", "readPreference=secondaryPreferred&w=0"]


def utc(**delta) -> dt.datetime:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).replace(microsecond=0)


class ReplicaSetPrimary:
    """A mock MongoDB that says it is the primary of ``rs0``, answers the commands the
    stores send from ``documents`` (what a find returns) and ``modified`` (what a
    findAndModify returns), and records each command."""

    def __init__(self):
        port = free_port()
        self.address = f"{HOST}:{port}"
        self.mock = MockupDB(port=port, auto_ismaster={
            "ismaster": True, "isWritablePrimary": True, "secondary": False,
            "setName": SET_NAME, "hosts": [self.address], "me": self.address,
            "minWireVersion": 0, "maxWireVersion": 21, "logicalSessionTimeoutMinutes": 30,
        })
        self.reset()
        self.mock.autoresponds(self._answer)

    def reset(self) -> None:
        self.commands: list[dict] = []
        self.documents: dict[str, list[dict]] = {}
        self.modified: dict[str, dict | None] = {}
        self.write_concern_error: dict | None = None

    def uri(self, options: str = "") -> str:
        query = f"replicaSet={SET_NAME}" + (f"&{options}" if options else "")
        return f"mongodb://{self.address}/{DATABASE}?{query}"

    def _answer(self, request) -> bool:
        name = (request.command_name or "").lower()
        if name not in WRITES | {"find", "endsessions", "ping", "killcursors"}:
            return False  # the handshake: mockupdb's own auto_ismaster answers it
        command = dict(request.doc)
        if name not in WRITES | {"find"}:
            return request.ok()  # the client's housekeeping, not the stores' commands
        collection = next(iter(command.values()))
        self.commands.append({"name": name, "collection": collection, "doc": command})
        if name == "find":
            batch = self.documents.get(collection, [])
            return request.ok(cursor={"id": 0, "ns": f"{DATABASE}.{collection}", "firstBatch": batch})
        reply: dict = {"n": 1}
        if name == "update":
            reply["nModified"] = 1
        if name == "findandmodify":
            value = self.modified.get(collection)
            reply = {"value": value, "lastErrorObject": {"n": int(value is not None), "updatedExisting": True}}
        if name in WRITES and self.write_concern_error is not None:
            reply["writeConcernError"] = self.write_concern_error
        return request.ok(reply)

    def seen(self) -> set[tuple[str, str]]:
        return {(c["name"], c["collection"]) for c in self.commands}


@pytest.fixture(scope="module")
def mock_primary():
    server = ReplicaSetPrimary()
    server.mock.run()
    yield server
    server.mock.stop()  # takes a second: once for the module


@pytest.fixture
def primary(mock_primary):
    mock_primary.reset()
    return mock_primary


@pytest.fixture
def executor():
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield pool


def wire_config(uri: str):
    # Development mail (a sign-up's verification, a reset) goes to a temporary directory.
    return load_config(env={}, mongodb_uri=uri, jwt_secrets=(TEST_SECRET,), bcrypt_rounds=4,
                       mongodb_timeout_ms=TIMEOUT_MS, mail_dir=str(Path(tempfile.gettempdir()) / "video-app-wire-mail"))


class Wire:
    """The services on a client of the mock, and the fixtures of one user."""

    def __init__(self, primary: ReplicaSetPrimary, executor, uri_options: str, client_timeout: bool):
        self.primary = primary
        self.config = wire_config(primary.uri(uri_options))
        if client_timeout:
            self.client, db = connect(self.config)  # as the server makes it (timeoutMS)
        else:  # a client made without timeoutMS: the write concern's own wtimeout bounds the wait
            self.client = AsyncIOMotorClient(primary.uri(uri_options), tz_aware=True,
                                             serverSelectionTimeoutMS=TIMEOUT_MS)
            db = self.client.get_default_database()
        self.services = build_services(self.config, db, executor)
        self.principal = Principal(user_id=str(ObjectId()), session_id="session-1")
        self.user = {"_id": ObjectId(self.principal.user_id), "name": "Ann", "email": EMAIL,
                     "password_hash": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode(),
                     "created_at": utc(days=-1)}
        self.session = {"_id": self.principal.session_id, "user_id": self.principal.user_id,
                        "created_at": utc(hours=-2), "last_used_at": utc(hours=-1), "user_agent": "",
                        "expires_at": utc(days=1)}
        primary.documents.update(users=[self.user], sessions=[self.session], login_failures=[])

    def refresh_record(self, spent_at):
        return {"_id": "h" * 64, "session_id": self.principal.session_id, "user_id": self.principal.user_id,
                "issued_at": utc(hours=-1), "expires_at": utc(days=1), "spent_at": spent_at,
                "successor_hash": "s" * 64, "access_issued_at": 1_700_000_000}


@pytest.fixture(params=URI_OPTIONS, ids=["plain-uri", "uri-w1-secondaryPreferred", "uri-w0-secondaryPreferred"])
def wire(request, primary, executor):
    built = Wire(primary, executor, request.param, client_timeout=True)
    yield built
    built.client.close()


def assert_durable(primary: ReplicaSetPrimary, expected: set[tuple[str, str]], *, wtimeout: int | None = None):
    """Every expected command was sent, and every command on a durable collection was a
    majority write (retryable when it touches one document) or a read from the primary."""
    assert expected <= primary.seen(), primary.seen()
    durable = [c for c in primary.commands if c["collection"] in DURABLE]
    assert durable
    for command in durable:
        doc = command["doc"]
        where = f"{command['name']} {command['collection']}"
        assert doc.get("$readPreference", {"mode": "primary"}) == {"mode": "primary"}, where
        if command["name"] not in WRITES:
            assert "writeConcern" not in doc, where
            continue
        if wtimeout is None:
            # The client's timeoutMS: pymongo sends the deadline as maxTimeMS (the server
            # applies it to the majority wait too) and leaves wtimeout out.
            assert doc["writeConcern"] == {"w": "majority"}, where
            assert 0 < doc["maxTimeMS"] <= TIMEOUT_MS, where
        else:
            assert doc["writeConcern"] == {"w": "majority", "wtimeout": wtimeout}, where
        single = command["name"] in {"insert", "findandmodify"} or all(
            not statement.get("multi") and statement.get("limit", 1) == 1
            for statement in doc.get("updates", doc.get("deletes", [{}])))
        if single:
            assert "txnNumber" in doc, f"{where}: retryable writes are on"


# ----- each revocation and each check ------------------------------------------------------


@pytest.mark.gen_test
async def test_logout_of_this_session(wire):
    await wire.services.accounts.logout(wire.principal)
    assert_durable(wire.primary, {("delete", "sessions"), ("delete", "refresh_tokens")})


@pytest.mark.gen_test
@pytest.mark.parametrize("scope", ["others", "all"])
async def test_logout_of_other_or_all_sessions(wire, scope):
    await wire.services.accounts.logout(wire.principal, {"scope": scope})
    assert_durable(wire.primary, {("delete", "sessions"), ("delete", "refresh_tokens")})


@pytest.mark.gen_test
async def test_deleting_a_session(wire):
    await wire.services.accounts.end_session(wire.principal, "session-2")
    assert_durable(wire.primary, {("delete", "sessions"), ("delete", "refresh_tokens")})


@pytest.mark.gen_test
async def test_refresh_spends_the_token_and_extends_the_session(wire):
    wire.primary.modified["refresh_tokens"] = wire.refresh_record(spent_at=utc())
    pair = await wire.services.accounts.refresh({"refresh_token": "r" * 43})
    assert set(pair) == {"token", "refresh_token", "expires_in"}
    assert_durable(wire.primary, {("findandmodify", "refresh_tokens"), ("update", "refresh_tokens"),
                                  ("update", "sessions")})


@pytest.mark.gen_test
async def test_refresh_token_reuse_ends_the_session(wire):
    wire.primary.modified["refresh_tokens"] = None
    wire.primary.documents["refresh_tokens"] = [wire.refresh_record(spent_at=utc(hours=-1))]
    with pytest.raises(NotAuthenticated):
        await wire.services.accounts.refresh({"refresh_token": "r" * 43})
    assert_durable(wire.primary, {("findandmodify", "refresh_tokens"), ("find", "refresh_tokens"),
                                  ("delete", "sessions"), ("delete", "refresh_tokens")})


@pytest.mark.gen_test
async def test_password_change(wire):
    await wire.services.accounts.change_password(
        wire.principal, {"current_password": PASSWORD, "new_password": "a new secret"}, ADDRESS)
    assert_durable(wire.primary, {("find", "users"), ("update", "login_failures"), ("delete", "login_failures"),
                                  ("update", "users"), ("delete", "password_reset_tokens"), ("delete", "sessions"),
                                  ("delete", "refresh_tokens")})


@pytest.mark.gen_test
async def test_password_reset_confirmation(wire):
    wire.primary.modified["password_reset_tokens"] = {
        "_id": "t" * 64, "user_id": wire.principal.user_id, "created_at": utc(), "expires_at": utc(minutes=30)}
    await wire.services.password_reset.confirm({"token": "t" * 43, "new_password": "a new secret"})
    assert_durable(wire.primary, {("findandmodify", "password_reset_tokens"), ("update", "users"),
                                  ("delete", "password_reset_tokens"), ("delete", "sessions"),
                                  ("delete", "refresh_tokens")})


@pytest.mark.gen_test
async def test_account_deletion(wire):
    await wire.services.accounts.delete_account(wire.principal, {"password": PASSWORD}, ADDRESS)
    assert_durable(wire.primary, {("find", "users"), ("update", "login_failures"), ("update", "users"),
                                  ("delete", "sessions"), ("delete", "refresh_tokens"),
                                  ("delete", "password_reset_tokens"), ("delete", "email_verification_tokens"),
                                  ("delete", "email_change_tokens"), ("delete", "users")})


@pytest.mark.gen_test
async def test_session_check_of_every_authenticated_request(wire):
    token = AuthTokenCodec(wire.config.jwt_secrets, wire.config.jwt_ttl_seconds).issue(wire.principal)
    assert await wire.services.accounts.authenticate(token) == wire.principal
    # last_used_at was an hour old: the check also wrote it.
    assert_durable(wire.primary, {("find", "sessions"), ("update", "sessions")})


@pytest.mark.gen_test
async def test_login_checks_the_throttle_and_starts_a_session(wire):
    session = await wire.services.accounts.login({"email": EMAIL, "password": PASSWORD}, ADDRESS, "phone")
    assert session["user"]["email"] == EMAIL
    assert_durable(wire.primary, {("update", "login_failures"), ("find", "users"), ("delete", "login_failures"),
                                  ("insert", "sessions"), ("update", "refresh_tokens")})


@pytest.mark.gen_test
async def test_failed_login_counts_on_the_primary(wire):
    with pytest.raises(NotAuthenticated):
        await wire.services.accounts.login({"email": EMAIL, "password": "not the password"}, ADDRESS)
    assert_durable(wire.primary, {("update", "login_failures"), ("update", "login_failures")})


@pytest.mark.gen_test
async def test_password_reset_request_throttle(wire):
    wire.primary.modified["password_reset_requests"] = {"_id": f"email:{EMAIL}", "count": 1,
                                                        "expires_at": utc(hours=1)}
    await wire.services.password_reset.request({"email": EMAIL}, ADDRESS)
    await wire.services.password_reset.idle()  # the background lookup and token, on the wire too
    assert_durable(wire.primary, {("update", "password_reset_requests"), ("find", "users"),
                                  ("insert", "password_reset_tokens")})


# ----- the checks above can fail -----------------------------------------------------------


@pytest.mark.gen_test
async def test_the_connection_strings_options_do_reach_the_other_collections(primary, executor):
    """The control: the catalog is read and written as the connection string says, so the
    assertions above would see a secondary read or a w:1 write if one were sent."""
    wire = Wire(primary, executor, "readPreference=secondaryPreferred&w=1", client_timeout=True)
    try:
        await wire.services.catalog.active(2)
        await wire.services.catalog.upsert({"youtube_id": "abc", "title": "t", "is_active": True})
    finally:
        wire.client.close()
    [find] = [c["doc"] for c in primary.commands if c["name"] == "find"]
    [update] = [c["doc"] for c in primary.commands if c["name"] == "update"]
    assert find["$readPreference"] == {"mode": "secondaryPreferred"}
    assert update["writeConcern"] == {"w": 1}


@pytest.mark.gen_test
async def test_a_client_without_timeout_sends_the_bound_as_wtimeout(primary, executor):
    wire = Wire(primary, executor, "readPreference=secondaryPreferred&w=1", client_timeout=False)
    try:
        await wire.services.accounts.logout(wire.principal, {"scope": "all"})
        await wire.services.accounts.end_session(wire.principal, "session-2")
    finally:
        wire.client.close()
    assert_durable(primary, {("delete", "sessions"), ("delete", "refresh_tokens")}, wtimeout=TIMEOUT_MS)


# ----- a majority that does not answer in time -----------------------------------------------


@pytest.mark.gen_test
@pytest.mark.parametrize("error", [
    {"code": 50, "codeName": "MaxTimeMSExpired", "errmsg": "operation exceeded time limit"},
    {"code": 64, "codeName": "WriteConcernFailed", "errmsg": "waiting for replication timed out",
     "errInfo": {"wtimeout": True}},
], ids=["deadline", "wtimeout"])
async def test_a_majority_wait_that_runs_out_is_a_database_outage(wire, error):
    """The data layer raises DatabaseUnavailable (services/common/datastore.py), which the handlers
    answer with 503 and Retry-After."""
    wire.primary.write_concern_error = error
    with pytest.raises(DatabaseUnavailable):
        await wire.services.accounts.logout(wire.principal)

"""Deleting an account: through HTTP, racing a refresh and a login, and cut off half-way."""

import asyncio

import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect

from services.accounts.account_deletion import AccountDeletion
from services.accounts.password_reset import ResetTokenStore
from services.accounts.passwords import PasswordHasher
from services.accounts.refresh_tokens import RefreshTokenStore
from services.accounts.sessions import Principal, SessionStore
from services.accounts.users import UserStore
from services.common.clock import utcnow
from services.common.errors import NotAuthenticated
from tests.support import PASSWORD, assert_json_error, query_token, wait_until

ANN = {"email": "ann@example.com", "password": PASSWORD}
PER_USER_COLLECTIONS = ("sessions", "refresh_tokens", "password_reset_tokens")


async def login_pair(api) -> dict:
    reply = await api.post("/auth/login", ANN)
    assert reply.status == 200, reply.body
    return reply.json


async def delete_me(api, token, password=PASSWORD):
    return await api.request("DELETE", "/auth/me", json_body={"password": password}, token=token)


@pytest.mark.gen_test
async def test_deleting_the_account_removes_everything_and_frees_the_email(api, database, services):
    user_id = await api.signup()
    this, other = await login_pair(api), await login_pair(api)
    videos = await api.dashboard(other["token"])
    await api.post("/auth/password-reset", {"email": "ann@example.com"})
    await services.password_reset.idle()
    assert await database["password_reset_tokens"].count_documents({"user_id": user_id}) == 1

    reply = await delete_me(api, this["token"])
    assert reply.status == 200
    assert reply.json["message"]
    for pair in (this, other):
        assert (await api.get("/auth/me", token=pair["token"])).status == 401
        assert (await api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]})).status == 401
    play = await api.get(f"/video/{videos[0]['id']}/play?token={query_token(videos[0]['play_url'])}")
    assert play.status == 401
    assert await database["users"].count_documents({}) == 0
    for name in PER_USER_COLLECTIONS:
        assert await database[name].count_documents({"user_id": user_id}) == 0, name
    assert (await api.post("/auth/login", ANN)).status == 401
    assert await api.signup() != user_id  # the email is free again: a new account


@pytest.mark.gen_test
async def test_a_wrong_password_is_401_deletes_nothing_and_is_throttled(api, database):
    await api.signup()
    this = await login_pair(api)
    for _ in range(5):
        assert (await delete_me(api, this["token"], password="not my password")).status == 401
    locked = await delete_me(api, this["token"])
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert (await api.get("/auth/me", token=this["token"])).status == 200
    assert await database["users"].count_documents({}) == 1


@pytest.mark.parametrize("body", [None, {}, {"password": {"$ne": None}}, {"password": 1}, {"password": ""}, []])
@pytest.mark.gen_test
async def test_deletion_rejects_malformed_bodies_with_400(api, body):
    await api.signup()
    this = await login_pair(api)
    reply = await api.request("DELETE", "/auth/me", json_body=body, token=this["token"])
    assert_json_error(reply, 400)
    assert (await api.get("/auth/me", token=this["token"])).status == 200


@pytest.mark.gen_test
async def test_deletion_needs_a_live_token(api):
    await api.signup()
    reply = await api.request("DELETE", "/auth/me", json_body={"password": PASSWORD})
    assert reply.status == 401


@pytest.mark.gen_test
async def test_deletion_racing_refreshes_leaves_nothing_that_works(api, database):
    for round_ in range(4):
        await api.signup()
        this, other = await login_pair(api), await login_pair(api)
        results = await asyncio.gather(
            delete_me(api, this["token"]),
            *(api.post("/auth/refresh", {"refresh_token": other["refresh_token"]}) for _ in range(5)),
        )
        assert results[0].status == 200, round_
        for refreshed in results[1:]:
            assert refreshed.status in (200, 401)
            if refreshed.status == 200:
                assert (await api.get("/auth/me", token=refreshed.json["token"])).status == 401
                assert (await api.post("/auth/refresh",
                                       {"refresh_token": refreshed.json["refresh_token"]})).status == 401
        for name in PER_USER_COLLECTIONS:
            assert await database[name].count_documents({}) == 0, (round_, name)


@pytest.mark.gen_test
async def test_deletion_racing_logins_leaves_no_session(api, database):
    for round_ in range(4):
        # An email of its own each round: the logins that lose a round's race fail, and those
        # failures would throttle the next round's deletion (its password check) with a 429.
        credentials = {"email": f"ann{round_}@example.com", "password": PASSWORD}
        await api.signup(email=credentials["email"])
        this = (await api.post("/auth/login", credentials)).json
        results = await asyncio.gather(delete_me(api, this["token"]),
                                       *(api.post("/auth/login", credentials) for _ in range(5)))
        assert results[0].status == 200
        for login in results[1:]:
            if login.status == 200:
                assert (await api.get("/auth/me", token=login.json["token"])).status == 401
        assert await database["sessions"].count_documents({}) == 0, round_
        assert await database["users"].count_documents({}) == 0


# ----- without HTTP: the order of the steps, and an interruption ---------------------------

class Outage:
    """A user data owner whose database goes away in the middle of a deletion."""

    def __init__(self):
        self.down = True
        self.deleted: list[str] = []

    async def delete_user_data(self, user_id: str) -> None:
        if self.down:
            raise AutoReconnect("connection lost")
        self.deleted.append(user_id)


@pytest.mark.gen_test
async def test_an_interrupted_deletion_leaves_nothing_that_logs_in_and_is_finished_later(services, database, executor):
    accounts = services.accounts
    user_id = await accounts.signup({"name": "Ann", "email": "ann@example.com", "password": PASSWORD})
    pair = await accounts.login(ANN, None)
    users = UserStore(database, PasswordHasher(4, executor))
    sessions = SessionStore(database, 3600)
    refresh_tokens = RefreshTokenStore(database, ttl_seconds=3600, grace_seconds=10, signing_keys=("k" * 32,))
    watch_history = Outage()  # stands for the catalog's store, which comes after ours
    deletion = AccountDeletion(users, [sessions, refresh_tokens, ResetTokenStore(database, 60), watch_history])

    with pytest.raises(AutoReconnect):
        await deletion.delete(user_id)

    # Half done: nothing logs in any more...
    with pytest.raises(NotAuthenticated):
        await accounts.authenticate(pair["token"])
    with pytest.raises(NotAuthenticated):
        await accounts.login(ANN, None)
    with pytest.raises(NotAuthenticated):
        await accounts.refresh({"refresh_token": pair["refresh_token"]})
    # ...and the account is still there, marked, holding its email until finished.
    assert (await database["users"].find_one({"_id": ObjectId(user_id)}))["deleting_at"] is not None

    watch_history.down = False
    assert await deletion.finish_pending() == 1
    assert watch_history.deleted == [user_id]
    assert await database["users"].count_documents({}) == 0
    assert await deletion.finish_pending() == 0
    await accounts.signup({"name": "Ann again", "email": "ann@example.com", "password": PASSWORD})


@pytest.mark.gen_test
async def test_a_deletion_cut_off_before_the_sessions_are_ended_still_refuses_login(services, database, executor):
    accounts = services.accounts
    user_id = await accounts.signup({"name": "Ann", "email": "ann@example.com", "password": PASSWORD})
    users = UserStore(database, PasswordHasher(4, executor))
    outage = Outage()
    deletion = AccountDeletion(users, [outage])  # the very first step after the mark fails
    with pytest.raises(AutoReconnect):
        await deletion.delete(user_id)
    with pytest.raises(NotAuthenticated):
        await accounts.login(ANN, None)
    # A password reset cannot bring it back either.
    assert not await users.set_password(user_id, "another password")
    # Repeating the deletion finishes it.
    outage.down = False
    await deletion.delete(user_id)
    assert await database["users"].count_documents({}) == 0


@pytest.mark.gen_test
async def test_the_service_deletes_through_every_user_data_owner(services, database):
    """The owners wired in build_services: our own stores' share is gone after a deletion."""
    accounts = services.accounts
    user_id = await accounts.signup({"name": "Ann", "email": "ann@example.com", "password": PASSWORD})
    pair = await accounts.login(ANN, "10.0.0.1")
    principal = await accounts.authenticate(pair["token"])
    assert principal == Principal(user_id, principal.session_id)
    await accounts.delete_account(principal, {"password": PASSWORD}, "10.0.0.1")
    for name in PER_USER_COLLECTIONS:
        assert await database[name].count_documents({}) == 0
    assert await accounts.finish_pending_deletions() == 0


@pytest.mark.gen_test
async def test_the_start_up_sweep_finishes_an_interrupted_deletion(services, database):
    from server.__main__ import prepare_database

    user_id = await services.accounts.signup({"name": "Ann", "email": "ann@example.com", "password": PASSWORD})
    await database["users"].update_one({"_id": ObjectId(user_id)}, {"$set": {"deleting_at": utcnow()}})
    await database["sessions"].insert_one({"_id": "left-over", "user_id": user_id, "created_at": utcnow(),
                                           "expires_at": utcnow()})
    preparing = asyncio.ensure_future(prepare_database(services))
    try:
        async def deleted() -> bool:
            return await database["users"].count_documents({}) == 0

        await wait_until(deleted)
    finally:
        preparing.cancel()
    assert await database["users"].count_documents({}) == 0
    assert await database["sessions"].count_documents({}) == 0

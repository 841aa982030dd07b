"""Staying logged in: refresh tokens, the session list, ending sessions, scoped logout.
Through HTTP, races included."""

import asyncio
import datetime as dt
import hashlib

import jwt
import pytest

from services.common.clock import as_utc, utcnow
from tests.support import PASSWORD, TEST_SECRET, assert_json_error, query_token

ANN = {"email": "ann@example.com", "password": PASSWORD}


async def login(api, user_agent=None, credentials=ANN) -> dict:
    headers = {"User-Agent": user_agent} if user_agent else None
    reply = await api.post("/auth/login", credentials, headers=headers)
    assert reply.status == 200, reply.body
    return reply.json


async def refresh(api, refresh_token):
    return await api.post("/auth/refresh", {"refresh_token": refresh_token})


def sid(token: str) -> str:
    return jwt.decode(token, TEST_SECRET, algorithms=["HS256"])["sid"]


async def assert_ended(api, pair: dict):
    """Every credential of a login is refused: its auth token and its refresh token."""
    assert (await api.get("/auth/me", token=pair["token"])).status == 401
    assert (await refresh(api, pair["refresh_token"])).status == 401


# ----- login and refresh ----------------------------------------------------------------

@pytest.mark.gen_test
async def test_login_adds_a_refresh_token_and_expires_in_and_keeps_the_old_fields(api, database):
    user_id = await api.signup()
    body = await login(api)
    assert set(body) == {"message", "token", "user", "refresh_token", "expires_in"}
    assert body["message"] == "Login successful" and body["user"]["id"] == user_id
    assert body["expires_in"] == 24 * 3600
    assert len(body["refresh_token"]) >= 43  # 256 bits, base64url
    # Only the hash is stored.
    stored = await database["refresh_tokens"].find_one({})
    assert stored["_id"] == hashlib.sha256(body["refresh_token"].encode()).hexdigest()
    assert body["refresh_token"] not in str(await database["refresh_tokens"].find({}).to_list(None))
    expires = as_utc(stored["expires_at"]) - utcnow()
    assert dt.timedelta(days=29, hours=23) < expires <= dt.timedelta(days=30)


@pytest.mark.gen_test
async def test_refresh_answers_a_new_pair_for_the_same_session_and_spends_the_old_token(api, database):
    await api.signup()
    first = await login(api)
    reply = await refresh(api, first["refresh_token"])
    assert reply.status == 200
    second = reply.json
    assert set(second) == {"token", "refresh_token", "expires_in"}
    assert second["expires_in"] == 24 * 3600
    assert second["refresh_token"] != first["refresh_token"]
    assert sid(second["token"]) == sid(first["token"])
    claims = jwt.decode(second["token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert (await api.get("/auth/me", token=second["token"])).status == 200
    # The session now lives as long as the new refresh token.
    session = await database["sessions"].find_one({"_id": sid(first["token"])})
    assert as_utc(session["expires_at"]) - utcnow() > dt.timedelta(days=29)
    # The new refresh token refreshes in turn.
    third = await refresh(api, second["refresh_token"])
    assert third.status == 200 and third.json["refresh_token"] != second["refresh_token"]


@pytest.mark.gen_test
async def test_a_retry_within_the_grace_window_gets_the_same_pair(api):
    await api.signup()
    first = await login(api)
    one = await refresh(api, first["refresh_token"])
    again = await refresh(api, first["refresh_token"])
    assert one.status == again.status == 200
    assert one.body == again.body
    assert (await api.get("/auth/me", token=again.json["token"])).status == 200
    assert (await refresh(api, again.json["refresh_token"])).status == 200


@pytest.mark.gen_test
async def test_a_spent_token_replayed_after_the_grace_window_ends_the_whole_session(api, database):
    await api.signup()
    first = await login(api)
    other = await login(api)  # another device: unaffected
    videos = await api.dashboard(first["token"])
    second = (await refresh(api, first["refresh_token"])).json
    # As if the grace window had passed since it was spent.
    await database["refresh_tokens"].update_many(
        {"spent_at": {"$ne": None}}, {"$set": {"spent_at": utcnow() - dt.timedelta(seconds=11)}})

    replay = await refresh(api, first["refresh_token"])
    assert replay.status == 401
    assert "already used" in replay.error
    await assert_ended(api, second)
    assert (await api.get("/auth/me", token=first["token"])).status == 401
    play = await api.get(f"/video/{videos[0]['id']}/play?token={query_token(videos[0]['play_url'])}")
    assert play.status == 401
    assert (await api.get("/auth/me", token=other["token"])).status == 200
    assert await database["refresh_tokens"].count_documents({"session_id": sid(first["token"])}) == 0


@pytest.mark.gen_test
async def test_dozens_of_concurrent_refreshes_with_one_token_mint_exactly_one_pair(api, database):
    await api.signup()
    first = await login(api)
    replies = await asyncio.gather(*(refresh(api, first["refresh_token"]) for _ in range(40)))
    assert {r.status for r in replies} == {200}
    assert len({r.body for r in replies}) == 1
    # The spent token and its one successor; nothing else was minted.
    assert await database["refresh_tokens"].count_documents({"session_id": sid(first["token"])}) == 2
    assert (await api.get("/auth/me", token=replies[0].json["token"])).status == 200


@pytest.mark.gen_test
async def test_an_expired_refresh_token_is_401(api, database):
    await api.signup()
    first = await login(api)
    await database["refresh_tokens"].update_many({}, {"$set": {"expires_at": utcnow() - dt.timedelta(seconds=1)}})
    reply = await refresh(api, first["refresh_token"])
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("body", [
    {}, {"refresh_token": ""}, {"refresh_token": None}, {"refresh_token": 12345},
    {"refresh_token": {"$ne": None}}, {"refresh_token": ["x"]}, {"refresh_token": "x" * 1001}, [], "text",
])
@pytest.mark.gen_test
async def test_refresh_rejects_malformed_bodies_with_400(api, body):
    reply = await api.post("/auth/refresh", body)
    assert_json_error(reply, 400)


@pytest.mark.parametrize("token", ["x", "a" * 43, "eyJhbGciOiJIUzI1NiJ9.e30.abc", "🙂" * 10])
@pytest.mark.gen_test
async def test_an_unknown_refresh_token_is_401(api, token):
    reply = await refresh(api, token)
    assert_json_error(reply, 401)


@pytest.mark.gen_test
async def test_an_auth_token_is_not_a_refresh_token_nor_the_reverse(api):
    await api.signup()
    first = await login(api)
    assert (await refresh(api, first["token"])).status == 401
    assert (await api.get("/auth/me", token=first["refresh_token"])).status == 401


# ----- sessions -----------------------------------------------------------------------

@pytest.mark.gen_test
async def test_sessions_are_listed_newest_first_with_the_current_one_marked(api):
    await api.signup()
    phone = await login(api, user_agent="VideoApp/1.0 (iPhone)")
    tablet = await login(api, user_agent="X" * 500)
    reply = await api.get("/auth/sessions", token=phone["token"])
    assert reply.status == 200
    sessions = reply.json["sessions"]
    assert [s["id"] for s in sessions] == [sid(tablet["token"]), sid(phone["token"])]
    assert [s["current"] for s in sessions] == [False, True]
    assert set(sessions[0]) == {"id", "created_at", "last_used_at", "user_agent", "current"}
    assert sessions[1]["user_agent"] == "VideoApp/1.0 (iPhone)"
    assert sessions[0]["user_agent"] == "X" * 200
    assert sessions[0]["created_at"].endswith("Z") and sessions[0]["last_used_at"].endswith("Z")


@pytest.mark.gen_test
async def test_another_users_sessions_are_not_listed(api):
    await api.signup()
    await api.signup(email="bob@example.com", name="Bob")
    await login(api)
    bob = await login(api, credentials={"email": "bob@example.com", "password": PASSWORD})
    sessions = (await api.get("/auth/sessions", token=bob["token"])).json["sessions"]
    assert [s["id"] for s in sessions] == [sid(bob["token"])]


@pytest.mark.gen_test
async def test_last_used_at_is_written_at_most_about_once_a_minute(api, database):
    await api.signup()
    pair = await login(api)
    session_id = sid(pair["token"])
    recent = (utcnow() - dt.timedelta(seconds=30)).replace(microsecond=0)
    await database["sessions"].update_one({"_id": session_id}, {"$set": {"last_used_at": recent}})
    for _ in range(3):
        assert (await api.get("/auth/me", token=pair["token"])).status == 200
    stored = await database["sessions"].find_one({"_id": session_id})
    assert as_utc(stored["last_used_at"]) == recent  # fresh enough: not written

    stale = utcnow() - dt.timedelta(seconds=90)
    await database["sessions"].update_one({"_id": session_id}, {"$set": {"last_used_at": stale}})
    assert (await api.get("/dashboard", token=pair["token"])).status == 200
    stored = await database["sessions"].find_one({"_id": session_id})
    assert utcnow() - as_utc(stored["last_used_at"]) < dt.timedelta(seconds=5)


@pytest.mark.gen_test
async def test_ending_another_session_kills_its_tokens_and_playback_links(api):
    await api.signup()
    mine, lost_phone = await login(api), await login(api)
    videos = await api.dashboard(lost_phone["token"])
    reply = await api.request("DELETE", f"/auth/sessions/{sid(lost_phone['token'])}", token=mine["token"])
    assert reply.status == 200
    assert reply.json["message"]
    await assert_ended(api, lost_phone)
    play = await api.get(f"/video/{videos[0]['id']}/play?token={query_token(videos[0]['play_url'])}")
    assert play.status == 401
    assert (await api.get("/auth/me", token=mine["token"])).status == 200
    again = await api.request("DELETE", f"/auth/sessions/{sid(lost_phone['token'])}", token=mine["token"])
    assert again.status == 404


@pytest.mark.parametrize("session_id", ["nope", "x" * 300, "%24ne", "{\"$ne\":null}"])
@pytest.mark.gen_test
async def test_ending_a_session_that_is_not_yours_is_404(api, session_id):
    await api.signup()
    await api.signup(email="bob@example.com", name="Bob")
    ann = await login(api)
    bob = await login(api, credentials={"email": "bob@example.com", "password": PASSWORD})
    for target in (sid(bob["token"]), session_id):
        reply = await api.request("DELETE", f"/auth/sessions/{target}", token=ann["token"])
        assert_json_error(reply, 404)
    assert (await api.get("/auth/me", token=bob["token"])).status == 200


# ----- logout scopes -------------------------------------------------------------------

@pytest.mark.gen_test
async def test_logout_without_a_body_ends_only_this_session_as_before(api):
    await api.signup()
    this, other = await login(api), await login(api)
    reply = await api.post("/auth/logout", token=this["token"])
    assert reply.status == 200
    assert reply.json == {"message": "Logout successful"}
    await assert_ended(api, this)
    assert (await api.get("/auth/me", token=other["token"])).status == 200


@pytest.mark.parametrize("body", [{}, {"scope": "current"}])
@pytest.mark.gen_test
async def test_logout_scope_current(api, body):
    await api.signup()
    this, other = await login(api), await login(api)
    assert (await api.post("/auth/logout", body, token=this["token"])).status == 200
    await assert_ended(api, this)
    assert (await api.get("/auth/me", token=other["token"])).status == 200


@pytest.mark.gen_test
async def test_logout_scope_others_keeps_only_this_session(api):
    await api.signup()
    this, second, third = await login(api), await login(api), await login(api)
    reply = await api.post("/auth/logout", {"scope": "others"}, token=this["token"])
    assert reply.json == {"message": "Logout successful"}
    await assert_ended(api, second)
    await assert_ended(api, third)
    assert (await api.get("/auth/me", token=this["token"])).status == 200
    assert (await refresh(api, this["refresh_token"])).status == 200


@pytest.mark.gen_test
async def test_logout_scope_all_ends_every_session_of_the_user_only(api):
    await api.signup()
    await api.signup(email="bob@example.com", name="Bob")
    this, other = await login(api), await login(api)
    bob = await login(api, credentials={"email": "bob@example.com", "password": PASSWORD})
    assert (await api.post("/auth/logout", {"scope": "all"}, token=this["token"])).status == 200
    await assert_ended(api, this)
    await assert_ended(api, other)
    assert (await api.get("/auth/me", token=bob["token"])).status == 200


@pytest.mark.parametrize("body", [{"scope": "everything"}, {"scope": {"$ne": None}}, {"scope": 1},
                                  {"scope": None}, [], "all"])
@pytest.mark.gen_test
async def test_logout_with_a_bad_scope_is_400_and_ends_nothing(api, body):
    await api.signup()
    this = await login(api)
    reply = await api.post("/auth/logout", body, token=this["token"])
    assert_json_error(reply, 400)
    assert (await api.get("/auth/me", token=this["token"])).status == 200


# ----- races ---------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_refresh_racing_logout_all_leaves_nothing_that_works(api, database):
    await api.signup()
    for _ in range(5):
        first, keeper = await login(api), await login(api)
        refreshed, logout = await asyncio.gather(
            refresh(api, first["refresh_token"]),
            api.post("/auth/logout", {"scope": "all"}, token=keeper["token"]),
        )
        assert logout.status == 200
        assert refreshed.status in (200, 401)
        if refreshed.status == 200:
            await assert_ended(api, refreshed.json)
        await assert_ended(api, first)
        assert await database["sessions"].count_documents({}) == 0
        assert await database["refresh_tokens"].count_documents({}) == 0


@pytest.mark.gen_test
async def test_the_original_apps_sequence_still_works_unchanged(api):
    """login -> dashboard -> stream -> logout, reading only the fields the app reads."""
    await api.signup()
    reply = await api.post("/auth/login", ANN)
    token = reply.json["token"]
    assert reply.json["user"]["email"] == "ann@example.com"
    videos = (await api.get("/dashboard", token=token)).json["videos"]
    stream = await api.get(f"/video/{videos[0]['id']}/stream?token={query_token(videos[0]['play_url'])}",
                           token=token)
    assert stream.status == 200
    assert stream.json["stream_url"].split("/embed/")[1].split("?")[0]
    refused = await api.request("POST", "/auth/logout", body=b"\r\n", token=token)  # a body, and not JSON
    assert_json_error(refused, 400)
    logout = await api.request("POST", "/auth/logout", body=b"", token=token)
    assert (logout.status, logout.json) == (200, {"message": "Logout successful"})
    assert (await api.get("/dashboard", token=token)).status == 401


# ----- the store on its own ------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_retry_finds_its_pair_after_the_secret_was_rotated(database):
    from services.accounts.refresh_tokens import RefreshTokenStore
    from services.accounts.sessions import Principal

    old, new = "o" * 40, "n" * 40
    before = RefreshTokenStore(database, ttl_seconds=60, grace_seconds=10, signing_keys=(old,))
    after = RefreshTokenStore(database, ttl_seconds=60, grace_seconds=10, signing_keys=(new, old))
    token = await before.issue(Principal("ann-id", "s1"))
    first = await before.rotate(token, access_issued_at=1000)
    retry = await after.rotate(token, access_issued_at=2000)
    assert (retry.refresh_token, retry.access_issued_at, retry.first) == (first.refresh_token, 1000, False)
    # Without the old secret the pair cannot be made again: refused, not a different pair.
    assert await RefreshTokenStore(database, ttl_seconds=60, grace_seconds=10,
                                   signing_keys=(new,)).rotate(token, access_issued_at=3000) is None

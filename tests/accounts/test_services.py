"""The services on their own: plain values in, plain values out, no HTTP."""

import asyncio
import datetime as dt
import time

import pytest

from seeds.loader import CATALOG_PATH, CatalogError, load_catalog, read_catalog, seed_if_empty
from services.accounts.ratelimit import FixedWindowLimiter
from services.accounts.sessions import AuthTokenCodec, Principal, SessionStore
from services.accounts.throttle import LoginThrottle, PasswordResetThrottle
from services.catalog.playback import PlaybackSigner
from services.catalog.videos import VideoCatalog
from services.common import validation
from services.common.clock import utcnow
from services.common.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound, TooManyAttempts
from services.common.ids import canonical_video_id, parse_object_id
from tests.support import PASSWORD, SEEDED

OLD = "an-old-secret-that-is-at-least-32-bytes-long"
NEW = "a-new-secret-that-is-at-least-32-bytes-long!"
ANN = Principal("5f0000000000000000000001", "session-1")


# ----- validation -----------------------------------------------------------------------

def test_signup_validation_normalises_and_drops_unknown_fields():
    body = {"name": "  Ann ", "email": " Ann@Example.COM ", "password": PASSWORD, "is_admin": True}
    assert validation.validated(validation.SIGNUP, body) == {
        "name": "Ann", "email": "ann@example.com", "password": PASSWORD}


@pytest.mark.parametrize("body", [None, [], "x", 1, {"email": "a@example.com"}])
def test_validation_refuses_what_is_not_a_complete_object(body):
    with pytest.raises(InvalidInput):
        validation.validated(validation.LOGIN, body)


def test_a_very_long_email_is_refused():
    with pytest.raises(InvalidInput):
        validation.validated(validation.LOGIN, {"email": "a" * 250 + "@example.com", "password": PASSWORD})


@pytest.mark.parametrize("text", ["", "x", "5f00000000000000000000", "5f000000000000000000000g", None, 12, {"$ne": 1}])
def test_malformed_object_ids_parse_to_none(text):
    assert parse_object_id(text) is None


# ----- auth tokens ----------------------------------------------------------------------

def test_jwt_rotation_new_secret_signs_and_old_tokens_still_verify():
    old_token = AuthTokenCodec((OLD,), 60).issue(ANN)
    rotated = AuthTokenCodec((NEW, OLD), 60)
    assert rotated.verify(old_token) == ANN
    assert AuthTokenCodec((NEW,), 60).verify(rotated.issue(ANN)) == ANN
    with pytest.raises(NotAuthenticated):
        AuthTokenCodec((NEW,), 60).verify(old_token)


def test_an_expired_jwt_is_refused_with_its_own_message():
    expired = AuthTokenCodec((NEW,), -10).issue(ANN)
    with pytest.raises(NotAuthenticated, match="expired"):
        AuthTokenCodec((NEW,), 60).verify(expired)


def test_playback_rotation_and_binding():
    old_token = PlaybackSigner((OLD,), 60).sign("v1", ANN)
    grant = PlaybackSigner((NEW, OLD), 60).verify(old_token)
    assert (grant.video_id, grant.principal) == ("v1", ANN)
    with pytest.raises(NotAuthenticated):
        PlaybackSigner((NEW,), 60).verify(old_token)


def test_a_verified_playback_token_still_expires_on_time(monkeypatch):
    signer = PlaybackSigner((NEW,), 60)
    token = signer.sign("v1", ANN)
    assert signer.verify(token).principal == ANN  # verified, and remembered
    wall = time.time()
    monkeypatch.setattr(time, "time", lambda: wall + 59)
    assert signer.verify(token).video_id == "v1"
    monkeypatch.setattr(time, "time", lambda: wall + 62)
    with pytest.raises(NotAuthenticated, match="expired"):
        signer.verify(token)
    monkeypatch.setattr(time, "time", lambda: wall - 5)  # a clock set back: not yet signed
    with pytest.raises(NotAuthenticated, match="expired"):
        signer.verify(token)


def test_a_refused_playback_token_is_refused_every_time():
    signer = PlaybackSigner((NEW,), 60)
    forged = PlaybackSigner((OLD,), 60).sign("v1", ANN)
    for _ in range(2):  # failures are not remembered, successes are: neither may turn
        with pytest.raises(NotAuthenticated, match="not valid"):
            signer.verify(forged)


def test_playback_and_auth_tokens_do_not_pass_for_each_other():
    jwt_token = AuthTokenCodec((NEW,), 60).issue(ANN)
    playback_token = PlaybackSigner((NEW,), 60).sign("v1", ANN)
    with pytest.raises(NotAuthenticated):
        PlaybackSigner((NEW,), 60).verify(jwt_token)
    with pytest.raises(NotAuthenticated):
        AuthTokenCodec((NEW,), 60).verify(playback_token)


# ----- accounts and playback, through the services ----------------------------------------

@pytest.mark.gen_test
async def test_account_lifecycle_without_http(services):
    accounts = services.accounts
    user_id = await accounts.signup({"name": "Ann", "email": "ann@example.com", "password": PASSWORD})
    with pytest.raises(Conflict):
        await accounts.signup({"name": "Ann 2", "email": "ANN@example.com", "password": PASSWORD})
    session = await accounts.login({"email": "ann@example.com", "password": PASSWORD}, "10.0.0.1")
    principal = await accounts.authenticate(session["token"])
    assert principal.user_id == user_id
    assert (await accounts.profile(principal))["email"] == "ann@example.com"
    await accounts.logout(principal)
    with pytest.raises(NotAuthenticated):
        await accounts.authenticate(session["token"])


@pytest.mark.gen_test
async def test_playback_checks_without_http(services):
    await services.accounts.signup({"name": "Ann", "email": "ann@example.com", "password": PASSWORD})
    session = await services.accounts.login({"email": "ann@example.com", "password": PASSWORD}, None)
    ann = await services.accounts.authenticate(session["token"])
    first, second = await services.playback.dashboard(ann, "https://api.example.com")
    assert (await services.playback.stream(ann, first["id"], first["playback_token"]))["video_id"] == first["id"]
    assert "/embed/" in await services.playback.play(first["id"], first["playback_token"])
    with pytest.raises(Forbidden):
        await services.playback.stream(ann, second["id"], first["playback_token"])
    with pytest.raises(Forbidden):
        await services.playback.stream(Principal("someone-else", "s"), first["id"], first["playback_token"])
    with pytest.raises(NotFound):
        await services.playback.play("not-an-id", first["playback_token"])
    with pytest.raises(InvalidInput):
        await services.playback.play(first["id"], None)


# ----- login throttle -------------------------------------------------------------------

@pytest.mark.gen_test
async def test_throttle_locks_an_account_after_the_limit_and_success_clears_it(database):
    throttle = LoginThrottle(database, max_per_account=3, max_per_address=100, window_seconds=60)
    await throttle.ensure_indexes()
    for _ in range(3):
        await throttle.attempt("ann@example.com", "10.0.0.1")
    with pytest.raises(TooManyAttempts) as raised:
        await throttle.attempt("ann@example.com", "10.0.0.2")
    assert 0 < raised.value.retry_after <= 60
    await throttle.attempt("bob@example.com", "10.0.0.1")  # other accounts are unaffected
    await throttle.succeeded("ann@example.com")
    await throttle.attempt("ann@example.com", "10.0.0.1")


@pytest.mark.gen_test
async def test_throttle_limits_an_address_across_accounts(database):
    throttle = LoginThrottle(database, max_per_account=100, max_per_address=4, window_seconds=60)
    for i in range(4):
        await throttle.attempt(f"user{i}@example.com", "10.0.0.9")
    with pytest.raises(TooManyAttempts):
        await throttle.attempt("fresh@example.com", "10.0.0.9")
    await throttle.attempt("fresh@example.com", "10.0.0.10")


@pytest.mark.gen_test
async def test_a_success_gives_the_address_its_attempt_back(database):
    throttle = LoginThrottle(database, max_per_account=100, max_per_address=2, window_seconds=60)
    for _ in range(5):
        await throttle.attempt("ann@example.com", "10.0.0.9")
        await throttle.succeeded("ann@example.com", "10.0.0.9")
    await throttle.attempt("bob@example.com", "10.0.0.9")


@pytest.mark.gen_test
async def test_an_ended_window_starts_afresh_even_before_the_ttl_monitor_removes_it(database):
    throttle = LoginThrottle(database, max_per_account=2, max_per_address=100, window_seconds=60)
    await throttle.attempt("ann@example.com", None)
    await throttle.attempt("ann@example.com", None)
    # Age the window past its end, as if the TTL monitor had not run yet.
    await database["login_failures"].update_one(
        {"_id": "account:ann@example.com"}, {"$set": {"expires_at": utcnow() - dt.timedelta(seconds=1)}})
    await throttle.attempt("ann@example.com", None)
    counter = await database["login_failures"].find_one({"_id": "account:ann@example.com"})
    assert counter["count"] == 1


@pytest.mark.gen_test
async def test_the_limiter_lets_exactly_the_limit_through_when_hits_race(database):
    limiter = FixedWindowLimiter(database["limits"], limit=7, window_seconds=60, message="slow down")
    outcomes = await asyncio.gather(*(limiter.hit("k") for _ in range(40)), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, TooManyAttempts)]
    assert len(outcomes) - len(refused) == 7
    assert all(o is None or isinstance(o, TooManyAttempts) for o in outcomes)
    assert refused[0].message == "slow down" and 0 < refused[0].retry_after <= 60
    assert (await database["limits"].find_one({"_id": "k"}))["count"] == 7


async def _refused(attempt) -> bool:
    try:
        await attempt
    except TooManyAttempts as error:
        assert error.message == "Too many password reset requests. Please wait a while and try again."
        assert 0 < error.retry_after <= 60
        return True
    return False


@pytest.mark.gen_test
async def test_reset_requests_are_limited_per_email_and_per_address(database):
    resets = PasswordResetThrottle(database, max_per_email=2, max_per_address=4, window_seconds=60)
    await resets.ensure_indexes()
    assert [await _refused(resets.attempt("ann@example.com", "10.0.0.1")) for _ in range(3)] == [False, False, True]
    assert not await _refused(resets.attempt("bob@example.com", None))  # other emails are unaffected
    assert [await _refused(resets.attempt(f"u{i}@example.com", "10.0.0.1")) for i in range(2)] == [False, True]
    counts = {c["_id"]: c["count"] async for c in database["password_reset_requests"].find()}
    # The address is counted first: once refused, it uses up no email's allowance (no u1).
    assert counts == {"address:10.0.0.1": 4, "email:ann@example.com": 2, "email:bob@example.com": 1,
                      "email:u0@example.com": 1}


# ----- sessions ---------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_session_is_live_only_for_its_own_user_until_it_ends(database):
    sessions = SessionStore(database, ttl_seconds=60)
    ann = Principal("ann-id", await sessions.start("ann-id"))
    assert await sessions.is_live(ann)
    assert not await sessions.is_live(Principal("bob-id", ann.session_id))
    assert not await sessions.is_live(Principal("ann-id", "no-such-session"))
    await sessions.end(ann)
    assert not await sessions.is_live(ann)


@pytest.mark.gen_test
async def test_an_expired_session_is_not_live_even_before_the_ttl_monitor_removes_it(database):
    sessions = SessionStore(database, ttl_seconds=60)
    ann = Principal("ann-id", await sessions.start("ann-id"))
    await database["sessions"].update_one(
        {"_id": ann.session_id}, {"$set": {"expires_at": utcnow() - dt.timedelta(seconds=1)}})
    assert not await sessions.is_live(ann)
    await database["sessions"].update_one({"_id": ann.session_id}, {"$unset": {"expires_at": ""}})
    assert not await sessions.is_live(ann)


# ----- seeds ------------------------------------------------------------------------------

def test_the_demo_catalog_starts_with_the_original_two_videos_all_active():
    videos = read_catalog(CATALOG_PATH)
    assert [v["youtube_id"] for v in videos][:2] == ["CBYhVcO4WgI", "UF8uR6Z6KLc"]
    assert len(videos) == SEEDED and all(v["is_active"] for v in videos)
    assert all(v["thumbnail_url"] == f"https://i.ytimg.com/vi/{v['youtube_id']}/hqdefault.jpg" for v in videos)


@pytest.mark.gen_test
async def test_seeding_is_idempotent_and_never_deletes(services, database):
    # The fixture seeded once already.
    await database["videos"].insert_one({"youtube_id": "ZZZZZZZZZZZ", "title": "Mine", "is_active": True})
    before = {v["youtube_id"]: v["_id"] async for v in database["videos"].find()}
    assert await load_catalog(services.catalog, read_catalog()) == 0
    assert await seed_if_empty(services.catalog) == 0
    after = {v["youtube_id"]: v["_id"] async for v in database["videos"].find()}
    assert after == before


@pytest.mark.parametrize("text", [
    "videos: []",
    "videos:\n  - {youtube_id: short, title: T, description: D, thumbnail_url: U, is_active: true}",
    "videos:\n  - {youtube_id: CBYhVcO4WgI, title: T}",
    "videos:\n  - {youtube_id: CBYhVcO4WgI, title: T, description: D, thumbnail_url: U, is_active: 'yes'}",
])
def test_a_malformed_catalog_file_is_refused(tmp_path, text):
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError):
        read_catalog(path)


# ----- catalog cache ----------------------------------------------------------------------

@pytest.mark.gen_test
async def test_the_dashboard_cache_serves_repeats_and_a_catalog_write_clears_it(database):
    catalog = VideoCatalog(database, cache_seconds=60)
    await load_catalog(catalog, read_catalog())
    count = SEEDED + 1
    first = [v["title"] for v in await catalog.active(count)]
    await database["videos"].insert_one({"youtube_id": "BBBBBBBBBBB", "title": "Direct", "is_active": True,
                                         "created_at": utcnow()})
    assert [v["title"] for v in await catalog.active(count)] == first  # cached
    await catalog.upsert({"youtube_id": "CCCCCCCCCCC", "title": "Through the catalog", "description": "",
                          "thumbnail_url": "", "is_active": True})
    assert [v["title"] for v in await catalog.active(count)] == [*first, "Direct"]
    assert all("youtube_id" not in v for v in await catalog.active(count))


@pytest.mark.gen_test
async def test_without_a_cache_every_dashboard_reads_the_database(database):
    catalog = VideoCatalog(database, cache_seconds=0)
    await load_catalog(catalog, read_catalog())
    await database["videos"].update_many({}, {"$set": {"is_active": False}})
    assert await catalog.active(2) == []


def test_a_recent_playback_token_is_handed_out_again_only_to_the_same_session(monkeypatch):
    signer = PlaybackSigner((NEW,), 3600, reuse_seconds=30)
    first = signer.sign("v1", ANN)
    assert signer.sign("v1", ANN) == first
    assert signer.sign("v2", ANN) != first
    assert signer.sign("v1", Principal(ANN.user_id, "session-2")) != first
    assert signer.sign("v1", Principal("someone-else", ANN.session_id)) != first
    later, wall = time.monotonic() + 31, time.time() + 31
    monkeypatch.setattr(time, "monotonic", lambda: later)
    monkeypatch.setattr(time, "time", lambda: wall)  # the new token carries a new timestamp
    assert signer.sign("v1", ANN) != first


def test_the_recent_token_memory_is_bounded(monkeypatch):
    monkeypatch.setattr("services.catalog.playback.RECENT_TOKENS_KEPT", 10)
    signer = PlaybackSigner((NEW,), 3600, reuse_seconds=30)
    for i in range(50):
        signer.sign(f"v{i}", ANN)
    assert len(signer._recent) == 10


@pytest.mark.parametrize("text, canonical", [
    ("5F0000000000000000000ABC", "5f0000000000000000000abc"), ("5f0000000000000000000abc", "5f0000000000000000000abc"),
    ("5f0000000000000000000abg", None), ("5f00", None), (None, None), (5, None),
    ("\uff15f0000000000000000000abc", None),  # a fullwidth digit
])
def test_a_video_id_has_one_canonical_form(text, canonical):
    assert canonical_video_id(text) == canonical

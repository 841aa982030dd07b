"""Password hashing is bounded work: sign-ups throttled per address, a bounded queue of checks."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import pytest

from services.accounts.passwords import PasswordHasher
from services.common.errors import Overloaded
from tests.support import PASSWORD, Api, wait_until


def _signup(i: int) -> dict:
    return {"name": "Flood", "email": f"flood{i}@example.com", "password": PASSWORD}


@pytest.mark.parametrize("config_overrides", [{"signup_max_per_address": 3, "trust_proxy": True}])
@pytest.mark.gen_test(timeout=60)
async def test_sign_ups_are_throttled_per_address(api, config_overrides):
    flood = {"X-Forwarded-For": "198.51.100.1"}
    for i in range(3):
        assert (await api.post("/auth/signup", _signup(i), headers=flood)).status == 201
    refused = await api.post("/auth/signup", _signup(3), headers=flood)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "sign-ups" in refused.error
    other = await api.post("/auth/signup", _signup(4), headers={"X-Forwarded-For": "198.51.100.2"})
    assert other.status == 201


@pytest.mark.parametrize("config_overrides", [{"trust_proxy": True}])
@pytest.mark.gen_test(timeout=120)
async def test_a_login_is_answered_within_3_s_while_one_client_floods_sign_ups(api, base_url, config, services,
                                                                               monkeypatch, config_overrides):
    passwords = services.passwords
    signups_room = config.password_queue_limit // 2  # the share of the queue sign-ups may hold
    # A real cost (about 0.1 s a hash here, conftest sets 4) so that a flood is work that could pile up.
    monkeypatch.setattr(passwords, "_rounds", 10)
    await api.signup(email="regular@example.com")

    hashes_done = []  # one entry per sign-up hash finished, appended in the pool's thread
    hash_sync = passwords._hash_sync

    def counted_hash(password):
        hashed = hash_sync(password)
        hashes_done.append(1)
        return hashed

    monkeypatch.setattr(passwords, "_hash_sync", counted_hash)
    login_check = {}  # sign-up hashes done when the login's check was asked for, and when it ran
    check, checkpw = passwords.check, bcrypt.checkpw

    async def recorded_check(password, hashed):
        login_check["asked"] = len(hashes_done)
        return await check(password, hashed)

    def recorded_checkpw(password, hashed):
        login_check["ran"] = len(hashes_done)
        return checkpw(password, hashed)

    monkeypatch.setattr(passwords, "check", recorded_check)
    monkeypatch.setattr(bcrypt, "checkpw", recorded_checkpw)

    flood = {"X-Forwarded-For": "198.51.100.66"}
    flooder = Api(base_url, own_connections=60)  # all 60 sign-ups at once
    flooding = [asyncio.ensure_future(flooder.post("/auth/signup", _signup(i), headers=flood)) for i in range(60)]
    # Until the flood fills the sign-ups' share of the queue (60 connections: longer on a loaded machine).
    await wait_until(lambda: passwords.waiting >= signups_room, interval=0.01)
    assert passwords.waiting >= signups_room, f"the flood filled {passwords.waiting} of {signups_room}"
    regular = Api(base_url, own_connections=1)  # another user: not queued behind the flood in this process
    try:
        started = time.monotonic()
        login = await regular.post("/auth/login", {"email": "regular@example.com", "password": PASSWORD},
                                   headers={"X-Forwarded-For": "203.0.113.5"})
        took = time.monotonic() - started
        statuses = [r.status for r in await asyncio.gather(*flooding)]
    finally:
        regular.close()
        flooder.close()
    assert login.status == 200, login.body
    assert took < 3, f"the login took {took:.1f} s"
    # Without timing: sign-ups hold at most their share of the queue and the pool takes
    # work in order, so the login's check waited for at most that many sign-up hashes.
    assert login_check["ran"] - login_check["asked"] <= signups_room, login_check
    assert set(statuses) <= {201, 429, 503}
    assert statuses.count(201) <= config.signup_max_per_address
    # Each sign-up is counted before its hash, a busy refusal included: the rest are 429.
    assert statuses.count(429) == len(flooding) - config.signup_max_per_address


@pytest.mark.gen_test
async def test_a_full_queue_refuses_at_once_and_counts_what_waits():
    release = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        hasher = PasswordHasher(4, pool, queue_limit=4)
        stored = await hasher.hash(PASSWORD)
        pool.submit(release.wait)  # the only thread is busy: checks queue up
        queued = [asyncio.ensure_future(hasher.check(PASSWORD, stored)) for _ in range(4)]
        await asyncio.sleep(0)
        assert hasher.waiting == 4
        with pytest.raises(Overloaded) as raised:
            await hasher.check(PASSWORD, stored)
        assert raised.value.retry_after > 0
        with pytest.raises(Overloaded):  # sign-ups get at most half of the queue
            await hasher.hash(PASSWORD)
        release.set()
        assert await asyncio.gather(*queued) == [True] * 4
        assert hasher.waiting == 0


# Eight logins of one account at once: more than its throttle's 5 (counted before the check).
@pytest.mark.parametrize("config_overrides", [{"password_queue_limit": 1, "login_max_failures_per_account": 100}])
@pytest.mark.gen_test(timeout=60)
async def test_a_full_queue_is_a_503_with_retry_after(api, services, config_overrides):
    await api.signup()
    replies = await asyncio.gather(*(
        api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD}) for _ in range(8)))
    busy = [r for r in replies if r.status == 503]
    assert busy, [r.status for r in replies]
    assert {r.status for r in replies} <= {200, 503}
    assert int(busy[0].headers["Retry-After"]) > 0
    assert "busy" in busy[0].error
    assert services.passwords.waiting == 0


@pytest.mark.gen_test
async def test_a_login_refused_as_busy_does_not_count_against_the_throttle(database, services, monkeypatch):
    await services.accounts.signup({"name": "Ann", "email": "ann@example.com", "password": PASSWORD})

    async def busy(password, hashed):
        raise Overloaded("busy", retry_after=2)

    monkeypatch.setattr(services.passwords, "check", busy)
    for _ in range(10):  # twice the per-account limit
        with pytest.raises(Overloaded):
            await services.accounts.login({"email": "ann@example.com", "password": PASSWORD}, "10.0.0.1")
    monkeypatch.undo()
    session = await services.accounts.login({"email": "ann@example.com", "password": PASSWORD}, "10.0.0.1")
    assert session["token"]

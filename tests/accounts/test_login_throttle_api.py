"""Login throttling, through HTTP."""

import asyncio

import pytest

from tests.support import PASSWORD

WRONG = {"email": "ann@example.com", "password": "wrong password"}
RIGHT = {"email": "ann@example.com", "password": PASSWORD}


@pytest.fixture
def checks(services, monkeypatch) -> list[str]:
    """The passwords the hasher is asked to check, as they are asked."""
    asked = []
    original = services.passwords.check

    async def counted(password, hashed):
        asked.append(password)
        return await original(password, hashed)

    monkeypatch.setattr(services.passwords, "check", counted)
    return asked


@pytest.mark.gen_test
async def test_five_failures_lock_the_account_even_for_the_right_password(api):
    await api.signup()
    for _ in range(5):
        assert (await api.post("/auth/login", WRONG)).status == 401
    locked = await api.post("/auth/login", RIGHT)
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0
    assert "Too many" in locked.error


@pytest.mark.gen_test
async def test_a_successful_login_resets_the_account_count(api):
    await api.signup()
    for _ in range(4):
        await api.post("/auth/login", WRONG)
    assert (await api.post("/auth/login", RIGHT)).status == 200
    for _ in range(4):
        assert (await api.post("/auth/login", WRONG)).status == 401
    assert (await api.post("/auth/login", RIGHT)).status == 200


@pytest.mark.gen_test
async def test_unknown_emails_are_throttled_alike(api):
    for _ in range(5):
        await api.post("/auth/login", {"email": "ghost@example.com", "password": "wrong password"})
    assert (await api.post("/auth/login", {"email": "ghost@example.com", "password": "x" * 8})).status == 429


@pytest.mark.parametrize("config_overrides", [{"trust_proxy": True, "login_max_failures_per_address": 3}])
@pytest.mark.gen_test
async def test_behind_a_trusted_proxy_the_forwarded_address_is_limited(api, config_overrides):
    for i in range(3):
        await api.post("/auth/login", {"email": f"u{i}@example.com", "password": "wrong password"},
                       headers={"X-Forwarded-For": "198.51.100.7"})
    blocked = await api.post("/auth/login", {"email": "new@example.com", "password": "wrong password"},
                             headers={"X-Forwarded-For": "198.51.100.7"})
    assert blocked.status == 429
    other = await api.post("/auth/login", {"email": "new@example.com", "password": "wrong password"},
                           headers={"X-Forwarded-For": "198.51.100.8"})
    assert other.status == 401


@pytest.mark.parametrize("config_overrides", [{"login_max_failures_per_address": 3}])
@pytest.mark.gen_test
async def test_without_a_trusted_proxy_a_forged_forwarded_header_does_not_dodge_the_limit(api, config_overrides):
    for i in range(3):
        await api.post("/auth/login", {"email": f"u{i}@example.com", "password": "wrong password"},
                       headers={"X-Forwarded-For": f"203.0.113.{i}"})
    blocked = await api.post("/auth/login", {"email": "new@example.com", "password": "wrong password"},
                             headers={"X-Forwarded-For": "203.0.113.99"})
    assert blocked.status == 429


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_guesses_get_no_more_password_checks_than_the_limit(api, checks):
    """39 wrong passwords at once for one account: the limit (5) is checked, the rest 429."""
    await api.signup()
    replies = await asyncio.gather(*(api.post("/auth/login", WRONG) for _ in range(39)))
    statuses = sorted(r.status for r in replies)
    assert len(checks) == 5  # each attempt is counted before its check: exactly the limit get one
    assert statuses.count(401) == len(checks) and statuses.count(429) == 39 - len(checks)


@pytest.mark.parametrize("config_overrides", [{"login_max_failures_per_address": 4}])
@pytest.mark.gen_test(timeout=60)
async def test_concurrent_guesses_from_one_address_get_no_more_checks_than_its_limit(
        api, checks, config_overrides):
    replies = await asyncio.gather(*(
        api.post("/auth/login", {"email": f"u{i}@example.com", "password": "wrong password"}) for i in range(32)))
    assert len(checks) == 4  # unknown emails are checked too (against a dummy hash)
    assert sorted(r.status for r in replies).count(429) == 32 - len(checks)

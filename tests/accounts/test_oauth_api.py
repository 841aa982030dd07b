"""Sign in with Google and with Apple: ID tokens signed by keys the tests make, checked
against a JWKS served by a local HTTP server (the JWKS URLs are settings)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
import tornado.httpserver
import tornado.web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from tornado.netutil import bind_sockets

from server.app import build_services
from server.config import ConfigError, load_config
from services.accounts.password_reset import ResetTokenStore
from tests.support import HOST, PASSWORD, Api, close_server, free_port, wait_until

GOOGLE_CLIENT = "1234-app.apps.googleusercontent.com"
APPLE_CLIENT = "com.example.videoapp"
GOOGLE_ISS = "https://accounts.google.com"
APPLE_ISS = "https://appleid.apple.com"
KEYS = [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(3)]
KEY1, KEY2, STRANGER = KEYS


def jwk_of(key: rsa.RSAPrivateKey, kid: str) -> dict:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "RS256", "use": "sig"}


class Jwks:
    """What the local JWKS server publishes, and how it behaves."""

    def __init__(self) -> None:
        self.published: list[dict] = [jwk_of(KEY1, "k1")]
        self.fetches = 0
        self.status = 200
        self.gate: asyncio.Event | None = None  # set: answers wait until it opens
        self.port = 0

    def url(self, provider: str) -> str:
        return f"http://{HOST}:{self.port}/{provider}"


class JwksHandler(tornado.web.RequestHandler):
    def initialize(self, jwks: Jwks) -> None:
        self.jwks = jwks

    async def get(self, provider: str) -> None:
        self.jwks.fetches += 1
        if provider == "redirect":
            self.redirect(self.jwks.url("google"))
            return
        if self.jwks.gate is not None:
            await self.jwks.gate.wait()
        self.set_status(self.jwks.status)
        self.finish({"keys": self.jwks.published})


@pytest.fixture
def jwks(io_loop):
    state = Jwks()
    server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/(\w+)", JwksHandler, {"jwks": state})]))
    sockets = bind_sockets(0, HOST)
    server.add_sockets(sockets)
    state.port = sockets[0].getsockname()[1]
    yield state
    if state.gate is not None:
        state.gate.set()
    io_loop.run_sync(lambda: close_server(server), timeout=10)


# How long a key fetch from the local JWKS server may take. Generous: a test that holds the
# fetch open (jwks.gate) until a crowd of sign-ins is in flight must not see it time out on a
# loaded machine. The test of a silent key server sets its own short timeout.
JWKS_TIMEOUT_SECONDS = 30
SILENT_JWKS_TIMEOUT_SECONDS = 2


@pytest.fixture
def config_overrides(jwks, request):
    """Both providers configured; a test parametrizes it (indirect) with other client ids."""
    return {"google_client_ids": (GOOGLE_CLIENT,), "apple_client_ids": (APPLE_CLIENT,),
            "jwks_timeout_seconds": JWKS_TIMEOUT_SECONDS,
            "google_jwks_url": jwks.url("google"), "apple_jwks_url": jwks.url("apple"),
            **getattr(request, "param", {})}


def make_token(provider: str = "google", *, key=KEY1, kid: str = "k1", sub: str = "person-1",
               email: str | None = "pat@example.com", **claims) -> str:
    now = int(time.time())
    payload = {
        "iss": GOOGLE_ISS if provider == "google" else APPLE_ISS,
        "aud": GOOGLE_CLIENT if provider == "google" else APPLE_CLIENT,
        "sub": sub, "iat": now, "exp": now + 3600,
        "email_verified": True if provider == "google" else "true",
        **({"email": email} if email else {}),
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(header: dict, payload: dict, secret: bytes | None = None) -> str:
    """A token PyJWT refuses to make: ``alg: none``, or an HMAC keyed with ``secret``."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


async def sign_in(api, provider: str = "google", token: str | None = None, **body):
    return await api.post(f"/auth/oauth/{provider}", {"id_token": token or make_token(provider), **body})


# ----- signing in -------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_google_sign_in_makes_an_account_then_signs_in_to_it(api, database):
    first = await sign_in(api, nonce="n-1", token=make_token(nonce="n-1", name="Pat Doe"))
    assert first.status == 200, first.body
    assert first.json["created"] is True
    assert first.json["user"]["email"] == "pat@example.com"
    assert first.json["user"]["name"] == "Pat Doe"
    assert first.json["expires_in"] > 0
    me = await api.get("/auth/me", token=first.json["token"])
    assert me.status == 200
    sessions = await api.get("/auth/sessions", token=first.json["token"])
    assert len(sessions.json["sessions"]) == 1
    refreshed = await api.post("/auth/refresh", {"refresh_token": first.json["refresh_token"]})
    assert refreshed.status == 200

    again = await sign_in(api)
    assert again.status == 200
    assert again.json["created"] is False
    assert again.json["user"]["id"] == first.json["user"]["id"]
    user = await database["users"].find_one({})
    assert user["email_verified"] is True
    assert user.get("password_hash") is None
    identity = await database["identities"].find_one({})
    assert (identity["provider"], identity["sub"], identity["user_id"]) == ("google", "person-1", str(user["_id"]))


@pytest.mark.gen_test
async def test_apple_sign_in_hashes_the_nonce_and_takes_the_name_from_the_body(api, database):
    nonce = "random-nonce-from-the-app"
    token = make_token("apple", nonce=hashlib.sha256(nonce.encode()).hexdigest(), email="x1@privaterelay.appleid.com")
    reply = await sign_in(api, "apple", token, nonce=nonce, name="  Sam Smith ")
    assert reply.status == 200, reply.body
    assert reply.json["created"] is True
    assert reply.json["user"]["name"] == "Sam Smith"
    user = await database["users"].find_one({})
    assert user["email_verified"] is True  # Apple's "true", a string


@pytest.mark.gen_test
async def test_the_same_sub_at_google_and_at_apple_are_two_identities(api, database):
    google = await sign_in(api, token=make_token(sub="same", email="a@example.com"))
    apple = await sign_in(api, "apple", make_token("apple", sub="same", email="b@example.com"))
    assert google.status == apple.status == 200
    assert google.json["user"]["id"] != apple.json["user"]["id"]
    assert await database["identities"].count_documents({}) == 2


# ----- refusals ------------------------------------------------------------------------------

def _tampered() -> str:
    header, _, signature = make_token().split(".")
    claims = {**claims_of(make_token()), "sub": "someone-else"}
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _public_pem() -> bytes:
    return KEY1.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


REFUSED_TOKENS = {
    "bad signature": _tampered,
    "a key not published, under a published kid": lambda: make_token(key=STRANGER),
    "a kid not published": lambda: make_token(key=STRANGER, kid="unknown"),
    "alg none": lambda: unsigned_token({"alg": "none", "kid": "k1"}, claims_of(make_token())),
    "HMAC with the public key as secret": lambda: unsigned_token(
        {"alg": "HS256", "kid": "k1", "typ": "JWT"}, claims_of(make_token()), secret=_public_pem()),
    "wrong iss": lambda: make_token(iss="https://evil.example.com"),
    "Apple's iss on a Google token": lambda: make_token(iss=APPLE_ISS),
    "wrong aud": lambda: make_token(aud="another-app.apps.googleusercontent.com"),
    "expired": lambda: make_token(exp=int(time.time()) - 600, iat=int(time.time()) - 4000),
    "iat in the future": lambda: make_token(iat=int(time.time()) + 3600, exp=int(time.time()) + 7200),
    "nbf in the future": lambda: make_token(nbf=int(time.time()) + 3600),
    "no exp": lambda: make_token(exp=None),
    "no sub": lambda: make_token(sub=None),
    "not a JWT": lambda: "not.a.jwt",
    "nonce in the token, none in the body": lambda: make_token(nonce="n"),
}


@pytest.mark.parametrize("case", REFUSED_TOKENS)
@pytest.mark.gen_test
async def test_a_token_that_proves_nothing_is_401(api, database, case):
    reply = await sign_in(api, token=REFUSED_TOKENS[case]())
    assert reply.status == 401, reply.body
    assert reply.error
    assert await database["users"].count_documents({}) == 0
    assert await database["identities"].count_documents({}) == 0


@pytest.mark.parametrize(("provider", "claim", "sent"), [
    ("google", "n-1", "n-2"),  # wrong
    ("google", None, "n-1"),  # the body has one the token lacks
    ("apple", "n-1", "n-1"),  # Apple's claim is the hash, not the nonce itself
    ("apple", hashlib.sha256(b"n-1").hexdigest(), "n-2"),
])
@pytest.mark.gen_test
async def test_a_nonce_that_does_not_match_is_401(api, provider, claim, sent):
    reply = await sign_in(api, provider, make_token(provider, nonce=claim), nonce=sent)
    assert reply.status == 401, reply.body
    assert "nonce" in reply.error


@pytest.mark.parametrize("body", [
    None, [], {}, {"id_token": {"$ne": None}}, {"id_token": 1}, {"id_token": ""}, {"id_token": "x" * 9000},
    {"id_token": "a.b.c", "nonce": {"$gt": ""}}, {"id_token": "a.b.c", "nonce": ""},
])
@pytest.mark.gen_test
async def test_malformed_bodies_are_400(api, body):
    for provider in ("google", "apple"):
        reply = await api.request("POST", f"/auth/oauth/{provider}", json_body=body)
        assert reply.status == 400, (provider, body, reply.body)
        assert reply.error


@pytest.mark.gen_test
async def test_apple_name_must_be_a_name(api):
    reply = await sign_in(api, "apple", make_token("apple"), name={"$ne": None})
    assert reply.status == 400
    assert (await sign_in(api, "apple", make_token("apple"), name="n" * 101)).status == 400


@pytest.mark.gen_test
async def test_a_blank_apple_name_is_as_good_as_none(api):
    reply = await sign_in(api, "apple", make_token("apple"), name="\u00a0 ")
    assert reply.status == 200, reply.body
    assert reply.json["user"]["name"].strip()


@pytest.mark.parametrize("config_overrides", [{"apple_client_ids": ()}], indirect=True)
@pytest.mark.gen_test
async def test_a_provider_without_client_ids_is_404(api, jwks):
    reply = await sign_in(api, "apple", make_token("apple"))
    assert reply.status == 404
    assert "Apple" in reply.error
    assert (await api.post("/auth/oauth/apple", {})).status == 404  # whatever the body
    assert (await sign_in(api)).status == 200
    assert (await api.post("/auth/oauth/facebook", {"id_token": "x"})).status == 404


# ----- throttling per client address -----------------------------------------------------------

ONE_ADDRESS = {"X-Forwarded-For": "198.51.100.7"}
ANOTHER_ADDRESS = {"X-Forwarded-For": "198.51.100.8"}


@pytest.fixture
def verified(services, monkeypatch) -> list[str]:
    """The ID tokens the verifier is asked to check, as they are asked."""
    asked = []
    original = services.identity_tokens.verify

    async def counted(provider, id_token, nonce):
        asked.append(id_token)
        return await original(provider, id_token, nonce)

    monkeypatch.setattr(services.identity_tokens, "verify", counted)
    return asked


@pytest.mark.parametrize("config_overrides", [{"trust_proxy": True, "login_max_failures_per_address": 4}],
                         indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_concurrent_forged_sign_ins_from_one_address_get_no_more_verifications_than_its_limit(
        api, database, verified):
    crowd = Api(api.base_url, own_connections=30)
    try:
        providers = ["google", "apple"] * 15  # both count against the one limit
        replies = await asyncio.gather(*(
            crowd.post(f"/auth/oauth/{provider}", {"id_token": make_token(provider, key=STRANGER)},
                       headers=ONE_ADDRESS)
            for provider in providers))
    finally:
        crowd.close()
    statuses = sorted(reply.status for reply in replies)
    assert len(verified) == 4  # each sign-in is counted before its token is verified: the limit get one
    assert statuses == [401] * 4 + [429] * 26
    refused = next(reply for reply in replies if reply.status == 429)
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.error == "Too many failed login attempts. Please wait a few minutes and try again."

    # Past the limit even a valid token is not looked at, and the count is the login's.
    assert (await api.post("/auth/oauth/google", {"id_token": make_token()}, headers=ONE_ADDRESS)).status == 429
    login = await api.post("/auth/login", {"email": "pat@example.com", "password": PASSWORD}, headers=ONE_ADDRESS)
    assert login.status == 429
    assert len(verified) == 4
    assert await database["users"].count_documents({}) == 0

    other = await api.post("/auth/oauth/google", {"id_token": make_token()}, headers=ANOTHER_ADDRESS)
    assert other.status == 200, other.body  # another address is unaffected
    assert len(verified) == 5


@pytest.mark.parametrize("config_overrides", [{"trust_proxy": True, "login_max_failures_per_address": 2}],
                         indirect=True)
@pytest.mark.gen_test
async def test_only_failed_tokens_use_up_the_address_limit(api, jwks, services):
    for n in range(4):  # valid tokens give their attempt back, as right passwords do
        reply = await api.post("/auth/oauth/apple", {"id_token": make_token("apple", sub=f"p{n}",
                                                                            email=f"p{n}@example.com")},
                               headers=ONE_ADDRESS)
        assert reply.status == 200, reply.body
    cache = services.identity_tokens.provider("google").keys
    jwks.status = 500
    for _ in range(3):  # tokens that could not be checked: not failures either
        assert (await api.post("/auth/oauth/google", {"id_token": make_token()}, headers=ONE_ADDRESS)).status == 503
    cache.clock = lambda: time.monotonic() + 10
    jwks.status = 200
    expired = make_token(exp=int(time.time()) - 600, iat=int(time.time()) - 4000)
    for status in (401, 401, 429):
        reply = await api.post("/auth/oauth/google", {"id_token": expired}, headers=ONE_ADDRESS)
        assert reply.status == status, reply.body


# ----- keys: cache, rotation, outages --------------------------------------------------------

@pytest.mark.gen_test
async def test_keys_are_fetched_once_and_cached(api, jwks):
    for n in range(5):
        assert (await sign_in(api, token=make_token(sub=f"p{n}", email=f"p{n}@example.com"))).status == 200
    assert jwks.fetches == 1


@pytest.mark.gen_test
async def test_an_unknown_kid_refetches_at_most_once_a_minute_and_a_stampede_fetches_once(api, app, jwks, services):
    assert (await sign_in(api)).status == 200
    assert jwks.fetches == 1
    jwks.published = [jwk_of(KEY2, "k2"), jwk_of(KEY1, "k1")]  # the provider rotates
    rotated = make_token(key=KEY2, kid="k2")
    # Fetched a moment ago: an unknown kid is simply not published (no fetch per bad token).
    for _ in range(3):
        assert (await sign_in(api, token=rotated)).status == 401
    assert jwks.fetches == 1

    cache = services.identity_tokens.provider("google").keys
    cache.clock = lambda: time.monotonic() + 61  # a minute later
    jwks.gate = asyncio.Event()
    crowd = Api(api.base_url, own_connections=30)
    try:
        replies = asyncio.gather(*(sign_in(crowd, token=make_token(key=KEY2, kid="k2", sub=f"s{n}",
                                                                   email=f"s{n}@example.com"))
                                   for n in range(30)))
        # Every sign-in of the crowd is in flight, waiting for the one fetch, before it ends.
        await wait_until(lambda: app.inflight.count == 30 and jwks.fetches == 2, interval=0.01)
        assert app.inflight.count == 30
        jwks.gate.set()
        statuses = [reply.status for reply in await replies]
    finally:
        crowd.close()
    assert statuses == [200] * 30
    assert jwks.fetches == 2


@pytest.mark.gen_test
async def test_keys_that_cannot_be_fetched_are_503_with_retry_after(api, jwks, services):
    jwks.status = 500
    reply = await sign_in(api)
    assert reply.status == 503, reply.body
    assert int(reply.headers["Retry-After"]) > 0
    assert reply.error
    # Right after a failure, no fetch on every request: the same answer at once.
    assert (await sign_in(api)).status == 503
    assert jwks.fetches == 1

    cache = services.identity_tokens.provider("google").keys
    cache.clock = lambda: time.monotonic() + 10
    jwks.status = 200
    assert (await sign_in(api)).status == 200  # back once the provider is
    assert jwks.fetches == 2


@pytest.mark.gen_test
async def test_known_keys_keep_verifying_while_the_provider_is_down_and_are_refreshed_when_old(api, jwks, services):
    assert (await sign_in(api)).status == 200
    cache = services.identity_tokens.provider("google").keys
    cache.clock = lambda: time.monotonic() + 7 * 3600  # past the keys' 6 h
    jwks.status = 503
    assert (await sign_in(api)).status == 200  # the refetch failed: the key we have still verifies
    assert jwks.fetches == 2
    jwks.status = 200
    jwks.published = [jwk_of(KEY2, "k2")]  # k1 retired meanwhile
    cache.clock = lambda: time.monotonic() + 7 * 3600 + 10  # past the 5 s after a failure
    assert (await sign_in(api)).status == 401
    assert jwks.fetches == 3


@pytest.mark.gen_test
async def test_clock_skew_within_the_leeway_is_accepted(api):
    now = int(time.time())
    assert (await sign_in(api, token=make_token(iat=now + 30, nbf=now + 30))).status == 200
    assert (await sign_in(api, token=make_token(iat=now - 4000, exp=now - 30))).status == 200


@pytest.mark.parametrize("config_overrides", [{"jwks_timeout_seconds": SILENT_JWKS_TIMEOUT_SECONDS}], indirect=True)
@pytest.mark.gen_test
async def test_an_unreachable_or_silent_key_server_is_503(api, jwks, services, config_overrides):
    google = services.identity_tokens.provider("google").keys
    google.url = f"http://{HOST}:{free_port()}/google"  # nothing listens there
    assert (await sign_in(api)).status == 503
    jwks.gate = asyncio.Event()  # answers nothing within SILENT_JWKS_TIMEOUT_SECONDS
    reply = await sign_in(api, "apple", make_token("apple"))
    assert reply.status == 503
    assert int(reply.headers["Retry-After"]) > 0


@pytest.mark.gen_test
async def test_a_redirect_away_from_https_is_not_followed(api, jwks, services):
    services.identity_tokens.provider("google").keys.url = jwks.url("redirect")
    assert (await sign_in(api)).status == 503
    assert jwks.fetches == 1  # the redirect, not the plain-http keys it points to


@pytest.mark.gen_test
async def test_keys_published_without_alg_or_for_other_uses_are_filtered(api, jwks):
    jwks.published = [
        {**jwk_of(KEY1, "k1"), "use": "enc"},
        {k: v for k, v in jwk_of(KEY2, "k2").items() if k != "alg"},  # RSA: RS256
        {"kty": "oct", "k": _b64(b"secret"), "kid": "k3", "alg": "HS256"},
    ]
    assert (await sign_in(api)).status == 401  # k1 is not a signing key
    assert (await sign_in(api, token=make_token(key=KEY2, kid="k2"))).status == 200
    forged = unsigned_token({"alg": "HS256", "kid": "k3"}, claims_of(make_token()), secret=b"secret")
    assert (await sign_in(api, token=forged)).status == 401


# ----- linking to an account of the same address ----------------------------------------------

async def _password_account(api, database, *, verified: bool) -> str:
    user_id = await api.signup(email="pat@example.com")
    if verified:  # email verification is another feature: its stored outcome
        await database["users"].update_one({"email": "pat@example.com"}, {"$set": {"email_verified": True}})
    return user_id


@pytest.mark.gen_test
async def test_a_verified_address_links_to_the_verified_account(api, database):
    user_id = await _password_account(api, database, verified=True)
    reply = await sign_in(api, "apple", make_token("apple"))
    assert reply.status == 200, reply.body
    assert reply.json["created"] is False
    assert reply.json["user"]["id"] == user_id
    assert (await sign_in(api, "apple", make_token("apple"))).json["user"]["id"] == user_id
    await api.login(email="pat@example.com")  # the password still works
    assert await database["users"].count_documents({}) == 1


@pytest.mark.parametrize(("account_verified", "provider_says"), [(False, True), (True, False), (True, "false"),
                                                                  (False, False)])
@pytest.mark.gen_test
async def test_linking_needs_both_addresses_verified_else_409(api, database, account_verified, provider_says):
    await _password_account(api, database, verified=account_verified)
    reply = await sign_in(api, token=make_token(email_verified=provider_says))
    assert reply.status == 409, reply.body
    assert "password" in reply.error
    assert await database["identities"].count_documents({}) == 0
    assert await database["users"].count_documents({}) == 1


@pytest.mark.gen_test
async def test_an_address_written_differently_is_the_same_address(api, database):
    user_id = await _password_account(api, database, verified=True)
    reply = await sign_in(api, token=make_token(email="Pat@Example.com"))
    assert reply.json["user"]["id"] == user_id


@pytest.mark.gen_test
async def test_a_token_without_an_email_cannot_make_an_account(api, database):
    reply = await sign_in(api, token=make_token(email=None))
    assert reply.status == 400
    assert "email" in reply.error
    assert await database["users"].count_documents({}) == 0


@pytest.mark.gen_test
async def test_concurrent_first_sign_ins_make_one_account(api, database):
    crowd = Api(api.base_url, own_connections=30)
    try:
        replies = await asyncio.gather(*(sign_in(crowd, token=make_token(sub="racer", email="racer@example.com"))
                                         for _ in range(30)))
    finally:
        crowd.close()
    assert [r.status for r in replies] == [200] * 30, [r.body for r in replies if r.status != 200]
    assert len({r.json["user"]["id"] for r in replies}) == 1
    assert sum(r.json["created"] for r in replies) == 1
    assert await database["users"].count_documents({}) == 1
    assert await database["identities"].count_documents({}) == 1


@pytest.mark.gen_test
async def test_first_sign_ins_racing_password_sign_ups_of_the_address_leave_one_account(api, database):
    crowd = Api(api.base_url, own_connections=20)
    signup = {"name": "Pat", "email": "pat@example.com", "password": PASSWORD}
    try:
        replies = await asyncio.gather(*[crowd.post("/auth/signup", signup) for _ in range(5)],
                                       *[sign_in(crowd, token=make_token(sub="racer")) for _ in range(15)])
    finally:
        crowd.close()
    signups, sign_ins = replies[:5], replies[5:]
    assert {r.status for r in signups} <= {201, 409}
    assert {r.status for r in sign_ins} <= {200, 409}
    made = [r for r in signups if r.status == 201] + [r for r in sign_ins if r.status == 200 and r.json["created"]]
    assert len(made) == 1
    assert await database["users"].count_documents({}) == 1
    user = await database["users"].find_one({})
    identities = await database["identities"].find({}).to_list(None)
    # No identity left pointing at an account that is not there, nor at a password account
    # whose address nobody verified.
    assert [i["user_id"] for i in identities] in ([], [str(user["_id"])])
    if user.get("password_hash"):
        assert identities == []


@pytest.mark.gen_test
async def test_concurrent_first_sign_ins_linking_to_an_account_link_once(api, database):
    user_id = await _password_account(api, database, verified=True)
    replies = await asyncio.gather(*(sign_in(api, token=make_token(sub="linker")) for _ in range(20)))
    assert {r.status for r in replies} == {200}
    assert {r.json["user"]["id"] for r in replies} == {user_id}
    assert await database["identities"].count_documents({}) == 1


# ----- accounts without a password ---------------------------------------------------------

@pytest.mark.gen_test
async def test_an_account_without_a_password_refuses_password_login_and_can_set_one_by_reset(api, database):
    user_id = (await sign_in(api)).json["user"]["id"]
    for password in (PASSWORD, "anything-at-all"):
        reply = await api.post("/auth/login", {"email": "pat@example.com", "password": password})
        assert reply.status == 401
        assert reply.error == "Invalid email or password"
    reset = await ResetTokenStore(database, 1800).create(user_id)
    confirmed = await api.post("/auth/password-reset/confirm", {"token": reset, "new_password": PASSWORD})
    assert confirmed.status == 200, confirmed.body
    await api.login(email="pat@example.com")
    assert (await sign_in(api)).json["user"]["id"] == user_id  # and Google still signs in


@pytest.mark.gen_test
async def test_a_password_change_without_a_password_is_401(api):
    token = (await sign_in(api)).json["token"]
    reply = await api.post("/auth/password", {"current_password": "whatever", "new_password": PASSWORD}, token=token)
    assert reply.status == 401


# ----- deleting an account with an ID token ---------------------------------------------------

async def delete_me(api, token, body):
    return await api.request("DELETE", "/auth/me", json_body=body, token=token)


@pytest.mark.gen_test
async def test_an_account_without_a_password_is_deleted_with_a_fresh_id_token(api, database):
    first = (await sign_in(api)).json  # Google says the address is verified: so is the account's
    apple = await sign_in(api, "apple", make_token("apple", sub="apple-pat"))  # the same address: linked
    assert apple.json["user"]["id"] == first["user"]["id"]
    assert await database["identities"].count_documents({}) == 2

    hashed = hashlib.sha256(b"abc").hexdigest()
    reply = await delete_me(api, first["token"], {"id_token": make_token("apple", sub="apple-pat", nonce="abc"),
                                                  "nonce": hashed})
    assert reply.status == 401  # Apple's claim is the hash of what the app sends
    reply = await delete_me(api, first["token"], {"id_token": make_token("apple", sub="apple-pat", nonce=hashed),
                                                  "nonce": "abc"})
    assert reply.status == 200, reply.body
    assert await database["users"].count_documents({}) == 0
    assert await database["identities"].count_documents({}) == 0
    assert (await api.get("/auth/me", token=first["token"])).status == 401
    again = await sign_in(api)
    assert again.json["created"] is True  # the identity is free: a new account


@pytest.mark.parametrize("case", ["stale", "another person", "password", "other provider's token", "garbage"])
@pytest.mark.gen_test
async def test_deletion_refuses_what_does_not_prove_it_is_you(api, database, case):
    token = (await sign_in(api)).json["token"]
    now = int(time.time())
    body = {
        "stale": {"id_token": make_token(iat=now - 1200, exp=now + 600)},
        "another person": {"id_token": make_token(sub="person-2")},
        "password": {"password": PASSWORD},
        "other provider's token": {"id_token": make_token("apple")},
        "garbage": {"id_token": "a.b.c"},
    }[case]
    reply = await delete_me(api, token, body)
    assert reply.status == 401, reply.body
    assert reply.error
    assert await database["users"].count_documents({}) == 1
    assert await database["identities"].count_documents({}) == 1


@pytest.mark.parametrize("body", [{}, {"nonce": "x"}, {"id_token": {"$ne": None}}, {"id_token": 5}])
@pytest.mark.gen_test
async def test_deletion_without_a_password_or_id_token_is_400(api, body):
    token = (await sign_in(api)).json["token"]
    reply = await delete_me(api, token, body)
    assert reply.status == 400
    assert reply.error


@pytest.mark.gen_test
async def test_a_password_account_is_still_deleted_with_its_password(api, database):
    await _password_account(api, database, verified=True)
    token = (await sign_in(api)).json["token"]  # linked
    assert (await delete_me(api, token, {"password": PASSWORD})).status == 200
    assert await database["identities"].count_documents({}) == 0


# ----- without HTTP ------------------------------------------------------------------------------

def test_build_services_leaves_unconfigured_providers_off(config, database, executor):
    services = build_services(config.replace(google_client_ids=(), apple_client_ids=()), database, executor)
    assert services.identity_tokens.providers == ()
    assert build_services(config, database, executor).identity_tokens.providers == ("google", "apple")


def test_the_settings_come_from_the_environment_and_are_checked():
    config = load_config(env={"GOOGLE_CLIENT_IDS": " a.apps.googleusercontent.com , b ", "APPLE_CLIENT_IDS": ""})
    assert config.google_client_ids == ("a.apps.googleusercontent.com", "b")
    assert config.apple_client_ids == ()
    assert config.google_jwks_url == "https://www.googleapis.com/oauth2/v3/certs"
    assert config.apple_jwks_url == "https://appleid.apple.com/auth/keys"
    for env, named in [({"GOOGLE_JWKS_URL": "http://keys.example.com/certs"}, "GOOGLE_JWKS_URL"),
                       ({"APPLE_JWKS_URL": "file:///etc/passwd"}, "APPLE_JWKS_URL"),
                       ({"JWKS_TIMEOUT_SECONDS": "0"}, "JWKS_TIMEOUT_SECONDS")]:
        with pytest.raises(ConfigError, match=named):
            load_config(env=env)
    assert load_config(env={"APPLE_JWKS_URL": "http://127.0.0.1:8080/keys"}).apple_jwks_url.startswith("http:")


# ----- a change of address confirmed with an ID token -------------------------------------------

@pytest.mark.gen_test
async def test_an_account_without_a_password_changes_its_address_with_a_fresh_id_token(api, services, database):
    token = (await sign_in(api)).json["token"]
    now = int(time.time())
    for refused, status in [({}, 400), ({"password": PASSWORD}, 401),
                            ({"id_token": make_token(iat=now - 1200, exp=now + 600)}, 401),
                            ({"id_token": make_token(sub="person-2")}, 401)]:
        reply = await api.post("/auth/email", {"new_email": "pat@example.org", **refused}, token=token)
        assert reply.status == status, (refused, reply.body)
        assert reply.error
    assert await database["email_change_tokens"].count_documents({}) == 0

    reply = await api.post("/auth/email", {"new_email": "pat@example.org", "id_token": make_token()}, token=token)
    assert reply.status == 202, reply.body
    await services.mailboxes.idle()
    assert await database["email_change_tokens"].count_documents({}) == 1

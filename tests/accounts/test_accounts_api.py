"""The /auth/* rows of the contract, through HTTP."""

import asyncio
import base64
import hashlib
import hmac
import json
import re

import jwt
import pytest

from server.app import VideoApp, build_services
from services.accounts.sessions import AuthTokenCodec, Principal
from tests.support import HOST, PASSWORD, TEST_SECRET, Api, assert_json_error, close_server, listen

SIGNUP = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}


# ----- signup ---------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_signup_creates_the_account_with_normalised_name_and_email(api):
    reply = await api.post("/auth/signup", {"name": "  Ann Lee ", "email": "  Ann@Example.COM ", "password": PASSWORD})
    assert reply.status == 201
    assert reply.json["message"] == "User registered successfully"
    assert re.fullmatch(r"[0-9a-f]{24}", reply.json["user_id"])

    token = await api.login(email="ann@example.com")
    me = (await api.get("/auth/me", token=token)).json["user"]
    assert me["id"] == reply.json["user_id"]
    assert (me["name"], me["email"]) == ("Ann Lee", "ann@example.com")


@pytest.mark.gen_test
async def test_signup_with_an_email_already_registered_in_another_case_is_409(api):
    await api.signup(email="ann@example.com")
    reply = await api.post("/auth/signup", {**SIGNUP, "email": "ANN@example.com"})
    assert reply.status == 409
    assert "already" in reply.error


@pytest.mark.parametrize("body, words", [
    ({"email": "a@example.com", "password": PASSWORD}, "Name"),
    ({"name": "Ann", "password": PASSWORD}, "Email"),
    ({"name": "Ann", "email": "a@example.com"}, "Password"),
    ({"name": "   ", "email": "a@example.com", "password": PASSWORD}, "Name"),
    ({"name": 42, "email": "a@example.com", "password": PASSWORD}, "Name"),
    ({"name": "Ann", "email": "not-an-email", "password": PASSWORD}, "Email"),
    ({"name": "Ann", "email": "a@", "password": PASSWORD}, "Email"),
    ({"name": "Ann", "email": {"$ne": None}, "password": PASSWORD}, "Email"),
    ({"name": "Ann", "email": ["a@example.com"], "password": PASSWORD}, "Email"),
    ({"name": "Ann", "email": "a@example.com", "password": "12345"}, "Password"),
    ({"name": "Ann", "email": "a@example.com", "password": 12345678}, "Password"),
    ({"name": "Ann", "email": "a@example.com", "password": None}, "Password"),
    ({"name": "Ann", "email": "a@example.com", "password": "x" * 73}, "Password"),
    # 25 three-byte characters are 75 bytes: over bcrypt's 72 although only 25 letters.
    ({"name": "Ann", "email": "a@example.com", "password": "€" * 25}, "Password"),
    ({"name": "A" * 101, "email": "a@example.com", "password": PASSWORD}, "Name"),
])
@pytest.mark.gen_test
async def test_signup_rejects_missing_and_invalid_fields_with_400(api, body, words):
    reply = await api.post("/auth/signup", body)
    assert reply.status == 400
    assert words in reply.error


@pytest.mark.gen_test
async def test_a_password_of_exactly_72_bytes_is_accepted_and_checked_in_full(api):
    password = "€" * 24  # 72 bytes
    await api.signup(email="euro@example.com", password=password)
    assert await api.login(email="euro@example.com", password=password)
    wrong = await api.post("/auth/login", {"email": "euro@example.com", "password": "€" * 23 + "x"})
    assert wrong.status == 401


# Each limit of a new password, and the words that name it in the 400.
NEW_PASSWORD_LIMITS = [
    ("\U0001f600\U0001f600", "at least 6 characters"),  # 8 bytes, 2 characters: the byte count let it in
    ("12345", "at least 6 characters"),
    ("x" * 73, "at most 72 characters"),
    ("\u00e9" * 73, "at most 72 characters"),
    ("\u20ac" * 25, "at most 72 bytes"),  # 25 characters, 75 bytes
    ("\U0001f600" * 19, "at most 72 bytes"),
    (12345678, "must be text"),
    ({"$ne": None}, "must be text"),
]


@pytest.mark.parametrize(("password", "words"), NEW_PASSWORD_LIMITS)
@pytest.mark.gen_test
async def test_a_new_password_is_6_to_72_characters_and_72_bytes_wherever_it_is_chosen(api, services, password, words):
    """Sign-up, change and reset confirmation hold a new password to one rule, and the 400
    says which limit it missed."""
    reply = await api.post("/auth/signup", {"name": "Bo", "email": "bo@example.com", "password": password})
    assert reply.status == 400 and words in reply.error and reply.error.startswith("Password"), reply.error
    token = await api.user()
    reply = await api.post("/auth/password", {"current_password": PASSWORD, "new_password": password}, token=token)
    assert reply.status == 400 and words in reply.error and "new password" in reply.error, reply.error
    reply = await api.post("/auth/password-reset/confirm", {"token": "x" * 43, "new_password": password})
    assert reply.status == 400 and words in reply.error and "new password" in reply.error, reply.error


@pytest.mark.parametrize("password", ["\u00e9" * 6, "\U0001f600" * 6, "x" * 72, "\u00e9" * 36, "\U0001f600" * 18])
@pytest.mark.gen_test
async def test_six_characters_of_any_width_up_to_72_bytes_make_a_password(api, password):
    await api.signup(email="wide@example.com", password=password)
    assert await api.login(email="wide@example.com", password=password)


@pytest.mark.gen_test
async def test_an_account_whose_password_predates_the_character_minimum_still_logs_in(api, services):
    """Six bytes used to be enough: two emoji. Login and the confirmations take any password
    an account can have (1 to 72 bytes), so such an account keeps working."""
    user_id = await api.signup()
    legacy = "\U0001f600\U0001f600"
    assert await services.accounts._users.set_password(user_id, legacy)  # as the former rule allowed
    token = await api.login(password=legacy)
    assert (await api.post("/auth/login", {"email": "ann@example.com", "password": "\U0001f600"})).status == 401
    reply = await api.post("/auth/password", {"current_password": legacy, "new_password": PASSWORD}, token=token)
    assert reply.status == 200, reply.body
    too_long = await api.post("/auth/login", {"email": "ann@example.com", "password": "\u20ac" * 25})
    assert too_long.status == 400 and "72 bytes" in too_long.error


@pytest.mark.parametrize(("password", "words"), [
    ("", "must not be empty"), (None, "must be text"), ({"$ne": None}, "must be text"),
    ("\u20ac" * 25, "at most 72 bytes"),
])
@pytest.mark.gen_test
async def test_a_password_being_checked_is_400_naming_what_is_wrong_before_any_check(api, password, words):
    """Login, change and deletion confirm a password the account has: one it cannot have is a
    400 that says why (and costs no bcrypt check); any other wrong one is a 401."""
    token = await api.user()
    login = await api.post("/auth/login", {"email": "ann@example.com", "password": password})
    change = await api.post("/auth/password", {"current_password": password, "new_password": "fine-new-one"},
                            token=token)
    deletion = await api.request("DELETE", "/auth/me", json_body={"password": password}, token=token)
    for reply, label in ((login, "Password"), (change, "Your current password"), (deletion, "Your password")):
        assert reply.status == 400 and reply.error.startswith(label) and words in reply.error, reply.error
    assert await api.login()  # none of them counted as a failed login


@pytest.mark.parametrize("raw", [b"", b"   ", b"not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe",
                                 b"[" * 30000 + b"]" * 30000])
@pytest.mark.gen_test
async def test_a_body_that_is_not_a_json_object_is_400(api, raw):
    reply = await api.request("POST", "/auth/signup", body=raw, headers={"Content-Type": "application/json"})
    assert reply.status == 400
    assert "JSON" in reply.error


@pytest.mark.gen_test
async def test_racing_duplicate_signups_create_exactly_one_account(api, database):
    replies = await asyncio.gather(*(api.post("/auth/signup", SIGNUP) for _ in range(8)))
    assert sorted(r.status for r in replies) == [201] + [409] * 7
    assert await database["users"].count_documents({"email": "ann@example.com"}) == 1


@pytest.mark.gen_test
async def test_the_password_is_stored_only_as_a_bcrypt_hash(api, database):
    await api.signup()
    stored = await database["users"].find_one({"email": "ann@example.com"})
    assert PASSWORD not in str(stored)
    assert stored["password_hash"].startswith("$2b$")


# ----- login ----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_login_returns_a_token_and_the_public_user(api):
    user_id = await api.signup()
    reply = await api.post("/auth/login", {"email": " ANN@example.com", "password": PASSWORD})
    assert reply.status == 200
    body = reply.json
    assert body["message"] == "Login successful"
    assert body["user"] == {"id": user_id, "name": "Ann", "email": "ann@example.com", "email_verified": False}
    claims = jwt.decode(body["token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == user_id and claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert claims["sid"]


@pytest.mark.parametrize("raw", [
    b'{"email": "ann@example.com", "password": "wrong-password", "password": "%s"}',
    b'{"email": "ann@example.com", "password": "%s", "password": "wrong-password"}',
    b'{"email": "ann@example.com", "password": "%s", "pass\\u0077ord": "wrong-password"}',  # one name, escaped
    b'{"email": "eve@example.com", "email": "ann@example.com", "password": "%s"}',
])
@pytest.mark.gen_test
async def test_a_login_body_that_repeats_a_member_name_is_400_whichever_value_is_right(api, raw):
    """Two parsers could read such a body two ways (one the first value, one the last)."""
    await api.signup()
    reply = await api.request("POST", "/auth/login", body=raw.replace(b"%s", PASSWORD.encode()),
                              headers={"Content-Type": "application/json"})
    assert reply.status == 400, reply.body
    assert "repeats the member name" in reply.error and ("password" in reply.error or "email" in reply.error)
    assert await api.login()  # the same fields, each once: fine


@pytest.mark.gen_test
async def test_login_failure_says_the_same_whether_or_not_the_email_exists(api):
    await api.signup()
    wrong_password = await api.post("/auth/login", {"email": "ann@example.com", "password": "wrong password"})
    unknown_email = await api.post("/auth/login", {"email": "bob@example.com", "password": "wrong password"})
    assert wrong_password.status == unknown_email.status == 401
    assert wrong_password.error == unknown_email.error == "Invalid email or password"


@pytest.mark.parametrize("body", [
    {}, {"email": "ann@example.com"}, {"password": PASSWORD},
    {"email": {"$ne": None}, "password": {"$ne": None}},
    {"email": {"$gt": ""}, "password": PASSWORD},
    {"email": "ann@example.com", "password": {"$ne": None}},
    {"email": 1, "password": PASSWORD},
])
@pytest.mark.gen_test
async def test_login_rejects_missing_and_mistyped_fields_with_400(api, body):
    await api.signup()
    reply = await api.post("/auth/login", body)
    assert_json_error(reply, 400)


@pytest.mark.gen_test
async def test_each_login_is_its_own_session(api):
    await api.signup()
    first, second = await api.login(), await api.login()
    assert first != second
    assert (await api.post("/auth/logout", token=first)).status == 200
    assert (await api.get("/auth/me", token=first)).status == 401
    assert (await api.get("/auth/me", token=second)).status == 200


# ----- me and logout --------------------------------------------------------------------

@pytest.mark.gen_test
async def test_me_returns_the_user_with_an_iso_utc_creation_time(api):
    token = await api.user()
    reply = await api.get("/auth/me", token=token)
    assert reply.status == 200
    user = reply.json["user"]
    assert set(user) == {"id", "name", "email", "email_verified", "created_at"}
    assert user["email_verified"] is False  # sign-up mailed a link; nobody opened it yet
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", user["created_at"])


@pytest.mark.gen_test
async def test_me_for_a_deleted_user_is_404(api, database):
    token = await api.user()
    await database["users"].delete_many({})
    reply = await api.get("/auth/me", token=token)
    assert_json_error(reply, 404)


def _forged(secret=TEST_SECRET, algorithm="HS256", **claims):
    base = {"sub": "5f0000000000000000000000", "sid": "x", "iat": 1, "exp": 4102444800, "typ": "access"}
    return jwt.encode({**base, **claims}, secret, algorithm=algorithm)


@pytest.mark.parametrize("header", [
    None,
    "",
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Token abc",
    "Bearer not-a-jwt",
    "Bearer a.b.c",
    f"Bearer {_forged(secret='another-secret-that-is-also-32-bytes-long!')}",
    f"Bearer {_forged(iat=1, exp=2)}",
    f"Bearer {_forged(typ='refresh')}",
    f"Bearer {_forged(algorithm='HS512')}",
    f"Bearer {jwt.encode({'sub': 'x', 'sid': 'y', 'typ': 'access'}, TEST_SECRET, algorithm='HS256')}",
    # alg "none": an unsigned token must never be accepted.
    "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiI1ZjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAiLCJzaWQiOiJ4IiwiaWF0IjoxLCJleHAiOjQxMDI0NDQ4MDAsInR5cCI6ImFjY2VzcyJ9.",
])
@pytest.mark.parametrize("method, path", [("GET", "/auth/me"), ("POST", "/auth/logout"), ("GET", "/dashboard")])
@pytest.mark.gen_test
async def test_protected_endpoints_refuse_anything_but_a_live_bearer_token(api, method, path, header):
    headers = {} if header is None else {"Authorization": header}
    reply = await api.request(method, path, headers=headers)
    assert_json_error(reply, 401)
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.gen_test
async def test_a_validly_signed_token_for_a_session_that_never_existed_is_401(api):
    token = AuthTokenCodec((TEST_SECRET,), 3600).issue(Principal("5f0000000000000000000000", "made-up"))
    assert (await api.get("/dashboard", token=token)).status == 401


@pytest.mark.gen_test
async def test_logout_revokes_the_token_everywhere_at_once(api):
    token = await api.user()
    reply = await api.post("/auth/logout", token=token)
    assert reply.status == 200
    assert reply.json == {"message": "Logout successful"}
    for method, path in [("GET", "/auth/me"), ("GET", "/dashboard"), ("POST", "/auth/logout")]:
        assert (await api.request(method, path, token=token)).status == 401


@pytest.mark.gen_test
async def test_logout_on_one_server_is_honoured_by_another_sharing_the_database(
        api, config, database, executor):
    # A second Application with its own services over the same database: two processes, one DB.
    other_app = VideoApp(config, build_services(config, database, executor))
    other_server, port = listen(other_app)
    other = Api(f"http://{HOST}:{port}")
    try:
        token = await api.user()
        videos = await api.dashboard(token)
        assert (await other.get("/auth/me", token=token)).status == 200

        assert (await api.post("/auth/logout", token=token)).status == 200

        assert (await other.get("/auth/me", token=token)).status == 401
        assert (await other.get("/dashboard", token=token)).status == 401
        play = await other.get(f"/video/{videos[0]['id']}/play?token={videos[0]['playback_token']}")
        assert play.status == 401
    finally:
        await close_server(other_server)


@pytest.mark.parametrize("claims", [
    {"exp": "4102444800"}, {"iat": "1"}, {"exp": 10**400}, {"exp": 1e300}, {"exp": [1]}, {"exp": "soon"},
    {"exp": True}, {"iat": {"a": 1}},
    {"iat": 10**400}, {"nbf": [1]}, {"sub": 5}, {"sub": ["a"]}, {"sid": {"$ne": None}}, {"sid": 5}, {"typ": ["access"]},
    {"sid": "\ud800"}, {"sub": "\udfff"}, {"typ": {"x": 1}}, {"aud": 5}, {"iss": 5},
])
@pytest.mark.gen_test
async def test_a_correctly_signed_token_with_a_claim_of_the_wrong_type_is_401(api, claims):
    """Signed by hand: PyJWT refuses to encode some of these."""
    def part(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    base = {"sub": "5f0000000000000000000000", "sid": "x", "iat": 1, "exp": 4102444800, "typ": "access"}
    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({**base, **claims})}"
    signature = hmac.new(TEST_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    reply = await api.get("/auth/me", token=token)
    assert_json_error(reply, 401, claims)


@pytest.mark.parametrize("field", ["name", "email", "password"])
@pytest.mark.gen_test
async def test_text_mongodb_cannot_store_is_a_400_before_any_hashing(api, services, database, monkeypatch, field):
    hashed = []
    original = services.passwords.hash

    async def counted(password):
        hashed.append(password)
        return await original(password)

    monkeypatch.setattr(services.passwords, "hash", counted)
    values = {"name": '"Ann"', "email": '"ann@example.com"', "password": f'"{PASSWORD}"'}
    values[field] = '"ab\\ud800cdefgh"'  # a lone surrogate: valid JSON, not encodable as UTF-8
    body = "{" + ",".join(f'"{k}":{v}' for k, v in values.items()) + "}"
    reply = await api.request("POST", "/auth/signup", body=body)
    assert reply.status == 400, reply.body
    assert "not valid text" in reply.error or field == "email"
    assert hashed == []
    assert await database["users"].count_documents({}) == 0


@pytest.mark.parametrize("first, second", [
    ("jos\u00e9@example.com", "jose\u0301@example.com"),  # NFC and NFD
    ("ann@b\u00fccher.de", "ann@xn--bcher-kva.de"),  # a Unicode domain and its punycode
    ("Ann@B\u00dcCHER.de", "ann@xn--bcher-kva.DE"),
])
@pytest.mark.gen_test
async def test_one_address_written_two_ways_is_one_account(api, first, second):
    await api.signup(email=first)
    again = await api.post("/auth/signup", {"name": "Ann", "email": second, "password": PASSWORD})
    assert again.status == 409
    assert (await api.post("/auth/login", {"email": second, "password": PASSWORD})).status == 200

"""Proven mailboxes and change of address, with the mails going through a real SMTP server
(aiosmtpd), and development mail written to MAIL_DIR."""

import asyncio
import datetime as dt
import email
import io
import logging
import re

import pytest

from server.__main__ import parse_arguments
from server.app import VideoApp, build_services
from server.commands import run_verify_email, verify_email
from services.accounts.users import public_user
from services.common.clock import utcnow
from services.common.mail import FileMailer
from tests.support import HOST, PASSWORD, Api, assert_json_error, close_server, listen, prepared_services, wait_until
from tests.support.smtp import smtp_url

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

VERIFY, CHANGE, NOTICE = "Verify your email address", "Confirm your new email address", \
    "A change of your account's email address was requested"
EXISTING = "Someone tried to sign up with your address"
RESET = "Reset your password"




@pytest.fixture
def config_overrides(smtp_port):
    return {"smtp_url": smtp_url(smtp_port), "admin_emails": ("boss@example.com",),
            "password_reset_url": "https://app.example.com/reset?token={token}",
            "email_verify_url": "https://app.example.com/verify?token={token}",
            "email_change_url": "https://app.example.com/change-email?token={token}"}


async def mails(services, inbox, subject: str, count: int = 1) -> list[email.message.Message]:
    """The first ``count`` messages with this subject, once they arrived."""
    async def arrived() -> bool:  # the SMTP server hands each message over in its own thread
        await services.mailboxes.idle()
        await services.password_reset.idle()
        return len(inbox.with_subject(subject)) >= count

    if await wait_until(arrived):
        return inbox.with_subject(subject)
    raise AssertionError(f"no {count} mail(s) {subject!r}: {[m['Subject'] for m in inbox.messages]}")


def link_token(message: email.message.Message, kind: str) -> str:
    body = message.get_payload(decode=True).decode()
    return re.search(rf"https://app\.example\.com/{kind}\?token=([A-Za-z0-9_-]+)", body).group(1)


async def verification_token(services, inbox, count: int = 1) -> str:
    return link_token((await mails(services, inbox, VERIFY, count))[count - 1], "verify")


async def me(api, token) -> dict:
    reply = await api.get("/auth/me", token=token)
    assert reply.status == 200, reply.body
    return reply.json["user"]


# ----- verification -----------------------------------------------------------------------

@pytest.mark.gen_test
async def test_sign_up_mails_a_link_that_verifies_the_address_once(api, services, inbox, database):
    token = await api.user()
    assert (await me(api, token))["email_verified"] is False
    message = (await mails(services, inbox, VERIFY))[0]
    assert message["To"] == "ann@example.com"
    link = link_token(message, "verify")
    stored = await database["email_verification_tokens"].find_one({})
    assert link not in str(stored)  # only its hash
    assert dt.timedelta(hours=23) < stored["expires_at"].replace(tzinfo=dt.UTC) - utcnow() <= dt.timedelta(hours=24)

    reply = await api.post("/auth/verify-email/confirm", {"token": link})
    assert reply.status == 200
    assert reply.json["user"]["email_verified"] is True
    assert reply.json["user"]["email"] == "ann@example.com"
    assert (await me(api, token))["email_verified"] is True
    login = await api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD})
    assert login.json["user"]["email_verified"] is True
    again = await api.post("/auth/verify-email/confirm", {"token": link})
    assert_json_error(again, 401)


@pytest.mark.gen_test
async def test_racing_confirmations_of_one_link_have_one_winner(api, services, inbox):
    await api.signup()
    link = await verification_token(services, inbox)
    replies = await asyncio.gather(*(api.post("/auth/verify-email/confirm", {"token": link}) for _ in range(30)))
    assert sorted(r.status for r in replies) == [200] + [401] * 29


@pytest.mark.gen_test
async def test_an_expired_or_invented_verification_link_is_401(api, services, inbox, database):
    token = await api.user()
    link = await verification_token(services, inbox)
    await database["email_verification_tokens"].update_many(
        {}, {"$set": {"expires_at": utcnow() - dt.timedelta(seconds=1)}})
    assert (await api.post("/auth/verify-email/confirm", {"token": link})).status == 401
    assert (await api.post("/auth/verify-email/confirm", {"token": "a" * 43})).status == 401
    assert (await me(api, token))["email_verified"] is False


@pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": {"$ne": None}}, {"token": 12}, {"token": None},
                                  {"token": "x" * 1001}, [], "token"])
@pytest.mark.gen_test
async def test_confirmations_refuse_malformed_bodies_with_400(api, body):
    for path in ("/auth/verify-email/confirm", "/auth/email/confirm"):
        reply = await api.post(path, body)
        assert_json_error(reply, 400, path)


@pytest.mark.gen_test
async def test_asking_again_sends_a_new_link_until_verified_then_409(api, services, inbox):
    token = await api.user()
    reply = await api.post("/auth/verify-email", token=token)
    assert reply.status == 202
    assert reply.json["message"]
    second = await verification_token(services, inbox, count=2)
    assert (await api.post("/auth/verify-email/confirm", {"token": second})).status == 200
    reply = await api.post("/auth/verify-email", token=token)
    assert reply.status == 409
    assert "already verified" in reply.error


@pytest.mark.gen_test
async def test_asking_for_verification_needs_a_login_and_is_throttled(api, services, inbox):
    assert (await api.post("/auth/verify-email")).status == 401
    token = await api.user()
    replies = [await api.post("/auth/verify-email", token=token) for _ in range(4)]
    assert [r.status for r in replies] == [202, 202, 202, 429]
    assert int(replies[-1].headers["Retry-After"]) > 0
    await mails(services, inbox, VERIFY, count=4)  # the sign-up's and three more, no fifth
    await asyncio.sleep(0.1)
    assert len(inbox.with_subject(VERIFY)) == 4


@pytest.mark.gen_test
async def test_a_link_sent_to_a_former_address_verifies_nothing(api, services, inbox, database):
    token = await api.user()
    link = await verification_token(services, inbox)
    await database["users"].update_one({"email": "ann@example.com"}, {"$set": {"email": "ann@example.org"}})
    assert (await api.post("/auth/verify-email/confirm", {"token": link})).status == 401
    assert (await me(api, token))["email_verified"] is False


def test_an_account_stored_before_verification_existed_reads_as_unverified():
    old = {"_id": "1", "name": "Ann", "email": "ann@example.com"}
    assert public_user(old)["email_verified"] is False
    assert public_user({**old, "email_verified": "yes"})["email_verified"] is False


# ----- operators --------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_a_listed_operator_needs_a_verified_address(api, services, inbox):
    # A stranger who signs up first with an operator's address gets no /admin.
    token = await api.user("boss@example.com")
    reply = await api.get("/admin/videos", token=token)
    assert reply.status == 403
    assert "verify its email" in reply.error
    link = await verification_token(services, inbox)
    assert (await api.post("/auth/verify-email/confirm", {"token": link})).status == 200
    assert (await api.get("/admin/videos", token=token)).status == 200


@pytest.mark.gen_test
async def test_the_operator_command_verifies_an_address_without_mail(api, database):
    token = await api.user("boss@example.com")
    out = io.StringIO()
    assert await verify_email(database, " Boss@Example.com ", out) == 0
    assert "boss@example.com is verified" in out.getvalue()
    assert (await me(api, token))["email_verified"] is True
    assert (await api.get("/admin/videos", token=token)).status == 200
    assert await verify_email(database, "nobody@example.com", io.StringIO()) == 1
    assert await verify_email(database, "not an address", io.StringIO()) == 2


@pytest.mark.gen_test
async def test_the_operator_command_refuses_the_embedded_store(config):
    out = io.StringIO()
    assert await run_verify_email(config.replace(mongodb_uri=""), "boss@example.com", out) == 2
    assert "MONGODB_URI" in out.getvalue()


def test_the_operator_command_is_parsed_beside_serving():
    assert parse_arguments([]).command is None
    assert parse_arguments(["verify-email", "a@example.com"]).address == "a@example.com"
    with pytest.raises(SystemExit):
        parse_arguments(["verify-email"])


@pytest.mark.gen_test
async def test_production_without_smtp_url_sends_nothing_and_verification_is_503(config, database, executor,
                                                                                  mail_dir):
    production = config.replace(app_env="production", smtp_url="")
    services = build_services(production, database, executor)
    await services.ensure_indexes()
    server, port = listen(VideoApp(production, services))
    try:
        api = Api(f"http://{HOST}:{port}")
        token = await api.user()  # sign-up still works, without a mail
        reply = await api.post("/auth/verify-email", token=token)
        assert reply.status == 503
        assert reply.json == {"error": "Email verification is not available on this server."}
        change = await api.post("/auth/email", {"new_email": "ann@example.org", "password": PASSWORD}, token=token)
        assert change.status == 503
    finally:
        await close_server(server)
    assert not mail_dir.exists()  # never development mail in production


# ----- REQUIRE_EMAIL_VERIFICATION ---------------------------------------------------------

@pytest.fixture
def required(config, database, executor, io_loop):
    """The API with REQUIRE_EMAIL_VERIFICATION (its client and its services)."""
    required = config.replace(require_email_verification=True)
    services = io_loop.run_sync(lambda: prepared_services(required, database, executor))
    server, port = listen(VideoApp(required, services))
    yield Api(f"http://{HOST}:{port}"), services
    io_loop.run_sync(lambda: close_server(server))
    io_loop.run_sync(services.mailboxes.idle, timeout=30)


@pytest.mark.gen_test
async def test_when_required_sign_up_answers_the_same_for_a_registered_address(required, inbox, database):
    api, services = required
    body = {"name": "Ann", "email": "ann@example.com", "password": PASSWORD}
    first = await api.post("/auth/signup", body)
    second = await api.post("/auth/signup", {**body, "name": "Mallory", "password": "another password"})
    assert first.status == second.status == 202
    assert first.body == second.body
    assert set(first.json) == {"message"}
    assert await database["users"].count_documents({}) == 1
    # Unverified, the owner (who cannot log in to ask) gets a fresh link by signing up again.
    assert [m["To"] for m in await mails(services, inbox, VERIFY, count=2)] == ["ann@example.com"] * 2
    link = link_token(inbox.with_subject(VERIFY)[1], "verify")
    assert (await api.post("/auth/verify-email/confirm", {"token": link})).status == 200
    # Verified, the owner learns of another attempt by mail instead.
    third = await api.post("/auth/signup", {**body, "name": "Mallory", "password": "another password"})
    assert (third.status, third.body) == (202, first.body)
    notice = (await mails(services, inbox, EXISTING))[0]
    assert notice["To"] == "ann@example.com"
    assert await database["users"].count_documents({}) == 1
    assert (await api.post("/auth/login", {"email": "ann@example.com", "password": "another password"})).status \
        == 401


@pytest.mark.gen_test
async def test_when_required_login_before_verification_is_403_after_the_password_check(required, inbox):
    api, services = required
    await api.post("/auth/signup", {"name": "Ann", "email": "ann@example.com", "password": PASSWORD})
    wrong = await api.post("/auth/login", {"email": "ann@example.com", "password": "not the password"})
    assert wrong.status == 401
    early = await api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD})
    assert early.status == 403
    assert "verify your email" in early.error
    link = await verification_token(services, inbox)
    assert (await api.post("/auth/verify-email/confirm", {"token": link})).status == 200
    assert (await api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD})).status == 200


@pytest.mark.gen_test
async def test_when_required_wrong_passwords_are_throttled_alike(required):
    api, _ = required
    await api.post("/auth/signup", {"name": "Ann", "email": "ann@example.com", "password": PASSWORD})
    for _ in range(5):
        assert (await api.post("/auth/login", {"email": "ann@example.com", "password": "wrong one"})).status == 401
    assert (await api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD})).status == 429


# ----- change of address ------------------------------------------------------------------

async def change(api, token, new_email="ann@example.org", password=PASSWORD):
    return await api.post("/auth/email", {"new_email": new_email, "password": password}, token=token)


@pytest.mark.gen_test
async def test_a_change_of_address_waits_for_the_link_sent_to_the_new_one(api, services, inbox, database):
    token = await api.user()
    assert (await api.post("/auth/password-reset", {"email": "ann@example.com"})).status == 202
    reset = link_token((await mails(services, inbox, RESET))[0], "reset")
    first_verification = await verification_token(services, inbox)

    reply = await change(api, token, " Ann@Example.ORG ")
    assert reply.status == 202
    assert reply.json["message"]
    confirmation = (await mails(services, inbox, CHANGE))[0]
    notice = (await mails(services, inbox, NOTICE))[0]
    assert confirmation["To"] == "ann@example.org"
    assert notice["To"] == "ann@example.com"
    assert "secure your account" in notice.get_payload(decode=True).decode()
    assert "token" not in notice.get_payload(decode=True).decode()
    assert (await me(api, token))["email"] == "ann@example.com"  # nothing changed yet

    reply = await api.post("/auth/email/confirm", {"token": link_token(confirmation, "change-email")})
    assert reply.status == 200
    user = reply.json["user"]
    assert (user["email"], user["email_verified"]) == ("ann@example.org", True)
    assert (await me(api, token))["email"] == "ann@example.org"
    assert (await api.post("/auth/login", {"email": "ann@example.org", "password": PASSWORD})).status == 200
    assert (await api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD})).status == 401
    # Links sent before the move are dead: the reset, the old address's verification, this one.
    assert (await api.post("/auth/password-reset/confirm",
                           {"token": reset, "new_password": "attacker's choice"})).status == 401
    assert (await api.post("/auth/verify-email/confirm", {"token": first_verification})).status == 401
    assert (await api.post("/auth/email/confirm", {"token": link_token(confirmation, "change-email")})).status == 401
    for collection in ("password_reset_tokens", "email_verification_tokens", "email_change_tokens"):
        assert await database[collection].count_documents({}) == 0


@pytest.mark.gen_test
async def test_a_wrong_password_is_401_and_counts_as_a_failed_login(api, services, inbox):
    token = await api.user()
    for _ in range(5):
        reply = await change(api, token, password="not my password")
        assert_json_error(reply, 401)
    assert (await change(api, token)).status == 429
    assert (await api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD})).status == 429
    await services.mailboxes.idle()
    assert inbox.with_subject(CHANGE) == []


@pytest.mark.gen_test
async def test_a_taken_or_unchanged_address_is_409(api):
    token = await api.user()
    await api.signup("bob@example.com", name="Bob")
    taken = await change(api, token, "BOB@example.com")
    assert taken.status == 409
    assert "already uses" in taken.error
    same = await change(api, token, "ann@example.com")
    assert same.status == 409


@pytest.mark.gen_test
async def test_an_address_taken_meanwhile_is_409_at_confirmation(api, services, inbox):
    token = await api.user()
    assert (await change(api, token)).status == 202
    link = link_token((await mails(services, inbox, CHANGE))[0], "change-email")
    await api.signup("ann@example.org", name="Someone else")
    reply = await api.post("/auth/email/confirm", {"token": link})
    assert_json_error(reply, 409)
    assert (await me(api, token))["email"] == "ann@example.com"


@pytest.mark.gen_test
async def test_two_accounts_racing_for_one_address_one_wins(api, services, inbox, database):
    tokens = [await api.user(f"user{i}@example.com") for i in range(6)]
    for token in tokens:
        assert (await change(api, token, "wanted@example.com")).status == 202
    links = [link_token(m, "change-email") for m in await mails(services, inbox, CHANGE, count=len(tokens))]
    replies = await asyncio.gather(*(api.post("/auth/email/confirm", {"token": link}) for link in links))
    assert sorted(r.status for r in replies) == [200] + [409] * (len(tokens) - 1)
    assert await database["users"].count_documents({"email": "wanted@example.com"}) == 1


@pytest.mark.gen_test
async def test_racing_confirmations_of_one_change_have_one_winner(api, services, inbox):
    token = await api.user()
    assert (await change(api, token)).status == 202
    link = link_token((await mails(services, inbox, CHANGE))[0], "change-email")
    replies = await asyncio.gather(*(api.post("/auth/email/confirm", {"token": link}) for _ in range(30)))
    assert sorted(r.status for r in replies) == [200] + [401] * 29


@pytest.mark.gen_test
async def test_a_change_link_is_bound_to_the_address_the_account_had(api, services, inbox):
    token = await api.user()
    assert (await change(api, token, "first@example.org")).status == 202
    assert (await change(api, token, "second@example.org")).status == 202
    first, second = [link_token(m, "change-email") for m in await mails(services, inbox, CHANGE, count=2)]
    assert (await api.post("/auth/email/confirm", {"token": second})).status == 200
    # The other link was revoked by the move (and named the old address anyway).
    assert (await api.post("/auth/email/confirm", {"token": first})).status == 401
    assert (await me(api, token))["email"] == "second@example.org"


@pytest.mark.parametrize("body", [
    {}, {"new_email": "ann@example.org"}, {"password": PASSWORD},
    {"new_email": "not an address", "password": PASSWORD}, {"new_email": {"$ne": None}, "password": PASSWORD},
    {"new_email": "ann@example.org", "password": {"$ne": None}}, {"new_email": "ann@example.org", "password": ""},
    {"new_email": ["ann@example.org"], "password": PASSWORD}, {"new_email": "a" * 300 + "@example.org",
                                                               "password": PASSWORD}, [],
])
@pytest.mark.gen_test
async def test_a_change_refuses_malformed_bodies_with_400(api, body):
    token = await api.user()
    reply = await api.post("/auth/email", body, token=token)
    assert_json_error(reply, 400)


@pytest.mark.gen_test
async def test_a_change_needs_a_login(api):
    assert (await api.post("/auth/email", {"new_email": "ann@example.org", "password": PASSWORD})).status == 401


@pytest.mark.gen_test
async def test_change_mails_are_throttled_per_account(api, services, inbox):
    token = await api.user()
    replies = [await change(api, token, f"new{i}@example.org") for i in range(4)]
    assert [r.status for r in replies] == [202, 202, 202, 429]


# ----- development mail -------------------------------------------------------------------

@pytest.mark.parametrize("config_overrides", [{"password_reset_url": "http://localhost/reset?token={token}"}])
@pytest.mark.gen_test
async def test_development_mail_is_written_whole_to_mail_dir_and_the_log_names_the_file(
        api, services, mail_dir, caplog, config_overrides):
    with caplog.at_level(logging.WARNING, logger="app"):
        await api.signup()
        assert (await api.post("/auth/password-reset", {"email": "ann@example.com"})).status == 202
        await services.mailboxes.idle()
        await services.password_reset.idle()
    files = sorted(mail_dir.glob("*.eml"))
    assert len(files) == 2
    assert oct(files[0].stat().st_mode & 0o777) == "0o600"
    messages = [email.message_from_bytes(f.read_bytes()) for f in files]
    assert {m["Subject"] for m in messages} == {VERIFY, RESET}
    reset = next(m for m in messages if m["Subject"] == RESET)
    token = re.search(r"reset\?token=([A-Za-z0-9_-]+)", reset.get_payload(decode=True).decode()).group(1)
    # The developer can finish the reset from the file.
    reply = await api.post("/auth/password-reset/confirm", {"token": token, "new_password": "a new password"})
    assert reply.status == 200
    lines = [r for r in caplog.records if r.name == "app.mail"]
    assert sorted(r.file for r in lines) == [str(f) for f in files]
    assert token not in caplog.text


@pytest.mark.gen_test
async def test_the_mail_directory_keeps_only_the_newest_files(tmp_path):
    mailer = FileMailer(tmp_path / "deep" / "mail", max_files=3)
    for i in range(5):
        message = email.message.EmailMessage()
        message["To"], message["Subject"] = "ann@example.com", f"number {i}"
        message.set_content("hello")
        await mailer.send(message)
    kept = sorted((tmp_path / "deep" / "mail").glob("*.eml"))
    assert [email.message_from_bytes(f.read_bytes())["Subject"] for f in kept] == ["number 2", "number 3", "number 4"]


@pytest.mark.gen_test
async def test_deleting_the_account_deletes_its_mailed_tokens(api, services, inbox, database):
    token = await api.user()
    assert (await change(api, token)).status == 202
    await mails(services, inbox, CHANGE)
    assert await database["email_verification_tokens"].count_documents({}) == 1
    reply = await api.request("DELETE", "/auth/me", json_body={"password": PASSWORD}, token=token)
    assert reply.status == 200
    for collection in ("email_verification_tokens", "email_change_tokens"):
        assert await database[collection].count_documents({}) == 0

"""Changing the password, and resetting it by mail through a real SMTP server (aiosmtpd)."""

import asyncio
import datetime as dt
import email
import logging
import re
import ssl
import subprocess
import time
from email.message import EmailMessage

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller

from server.app import VideoApp, build_services
from services.accounts.password_reset import PasswordResets, ResetTokenStore
from services.accounts.throttle import PasswordResetThrottle
from services.accounts.users import UserStore
from services.common.clock import utcnow
from services.common.errors import FeatureUnavailable
from services.common.mail import SmtpMailer, parse_smtp_url
from tests.support import HOST, PASSWORD, Api, assert_json_error, close_server, free_port, listen, wait_until
from tests.support.smtp import SMTP_USER, Inbox
from tests.support.smtp import authenticate as _authenticate

# The test SMTP server asks for a login over plain text, which aiosmtpd rightly warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

NEW_PASSWORD = "a brand new secret"





@pytest.fixture
def config_overrides(smtp_port):
    return {"smtp_url": f"smtp://{SMTP_USER}:s3cret%2Fpass@127.0.0.1:{smtp_port}",
            "mail_from": "Video App <no-reply@example.com>",
            "password_reset_url": "https://app.example.com/reset?token={token}"}


async def login_pair(api, password=PASSWORD) -> dict:
    reply = await api.post("/auth/login", {"email": "ann@example.com", "password": password})
    assert reply.status == 200, reply.body
    return reply.json


async def assert_ended(api, pair):
    assert (await api.get("/auth/me", token=pair["token"])).status == 401
    assert (await api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]})).status == 401


RESET_SUBJECT = "Reset your password"


def mails(inbox, subject=RESET_SUBJECT) -> list[email.message.Message]:
    """The messages of one kind (sign-up also sends a verification mail)."""
    return [m for m in inbox.messages if m["Subject"] == subject]


async def wait_for_mail(services, inbox, count=1, subject=RESET_SUBJECT) -> email.message.Message:
    await services.password_reset.idle()
    await services.mailboxes.idle()
    # The SMTP server hands the message over in its own thread: a moment, longer on a loaded machine.
    if await wait_until(lambda: len(mails(inbox, subject)) >= count):
        return mails(inbox, subject)[count - 1]
    raise AssertionError("no mail arrived")


def token_in(message) -> str:
    return re.search(r"https://app\.example\.com/reset\?token=([A-Za-z0-9_-]+)", message.get_content()
                     if hasattr(message, "get_content") else message.get_payload(decode=True).decode()).group(1)


# ----- password change ----------------------------------------------------------------

@pytest.mark.gen_test
async def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(api):
    await api.signup()
    this, other = await login_pair(api), await login_pair(api)
    reply = await api.post("/auth/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                           token=this["token"])
    assert reply.status == 200
    assert reply.json["message"]
    await assert_ended(api, other)
    assert (await api.get("/auth/me", token=this["token"])).status == 200
    assert (await api.post("/auth/refresh", {"refresh_token": this["refresh_token"]})).status == 200
    assert (await api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD})).status == 401
    assert await login_pair(api, NEW_PASSWORD)


@pytest.mark.gen_test
async def test_a_wrong_current_password_is_401_and_is_throttled_like_login(api):
    await api.signup()
    this = await login_pair(api)
    wrong = {"current_password": "not my password", "new_password": NEW_PASSWORD}
    for _ in range(5):
        reply = await api.post("/auth/password", wrong, token=this["token"])
        assert reply.status == 401
    locked = await api.post("/auth/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                            token=this["token"])
    assert locked.status == 429
    assert int(locked.headers["Retry-After"]) > 0
    # The same counters as login: that is locked too.
    assert (await api.post("/auth/login", {"email": "ann@example.com", "password": PASSWORD})).status == 429


@pytest.mark.parametrize("body", [
    {}, {"current_password": PASSWORD}, {"new_password": NEW_PASSWORD},
    {"current_password": {"$ne": None}, "new_password": NEW_PASSWORD},
    {"current_password": PASSWORD, "new_password": "short"},
    {"current_password": PASSWORD, "new_password": 12345678},
    {"current_password": PASSWORD, "new_password": "x" * 73},
    {"current_password": "", "new_password": NEW_PASSWORD},
])
@pytest.mark.gen_test
async def test_password_change_rejects_malformed_bodies_with_400(api, body):
    await api.signup()
    this = await login_pair(api)
    reply = await api.post("/auth/password", body, token=this["token"])
    assert_json_error(reply, 400)


@pytest.mark.gen_test
async def test_password_change_needs_a_live_token(api):
    reply = await api.post("/auth/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert reply.status == 401


# ----- password reset by mail ---------------------------------------------------------

@pytest.mark.gen_test
async def test_reset_by_mail_end_to_end(api, services, inbox, database):
    await api.signup()
    before = await login_pair(api)
    reply = await api.post("/auth/password-reset", {"email": " ANN@example.com "})
    assert reply.status == 202
    assert reply.json["message"]

    message = await wait_for_mail(services, inbox)
    assert message["To"] == "ann@example.com"
    assert message["From"] == "Video App <no-reply@example.com>"
    assert {tuple(e.rcpt_tos) for e in inbox.envelopes} == {("ann@example.com",)}
    token = token_in(message)
    # Stored only as a hash, valid 30 minutes.
    stored = await database["password_reset_tokens"].find_one({})
    assert token not in str(stored)
    assert dt.timedelta(minutes=29) < stored["expires_at"].replace(tzinfo=dt.UTC) - utcnow() \
        <= dt.timedelta(minutes=30)

    confirm = await api.post("/auth/password-reset/confirm", {"token": token, "new_password": NEW_PASSWORD})
    assert confirm.status == 200
    assert confirm.json["message"]
    await assert_ended(api, before)
    assert await login_pair(api, NEW_PASSWORD)
    again = await api.post("/auth/password-reset/confirm", {"token": token, "new_password": "yet another one"})
    assert again.status == 401
    assert await database["password_reset_tokens"].count_documents({}) == 0


@pytest.mark.gen_test
async def test_an_unknown_email_gets_the_same_answer_and_no_mail(api, services, inbox):
    await api.signup()
    known = await api.post("/auth/password-reset", {"email": "ann@example.com"})
    unknown = await api.post("/auth/password-reset", {"email": "nobody@example.com"})
    assert known.status == unknown.status == 202
    assert known.body == unknown.body
    await wait_for_mail(services, inbox)
    await asyncio.sleep(0.1)
    assert [m["To"] for m in mails(inbox)] == ["ann@example.com"]


@pytest.mark.gen_test
async def test_racing_confirmations_spend_the_token_once(api, services, inbox):
    await api.signup()
    await api.post("/auth/password-reset", {"email": "ann@example.com"})
    token = token_in(await wait_for_mail(services, inbox))
    replies = await asyncio.gather(*(
        api.post("/auth/password-reset/confirm", {"token": token, "new_password": f"new password {i}"})
        for i in range(20)))
    assert sorted(r.status for r in replies) == [200] + [401] * 19
    winner = next(i for i, r in enumerate(replies) if r.status == 200)
    assert await login_pair(api, f"new password {winner}")


@pytest.mark.gen_test
async def test_a_password_change_revokes_every_outstanding_reset_link(api, services, inbox, database):
    await api.signup()
    this = await login_pair(api)
    for _ in range(2):
        await api.post("/auth/password-reset", {"email": "ann@example.com"})
    links = [token_in(m) for m in [await wait_for_mail(services, inbox, count=i) for i in (1, 2)]]
    reply = await api.post("/auth/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                           token=this["token"])
    assert reply.status == 200
    for link in links:  # whoever read the mailbox cannot undo the change
        reply = await api.post("/auth/password-reset/confirm", {"token": link, "new_password": "attacker's choice"})
        assert reply.status == 401
    assert await database["password_reset_tokens"].count_documents({}) == 0
    assert await login_pair(api, NEW_PASSWORD)


@pytest.mark.gen_test
async def test_an_expired_reset_token_is_401(api, services, inbox, database):
    await api.signup()
    await api.post("/auth/password-reset", {"email": "ann@example.com"})
    token = token_in(await wait_for_mail(services, inbox))
    await database["password_reset_tokens"].update_many(
        {}, {"$set": {"expires_at": utcnow() - dt.timedelta(seconds=1)}})
    reply = await api.post("/auth/password-reset/confirm", {"token": token, "new_password": NEW_PASSWORD})
    assert reply.status == 401
    assert await login_pair(api)


@pytest.mark.parametrize("body", [
    {}, {"token": "abc"}, {"new_password": NEW_PASSWORD}, {"token": {"$ne": None}, "new_password": NEW_PASSWORD},
    {"token": "abc", "new_password": "short"}, {"token": "", "new_password": NEW_PASSWORD}, [],
])
@pytest.mark.gen_test
async def test_reset_confirm_rejects_malformed_bodies_with_400(api, body):
    reply = await api.post("/auth/password-reset/confirm", body)
    assert_json_error(reply, 400)


@pytest.mark.gen_test
async def test_an_invented_reset_token_is_401(api):
    reply = await api.post("/auth/password-reset/confirm", {"token": "a" * 43, "new_password": NEW_PASSWORD})
    assert_json_error(reply, 401)


@pytest.mark.parametrize("body", [{}, {"email": "not an email"}, {"email": {"$ne": None}}, {"email": 1}, []])
@pytest.mark.gen_test
async def test_reset_request_rejects_malformed_bodies_with_400(api, body):
    reply = await api.post("/auth/password-reset", body)
    assert reply.status == 400


@pytest.mark.gen_test
async def test_reset_requests_are_throttled_per_email(api, services, inbox):
    await api.signup()
    for _ in range(3):
        assert (await api.post("/auth/password-reset", {"email": "ann@example.com"})).status == 202
    reply = await api.post("/auth/password-reset", {"email": "ann@example.com"})
    assert reply.status == 429
    assert int(reply.headers["Retry-After"]) > 0
    # Unknown emails count alike (no telling which exist), and other emails are unaffected.
    assert (await api.post("/auth/password-reset", {"email": "bob@example.com"})).status == 202
    await wait_for_mail(services, inbox, count=3)


@pytest.mark.parametrize("config_overrides", [{"password_reset_max_per_address": 4}])
@pytest.mark.gen_test
async def test_reset_requests_are_throttled_per_address_even_under_concurrency(api, config_overrides):
    replies = await asyncio.gather(*(api.post("/auth/password-reset", {"email": f"u{i}@example.com"})
                                     for i in range(20)))
    assert sorted(r.status for r in replies) == [202] * 4 + [429] * 16


@pytest.mark.gen_test
async def test_a_mail_server_that_is_down_is_logged_without_the_token(api, services, caplog, smtp_port):
    # No inbox fixture here: nothing listens on the port.
    await api.signup()
    with caplog.at_level(logging.WARNING, logger="app"):
        reply = await api.post("/auth/password-reset", {"email": "ann@example.com"})
        assert reply.status == 202
        await services.password_reset.idle()
    failures = [r for r in caplog.records if r.getMessage() == "password reset mail not sent"]
    assert len(failures) == 1
    assert failures[0].error == "ConnectionRefusedError" or failures[0].error.startswith("SMTP")
    assert "app.example.com/reset" not in caplog.text


@pytest.mark.gen_test
async def test_production_without_smtp_url_answers_503(config, database, executor):
    production = config.replace(app_env="production", smtp_url="")
    server, port = listen(VideoApp(production, build_services(production, database, executor)))
    try:
        reply = await Api(f"http://{HOST}:{port}").post("/auth/password-reset", {"email": "ann@example.com"})
        assert reply.status == 503
        assert reply.json == {"error": "Password reset is not available."}
    finally:
        await close_server(server)


# ----- without HTTP -------------------------------------------------------------------

class BlockedMailer:
    """A mail server that never answers."""

    def __init__(self):
        self.started = asyncio.Event()

    async def send(self, message):
        self.started.set()
        await asyncio.Event().wait()


@pytest.mark.gen_test
async def test_the_request_never_waits_for_the_lookup_or_the_mail(database, services):
    await services.accounts.signup({"name": "Ann", "email": "ann@example.com", "password": PASSWORD})
    mailer = BlockedMailer()
    resets = PasswordResets(
        UserStore(database, None), ResetTokenStore(database, 1800), None, mailer,
        throttle=PasswordResetThrottle(database, max_per_email=100, max_per_address=100, window_seconds=60),
        mail_from="a@example.com", reset_url="x?{token}", ttl_seconds=1800)
    for address in ("ann@example.com", "nobody@example.com"):
        started = time.monotonic()
        await asyncio.wait_for(resets.request({"email": address}, "10.0.0.1"), timeout=2)
        assert time.monotonic() - started < 0.5
    await asyncio.wait_for(mailer.started.wait(), timeout=2)  # the mail was on its way meanwhile
    resets._worker.cancel()


@pytest.mark.gen_test
async def test_without_a_mailer_reset_is_unavailable(database):
    resets = PasswordResets(
        UserStore(database, None), ResetTokenStore(database, 1800), None, None,
        throttle=PasswordResetThrottle(database, max_per_email=100, max_per_address=100, window_seconds=60),
        mail_from="a@example.com", reset_url="x?{token}", ttl_seconds=1800)
    with pytest.raises(FeatureUnavailable):
        await resets.request({"email": "ann@example.com"}, None)


# ----- the SMTP client over TLS -------------------------------------------------------

@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1, and a client context that trusts only it."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
               "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - fixed arguments
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    return server_context, ssl.create_default_context(cafile=str(cert))


def _reset_message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "no-reply@example.com", "ann@example.com", "Hi"
    message.set_content("over TLS")
    return message


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
@pytest.mark.gen_test
async def test_mail_goes_over_starttls_when_offered_and_over_implicit_tls_for_smtps(certificate, scheme):
    server_context, client_context = certificate
    handler, port = Inbox(), free_port()
    if scheme == "smtp":  # plain connection, upgraded: this server refuses anything before STARTTLS
        controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_context,
                                require_starttls=True, authenticator=_authenticate, auth_required=True)
    else:  # TLS from the first byte
        controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=server_context,
                                authenticator=_authenticate, auth_required=True, auth_require_tls=False)
    controller.start()
    try:
        url = f"{scheme}://{SMTP_USER}:s3cret%2Fpass@127.0.0.1:{port}"
        await SmtpMailer(parse_smtp_url(url), 5, tls_context=client_context).send(_reset_message())
    finally:
        controller.stop()
    assert [m["To"] for m in handler.messages] == ["ann@example.com"]


@pytest.mark.gen_test
async def test_an_untrusted_certificate_is_refused(certificate):
    server_context, _ = certificate
    handler, port = Inbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=server_context)
    controller.start()
    try:
        with pytest.raises(aiosmtplib.SMTPException):
            await SmtpMailer(parse_smtp_url(f"smtps://127.0.0.1:{port}"), 5).send(_reset_message())
    finally:
        controller.stop()
    assert handler.messages == []


@pytest.mark.parametrize("url", ["http://host", "smtp://", "smtp://host:port", "mailto:a@b"])
def test_a_malformed_smtp_url_is_refused_without_repeating_it(url):
    with pytest.raises(ValueError) as raised:
        parse_smtp_url(url.replace("host", "user:topsecret@host"))
    assert "topsecret" not in str(raised.value)
    assert "topsecret" not in repr(parse_smtp_url("smtp://user:topsecret@host:25"))

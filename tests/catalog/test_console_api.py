"""The operator console over plain HTTP (the browser's view: tests/server/test_console_browser.py):
its headers, its cookie session, XSRF on every form, who gets in, and each page's actions."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import io
import re
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import jwt
import pytest
from bson import ObjectId

from handlers.console.chart import build_chart, date_label, duration_text
from services.accounts.sessions import AuthTokenCodec, Principal
from services.catalog.admin import PlayStats
from services.common.clock import utcnow
from services.common.errors import NotAuthenticated
from tests.support import PASSWORD, Api, Reply

try:  # Operators need a verified address where accounts have one (contract: Additions II).
    from server.commands import verify_email
except ImportError:  # before that: an address listed in ADMIN_EMAILS is enough
    verify_email = None

ADMIN = "boss@example.com"
LINK = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
_XSRF = re.compile(r'name="_xsrf" value="([^"]+)"')
FORMS = [
    ("/console/login", {"email": ADMIN, "password": PASSWORD}),
    ("/console/logout", {}),
    ("/console/add", {"youtube": LINK, "action": "preview"}),
    ("/console/videos/{id}", {"action": "withdraw"}),
    ("/console/videos/{id}/delete", {}),
]


@pytest.fixture
def config_overrides():
    return {"admin_emails": (ADMIN,)}


class VerifiedApi(Api):
    """Every account signed up here has its address verified, as `python -m server
    verify-email` does, so that operators get in."""

    def __init__(self, base_url: str, database):
        super().__init__(base_url)
        self.database = database

    async def signup(self, email="ann@example.com", name="Ann", password=PASSWORD) -> str:
        user_id = await super().signup(email=email, name=name, password=password)
        if verify_email is not None:
            assert await verify_email(self.database, email, io.StringIO()) == 0
        return user_id


@pytest.fixture
def api(http_server, base_url, database) -> Api:
    return VerifiedApi(base_url, database)


class Console:
    """A browser's share of HTTP: a cookie jar, and the _xsrf of the last page read."""

    def __init__(self, api, headers: dict | None = None):
        self.api = api
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []
        self.xsrf: str | None = None
        self.headers = dict(headers or {})

    async def request(self, method: str, path: str, form: dict | None = None, *, xsrf: bool = True,
                      headers: dict | None = None) -> Reply:
        sent = {**self.headers, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        body = None
        if form is not None:
            fields = dict(form)
            if xsrf:
                if self.xsrf is None:
                    await self.get("/console/login")
                fields["_xsrf"] = self.xsrf
            body = urlencode(fields)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        reply = await self.api.request(method, path, body=body, headers=sent)
        self.set_cookies = reply.headers.get_list("Set-Cookie")
        for header in self.set_cookies:
            for name, morsel in SimpleCookie(header).items():
                if morsel.value and morsel["max-age"] != "0" and "1970" not in morsel["expires"]:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        found = _XSRF.search(reply.body.decode("utf-8", "replace"))
        if found:
            self.xsrf = html.unescape(found.group(1))
        return reply

    async def get(self, path: str, **kw) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, form: dict, **kw) -> Reply:
        return await self.request("POST", path, form, **kw)

    async def sign_in(self, email: str = ADMIN, password: str = PASSWORD) -> Reply:
        await self.get("/console/login")
        return await self.post("/console/login", {"email": email, "password": password})


def text(reply: Reply) -> str:
    return html.unescape(reply.body.decode())


async def operator(api, email: str = ADMIN) -> Console:
    await api.signup(email=email)
    console = Console(api)
    reply = await console.sign_in(email)
    assert reply.status == 303 and reply.headers["Location"] == "/console", reply.body
    return console


def with_an_expired_access_token(cookie: str, config) -> str:
    """The session cookie (access token ~ refresh token) with its access token replaced by one
    the server minted for the same session, with the same secret, so long ago that it has
    expired: what a browser sends after a day away, without the test waiting for an exp in
    whole seconds (on a loaded machine the renewed token of a one-second lifetime had expired
    again before the request that renewed it was answered)."""
    token, refresh_token = cookie.split("~")
    claims = jwt.decode(token, options={"verify_signature": False})
    codec = AuthTokenCodec(config.jwt_secrets, config.jwt_ttl_seconds)
    expired = codec.issue(Principal(user_id=claims["sub"], session_id=claims["sid"]),
                          issued_at=int(time.time()) - config.jwt_ttl_seconds - 60)
    with pytest.raises(NotAuthenticated, match="expired"):
        codec.verify(expired)
    return f"{expired}~{refresh_token}"


async def add_video(console: Console, title: str = "Never Gonna", link: str = LINK) -> str:
    reply = await console.post("/console/add", {"youtube": link, "title": title, "action": "save"})
    assert reply.status == 303, text(reply)
    listing = text(await console.get("/console?" + urlencode({"q": title})))
    return re.search(r'data-id="([0-9a-f]{24})"', listing).group(1)


# ----- headers ----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_every_page_has_a_strict_content_security_policy_and_no_frames(api):
    console = await operator(api)
    video_id = await add_video(console)
    for path in ("/console", "/console/login", "/console/add", "/console/stats", f"/console/videos/{video_id}",
                 f"/console/videos/{video_id}/delete", f"/console/videos/{ObjectId()}"):
        reply = await console.get(path)
        assert reply.headers["Content-Type"] == "text/html; charset=UTF-8", path
        csp = reply.headers["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
        assert directives["default-src"] == "'none'"
        assert directives["style-src"] == "'self'"
        assert directives["img-src"] == "'self' https://i.ytimg.com"
        assert directives["form-action"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "script-src" not in directives and "unsafe" not in csp
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["Cache-Control"] == "no-store"
        assert "<script" not in reply.body.decode() and " style=" not in reply.body.decode()
        assert "Server" not in reply.headers


@pytest.mark.gen_test
async def test_the_stylesheet_is_served_here_and_nothing_else_of_the_folder(api):
    reply = await api.get("/console/static/console.css")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/css")
    for path in ("/console/static/../base.py", "/console/static/%2e%2e/base.py", "/console/static/x.css"):
        assert (await api.get(path)).status == 404, path


# ----- signing in -------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_pages_send_a_browser_without_a_session_to_the_sign_in_form(api):
    console = Console(api)
    for path in ("/console", "/console/stats", "/console/add", f"/console/videos/{ObjectId()}"):
        reply = await console.get(path)
        assert reply.status == 303 and reply.headers["Location"] == "/console/login", path
    for value in ("garbage", "a~b", "~", "x" * 5000, '{"$ne": null}'):
        console.cookies = {"console": value}
        assert (await console.get("/console")).status == 303, value


@pytest.mark.gen_test
async def test_the_session_cookie_is_httponly_strict_and_host_only(api):
    await api.signup(email=ADMIN)
    console = Console(api)
    await console.sign_in()
    [session] = [c for c in console.set_cookies if c.startswith("console=")]
    flags = {part.strip().lower() for part in session.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags and not any(flag.startswith(("domain", "expires", "max-age")) for flag in flags)
    xsrf = (await Console(api).get("/console/login")).headers.get_list("Set-Cookie")
    [xsrf_cookie] = [c for c in xsrf if c.startswith("console_xsrf=")]
    assert {"httponly", "samesite=strict", "path=/"} <= {p.strip().lower() for p in xsrf_cookie.split(";")[1:]}


@pytest.mark.parametrize("config_overrides", [{"admin_emails": (ADMIN,), "trust_proxy": True}])
@pytest.mark.gen_test
async def test_over_https_the_cookies_are_secure_with_the_host_prefix(api, config_overrides):
    await api.signup(email=ADMIN)
    console = Console(api, headers={"X-Forwarded-Proto": "https"})
    form = await console.get("/console/login")
    [xsrf] = form.headers.get_list("Set-Cookie")
    assert xsrf.startswith("__Host-console_xsrf=")
    assert {"secure", "httponly", "samesite=strict", "path=/"} <= {p.strip().lower() for p in xsrf.split(";")[1:]}
    reply = await console.post("/console/login", {"email": ADMIN, "password": PASSWORD})
    assert reply.status == 303
    names = {header.split("=", 1)[0]: header for header in console.set_cookies}
    assert "__Host-console" in names and "console" not in names
    assert "secure" in {part.strip().lower() for part in names["__Host-console"].split(";")}
    assert (await console.get("/console")).status == 200
    # Over plain http the console reads only the unprefixed name.
    plain = Console(api)
    plain.cookies = dict(console.cookies)
    assert (await plain.get("/console")).status == 303


@pytest.mark.gen_test
async def test_the_console_session_is_one_of_the_accounts_sessions(api):
    console = await operator(api)
    token = await api.login(ADMIN)
    sessions = (await api.get("/auth/sessions", token=token)).json["sessions"]
    assert len(sessions) == 2
    assert (await console.get("/console")).status == 200


@pytest.mark.parametrize("scope", ["all", "others"])
@pytest.mark.gen_test
async def test_logging_out_everywhere_ends_the_console_session(api, scope):
    console = await operator(api)
    token = await api.login(ADMIN)
    assert (await api.post("/auth/logout", {"scope": scope}, token=token)).status == 200
    reply = await console.get("/console")
    assert reply.status == 303 and reply.headers["Location"] == "/console/login"


@pytest.mark.gen_test
async def test_revoking_the_session_or_changing_the_password_ends_it(api):
    console = await operator(api)
    token = await api.login(ADMIN)
    [other] = [s for s in (await api.get("/auth/sessions", token=token)).json["sessions"] if not s["current"]]
    assert (await api.request("DELETE", f"/auth/sessions/{other['id']}", token=token)).status == 200
    assert (await console.get("/console")).status == 303

    console = Console(api)
    await console.sign_in()
    assert (await console.get("/console")).status == 200
    reply = await api.post("/auth/password", {"current_password": PASSWORD, "new_password": "another-pass"},
                           token=token)
    assert reply.status == 200
    assert (await console.get("/console")).status == 303


@pytest.mark.gen_test
async def test_the_logout_button_ends_the_session(api):
    console = await operator(api)
    kept = dict(console.cookies)
    reply = await console.post("/console/logout", {})
    assert reply.status == 303 and reply.headers["Location"] == "/console/login"
    assert "console" not in console.cookies
    console.cookies = kept  # the old cookie, replayed: its session has ended
    assert (await console.get("/console")).status == 303
    token = await api.login(ADMIN)
    assert len((await api.get("/auth/sessions", token=token)).json["sessions"]) == 1


@pytest.mark.parametrize("config_overrides", [{"admin_emails": (ADMIN,), "refresh_reuse_grace_seconds": 0}])
@pytest.mark.gen_test
async def test_an_expired_access_token_is_renewed_while_the_session_lives(api, config, config_overrides):
    console = await operator(api)
    console.cookies["console"] = before = with_an_expired_access_token(console.cookies["console"], config)
    assert (await console.get("/console")).status == 200
    assert console.cookies["console"] != before  # a new pair, rotated as /auth/refresh does
    assert (await console.get("/console")).status == 200
    renewed = console.cookies["console"]
    console.cookies["console"] = before  # the spent pair: its replay ends the session
    assert (await console.get("/console")).status == 303
    console.cookies["console"] = renewed
    assert (await console.get("/console")).status == 303


@pytest.mark.gen_test
async def test_a_wrong_password_is_the_login_sentence_and_is_throttled(api):
    await api.signup(email=ADMIN)
    console = Console(api)
    await console.get("/console/login")
    reply = await console.post("/console/login", {"email": ADMIN, "password": "wrong-password"})
    assert reply.status == 401 and "Invalid email or password" in text(reply)
    assert 'value="boss@example.com"' in reply.body.decode()
    assert "console" not in console.cookies
    reply = await console.post("/console/login", {"email": {"$ne": None}, "password": PASSWORD})
    assert reply.status == 400
    statuses = [(await console.post("/console/login", {"email": ADMIN, "password": f"wrong-{i}"})).status
                for i in range(12)]
    assert statuses[-1] == 429
    assert "Too many" in text(await console.post("/console/login", {"email": ADMIN, "password": PASSWORD}))


@pytest.mark.gen_test
async def test_a_non_admin_who_signs_in_gets_a_403_page_and_no_session(api):
    await api.signup(email="ann@example.com")
    console = Console(api)
    reply = await console.sign_in("ann@example.com")
    assert reply.status == 403
    assert "operator account" in text(reply)
    assert "console" not in console.cookies
    token = await api.login("ann@example.com")
    assert len((await api.get("/auth/sessions", token=token)).json["sessions"]) == 1  # only this one


@pytest.mark.gen_test
async def test_an_admin_taken_off_the_list_gets_403_on_the_next_page(api, app):
    console = await operator(api)
    app.services.admin._admin_emails = frozenset()
    reply = await console.get("/console")
    assert reply.status == 403 and "operator account" in text(reply)


# ----- XSRF -------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "form"), FORMS)
@pytest.mark.gen_test
async def test_a_form_posted_without_its_xsrf_token_is_403(api, database, path, form):
    console = await operator(api)
    video_id = await add_video(console)
    path = path.format(id=video_id)
    before = await database["videos"].find_one({"_id": ObjectId(video_id)})
    for fields, cookies in ((form, console.cookies), ({**form, "_xsrf": "forged"}, console.cookies),
                            ({**form, "_xsrf": console.xsrf},
                             {k: v for k, v in console.cookies.items() if k != "console_xsrf"})):
        kept = dict(console.cookies)
        console.cookies = dict(cookies)
        reply = await console.post(path, fields, xsrf=False)
        console.cookies = kept
        assert reply.status == 403, (path, fields)
        assert "did not come from the console" in text(reply)
    assert await database["videos"].find_one({"_id": ObjectId(video_id)}) == before
    assert (await console.get("/console")).status == 200  # still signed in


@pytest.mark.gen_test
async def test_the_json_api_needs_no_xsrf_token(api):
    token = await api.user(ADMIN)
    reply = await api.post("/admin/videos", {"youtube": "dQw4w9WgXcQ", "title": "Never"}, token=token)
    assert reply.status == 201


@pytest.mark.gen_test
async def test_unreadable_forms_are_4xx_pages(api):
    console = await operator(api)
    await console.get("/console/add")
    cookie = "; ".join(f"{k}={v}" for k, v in console.cookies.items())
    for body, content_type in ((b'{"youtube": 1}', "application/json"), (b"\xff\xfe=1", None),
                               (b"&".join(b"f%d=1" % i for i in range(50)), None),
                               (f"youtube=1&youtube=2&_xsrf={console.xsrf}".encode(), None)):
        reply = await api.request("POST", "/console/add", body=body, headers={
            "Cookie": cookie, "Content-Type": content_type or "application/x-www-form-urlencoded"})
        assert reply.status == 400, body
        assert reply.headers["Content-Type"].startswith("text/html")
    reply = await api.request("POST", "/console/add", body=b"x" * (2 * 1024 * 1024), headers={"Cookie": cookie})
    assert reply.status == 413


# ----- the videos page --------------------------------------------------------------------

@pytest.mark.gen_test
async def test_adding_a_video_previews_its_thumbnail_then_saves_it(api):
    console = await operator(api)
    reply = await console.post("/console/add", {"youtube": "https://youtu.be/dQw4w9WgXcQ?t=3", "action": "preview"})
    assert reply.status == 200
    assert 'src="https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg"' in reply.body.decode()
    reply = await console.post("/console/add", {"youtube": "https://youtu.be/dQw4w9WgXcQ?t=3", "title": "  ",
                                                "action": "save"})
    assert reply.status == 400
    assert re.search(r'id="title-error">title must be a non-empty text', reply.body.decode())
    reply = await console.post("/console/add", {"youtube": "https://youtu.be/dQw4w9WgXcQ?t=3", "title": "Rick",
                                                "description": "The one.", "action": "save"})
    assert reply.status == 303 and reply.headers["Location"] == "/console?done=added"
    token = await api.login(ADMIN)
    [video] = [v for v in (await api.get("/admin/videos", token=token)).json["videos"] if v["title"] == "Rick"]
    assert video["youtube_id"] == "dQw4w9WgXcQ" and video["description"] == "The one."
    assert "The video was added." in text(await console.get("/console?done=added"))


@pytest.mark.parametrize("link", ["https://vimeo.com/1", "", "x" * 3000, "javascript:alert(1)"])
@pytest.mark.gen_test
async def test_a_link_that_is_not_youtube_is_refused_beside_the_field(api, link):
    console = await operator(api)
    reply = await console.post("/console/add", {"youtube": link, "title": "T", "action": "save"})
    assert reply.status == 400
    assert 'id="youtube-error">Expected a YouTube video' in reply.body.decode()


@pytest.mark.gen_test
async def test_withdraw_restore_edit_and_delete_go_through_the_admin_service(api):
    console = await operator(api)
    video_id = await add_video(console, title="Never Gonna")
    token = await api.login(ADMIN)

    async def stored() -> dict:
        videos = (await api.get("/admin/videos", token=token)).json["videos"]
        return next(v for v in videos if v["id"] == video_id)

    reply = await console.post(f"/console/videos/{video_id}", {"action": "withdraw"})
    assert reply.status == 303 and reply.headers["Location"] == "/console?done=withdrawn"
    assert (await stored())["is_active"] is False
    assert (await api.get(f"/videos/{video_id}", token=token)).status == 404
    withdrawn = text(await console.get("/console?show=withdrawn"))
    assert video_id in withdrawn and "Withdrawn" in withdrawn
    assert video_id not in text(await console.get("/console?show=active"))
    await console.post(f"/console/videos/{video_id}", {"action": "restore"})
    assert (await stored())["is_active"] is True

    reply = await console.post(f"/console/videos/{video_id}", {"title": "x" * 201, "description": "d"})
    assert reply.status == 400 and 'id="title-error">title must be a non-empty text of at most 200' in text(reply)
    reply = await console.post(f"/console/videos/{video_id}", {"title": "New title", "description": "About it"})
    assert reply.status == 303
    assert (await stored())["title"] == "New title" and (await stored())["description"] == "About it"

    confirm = await console.get(f"/console/videos/{video_id}/delete")
    assert confirm.status == 200 and "Delete “New title”?" in text(confirm)
    assert (await stored())["title"] == "New title"  # asking deletes nothing
    reply = await console.post(f"/console/videos/{video_id}/delete", {})
    assert reply.status == 303 and reply.headers["Location"] == "/console?done=deleted"
    assert video_id not in [v["id"] for v in (await api.get("/admin/videos", token=token)).json["videos"]]
    assert (await console.post(f"/console/videos/{video_id}/delete", {})).status == 404


@pytest.mark.parametrize("video_id", ["nope", "0" * 24, "%24ne", "x" * 300])
@pytest.mark.gen_test
async def test_a_malformed_or_unknown_video_is_a_404_page(api, video_id):
    console = await operator(api)
    for method, path in (("GET", f"/console/videos/{video_id}"), ("GET", f"/console/videos/{video_id}/delete"),
                         ("POST", f"/console/videos/{video_id}"), ("POST", f"/console/videos/{video_id}/delete")):
        reply = await console.request(method, path, {"action": "withdraw"} if method == "POST" else None)
        assert reply.status == 404, (method, path)
        assert "Video not found." in text(reply)


@pytest.mark.gen_test
async def test_search_and_pages(api):
    console = await operator(api)
    for i in range(23):
        await console.post("/console/add", {"youtube": f"abcdefghi{i:02d}", "title": f"Lesson {i}", "action": "save"})
    first = text(await console.get("/console?q=lesson"))
    assert first.count('class="video"') == 20
    next_url = html.unescape(re.search(r'<a href="([^"]+)">Next page</a>', first).group(1))
    second = text(await console.get(next_url))
    assert second.count('class="video"') == 3
    assert "Lesson 9" in text(await console.get("/console?q=lesson+9"))
    reply = await console.get("/console?q=" + "w" * 201)
    assert reply.status == 400 and 'id="q-error">The search text q can be at most 200 characters' in text(reply)
    assert (await console.get("/console?cursor=forged")).status == 400
    assert (await console.get("/console?show=%7B%24ne%7D")).status == 200


# ----- the stats page ---------------------------------------------------------------------

@pytest.mark.gen_test
async def test_the_stats_page_charts_plays_per_day_with_a_table(api, app):
    console = await operator(api)
    token = await api.user("viewer@example.com")
    [item, *_] = await api.dashboard(token)
    for _ in range(3):
        assert (await api.get(f"/video/{item['id']}/play?token={item['playback_token']}")).status in (302, 200)
    await app.services.plays.flush()
    for days in ("7", "30", "90"):
        reply = await console.get(f"/console/stats?days={days}")
        assert reply.status == 200
        page = text(reply)
        assert page.count('class="mark plays"') == int(days)
        assert "Date (UTC)" in page and f"Last {days} days" in page
        assert re.search(r"<td>3</td>", page)  # today's plays, in the table
        assert item["title"] in page
    assert (await console.get("/console/stats?days=0")).status == 400
    assert (await console.get("/console/stats?days=%7B%24ne%7D")).status == 400


@pytest.mark.gen_test
async def test_the_stats_page_shows_viewers_watch_time_and_completions(api, app, monkeypatch):
    console = await operator(api)
    today = utcnow().date().isoformat()

    async def stats(days):
        return PlayStats(7, [{"id": str(ObjectId()), "title": "Zoo", "plays": 5, "viewers": 2, "per_day": [],
                              "watch_seconds": 3725, "completions": 1}],
                         [{"date": today, "plays": 5, "viewers": 2}])

    monkeypatch.setattr(app.services.admin, "stats", stats)
    page = text(await console.get("/console/stats?days=7"))
    assert page.count('class="mark plays"') == 7 and page.count('class="mark viewers"') == 7
    assert "<title>" + date_label(utcnow().date()) + ": 2 viewers</title>" in page
    assert f'<time datetime="{today}">{today}</time></th><td>5</td><td>2</td>' in page  # the per-day table
    assert re.search(r"Zoo</a></th>\s*<td>5</td>\s*<td>2</td>\s*<td>1 h 02 min</td>\s*<td>1</td>", page)


def test_the_chart_spans_every_day_with_round_ticks_and_dated_labels():
    today = dt.date(2026, 3, 2)
    chart = build_chart([{"date": "2026-03-01", "plays": 7, "viewers": 3}], 30, today)
    assert [day.date for day in chart.days][-2:] == ["2026-03-01", "2026-03-02"]
    assert len(chart.days) == 30 and chart.days[0].date == "2026-02-01"
    assert [tick.value for tick in chart.y_ticks] == [0, 2, 5, 7, 10]
    assert chart.x_labels[-1].label == "Mar 2" and len(chart.x_labels) <= 8
    tallest = max(chart.days, key=lambda day: day.bar_height)
    assert tallest.date == "2026-03-01" and tallest.point_y is not None
    assert chart.days[0].bar_height == 0 and chart.days[0].viewers == 0
    assert duration_text(59) == "59 s" and duration_text(61) == "1 min 01 s" and duration_text(7260) == "2 h 01 min"


# ----- races ------------------------------------------------------------------------------

# The access token of the cookie is one that expired long ago (no sleep past a short lifetime):
# with tokens of one second, exp being whole seconds after iat, the successor minted late in a
# second had expired before the slower racers checked it (CI, 2 cores: 14 of 24 redirected);
# with three seconds the racers still had to finish within two. Now the successor lives the
# default lifetime, however long the 24 racers take.
@pytest.mark.gen_test
async def test_pages_racing_to_renew_an_expired_cookie_all_get_in_and_keep_the_session(api, config):
    console = await operator(api)
    expired = with_an_expired_access_token(console.cookies["console"], config)
    cookie = {"Cookie": f"console={expired}"}
    replies = await asyncio.gather(*(api.get("/console/stats", headers=cookie) for _ in range(24)))
    assert [reply.status for reply in replies] == [200] * 24
    renewed = {SimpleCookie(header)["console"].value for reply in replies
               for header in reply.headers.get_list("Set-Cookie") if header.startswith("console=")}
    assert len(renewed) == 1  # within the grace, every racer got the same successor pair
    console.cookies["console"] = renewed.pop()
    assert (await console.get("/console")).status == 200


@pytest.mark.gen_test
async def test_racing_deletions_of_one_video_delete_it_once(api):
    console = await operator(api)
    video_id = await add_video(console)
    replies = await asyncio.gather(*(console.post(f"/console/videos/{video_id}/delete", {}) for _ in range(24)))
    assert sorted(reply.status for reply in replies) == [303] + [404] * 23


@pytest.mark.gen_test
async def test_racing_wrong_passwords_are_checked_no_more_than_the_throttle_allows(api):
    await api.signup(email=ADMIN)
    console = Console(api)
    await console.get("/console/login")
    replies = await asyncio.gather(*(console.post("/console/login", {"email": ADMIN, "password": f"wrong-{i}"})
                                     for i in range(30)))
    statuses = [reply.status for reply in replies]
    assert statuses.count(401) == 5 and statuses.count(429) == 25  # LOGIN_MAX_FAILURES_PER_ACCOUNT


@pytest.mark.gen_test
async def test_other_methods_are_a_405_page_naming_the_allowed_ones(api):
    for method, path, allowed in (("PUT", "/console", "GET, HEAD, OPTIONS"),
                                  ("DELETE", "/console/login", "GET, HEAD, POST, OPTIONS"),
                                  ("GET", "/console/logout", "POST, OPTIONS")):
        reply = await api.request(method, path, body=b"" if method == "PUT" else None)
        assert reply.status == 405, (method, path)
        assert reply.headers["Content-Type"] == "text/html; charset=UTF-8"
        assert set(reply.headers["Allow"].split(", ")) == set(allowed.split(", "))
        assert "This method is not allowed" in text(reply)
    assert (await api.request("HEAD", "/console/login")).status == 200


@pytest.mark.gen_test
async def test_without_trust_proxy_a_forwarded_https_is_not_believed(api):
    await api.signup(email=ADMIN)
    console = Console(api, headers={"X-Forwarded-Proto": "https"})
    assert (await console.sign_in()).status == 303
    [session] = [c for c in console.set_cookies if c.startswith("console=")]
    assert "secure" not in {part.strip().lower() for part in session.split(";")}


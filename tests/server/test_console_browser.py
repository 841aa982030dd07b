"""The operator console in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium, against the real server process, with the keyboard
where a person would type.

An operator signs in, adds a video from a pasted link (its thumbnail previewed first),
withdraws it (and the API says so), opens the stats after some plays and finds the chart's
marks, then signs out. axe-core (vendored, pinned: tests/support/axe/) finds no accessibility
violation on either page, and nothing the page loads breaks its Content-Security-Policy.
Screenshots of both pages are taken on the way and checked (a PNG of the window's width, not
blank), into a temporary directory: the README's own (handlers/console/screenshots/) are
rewritten only when asked, with ``SCREENSHOTS=refresh`` (``make screenshots``).

Without Chromium each test is skipped, saying so (as tests/server/test_browser.py).
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import PASSWORD, REPO_ROOT, TEST_SECRET, running_server
from tests.support.browser import MISSING, chromium, wait_for
from tests.support.devmail import mailed_verification_token

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"console browser test skipped: {' and '.join(MISSING)} not installed "
           "(apt-get install -y chromium chromium-driver)",
)

OPERATOR = "ops@example.com"
AXE_JS = Path(__file__).resolve().parents[1] / "support" / "axe" / "axe.min.js"
README_SCREENSHOTS = REPO_ROOT / "handlers" / "console" / "screenshots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PASTED_LINK = "https://youtu.be/jNQXAC9IVRw?si=shared-from-the-app"
WINDOW = (1280, 900)


@pytest.fixture(scope="module")
def server():
    mail_dir = tempfile.TemporaryDirectory()
    env = {"JWT_SECRET": TEST_SECRET, "BCRYPT_ROUNDS": "4", "ADMIN_EMAILS": OPERATOR, "PLAYS_FLUSH_SECONDS": "0.2",
           "MAIL_DIR": mail_dir.name}
    with running_server(env) as process:
        assert process.request("POST", "/auth/signup", json_body={
            "name": "Ops", "email": OPERATOR, "password": PASSWORD}).status == 201
        verify_address(process, Path(mail_dir.name))
        yield process
    mail_dir.cleanup()


def verify_address(server, mail_dir: Path) -> None:
    """An operator needs a verified address: follow the link of the mail sign-up sent, which
    development writes to MAIL_DIR."""
    token = mailed_verification_token(mail_dir, OPERATOR)
    assert server.request("POST", "/auth/verify-email/confirm", json_body={"token": token}).status == 200


@pytest.fixture(scope="module")
def base_url(server) -> str:
    return server.base_url


def screenshot_directory(setting: str, temporary: Path) -> Path:
    """Where the screenshots go: the README's with ``SCREENSHOTS=refresh``, else ``temporary``."""
    if setting == "refresh":
        return README_SCREENSHOTS
    if setting:
        raise pytest.UsageError(f"SCREENSHOTS={setting!r}: only 'refresh' (rewrite the README's screenshots) "
                                "is understood")
    return temporary


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return screenshot_directory(os.environ.get("SCREENSHOTS", ""), tmp_path_factory.mktemp("screenshots"))


@pytest.fixture
def browser():
    with chromium(flags=(f"--window-size={WINDOW[0]},{WINDOW[1]}",)) as driver:
        yield driver


def css(driver, selector: str):
    return driver.find_element("css selector", selector)


def axe_violations(driver) -> list[dict]:
    """axe-core's violations on the page as it is (WCAG 2.x A and AA rules, and best practices)."""
    driver.execute_script(AXE_JS.read_text(encoding="utf-8"))
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(result => done(result.violations), error => done([{id: String(error)}]));")
    return [{"id": v["id"], "nodes": [n.get("html") for n in v.get("nodes", [])]} for v in violations]


def page_problems(driver) -> list[str]:
    """What the browser reported as errors, less the thumbnails' failed loads (no network here)."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "i.ytimg.com" not in entry["message"]]


def screenshot(driver, path: Path) -> None:
    """The whole page at the laptop width (the README shows them), checked: a PNG of the
    window's width and of some height, with more in it than a blank page compresses to."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WINDOW[0], max(WINDOW[1], min(height + 140, 3000)))
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path))
    driver.set_window_size(*WINDOW)
    png = path.read_bytes()
    assert png.startswith(PNG_SIGNATURE) and png[12:16] == b"IHDR"
    width, shot_height = struct.unpack(">II", png[16:24])
    assert width == WINDOW[0] and shot_height >= WINDOW[1] // 2, (width, shot_height)
    assert len(png) > 20_000, len(png)  # a blank 1280-pixel-wide page is a few kilobytes


def test_the_readme_screenshots_are_rewritten_only_when_asked(tmp_path):
    assert screenshot_directory("", tmp_path) == tmp_path
    assert screenshot_directory("refresh", tmp_path) == README_SCREENSHOTS
    with pytest.raises(pytest.UsageError, match="refresh"):
        screenshot_directory("yes", tmp_path)


def sign_in(driver, base_url: str) -> None:
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{base_url}/console")
    assert driver.current_url == f"{base_url}/console/login"
    css(driver, "#email").send_keys(OPERATOR, Keys.TAB)
    driver.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)  # the keyboard, as a person would
    wait_for(lambda: driver.current_url == f"{base_url}/console", "the videos page after signing in")


def operator_token(server) -> str:
    reply = server.request("POST", "/auth/login", json_body={"email": OPERATOR, "password": PASSWORD})
    return reply.json["token"]


def test_an_operator_adds_a_video_from_a_pasted_link_and_withdraws_it(server, base_url, browser, screenshots):
    from selenium.webdriver.common.keys import Keys

    sign_in(browser, base_url)
    assert axe_violations(browser) == []

    # The keyboard only: to the "Add a video" link, then Enter.
    link = css(browser, "a.button")
    assert link.text == "Add a video"
    link.send_keys(Keys.ENTER)
    wait_for(lambda: browser.current_url == f"{base_url}/console/add", "the add page")
    css(browser, "#youtube").send_keys(PASTED_LINK, Keys.ENTER)
    preview = wait_for(lambda: browser.find_elements("css selector", ".preview img"), "the preview")[0]
    assert preview.get_attribute("src") == "https://i.ytimg.com/vi/jNQXAC9IVRw/hqdefault.jpg"
    assert axe_violations(browser) == []
    css(browser, "#title").send_keys("Me at the zoo")
    css(browser, "#description").send_keys("The first video on YouTube.")
    css(browser, "button[value=save]").send_keys(Keys.ENTER)
    wait_for(lambda: browser.current_url.endswith("/console?done=added"), "the list after saving")
    assert css(browser, ".notice").text == "The video was added."

    row = wait_for(lambda: [r for r in browser.find_elements("css selector", "tr.video")
                            if "Me at the zoo" in r.text], "the new video's row")[0]
    video_id = row.get_attribute("data-id")
    row.find_element("css selector", "button[value=withdraw]").send_keys(Keys.ENTER)
    wait_for(lambda: browser.current_url.endswith("/console?done=withdrawn"), "the list after withdrawing")
    row = css(browser, f'tr.video[data-id="{video_id}"]')
    assert "Withdrawn" in row.find_element("css selector", ".state").text

    # The API sees what the console did.
    token = operator_token(server)
    listed = server.request("GET", "/admin/videos?active=false", token=token).json["videos"]
    [video] = [v for v in listed if v["id"] == video_id]
    assert video["is_active"] is False and video["youtube_id"] == "jNQXAC9IVRw"
    assert video["description"] == "The first video on YouTube."
    assert server.request("GET", f"/videos/{video_id}", token=token).status == 404

    assert axe_violations(browser) == []
    assert page_problems(browser) == []
    screenshot(browser, screenshots / "videos.png")


def test_the_stats_page_charts_the_plays_and_signing_out_ends_the_session(server, base_url, browser, screenshots):
    viewer = f"viewer{time.monotonic_ns()}@example.com"
    server.request("POST", "/auth/signup", json_body={"name": "Viewer", "email": viewer, "password": PASSWORD})
    token = server.request("POST", "/auth/login", json_body={"email": viewer, "password": PASSWORD}).json["token"]
    items = server.request("GET", "/dashboard", token=f"{token}").json["videos"]
    for item in items[:2]:
        for _ in range(2):
            path = item["play_url"].split(base_url, 1)[1]
            assert server.request("GET", path).status == 302

    sign_in(browser, base_url)
    css(browser, 'nav a[href="/console/stats"]').click()
    wait_for(lambda: browser.current_url == f"{base_url}/console/stats", "the stats page")

    def plays_charted():
        browser.refresh()
        bars = browser.find_elements("css selector", "svg rect.mark.plays")
        return bars if any(float(bar.get_attribute("height")) > 0 for bar in bars) else None

    bars = wait_for(plays_charted, "today's plays in the chart")
    assert len(bars) == 30  # the default span, a bar a day
    assert len(browser.find_elements("css selector", "svg .x-label")) >= 4
    titles = [t.get_attribute("textContent") for t in browser.find_elements("css selector", "svg .axis-title")]
    assert "Date (UTC)" in titles and any(title.startswith("Plays") for title in titles)
    today = css(browser, "table.per-day tbody tr:first-child td")  # the newest day first
    assert today.text == "4"
    assert items[0]["title"] in css(browser, "table.top-videos").text
    assert axe_violations(browser) == []

    browser.find_element("link text", "Last 7 days").click()
    wait_for(lambda: len(browser.find_elements("css selector", "svg rect.mark.plays")) == 7, "the 7-day chart")
    assert axe_violations(browser) == []
    assert page_problems(browser) == []
    screenshot(browser, screenshots / "stats.png")

    css(browser, ".logout button").click()
    wait_for(lambda: browser.current_url == f"{base_url}/console/login", "the sign-in page after signing out")
    browser.get(f"{base_url}/console/stats")
    assert browser.current_url == f"{base_url}/console/login"

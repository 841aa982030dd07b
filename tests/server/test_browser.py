"""In a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``)
driven by Selenium, against the real server process.

- /docs renders every operation of /openapi.json, loading nothing from elsewhere and
  breaking none of its Content-Security-Policy;
- a webview's path: opening a dashboard item's ``play_url`` is redirected to the
  nocookie embed URL, and the request for it carries no Referer (the token is in the
  play URL).

There is no network here (and the browser is told to resolve no name but the test
server's), so the request for YouTube fails: the test reads what Chromium sent from its
performance log (DevTools Network events) instead of what came back.

`.ci/run` installs both packages. Where they are missing, each test is skipped, saying so.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest

from tests.support import PASSWORD, TEST_SECRET, running_server
from tests.support.browser import MISSING, chromium, wait_for

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"browser test skipped: {' and '.join(MISSING)} not installed (apt-get install -y chromium chromium-driver)",
)

# The browser's own pages (its new-tab page): not requests of the page under test.
BROWSER_OWN_PAGES = ("chrome://", "chrome-untrusted://")
SECRET = TEST_SECRET  # the child's JWT_SECRET


@pytest.fixture(scope="module")
def server():
    with running_server({"JWT_SECRET": SECRET, "BCRYPT_ROUNDS": "4"}) as process:
        yield process


@pytest.fixture(scope="module")
def base_url(server) -> str:
    return server.base_url


@pytest.fixture
def browser():
    with chromium(logs=("performance", "browser")) as driver:
        yield driver


def network_events(driver, method: str) -> list[dict]:
    """The DevTools events of that method in the performance log since it was last read."""
    events = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == method:
            events.append(message["params"])
    return events


# ----- /docs ------------------------------------------------------------------------------


def test_docs_renders_every_operation_of_the_document(server, base_url, browser):
    document = server.request("GET", "/openapi.json").json
    expected = sorted((method.upper(), path) for path, item in document["paths"].items()
                      for method in item if method in ("get", "post", "put", "patch", "delete"))

    network_events(browser, "Network.requestWillBeSent")  # forget the start-up's
    browser.get(f"{base_url}/docs")

    def rendered():
        found = browser.execute_script("""
            return Array.from(document.querySelectorAll('.opblock')).map(block => [
                block.querySelector('.opblock-summary-method').textContent.trim(),
                block.querySelector('.opblock-summary-path').getAttribute('data-path')]);
        """)
        return sorted(map(tuple, found)) if len(found) == len(expected) else None

    assert wait_for(rendered, "every operation on the page") == expected
    assert browser.find_element("css selector", ".info .title").text.startswith(document["info"]["title"])

    # Nothing came from anywhere but this server, and the page broke none of its CSP.
    requested = [e["request"]["url"] for e in network_events(browser, "Network.requestWillBeSent")
                 if not e["request"]["url"].startswith(BROWSER_OWN_PAGES)]
    assert requested and all(url.startswith(base_url) or url.startswith("data:") for url in requested), requested
    problems = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems


# ----- a webview opens play_url -----------------------------------------------------------


def play_url(server) -> tuple[str, str]:
    """A fresh user's first dashboard item: (its play_url, the embed URL /stream gives)."""
    email = f"viewer{time.monotonic_ns()}@example.com"
    assert server.request("POST", "/auth/signup",
                          json_body={"name": "Viewer", "email": email, "password": PASSWORD}).status == 201
    token = server.request("POST", "/auth/login", json_body={"email": email, "password": PASSWORD}).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    [item, *_] = server.request("GET", "/dashboard", headers=bearer).json["videos"]
    stream = server.request("GET", f"/video/{item['id']}/stream?token={item['playback_token']}", headers=bearer)
    assert stream.status == 200, stream.body
    return item["play_url"], stream.json["stream_url"]


def test_play_url_redirects_to_the_embed_url_without_passing_the_token_on(server, base_url, browser):
    url, embed_url = play_url(server)
    token = urlsplit(url).query.split("token=", 1)[1]
    assert urlsplit(url).netloc == urlsplit(base_url).netloc

    # From a page of this server, as a link in a webview would: that page is a referrer.
    browser.get(f"{base_url}/healthz")
    network_events(browser, "Network.requestWillBeSent")  # forget the events so far
    browser.execute_script("window.location.href = arguments[0];", url)

    def youtube_request():
        for event in network_events(browser, "Network.requestWillBeSent"):
            if event["request"]["url"].startswith("https://www.youtube-nocookie.com/"):
                return event
        return None

    event = wait_for(youtube_request, "the browser to request the embed URL")
    assert event["request"]["url"] == embed_url
    assert event["redirectResponse"]["status"] == 302
    assert event["redirectResponse"]["url"] == url
    headers = {name.lower(): value for name, value in event["request"]["headers"].items()}
    assert "referer" not in headers, headers
    assert token not in json.dumps(event["request"]), "the playback token travelled on to YouTube"

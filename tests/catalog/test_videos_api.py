"""/dashboard, /video/{id}/stream and /video/{id}/play, through HTTP."""

from urllib.parse import quote

import itsdangerous.timed
import pytest
from bson import ObjectId

from services.catalog.playback import PLAYBACK_SALT
from services.catalog.videos import embed_url
from tests.support import SEEDED, TEST_SECRET, assert_json_error, query_token

EMBED_SHAPE = "https://www.youtube-nocookie.com/embed/{}?autoplay=0&controls=1&playsinline=1&enablejsapi=1"


def no_youtube_id_field(value) -> bool:
    if isinstance(value, dict):
        return "youtube_id" not in value and all(no_youtube_id_field(v) for v in value.values())
    if isinstance(value, list):
        return all(no_youtube_id_field(v) for v in value)
    return True


# ----- dashboard ------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_dashboard_lists_the_first_two_active_videos_with_playback_links(api, base_url):
    token = await api.user()
    reply = await api.get("/dashboard", token=token)
    assert reply.status == 200
    videos = reply.json["videos"]
    assert [v["title"] for v in videos] == [
        "How to Start a Startup - Sam Altman (Y Combinator)",
        "Steve Jobs Stanford Commencement Address",
    ]
    for video in videos:
        assert set(video) == {"id", "title", "description", "thumbnail_url", "playback_token", "play_url"}
        assert video["thumbnail_url"].startswith("https://i.ytimg.com/vi/")
        assert video["play_url"].startswith(f"{base_url}/video/{video['id']}/play?token=")
        assert query_token(video["play_url"]) == video["playback_token"]
    assert no_youtube_id_field(reply.json)
    assert reply.headers["Cache-Control"] == "no-store"


@pytest.mark.gen_test
async def test_dashboard_skips_inactive_videos_and_keeps_a_stable_order(api, services, database):
    # Every seeded video but the second withdrawn, then one added: the dashboard's two.
    await database["videos"].update_many({"youtube_id": {"$ne": "UF8uR6Z6KLc"}}, {"$set": {"is_active": False}})
    await services.catalog.upsert({"youtube_id": "AAAAAAAAAAA", "title": "Third", "description": "",
                                   "thumbnail_url": "", "is_active": True})
    token = await api.user()
    first = [v["title"] for v in await api.dashboard(token)]
    assert first == ["Steve Jobs Stanford Commencement Address", "Third"]
    assert [v["title"] for v in await api.dashboard(token)] == first


@pytest.mark.parametrize("config_overrides", [{"dashboard_video_count": SEEDED + 1}])
@pytest.mark.gen_test
async def test_dashboard_count_comes_from_configuration(api, services, config_overrides):
    await services.catalog.upsert({"youtube_id": "AAAAAAAAAAA", "title": "Third", "description": "",
                                   "thumbnail_url": "", "is_active": True})
    assert len(await api.dashboard(await api.user())) == SEEDED + 1


@pytest.mark.parametrize("config_overrides", [{"public_base_url": "https://api.example.com/"}])
@pytest.mark.gen_test
async def test_play_url_uses_the_configured_public_address(api, config_overrides):
    video = (await api.dashboard(await api.user()))[0]
    assert video["play_url"].startswith(f"https://api.example.com/video/{video['id']}/play?token=")


# ----- stream ---------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_stream_returns_the_nocookie_embed_url_in_the_shape_the_app_splits(api):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    reply = await api.get(f"/video/{video['id']}/stream?token={video['playback_token']}", token=token)
    assert reply.status == 200
    body = reply.json
    assert body == {"stream_url": EMBED_SHAPE.format("CBYhVcO4WgI"), "video_id": video["id"], "title": video["title"]}
    # What the mobile app does with it:
    assert body["stream_url"].split("/embed/")[1].split("?")[0] == "CBYhVcO4WgI"


@pytest.mark.gen_test
async def test_stream_without_a_playback_token_is_400(api):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    for query in ("", "?token=", "?other=1"):
        reply = await api.get(f"/video/{video['id']}/stream{query}", token=token)
        assert reply.status == 400
        assert "token" in reply.error


@pytest.mark.gen_test
async def test_stream_needs_the_auth_token_too(api):
    video = (await api.dashboard(await api.user()))[0]
    assert (await api.get(f"/video/{video['id']}/stream?token={video['playback_token']}")).status == 401


def _resigned(token: str, secret: str) -> str:
    """The same claims as ``token``, signed again with ``secret``."""
    serializer = itsdangerous.URLSafeTimedSerializer(secret, salt=PLAYBACK_SALT)
    _, payload = serializer.loads_unsafe(token)
    return serializer.dumps(payload)


@pytest.mark.gen_test
async def test_stream_refuses_tampered_forged_and_foreign_tokens_with_401(api):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    good = video["playback_token"]
    bad_tokens = [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),      # tampered signature
        "x" + good,                                                     # tampered payload
        "garbage",
        token,                                                          # the JWT is not a playback token
        _resigned(good, secret="another-secret-that-is-also-32-bytes-long!"),
        itsdangerous.URLSafeTimedSerializer(TEST_SECRET, salt="another-salt").dumps(
            {"v": video["id"], "u": "x", "s": "y"}),                    # same key, wrong purpose
        itsdangerous.URLSafeTimedSerializer(TEST_SECRET, salt=PLAYBACK_SALT).dumps(["not", "a", "dict"]),
    ]
    for bad in bad_tokens:
        reply = await api.get(f"/video/{video['id']}/stream?token={bad}", token=token)
        assert_json_error(reply, 401, bad)


@pytest.mark.gen_test
async def test_a_playback_token_is_never_accepted_as_a_jwt(api):
    video = (await api.dashboard(await api.user()))[0]
    assert (await api.get("/dashboard", token=video["playback_token"])).status == 401


@pytest.mark.gen_test
async def test_an_expired_playback_token_is_401(api, monkeypatch):
    await api.signup()
    video_id = (await api.dashboard(await api.login()))[0]["id"]
    token = await api.login()  # a fresh session: nothing minted for it yet
    real_time = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real_time() - 3601)
    old = (await api.dashboard(token))[0]["playback_token"]
    monkeypatch.setattr(itsdangerous.timed.time, "time", real_time)
    reply = await api.get(f"/video/{video_id}/stream?token={old}", token=token)
    assert reply.status == 401
    assert "expired" in reply.error


@pytest.mark.gen_test
async def test_a_token_for_another_video_or_another_user_is_403(api):
    ann = await api.user("ann@example.com")
    bob = await api.user("bob@example.com")
    first, second = await api.dashboard(ann)
    swapped = await api.get(f"/video/{second['id']}/stream?token={first['playback_token']}", token=ann)
    assert swapped.status == 403
    assert "another video" in swapped.error
    borrowed = await api.get(f"/video/{first['id']}/stream?token={first['playback_token']}", token=bob)
    assert borrowed.status == 403
    assert "another user" in borrowed.error


@pytest.mark.gen_test
async def test_an_inactive_video_is_403_even_with_a_valid_token(api, database):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    await database["videos"].update_one({"_id": ObjectId(video["id"])}, {"$set": {"is_active": False}})
    reply = await api.get(f"/video/{video['id']}/stream?token={video['playback_token']}", token=token)
    assert reply.status == 403
    assert "not available" in reply.error


@pytest.mark.gen_test
async def test_unknown_and_malformed_video_ids_are_404(api, database):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    for bad_id in ("nope", "123", "zzzzzzzzzzzzzzzzzzzzzzzz", "%24ne", "0" * 25):
        reply = await api.get(f"/video/{bad_id}/stream?token={video['playback_token']}", token=token)
        assert reply.status == 404, bad_id
        assert reply.error == "Video not found."
    # A well-formed token for a video that has since been deleted.
    await database["videos"].delete_one({"_id": ObjectId(video["id"])})
    reply = await api.get(f"/video/{video['id']}/stream?token={video['playback_token']}", token=token)
    assert reply.status == 404


@pytest.mark.gen_test
async def test_a_playback_token_from_an_earlier_login_works_until_that_session_ends(api):
    await api.signup()
    first_login, second_login = await api.login(), await api.login()
    video = (await api.dashboard(first_login))[0]
    url = f"/video/{video['id']}/stream?token={video['playback_token']}"
    assert (await api.get(url, token=second_login)).status == 200
    await api.post("/auth/logout", token=first_login)
    reply = await api.get(url, token=second_login)
    assert reply.status == 401
    assert "logout" in reply.error


# ----- play (webviews) ------------------------------------------------------------------

@pytest.mark.gen_test
async def test_play_redirects_to_the_embed_url_without_an_auth_header(api):
    video = (await api.dashboard(await api.user()))[0]
    reply = await api.get(f"/video/{video['id']}/play?token={query_token(video['play_url'])}")
    assert reply.status == 302
    assert reply.headers["Location"] == embed_url("CBYhVcO4WgI")
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.gen_test
async def test_play_answers_json_when_asked(api):
    video = (await api.dashboard(await api.user()))[0]
    reply = await api.get(f"/video/{video['id']}/play?token={video['playback_token']}",
                          headers={"Accept": "application/json"})
    assert reply.status == 200
    assert reply.json == {"embed_url": embed_url("CBYhVcO4WgI")}
    assert reply.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.gen_test
async def test_play_errors_are_json_like_stream(api, database):
    token = await api.user()
    first, second = await api.dashboard(token)
    cases = [
        (f"/video/{first['id']}/play", 400),
        (f"/video/{first['id']}/play?token=garbage", 401),
        (f"/video/{second['id']}/play?token={first['playback_token']}", 403),
        (f"/video/not-an-id/play?token={first['playback_token']}", 404),
    ]
    for path, status in cases:
        reply = await api.get(path)
        assert_json_error(reply, status, path)
    await api.post("/auth/logout", token=token)
    assert (await api.get(f"/video/{first['id']}/play?token={first['playback_token']}")).status == 401


@pytest.mark.parametrize("config_overrides", [{"trust_proxy": True}])
@pytest.mark.gen_test
async def test_behind_a_trusted_proxy_play_url_keeps_the_https_scheme(api, config_overrides):
    token = await api.user()
    reply = await api.get("/dashboard", token=token, headers={"X-Forwarded-Proto": "https"})
    assert reply.json["videos"][0]["play_url"].startswith("https://")


@pytest.mark.gen_test
async def test_without_a_trusted_proxy_forwarded_proto_is_ignored(api):
    token = await api.user()
    reply = await api.get("/dashboard", token=token, headers={"X-Forwarded-Proto": "https"})
    assert reply.json["videos"][0]["play_url"].startswith("http://")


@pytest.mark.parametrize("route", ["stream", "play"])
@pytest.mark.gen_test
async def test_a_video_id_in_upper_case_is_the_same_video(api, route):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    reply = await api.get(f"/video/{video['id'].upper()}/{route}?token={quote(video['playback_token'])}",
                          token=token, headers={"Accept": "application/json"})
    assert reply.status == 200, reply.body
    if route == "stream":
        assert reply.json["video_id"] == video["id"]  # answered in the one canonical form


@pytest.mark.parametrize("route", ["stream", "play"])
@pytest.mark.gen_test
async def test_a_whitespace_only_playback_token_is_an_invalid_token_not_a_missing_one(api, route):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    reply = await api.get(f"/video/{video['id']}/{route}?token=%20%20", token=token)
    assert_json_error(reply, 401)

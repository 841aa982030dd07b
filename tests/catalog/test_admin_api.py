"""/admin: who may use it, adding, editing and deleting videos, and play statistics."""

import asyncio

import pytest
from bson import ObjectId
from pymongo.errors import AutoReconnect

from services.catalog.youtube import EXPECTED
from services.common.datastore import guarded
from services.common.errors import DatabaseUnavailable
from tests.support import SEEDED, assert_json_error, wait_until

ADMIN = "boss@example.com"
ADMIN_ROUTES = [
    ("GET", "/admin/videos", None),
    ("POST", "/admin/videos", {"youtube": "dQw4w9WgXcQ", "title": "Never"}),
    ("PATCH", f"/admin/videos/{ObjectId()}", {"title": "New"}),
    ("DELETE", f"/admin/videos/{ObjectId()}", None),
    ("GET", "/admin/stats", None),
    ("GET", "/admin/stats?days=7", None),
]


@pytest.fixture
def config_overrides():
    # Written with other case and spaces: the setting is normalised at start-up.
    return {"admin_emails": (" Boss@Example.com ",), "catalog_cache_seconds": 60}


async def add_video(api, token, youtube="dQw4w9WgXcQ", title="Never Gonna", **fields):
    reply = await api.post("/admin/videos", {"youtube": youtube, "title": title, **fields}, token=token)
    assert reply.status == 201, reply.body
    return reply.json["video"]


# ----- who is an admin --------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
@pytest.mark.gen_test
async def test_every_admin_route_is_401_without_a_valid_token(api, method, path, body):
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic Ym9zczpwdw=="}):
        reply = await api.request(method, path, json_body=body, headers=headers)
        assert_json_error(reply, 401, (method, path, headers))


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
@pytest.mark.gen_test
async def test_every_admin_route_is_403_for_a_user_who_is_not_an_admin(api, method, path, body, database):
    token = await api.user("ann@example.com")
    before = await database["videos"].count_documents({})
    reply = await api.request(method, path, json_body=body, token=token)
    assert reply.status == 403, (method, path)
    assert "operator" in reply.error
    assert await database["videos"].count_documents({}) == before


@pytest.mark.gen_test
async def test_an_admin_whose_email_is_listed_gets_in(api, admin_token):
    reply = await api.get("/admin/videos", token=await admin_token(api))
    assert reply.status == 200
    assert len(reply.json["videos"]) == SEEDED


@pytest.mark.parametrize("config_overrides", [{}])
@pytest.mark.gen_test
async def test_without_admin_emails_nobody_is_an_admin(api, config_overrides, admin_token):
    reply = await api.get("/admin/videos", token=await admin_token(api))
    assert reply.status == 403


@pytest.mark.parametrize("config_overrides", [{"admin_emails": ("Ops@xn--bcher-kva.de",)}])
@pytest.mark.gen_test
async def test_an_admin_listed_with_a_punycode_domain_is_the_account_that_signed_up_in_unicode(
        api, config_overrides, admin_token):
    token = await admin_token(api, "ops@b\u00fccher.de")
    assert (await api.get("/admin/videos", token=token)).status == 200


# ----- adding -----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_adding_a_video_from_a_pasted_link(api, admin_token):
    token = await admin_token(api)
    video = await add_video(api, token, youtube="https://m.youtube.com/watch?feature=share&v=dQw4w9WgXcQ&t=1",
                            title="  Never Gonna  ", description="A classic.")
    assert set(video) == {"id", "youtube_id", "title", "description", "thumbnail_url", "is_active", "created_at",
                          "updated_at", "plays"}
    assert video["youtube_id"] == "dQw4w9WgXcQ"
    assert video["title"] == "Never Gonna"
    assert video["description"] == "A classic."
    assert video["thumbnail_url"] == "https://i.ytimg.com/vi/dQw4w9WgXcQ/hqdefault.jpg"
    assert video["is_active"] is True
    assert video["plays"] == 0
    assert video["created_at"].endswith("Z")
    listed_for_admin = (await api.get("/admin/videos", token=token)).json["videos"]
    assert listed_for_admin[-1] == video  # what the answer said is what is stored
    # Users see it at once, in the user shape: no youtube_id.
    user = await api.user("ann@example.com")
    listed = (await api.get("/videos", token=user)).json["videos"]
    assert [v["id"] for v in listed][-1] == video["id"]
    assert "youtube_id" not in listed[-1]


@pytest.mark.gen_test
async def test_adding_with_a_thumbnail_and_inactive(api, admin_token):
    token = await admin_token(api)
    video = await add_video(api, token, youtube="https://youtu.be/aaaaaaaaaaa", thumbnail_url="https://cdn.example.com/t.jpg",
                            is_active=False)
    assert video["thumbnail_url"] == "https://cdn.example.com/t.jpg"
    assert video["is_active"] is False
    user = await api.user("ann@example.com")
    assert video["id"] not in [v["id"] for v in (await api.get("/videos", token=user)).json["videos"]]


@pytest.mark.parametrize(("body", "words"), [
    ({"title": "No video"}, "youtube is required"),
    ({"youtube": "dQw4w9WgXcQ"}, "title is required"),
    ({"youtube": "https://vimeo.com/123", "title": "T"}, EXPECTED),
    ({"youtube": {"$ne": None}, "title": "T"}, EXPECTED),
    ({"youtube": "dQw4w9WgXcQ", "title": "   "}, "title"),
    ({"youtube": "dQw4w9WgXcQ", "title": 5}, "title"),
    ({"youtube": "dQw4w9WgXcQ", "title": "x" * 201}, "title"),
    ({"youtube": "dQw4w9WgXcQ", "title": "T", "thumbnail_url": "http://i.ytimg.com/x.jpg"}, "https"),
    ({"youtube": "dQw4w9WgXcQ", "title": "T", "thumbnail_url": "javascript:alert(1)"}, "https"),
    ({"youtube": "dQw4w9WgXcQ", "title": "T", "thumbnail_url": "https://"}, "https"),
    ({"youtube": "dQw4w9WgXcQ", "title": "T", "is_active": "yes"}, "is_active"),
    ({"youtube": "dQw4w9WgXcQ", "title": "T", "description": ["x"]}, "description"),
    ({"youtube": "dQw4w9WgXcQ", "title": "T", "youtube_id": "x"}, "Unknown field"),
    # Lone surrogates: valid JSON escapes, but no text MongoDB can store.
    ({"youtube": "dQw4w9WgXcQ", "title": "T\ud800"}, "not valid text"),
    ({"youtube": "dQw4w9WgXcQ", "title": "T", "description": "\udc00"}, "not valid text"),
    ([], "JSON object"),
    ("dQw4w9WgXcQ", "JSON object"),
])
@pytest.mark.gen_test
async def test_adding_refuses_bad_bodies_with_400(api, body, words, database, admin_token):
    reply = await api.post("/admin/videos", body, token=await admin_token(api))
    assert reply.status == 400, body
    assert words in reply.error
    assert await database["videos"].count_documents({}) == SEEDED


@pytest.mark.gen_test
async def test_adding_a_video_already_in_the_catalog_is_409(api, admin_token):
    token = await admin_token(api)
    await add_video(api, token)
    again = await api.post("/admin/videos", {"youtube": "https://youtu.be/dQw4w9WgXcQ", "title": "Again"}, token=token)
    assert again.status == 409
    assert "already in the catalog" in again.error
    seeded = await api.post("/admin/videos", {"youtube": "CBYhVcO4WgI", "title": "Seeded"}, token=token)
    assert seeded.status == 409


@pytest.mark.gen_test(timeout=30)
async def test_racing_adds_of_the_same_video_make_exactly_one(api, database, admin_token):
    token = await admin_token(api)
    replies = await asyncio.gather(*[
        api.post("/admin/videos", {"youtube": "https://youtu.be/dQw4w9WgXcQ", "title": f"Copy {n}"}, token=token)
        for n in range(30)
    ])
    assert sorted(reply.status for reply in replies) == [201] + [409] * 29
    assert await database["videos"].count_documents({"youtube_id": "dQw4w9WgXcQ"}) == 1


# ----- listing ----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_the_admin_list_pages_through_every_video_and_filters_by_active(api, admin_token):
    token = await admin_token(api)
    added = [await add_video(api, token, youtube=f"{n:011d}", title=f"Video {n}", is_active=n % 2 == 0)
             for n in range(5)]
    seen, pages = await api.all_pages("/admin/videos", token=token, limit=2)
    assert [v["id"] for v in seen][SEEDED:] == [v["id"] for v in added]
    assert (len(seen), pages) == (SEEDED + 5, -(-(SEEDED + 5) // 2))
    inactive = (await api.get("/admin/videos?active=false", token=token)).json["videos"]
    assert [v["title"] for v in inactive] == ["Video 1", "Video 3"]
    active = (await api.get("/admin/videos?active=true&limit=50", token=token)).json["videos"]
    assert len(active) == SEEDED + 3
    for query in ("active=yes", "limit=0", "limit=51", "cursor=forged"):
        reply = await api.get(f"/admin/videos?{query}", token=token)
        assert_json_error(reply, 400, query)


@pytest.mark.gen_test
async def test_an_admin_cursor_is_bound_to_its_active_filter(api, admin_token):
    token = await admin_token(api)
    for n in range(6):
        await add_video(api, token, youtube=f"{n:011d}", title=f"Video {n}", is_active=n % 2 == 0)
    cursors = {}
    for query in ("active=true&", "active=false&", ""):
        reply = await api.get(f"/admin/videos?{query}limit=1", token=token)
        assert reply.status == 200 and reply.json["next_cursor"]
        cursors[query] = reply.json["next_cursor"]
    for made_for, cursor in cursors.items():
        for query in cursors:
            reply = await api.get(f"/admin/videos?{query}cursor={cursor}", token=token)
            if query == made_for:
                assert reply.status == 200, query
            else:
                assert reply.status == 400, (made_for, query)
                assert "another query" in reply.error
    everything, _ = await api.all_pages("/admin/videos", token=token, limit=50)
    for query, active in (("active=true", True), ("active=false", False)):
        seen, _ = await api.all_pages(f"/admin/videos?{query}", token=token, limit=1)
        assert [v["id"] for v in seen] == [v["id"] for v in everything if v["is_active"] is active]


# ----- editing and deleting ---------------------------------------------------------------

@pytest.mark.gen_test
async def test_editing_changes_only_what_is_sent(api, admin_token):
    token = await admin_token(api)
    video = await add_video(api, token)
    reply = await api.request("PATCH", f"/admin/videos/{video['id']}", json_body={"title": "Café número"}, token=token)
    assert reply.status == 200
    edited = reply.json["video"]
    assert edited["title"] == "Café número"
    assert edited["description"] == video["description"]
    assert edited["youtube_id"] == video["youtube_id"]
    assert edited["updated_at"] >= video["updated_at"]
    # The new title is searchable at once.
    user = await api.user("ann@example.com")
    found = (await api.get("/videos?q=CAFE", token=user)).json["videos"]
    assert [v["id"] for v in found] == [video["id"]]


@pytest.mark.gen_test
async def test_editing_refuses_bad_changes_and_unknown_videos(api, admin_token):
    token = await admin_token(api)
    video = await add_video(api, token)
    for body in ({}, {"youtube": "aaaaaaaaaaa"}, {"is_active": 1}, {"title": ""}, {"thumbnail_url": "http://x.y/z"},
                 {"title": {"$set": "x"}}, [], None):
        reply = await api.request("PATCH", f"/admin/videos/{video['id']}", json_body=body, token=token,
                                  body=b"" if body is None else None)
        assert_json_error(reply, 400, body)
    for bad_id in (str(ObjectId()), "nope", "0" * 25):
        reply = await api.request("PATCH", f"/admin/videos/{bad_id}", json_body={"title": "x"}, token=token)
        assert reply.status == 404, bad_id
        reply = await api.request("DELETE", f"/admin/videos/{bad_id}", token=token)
        assert reply.status == 404, bad_id


@pytest.mark.gen_test
async def test_deactivating_hides_a_video_everywhere_at_once_and_refuses_its_links(api, admin_token):
    token = await admin_token(api)
    user = await api.user("ann@example.com")
    dashboard = await api.dashboard(user)  # fills this process's dashboard cache (60 s here)
    first = dashboard[0]
    progress = await api.request("PUT", f"/video/{first['id']}/progress",
                                 json_body={"position_seconds": 5, "duration_seconds": 100}, token=user)
    assert progress.status == 200

    reply = await api.request("PATCH", f"/admin/videos/{first['id']}", json_body={"is_active": False}, token=token)
    assert reply.status == 200 and reply.json["video"]["is_active"] is False

    assert first["id"] not in [v["id"] for v in await api.dashboard(user)]
    assert first["id"] not in [v["id"] for v in (await api.get("/videos", token=user)).json["videos"]]
    assert (await api.get(f"/videos/{first['id']}", token=user)).status == 404
    assert (await api.get("/me/history", token=user)).json["history"] == []
    stream = await api.get(f"/video/{first['id']}/stream?token={first['playback_token']}", token=user)
    assert stream.status == 403
    play = await api.get(f"/video/{first['id']}/play?token={first['playback_token']}")
    assert play.status == 403

    # And back.
    await api.request("PATCH", f"/admin/videos/{first['id']}", json_body={"is_active": True}, token=token)
    assert (await api.dashboard(user))[0]["id"] == first["id"]
    assert len((await api.get("/me/history", token=user)).json["history"]) == 1


@pytest.mark.gen_test
async def test_deleting_removes_a_video_everywhere_and_its_links_are_404(api, database, admin_token):
    token = await admin_token(api)
    user = await api.user("ann@example.com")
    first = (await api.dashboard(user))[0]
    await api.request("PUT", f"/video/{first['id']}/progress",
                      json_body={"position_seconds": 5, "duration_seconds": 100}, token=user)
    reply = await api.request("DELETE", f"/admin/videos/{first['id']}", token=token)
    assert reply.status == 200
    assert reply.json["message"]
    assert first["id"] not in [v["id"] for v in await api.dashboard(user)]
    assert (await api.get("/admin/videos", token=token)).json["videos"][0]["id"] != first["id"]
    assert (await api.get(f"/video/{first['id']}/stream?token={first['playback_token']}", token=user)).status == 404
    assert (await api.get(f"/video/{first['id']}/play?token={first['playback_token']}")).status == 404
    assert (await api.get("/me/history", token=user)).json["history"] == []
    assert (await api.request("DELETE", f"/admin/videos/{first['id']}", token=token)).status == 404
    # The same YouTube video can be added again afterwards.
    assert (await api.post("/admin/videos", {"youtube": "CBYhVcO4WgI", "title": "Back"}, token=token)).status == 201


# ----- plays and stats --------------------------------------------------------------------

async def watch(api, user_token, video, times=1):
    for _ in range(times):
        reply = await api.get(f"/video/{video['id']}/stream?token={video['playback_token']}", token=user_token)
        assert reply.status == 200


@pytest.mark.gen_test
async def test_a_head_on_a_playback_link_answers_as_get_but_is_not_a_play(api, services):
    ann = await api.user("ann@example.com")
    video = (await api.dashboard(ann))[0]
    stream = await api.request("HEAD", f"/video/{video['id']}/stream?token={video['playback_token']}", token=ann)
    play = await api.request("HEAD", f"/video/{video['id']}/play?token={video['playback_token']}")
    assert (stream.status, play.status) == (200, 302)  # link previewers check links this way
    assert play.headers["Location"].startswith("https://www.youtube-nocookie.com/embed/")
    assert services.plays.pending == 0
    await watch(api, ann, video)
    assert services.plays.pending == 1


@pytest.mark.gen_test
async def test_streams_and_plays_are_counted_per_video_and_viewer(api, services, admin_token):
    token = await admin_token(api)
    ann, bob = await api.user("ann@example.com"), await api.user("bob@example.com")
    (first, second), (bobs_first, _) = await api.dashboard(ann), await api.dashboard(bob)
    await watch(api, ann, first, times=3)
    await watch(api, bob, bobs_first)
    await watch(api, ann, second)
    assert (await api.get(f"/video/{second['id']}/play?token={second['playback_token']}")).status == 302
    # Refused answers count nothing.
    await api.get(f"/video/{second['id']}/stream?token={first['playback_token']}", token=ann)
    await api.get(f"/video/{first['id']}/stream?token={first['playback_token']}", token=bob)
    assert services.plays.pending == 6
    await services.plays.flush()

    stats = await api.get("/admin/stats?days=1", token=token)
    assert stats.status == 200
    body = stats.json
    assert body["days"] == 1
    assert [(v["id"], v["plays"], v["viewers"]) for v in body["videos"]] == [
        (first["id"], 4, 2), (second["id"], 2, 1)]
    assert body["videos"][0]["title"] == first["title"]
    assert [day["plays"] for day in body["videos"][0]["per_day"]] == [4]
    assert len(body["videos"][0]["per_day"][0]["date"]) == 10
    listed = {v["id"]: v["plays"] for v in (await api.get("/admin/videos", token=token)).json["videos"]}
    assert listed == {first["id"]: 4, second["id"]: 2} | {i: 0 for i in listed if i not in (first["id"], second["id"])}


# The hours around midnight are where a rolling window and whole days part ways: this
# test once failed only when CI happened to run before noon UTC.
@pytest.mark.parametrize("clock", ["00:00:00.000001", "00:30:00", "12:00:00", "23:59:59.999"])
@pytest.mark.gen_test
async def test_stats_over_many_plays_group_by_day_and_leave_out_old_ones(api, services, database, monkeypatch,
                                                                          clock, admin_token):
    import datetime as dt
    import random

    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    now = dt.datetime.combine(today.date(), dt.time.fromisoformat(clock), dt.UTC)
    monkeypatch.setattr("services.catalog.plays.utcnow", lambda: now)
    token = await admin_token(api)
    videos = await database["videos"].find().sort("created_at", 1).to_list(length=10)
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    plays, expected = [], {}
    for _ in range(3000):
        video = rng.choice(videos)["_id"]
        user = f"user-{rng.randrange(40)}"
        days_ago = rng.randrange(12)
        # Anywhere in that UTC day, never after now; whole milliseconds, as MongoDB stores them.
        elapsed = now - today if days_ago == 0 else dt.timedelta(days=1)
        at = today - dt.timedelta(days=days_ago) + dt.timedelta(
            milliseconds=rng.randrange(max(1, elapsed // dt.timedelta(milliseconds=1))))
        plays.append({"video_id": video, "user_id": user, "at": at})
        if days_ago < 7:
            entry = expected.setdefault(str(video), {"plays": 0, "viewers": set(), "per_day": {}})
            entry["plays"] += 1
            day = at.strftime("%Y-%m-%d")
            entry["viewers"].add((user, day))  # the sum of each day's distinct viewers
            entry["per_day"][day] = entry["per_day"].get(day, 0) + 1
    # The edges of the window: the first instant of its first day counts, the last
    # millisecond before it does not.
    first_day = today - dt.timedelta(days=6)
    plays.append({"video_id": videos[0]["_id"], "user_id": "edge", "at": first_day})
    plays.append({"video_id": videos[0]["_id"], "user_id": "edge",
                  "at": first_day - dt.timedelta(milliseconds=1)})
    entry = expected[str(videos[0]["_id"])]
    entry["plays"] += 1
    day = first_day.strftime("%Y-%m-%d")
    entry["viewers"].add(("edge", day))
    entry["per_day"][day] = entry["per_day"].get(day, 0) + 1
    # Stored as plays were before the rollups: the carry-over adds them.
    await database["plays"].insert_many(plays)
    assert await services.plays.carry_over() == len(plays)

    reply = await api.get("/admin/stats?days=7", token=token)
    assert reply.status == 200
    got = reply.json["videos"]
    assert [v["plays"] for v in got] == sorted((e["plays"] for e in expected.values()), reverse=True)
    for video in got:
        want = expected[video["id"]]
        assert video["plays"] == want["plays"]
        assert video["viewers"] == len(want["viewers"])
        assert video["per_day"] == [{"date": d, "plays": n} for d, n in sorted(want["per_day"].items())]
        assert len(video["per_day"]) <= 7


@pytest.mark.parametrize("days", ["0", "366", "-1", "abc", "1.5", "", "30d"])
@pytest.mark.gen_test
async def test_stats_days_out_of_range_is_400(api, days, admin_token):
    reply = await api.get(f"/admin/stats?days={days}", token=await admin_token(api))
    assert reply.status == 400
    assert "days" in reply.error


@pytest.mark.gen_test
async def test_stats_default_to_30_days(api, admin_token):
    reply = await api.get("/admin/stats", token=await admin_token(api))
    assert reply.json["videos"] == []
    assert len(reply.json["per_day"]) == 30
    assert {(day["plays"], day["viewers"]) for day in reply.json["per_day"]} == {(0, 0)}


class FailingPlays:
    """A plays collection during a database outage, seen through the data layer's guard
    as every store sees its collections."""

    def __init__(self):
        self.attempts = 0

    async def insert_many(self, *args, **kwargs):
        self.attempts += 1
        raise AutoReconnect("connection refused")


@pytest.mark.gen_test
async def test_counting_during_a_database_outage_still_answers_and_loses_one_batch(api, services, caplog, admin_token):
    user = await api.user("ann@example.com")
    video = (await api.dashboard(user))[0]
    real = services.plays._plays
    failing = FailingPlays()
    services.plays._plays = guarded({"plays": failing})["plays"]
    try:
        await watch(api, user, video, times=5)  # every answer is a 200
        await services.plays.flush()
    finally:
        services.plays._plays = real
    assert failing.attempts == 1
    assert services.plays.lost == 5
    assert "could not write plays" in caplog.text
    await watch(api, user, video, times=2)
    await services.plays.flush()
    token = await admin_token(api)
    stats = (await api.get("/admin/stats?days=1", token=token)).json["videos"]
    assert [(v["id"], v["plays"]) for v in stats] == [(video["id"], 2)]


@pytest.mark.gen_test
async def test_during_an_outage_each_flush_tries_one_batch_and_keeps_the_rest(api, services, monkeypatch, admin_token):
    monkeypatch.setattr("services.catalog.plays.BATCH_SIZE", 2)
    user = await api.user("ann@example.com")
    video = (await api.dashboard(user))[0]
    await watch(api, user, video, times=5)
    failing = FailingPlays()
    real, services.plays._plays = services.plays._plays, guarded({"plays": failing})["plays"]
    try:
        await services.plays.flush()
        assert (failing.attempts, services.plays.lost, services.plays.pending) == (1, 2, 3)
    finally:
        services.plays._plays = real
    await services.plays.flush()
    assert services.plays.pending == 0
    stats = (await api.get("/admin/stats?days=1", token=await admin_token(api))).json["videos"]
    assert [v["plays"] for v in stats] == [3]


@pytest.mark.gen_test
async def test_stopping_during_an_outage_gives_up_the_plays_and_does_not_raise(api, services):
    user = await api.user("ann@example.com")
    await watch(api, user, (await api.dashboard(user))[0], times=3)
    failing = FailingPlays()
    services.plays._plays = guarded({"plays": failing})["plays"]
    services.plays.start()
    await services.plays.stop(timeout_seconds=5)  # shutdown goes on to close the client
    assert (failing.attempts, services.plays.lost) == (1, 3)


@pytest.mark.gen_test
async def test_plays_stored_while_the_counters_fail_are_not_lost(api, services, caplog, admin_token):
    user = await api.user("ann@example.com")
    video = (await api.dashboard(user))[0]
    await watch(api, user, video, times=3)

    async def counters_down(counts):
        raise DatabaseUnavailable()

    services.catalog.add_plays = counters_down
    await services.plays.flush()
    assert services.plays.lost == 0
    assert "could not add a batch of plays" in caplog.text
    stats = (await api.get("/admin/stats?days=1", token=await admin_token(api))).json["videos"]
    assert [(v["id"], v["plays"]) for v in stats] == [(video["id"], 3)]


@pytest.mark.parametrize("config_overrides", [{"plays_buffer_size": 3}])
@pytest.mark.gen_test
async def test_a_full_buffer_drops_plays_and_counts_them(api, services, config_overrides):
    user = await api.user("ann@example.com")
    video = (await api.dashboard(user))[0]
    await watch(api, user, video, times=5)
    assert services.plays.pending == 3
    assert services.plays.dropped == 2


@pytest.mark.parametrize("config_overrides", [{"plays_flush_seconds": 0.05}])
@pytest.mark.gen_test
async def test_the_background_flush_writes_plays_and_stop_writes_the_rest(api, services, database, config_overrides):
    user = await api.user("ann@example.com")
    video = (await api.dashboard(user))[0]
    services.plays.start()
    try:
        await watch(api, user, video, times=2)
        async def both_written() -> bool:  # every plays_flush_seconds, however loaded the machine
            return await database["plays"].count_documents({}) == 2

        await wait_until(both_written)
        assert await database["plays"].count_documents({}) == 2
    finally:
        await watch(api, user, video)
        await services.plays.stop()
    assert await database["plays"].count_documents({}) == 3
    assert (await database["videos"].find_one({"_id": ObjectId(video["id"])}))["plays"] == 3


@pytest.mark.gen_test
async def test_deleting_a_users_plays_keeps_the_counts_but_not_the_person(api, services, database, admin_token):
    ann, bob = await api.user("ann@example.com"), await api.user("bob@example.com")
    ann_id = (await api.get("/auth/me", token=ann)).json["user"]["id"]
    video = (await api.dashboard(ann))[0]
    await watch(api, ann, video, times=2)
    await services.plays.flush()
    await watch(api, ann, video)  # still buffered when the account goes
    await watch(api, bob, (await api.dashboard(bob))[0])
    await services.plays.delete_user_data(ann_id)
    await services.plays.flush()
    assert await database["plays"].count_documents({"user_id": ann_id}) == 0
    assert await database["plays"].count_documents({}) == 4
    stats = (await api.get("/admin/stats?days=1", token=await admin_token(api))).json["videos"]
    assert [(v["plays"], v["viewers"]) for v in stats] == [(4, 2)]

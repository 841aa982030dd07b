"""The catalog for users: /videos, /videos/{id}, /video/{id}/progress and /me/history."""

import asyncio
import datetime as dt
from urllib.parse import quote

import pytest
from bson import ObjectId

from services.catalog.cursors import CursorCodec
from tests.support import SEEDED, TEST_SECRET, assert_json_error, query_token

ITEM_FIELDS = {"id", "title", "description", "thumbnail_url", "playback_token", "play_url"}


async def add_videos(services, count, prefix="Video", active=True, start=0):
    for n in range(start, start + count):
        await services.catalog.upsert({"youtube_id": f"{prefix[:3]}{n:08d}", "title": f"{prefix} {n}",
                                       "description": "", "thumbnail_url": "", "is_active": active})


# ----- /videos ----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_videos_lists_active_videos_in_dashboard_order_as_dashboard_items(api, services, base_url):
    await add_videos(services, 3)
    await add_videos(services, 2, prefix="Hidden", active=False)
    token = await api.user()
    reply = await api.get("/videos", token=token)
    assert reply.status == 200
    assert set(reply.json) == {"videos", "next_cursor"}
    assert reply.json["next_cursor"] is None
    videos = reply.json["videos"]
    dashboard = await api.dashboard(token)
    assert videos[:len(dashboard)] == dashboard  # the same items, the same order
    assert [v["title"] for v in videos[SEEDED:]] == ["Video 0", "Video 1", "Video 2"]
    for video in videos:
        assert set(video) == ITEM_FIELDS
        assert video["play_url"].startswith(f"{base_url}/video/{video['id']}/play?token=")
        play = await api.get(f"/video/{video['id']}/play?token={query_token(video['play_url'])}")
        assert play.status == 302


@pytest.mark.gen_test
async def test_videos_pages_with_cursors_until_the_end(api, services):
    await add_videos(services, 9)
    token = await api.user()
    seen, pages = await api.all_pages("/videos", token=token, limit=4)
    assert pages == -(-(SEEDED + 9) // 4)
    everything = (await api.get("/videos?limit=50", token=token)).json["videos"]
    assert [v["id"] for v in seen] == [v["id"] for v in everything]
    assert len(everything) == SEEDED + 9
    default = (await api.get("/videos", token=token)).json
    assert len(default["videos"]) == SEEDED + 9 and default["next_cursor"] is None


@pytest.mark.gen_test
async def test_a_full_last_page_says_there_is_no_next(api, services):
    await add_videos(services, 2)
    token = await api.user()
    reply = await api.get(f"/videos?limit={SEEDED + 2}", token=token)
    assert len(reply.json["videos"]) == SEEDED + 2
    assert reply.json["next_cursor"] is None


@pytest.mark.gen_test(timeout=60)
async def test_paging_while_videos_are_added_repeats_and_skips_nothing(api, services):
    await add_videos(services, 18)
    token = await api.user()
    existing = [v["id"] for v in (await api.get("/videos?limit=50", token=token)).json["videos"]]
    seen, cursor, added = [], None, 0
    while True:
        # Each page is asked for while two more videos are being added, concurrently.
        url = "/videos?limit=3" + (f"&cursor={cursor}" if cursor else "")
        adding = 2 if added < 20 else 0
        reply, _ = await asyncio.gather(api.get(url, token=token),
                                        add_videos(services, adding, prefix="Late", start=added))
        added += adding
        seen += reply.json["videos"]
        cursor = reply.json["next_cursor"]
        if cursor is None:
            break
    ids = [v["id"] for v in seen]
    assert len(ids) == len(set(ids)), "an item came twice"
    assert ids[:len(existing)] == existing, "an item that existed at the start was skipped"
    assert len(ids) == len(existing) + added  # those there at the start and the 20 added while paging
    # Whatever was added meanwhile comes after them, in the order it was added.
    everything = [v["id"] for v in (await api.get("/videos?limit=50", token=token)).json["videos"]]
    assert ids == everything[:len(ids)]


@pytest.mark.parametrize("query", [
    "limit=0", "limit=51", "limit=-1", "limit=abc", "limit=", "limit=2.5", "limit=%241",
    "cursor=", "cursor=garbage", "cursor=%7B%22%24gt%22%3A1%7D", "q=" + "a" * 201,
])
@pytest.mark.gen_test
async def test_bad_parameters_are_400(api, query):
    reply = await api.get(f"/videos?{query}", token=await api.user())
    assert_json_error(reply, 400, query)


@pytest.mark.gen_test
async def test_tampered_foreign_and_swapped_cursors_are_400(api, services):
    await add_videos(services, 5)
    token = await api.user()
    cursor = (await api.get("/videos?limit=2", token=token)).json["next_cursor"]
    assert cursor
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    other_key = CursorCodec(("another-secret-that-is-long-enough-for-a-test-42",)).encode(
        "videos", dt.datetime.now(dt.UTC), ObjectId())
    history_kind = CursorCodec((TEST_SECRET,)).encode("history", dt.datetime.now(dt.UTC), ObjectId())
    for bad in (tampered, "x" + cursor, other_key, history_kind, cursor * 10):
        reply = await api.get(f"/videos?cursor={bad}", token=token)
        assert reply.status == 400, bad
        assert "cursor" in reply.error
    # The admin list's cursors are its own too.
    assert (await api.get(f"/me/history?cursor={cursor}", token=token)).status == 400


@pytest.mark.gen_test
async def test_a_cursor_is_bound_to_its_query(api, services):
    """AIP-158: a cursor presented with another query is a 400, not a page of that query
    starting at a position that means nothing there (which silently skipped results)."""
    await add_videos(services, 4, prefix="Zebra")
    await add_videos(services, 3, prefix="Quokka")
    token = await api.user()

    async def cursor_of(query: str) -> str:
        reply = await api.get(f"/videos?{query}limit=1", token=token)
        assert reply.status == 200 and reply.json["next_cursor"], reply.body
        return reply.json["next_cursor"]

    zebra, unfiltered = await cursor_of("q=zebra&"), await cursor_of("")
    for query, cursor in [("q=steve&", zebra), ("", zebra), ("q=zebra+quokka&", zebra), ("q=zebra&", unfiltered),
                          ("q=quokka&", unfiltered)]:
        reply = await api.get(f"/videos?{query}cursor={cursor}", token=token)
        assert reply.status == 400, query
        assert "another query" in reply.error
    # The same query, normalised (case, accents, spaces; a blank q is no q), pages on.
    for query, cursor in [("q=ZEBRA+&", zebra), ("q=+&", unfiltered), ("q=&", unfiltered)]:
        assert (await api.get(f"/videos?{query}cursor={cursor}", token=token)).status == 200, query
    # And one query still pages through everything it finds, each once.
    for q, prefix, count in [("zebra", "Zebra", 4), ("quokka", "Quokka", 3)]:
        seen, pages = await api.all_pages(f"/videos?q={q}", token=token, limit=1)
        assert sorted(v["title"] for v in seen) == [f"{prefix} {n}" for n in range(count)]
        assert pages == count
    seen, _ = await api.all_pages("/videos", token=token, limit=3)
    assert [v["id"] for v in seen] == [v["id"] for v in (await api.get("/videos?limit=50", token=token)).json["videos"]]


@pytest.mark.gen_test
async def test_videos_needs_a_login(api):
    assert (await api.get("/videos")).status == 401
    assert (await api.get(f"/videos/{ObjectId()}")).status == 401


# ----- search -----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_search_matches_title_words_ignoring_case_and_accents(api, services):
    for youtube_id, title in [("aaaaaaaaaa1", "Café número uno"), ("aaaaaaaaaa2", "Numero two: CAFE society"),
                              ("aaaaaaaaaa3", "Cafeteria numbers"), ("aaaaaaaaaa4", "Café inactive número")]:
        await services.catalog.upsert({"youtube_id": youtube_id, "title": title, "description": "",
                                       "thumbnail_url": "", "is_active": youtube_id != "aaaaaaaaaa4"})
    token = await api.user()

    async def search(q):
        reply = await api.get("/videos", token=token) if q is None else await api.get(f"/videos?q={q}", token=token)
        assert reply.status == 200, reply.body
        return [v["title"] for v in reply.json["videos"]]

    assert await search("cafe%20numero") == ["Café número uno", "Numero two: CAFE society"]
    assert await search("CAF%C3%89") == ["Café número uno", "Numero two: CAFE society"]
    assert await search("n%C3%BAmero,+uno!") == ["Café número uno"]
    assert await search("steve") == ["Steve Jobs Stanford Commencement Address"]
    assert await search("caf") == []  # whole words, not prefixes
    assert await search("cafe%20jobs") == []
    assert len(await search("%20%20")) == SEEDED + 3  # no words: no filter
    # Text that would mean something to a regex or a query is just words (or none).
    everything = await search(None)
    assert len(everything) == SEEDED + 3
    for hostile, titles in [(".*", everything), ("%5E", everything), ("%24ne", []), ("%5Cd", []),
                            ("%7B%22%24gt%22%3A%22%22%7D", []),
                            ("(a%2B)%2B%24", ["How to Start a Startup - Sam Altman (Y Combinator)"])]:
        assert await search(hostile) == titles, hostile


@pytest.mark.gen_test
async def test_search_takes_as_many_words_as_200_characters_hold(api):
    token = await api.user()
    hundred_words = " ".join(chr(0x4E00 + n) for n in range(100))  # 199 characters
    reply = await api.get(f"/videos?q={quote(hundred_words)}", token=token)
    assert reply.status == 200, reply.body
    assert reply.json["videos"] == []
    reply = await api.get(f"/videos?q={quote(hundred_words + ' xy')}", token=token)
    assert reply.status == 400
    assert "200 characters" in reply.error


@pytest.mark.gen_test
async def test_search_pages_like_the_full_list(api, services):
    await add_videos(services, 7, prefix="Lesson")
    await add_videos(services, 3, prefix="Other")
    token = await api.user()
    seen, pages = await api.all_pages("/videos?q=lesson", token=token, limit=3)
    assert [v["title"] for v in seen] == [f"Lesson {n}" for n in range(7)]
    assert pages == 3


@pytest.mark.gen_test
async def test_existing_videos_get_their_title_words_on_start(services, database):
    await database["videos"].insert_one({"youtube_id": "bbbbbbbbbbb", "title": "Ünïcode Títle", "is_active": True,
                                         "created_at": dt.datetime.now(dt.UTC)})
    await services.catalog.ensure_indexes()
    stored = await database["videos"].find_one({"youtube_id": "bbbbbbbbbbb"})
    assert stored["title_words"] == ["unicode", "title"]


# ----- /videos/{id} -----------------------------------------------------------------------

@pytest.mark.gen_test
async def test_one_video_is_a_dashboard_item(api, database):
    token = await api.user()
    first = (await api.dashboard(token))[0]
    reply = await api.get(f"/videos/{first['id']}", token=token)
    assert reply.status == 200
    assert reply.json == {"video": first}
    await database["videos"].update_one({"_id": ObjectId(first["id"])}, {"$set": {"is_active": False}})
    for video_id in (first["id"], str(ObjectId()), "nope", "0" * 25, "%24ne"):
        reply = await api.get(f"/videos/{video_id}", token=token)
        assert reply.status == 404, video_id
        assert reply.error == "Video not found."


# ----- progress ---------------------------------------------------------------------------

async def put_progress(api, token, video_id, position, duration=100):
    return await api.request("PUT", f"/video/{video_id}/progress",
                             json_body={"position_seconds": position, "duration_seconds": duration}, token=token)


@pytest.mark.gen_test
async def test_saving_progress_answers_what_was_stored(api):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    reply = await put_progress(api, token, video["id"], 30.5, 600)
    assert reply.status == 200
    body = reply.json
    assert set(body) == {"position_seconds", "duration_seconds", "completed", "updated_at"}
    assert (body["position_seconds"], body["duration_seconds"], body["completed"]) == (30.5, 600, False)
    assert body["updated_at"].endswith("Z")
    assert (await put_progress(api, token, video["id"], 94.9)).json["completed"] is False
    assert (await put_progress(api, token, video["id"], 95)).json["completed"] is True
    assert (await put_progress(api, token, video["id"], 100)).json["completed"] is True
    assert (await put_progress(api, token, video["id"], 0)).json["completed"] is False


@pytest.mark.parametrize("body", [
    {"position_seconds": -1, "duration_seconds": 100},
    {"position_seconds": 101, "duration_seconds": 100},
    {"position_seconds": 0, "duration_seconds": 0},
    {"position_seconds": 1, "duration_seconds": -5},
    {"position_seconds": "10", "duration_seconds": 100},
    {"position_seconds": True, "duration_seconds": 100},
    {"position_seconds": 1, "duration_seconds": False},
    {"position_seconds": None, "duration_seconds": 100},
    {"position_seconds": {"$gt": 0}, "duration_seconds": 100},
    {"position_seconds": [1], "duration_seconds": 100},
    {"position_seconds": 10 ** 400, "duration_seconds": 10 ** 401},
    {"duration_seconds": 100},
    {"position_seconds": 1},
    [],
    "ten",
])
@pytest.mark.gen_test
async def test_bad_progress_is_400(api, body, database):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    reply = await api.request("PUT", f"/video/{video['id']}/progress", json_body=body, token=token)
    assert_json_error(reply, 400, body)
    assert await database["watch_history"].count_documents({}) == 0


@pytest.mark.parametrize("raw", [b'{"position_seconds": NaN, "duration_seconds": 100}',
                                 b'{"position_seconds": 1, "duration_seconds": Infinity}',
                                 b'{"position_seconds": -Infinity, "duration_seconds": 1}',
                                 b"", b"{", b"null"])
@pytest.mark.gen_test
async def test_not_a_number_and_broken_json_are_400(api, raw):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    reply = await api.request("PUT", f"/video/{video['id']}/progress", body=raw, token=token,
                              headers={"Content-Type": "application/json"})
    assert reply.status == 400, raw


@pytest.mark.gen_test
async def test_progress_of_unknown_or_inactive_videos(api, database):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    for video_id in (str(ObjectId()), "nope"):
        assert (await put_progress(api, token, video_id, 1)).status == 404
    unknown = await put_progress(api, token, str(ObjectId()), 1)
    await database["videos"].update_one({"_id": ObjectId(video["id"])}, {"$set": {"is_active": False}})
    # An inactive video is answered as an unknown one, word for word, as GET /videos/{id} does:
    # nothing confirms that the id exists. A bad body changes nothing.
    for position in (1, "junk"):
        reply = await put_progress(api, token, video["id"], position)
        assert reply.status == 404 and reply.error == unknown.error
    assert (await api.get(f"/videos/{video['id']}", token=token)).status == 404
    assert (await api.request("PUT", f"/video/{video['id']}/progress", json_body={})).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_racing_saves_keep_one_entry_per_user_and_video(api, database):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    replies = await asyncio.gather(*[put_progress(api, token, video["id"], n) for n in range(30)])
    assert all(reply.status == 200 for reply in replies)
    assert await database["watch_history"].count_documents({}) == 1


# ----- history ----------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_history_is_most_recent_first_with_fresh_tokens_and_no_withdrawn_videos(api, services, database):
    await add_videos(services, 6)
    ann, bob = await api.user("ann@example.com"), await api.user("bob@example.com")
    videos = (await api.get("/videos", token=ann)).json["videos"][SEEDED:]  # the six added
    # The history is ordered by the stored millisecond (then the entry's _id): two saves in one
    # millisecond tie, which the faster server makes happen, so each save waits for the next.
    for video in videos:  # oldest first: the last one saved is the most recent
        assert (await put_progress(api, ann, video["id"], 10)).status == 200
        await asyncio.sleep(0.005)
    await put_progress(api, ann, videos[0]["id"], 99)  # watched again: first in the history
    await put_progress(api, bob, videos[1]["id"], 1)
    await database["videos"].update_one({"_id": ObjectId(videos[2]["id"])}, {"$set": {"is_active": False}})
    await database["videos"].delete_one({"_id": ObjectId(videos[3]["id"])})

    history, pages = await api.all_pages("/me/history", token=ann, key="history", limit=2)
    expected = [videos[0], videos[5], videos[4], videos[1]]
    assert [entry["video"]["id"] for entry in history] == [v["id"] for v in expected]
    assert pages == 2
    first = history[0]
    assert set(first) == {"video", "position_seconds", "duration_seconds", "completed", "updated_at"}
    assert (first["position_seconds"], first["completed"]) == (99, True)
    assert set(first["video"]) == ITEM_FIELDS
    for entry in history:  # each token plays
        video = entry["video"]
        stream = await api.get(f"/video/{video['id']}/stream?token={video['playback_token']}", token=ann)
        assert stream.status == 200
    bobs = (await api.get("/me/history", token=bob)).json
    assert [entry["video"]["id"] for entry in bobs["history"]] == [videos[1]["id"]]
    assert bobs["next_cursor"] is None


@pytest.mark.gen_test
async def test_history_pages_past_many_withdrawn_videos(api, services, database):
    await add_videos(services, 30)
    token = await api.user()
    videos = (await api.get("/videos?limit=50", token=token)).json["videos"]
    for video in videos:
        await put_progress(api, token, video["id"], 1)
    # Everything but the two oldest saves withdrawn: a page has to read past 30 entries.
    await database["videos"].update_many({"_id": {"$nin": [ObjectId(v["id"]) for v in videos[:2]]}},
                                         {"$set": {"is_active": False}})
    history, _ = await api.all_pages("/me/history", token=token, key="history", limit=1)
    assert [entry["video"]["id"] for entry in history] == [videos[1]["id"], videos[0]["id"]]


@pytest.mark.gen_test
async def test_history_refuses_bad_parameters_and_needs_a_login(api):
    token = await api.user()
    for query in ("limit=0", "limit=99", "cursor=abc"):
        assert (await api.get(f"/me/history?{query}", token=token)).status == 400, query
    assert (await api.get("/me/history")).status == 401
    assert (await api.get("/me/history", token=token)).json == {"history": [], "next_cursor": None}


@pytest.mark.gen_test
async def test_deleting_a_users_history(api, services, database):
    ann, bob = await api.user("ann@example.com"), await api.user("bob@example.com")
    ann_id = (await api.get("/auth/me", token=ann)).json["user"]["id"]
    video = (await api.dashboard(ann))[0]
    await put_progress(api, ann, video["id"], 5)
    await put_progress(api, bob, video["id"], 5)
    await services.watch_history.delete_user_data(ann_id)
    assert (await api.get("/me/history", token=ann)).json["history"] == []
    assert len((await api.get("/me/history", token=bob)).json["history"]) == 1


@pytest.mark.gen_test
async def test_a_progress_body_over_the_limit_is_413(api):
    token = await api.user()
    video = (await api.dashboard(token))[0]
    reply = await api.request("PUT", f"/video/{video['id']}/progress", token=token,
                              json_body={"position_seconds": 1, "duration_seconds": 2, "pad": "x" * 70_000})
    assert_json_error(reply, 413)

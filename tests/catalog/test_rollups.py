"""The per-day rollups (services/catalog/rollups.py): equal to a recount from the raw plays
and the progress reports, counted once however a flush or the carry-over is retried, raw
plays expiring, and the fields /admin/stats gains."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.errors import AutoReconnect

from server.database import close, connect
from services.catalog.progress import COMPLETED_FRACTION
from services.catalog.rollups import day_of
from services.common.datastore import guarded
from tests.catalog.test_admin_api import watch
from tests.support import PASSWORD, prepared_services


@pytest.fixture
def config_overrides():
    return {"admin_emails": ("boss@example.com",)}

# Two minutes before a UTC midnight: sequences of up to a few minutes cross it.
BASE = dt.datetime(2026, 3, 1, 23, 58, tzinfo=dt.UTC)
USERS = ("ann", "bob", "cem")
DURATION = 120.0


class Clock:
    """The one 'now' of the plays buffer, the progress write and the rollups."""

    def __init__(self, monkeypatch, start: dt.datetime):
        self.now = start
        for target in ("services.catalog.plays.utcnow", "services.catalog.rollups.utcnow"):
            monkeypatch.setattr(target, lambda: self.now)
        monkeypatch.setattr("services.catalog.progress.stored_now", lambda: self.now)


def recount(plays: list[dict]) -> tuple[dict, dict]:
    """Per (video, day): plays and distinct viewers; per day: the same for the catalog."""
    videos: dict = collections.defaultdict(lambda: [0, set()])
    days: dict = collections.defaultdict(lambda: [0, set()])
    for play in plays:
        day = day_of(play["at"])
        for entry in (videos[str(play["video_id"]), day], days[day]):
            entry[0] += 1
            entry[1].add(play["user_id"])
    return ({key: (n, len(who)) for key, (n, who) in videos.items()},
            {key: (n, len(who)) for key, (n, who) in days.items()})


async def rolled_up(database) -> tuple[dict, dict, dict]:
    videos = {(str(row["video_id"]), row["day"]): row async for row in database["video_days"].find()}
    counted = {key: (row.get("plays", 0), row.get("viewers", 0)) for key, row in videos.items()
               if row.get("plays", 0)}
    catalog = {row["_id"]: (row["plays"], row["viewers"]) async for row in database["catalog_days"].find()}
    watching = {key: (round(row.get("watch_seconds", 0), 6), row.get("completions", 0))
                for key, row in videos.items() if row.get("watch_seconds", 0) or row.get("completions", 0)}
    return counted, catalog, watching


def expected_watching(reports: list[tuple]) -> dict:
    """The documented rule, written again from its words: per report, the forward move since
    the viewer's previous report of that video, at most the wall time between the two and
    the video's length; the first report adds nothing; a completion is the first report at
    or past 95 % of the video."""
    last: dict = {}
    completed: set = set()
    totals: dict = collections.defaultdict(lambda: [0.0, 0])
    for video, user, position, at in reports:
        key = (video, day_of(at))
        if (user, video) in last:
            previous_position, previous_at = last[user, video]
            seconds = min(position - previous_position, (at - previous_at).total_seconds(), DURATION)
            if seconds > 0:
                totals[key][0] += seconds
        last[user, video] = (position, at)
        if position >= COMPLETED_FRACTION * DURATION and (user, video) not in completed:
            completed.add((user, video))
            totals[key][1] += 1
    return {key: (round(seconds, 6), n) for key, (seconds, n) in totals.items() if seconds or n}


EVENTS = st.lists(st.one_of(
    st.tuples(st.just("play"), st.integers(0, 1), st.sampled_from(USERS)),
    st.tuples(st.just("progress"), st.integers(0, 1), st.sampled_from(USERS),
              st.integers(0, int(DURATION))),
    st.tuples(st.just("wait"), st.integers(1, 90)),
    st.tuples(st.just("flush"), st.booleans()),  # True: the flush is retried
), max_size=60)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=EVENTS, start=st.integers(-300, 200))
def test_rollups_equal_a_recount_of_the_plays_and_the_progress_reports(config, monkeypatch, events, start):
    asyncio.run(_replay(config.replace(mongodb_database=f"video_app_test_{uuid.uuid4().hex[:12]}"),
                        monkeypatch, events, BASE + dt.timedelta(seconds=start)))


async def _replay(config, monkeypatch, events, start) -> None:
    client, _ = connect(config)
    database = client[config.mongodb_database]
    clock = Clock(monkeypatch, start)
    try:
        with ThreadPoolExecutor(max_workers=1) as executor:
            services = await prepared_services(config, database, executor)
            videos = [video["_id"] for video in await database["videos"].find().sort("_id", 1).to_list(length=2)]
            reports = []
            for event in events:
                if event[0] == "play":
                    services.plays.record(videos[event[1]], event[2])
                elif event[0] == "progress":
                    _, video, user, position = event
                    await services.watch_history.save(user, videos[video], float(position), DURATION)
                    reports.append((str(videos[video]), user, float(position), clock.now))
                elif event[0] == "wait":
                    clock.now += dt.timedelta(seconds=event[1])
                else:
                    retried = list(services.plays._buffer)
                    await services.plays.flush()
                    if event[1] and retried:  # the same batch again, as a retry after a lost answer
                        batch = await database["plays"].find({"_id": retried[0]["_id"]}).to_list(length=1)
                        same = await database["plays"].find({"batch": batch[0]["batch"]}).to_list(length=None)
                        await services.plays._roll_up(batch[0]["batch"], same)
            await services.plays.flush()
            plays, catalog, watching = await rolled_up(database)
            assert (plays, catalog) == recount(await database["plays"].find().to_list(length=None))
            assert watching == expected_watching(reports)
    finally:
        if not config.uses_embedded_store:
            await client.drop_database(database.name)
        await close(client)


# ----- retries ------------------------------------------------------------------------------

class FailingOnce:
    """A collection whose next bulk write fails, as in an outage, after reaching the database."""

    def __init__(self, real):
        self.real = real
        self.failures = 1

    async def bulk_write(self, operations, **kwargs):
        result = await self.real.bulk_write(operations, **kwargs)
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("the answer was lost")
        return result

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.mark.gen_test
async def test_a_flush_whose_rollups_fail_is_added_again_and_counts_once(api, services, database, admin_token):
    ann, bob = await api.user("ann@example.com"), await api.user("bob@example.com")
    video = (await api.dashboard(ann))[0]
    await watch(api, ann, video, times=3)
    await watch(api, bob, (await api.dashboard(bob))[0])
    rollups = services.plays._rollups
    real = rollups._catalog_days
    # The video's figures are written, the catalog's write reaches the database but its
    # answer is lost: the whole batch is added again at the next flush.
    rollups._catalog_days = guarded({"catalog_days": FailingOnce(real)})["catalog_days"]
    await services.plays.flush()
    assert services.plays.lost == 0
    assert len(services.plays._unrolled) == 1
    await services.plays.flush()
    assert not services.plays._unrolled
    rollups._catalog_days = real
    stats = (await api.get("/admin/stats?days=1", token=await admin_token(api))).json
    assert [(v["id"], v["plays"], v["viewers"]) for v in stats["videos"]] == [(video["id"], 4, 2)]
    assert (stats["per_day"][-1]["plays"], stats["per_day"][-1]["viewers"]) == (4, 2)
    assert await database["plays"].count_documents({}) == 4


@pytest.mark.gen_test
async def test_the_same_batch_added_twice_counts_once(services, database):
    video = (await database["videos"].find_one())["_id"]
    at = dt.datetime.now(dt.UTC)
    batch = [{"video_id": video, "user_id": user, "at": at} for user in ("ann", "ann", "bob")]
    rollups = services.plays._rollups
    await rollups.add_plays("batch-1", batch)
    await rollups.add_plays("batch-1", batch)
    await asyncio.gather(*(rollups.add_plays("batch-1", batch) for _ in range(20)))
    row = await database["video_days"].find_one({"video_id": video})
    assert (row["plays"], row["viewers"]) == (3, 2)
    await rollups.add_plays("batch-2", batch)  # another batch: the same viewers, not new that day
    row = await database["video_days"].find_one({"video_id": video})
    assert (row["plays"], row["viewers"]) == (6, 2)
    assert (await database["catalog_days"].find_one({"_id": day_of(at)}))["viewers"] == 2


# ----- progress: watch seconds and completions -----------------------------------------------

@pytest.mark.gen_test
async def test_watch_seconds_and_completions_reach_the_stats(api, services, monkeypatch, admin_token):
    clock = Clock(monkeypatch, dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0))
    ann = await api.user("ann@example.com")
    video = (await api.dashboard(ann))[0]
    await watch(api, ann, video)
    await services.plays.flush()

    async def report(position: float) -> None:
        reply = await api.request("PUT", f"/video/{video['id']}/progress", token=ann,
                                  json_body={"position_seconds": position, "duration_seconds": 100})
        assert reply.status == 200

    await report(0)  # the starting point: nothing watched yet
    clock.now += dt.timedelta(seconds=30)
    await report(30)  # 30 s
    clock.now += dt.timedelta(seconds=10)
    await report(90)  # a seek: only the 10 s of wall time count
    clock.now += dt.timedelta(seconds=10)
    await asyncio.gather(*(report(96) for _ in range(30)))  # racing reports: 6 s, one completion
    clock.now += dt.timedelta(seconds=300)
    await report(10)  # back to the start: nothing
    clock.now += dt.timedelta(seconds=90)
    await report(99)  # past 95 % again: no second completion; 89 s
    await services.plays.flush()  # watching is buffered (rollups.py) and added by the plays flush
    stats = (await api.get("/admin/stats?days=1", token=await admin_token(api))).json
    [entry] = stats["videos"]
    assert (entry["plays"], entry["watch_seconds"], entry["completions"]) == (1, 30 + 10 + 6 + 89, 1)


# ----- retention and carry-over ---------------------------------------------------------------

@pytest.mark.parametrize("config_overrides", [{"plays_retention_days": 30}])
@pytest.mark.gen_test
async def test_raw_plays_expire_after_the_retention_and_an_old_index_is_replaced(
        config, services, database, executor, config_overrides):
    indexes = await database["plays"].index_information()
    assert indexes["at"]["expireAfterSeconds"] == 30 * 86400
    assert "expireAfterSeconds" not in (await database["video_days"].index_information())["day"]
    # Started again with the default: the index changes to it.
    restarted = await prepared_services(config.replace(plays_retention_days=400), database, executor)
    assert restarted
    assert (await database["plays"].index_information())["at"]["expireAfterSeconds"] == 400 * 86400


@pytest.mark.gen_test
async def test_an_index_from_before_the_retention_is_replaced(config, database, executor):
    await database["plays"].create_index("at", name="at")
    await prepared_services(config, database, executor)
    assert (await database["plays"].index_information())["at"]["expireAfterSeconds"] == 400 * 86400


def old_plays(videos: list, count: int) -> list[dict]:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
    return [{"video_id": videos[i % len(videos)], "user_id": f"user-{i % 7}",
             "at": start + dt.timedelta(minutes=37 * i)} for i in range(count)]


@pytest.mark.gen_test
async def test_carry_over_adds_stored_plays_once_and_resumes_where_it_stopped(api, services, database):
    videos = [v["_id"] for v in await database["videos"].find().to_list(length=2)]
    plays = old_plays(videos, 230)
    await database["plays"].insert_many(plays)  # stored before the rollups existed
    user = await api.user("ann@example.com")
    video = (await api.dashboard(user))[0]
    await watch(api, user, video, times=2)
    await services.plays.flush()  # already rolled up: carry-over leaves these alone

    rollups = services.plays._rollups
    real, calls = rollups.add_plays, []

    async def failing_third(batch_id, batch):
        calls.append(batch_id)
        if len(calls) == 3:
            raise AutoReconnect("gone")
        await real(batch_id, batch)

    rollups.add_plays = failing_third
    with pytest.raises(AutoReconnect):
        await services.plays.carry_over(batch_size=50)
    rollups.add_plays = real
    assert await services.plays.carry_over(batch_size=50) == 230 - 100  # resumed at the third batch
    assert await services.plays.carry_over(batch_size=50) == 0  # done: a no-op
    stored = await database["plays"].find().to_list(length=None)
    assert (await rolled_up(database))[:2] == recount(stored)

    # Even run again from the start (its progress lost), nothing is counted twice.
    await database["migrations"].delete_many({})
    assert await services.plays.carry_over(batch_size=50) == 230
    assert (await rolled_up(database))[:2] == recount(stored)


@pytest.mark.gen_test
async def test_workers_starting_together_carry_over_once(services, database):
    """Every worker of a deployment runs the carry-over at start-up: one holds the lease and
    does it all, the others leave it; a lease run out (its process gone) is taken over."""
    videos = [v["_id"] for v in await database["videos"].find().to_list(length=2)]
    await database["plays"].insert_many(old_plays(videos, 180))
    counts = await asyncio.gather(*(services.plays.carry_over(batch_size=20) for _ in range(12)))
    assert sorted(counts) == [0] * 11 + [180]
    stored = await database["plays"].find().to_list(length=None)
    assert (await rolled_up(database))[:2] == recount(stored)
    assert await services.plays.carry_over() == 0  # done

    await database["migrations"].replace_one({"_id": "plays_carry_over"}, {
        "_id": "plays_carry_over", "owner": "gone", "lease_until": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)})
    assert await services.plays.carry_over() == 0  # someone else's lease: left alone
    await database["migrations"].update_one({"_id": "plays_carry_over"}, {"$set": {
        "lease_until": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)}})
    assert await services.plays.carry_over(batch_size=20) == 180  # taken over, from the start here
    assert (await rolled_up(database))[:2] == recount(stored)  # and still counted once


@pytest.mark.gen_test
async def test_stats_answer_the_new_fields(api, services, admin_token, monkeypatch):
    # Noon of today, held: plays counted at 23:59:59 and stats asked at 00:00:00 fall on two days.
    clock = Clock(monkeypatch, dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0))
    ann = await api.user("ann@example.com")
    video = (await api.dashboard(ann))[0]
    await watch(api, ann, video, times=2)
    await services.plays.flush()
    stats = (await api.get("/admin/stats?days=7", token=await admin_token(api))).json
    assert set(stats) == {"days", "videos", "per_day"}
    [entry] = stats["videos"]
    assert set(entry) == {"id", "title", "plays", "viewers", "watch_seconds", "completions", "per_day"}
    assert (entry["watch_seconds"], entry["completions"]) == (0, 0)
    today = day_of(clock.now)
    assert [day["date"] for day in stats["per_day"]] == [
        day_of(clock.now - dt.timedelta(days=back)) for back in range(6, -1, -1)]
    assert stats["per_day"][-1] == {"date": today, "plays": 2, "viewers": 1}
    assert all((day["plays"], day["viewers"]) == (0, 0) for day in stats["per_day"][:-1])


# ----- watching: buffered, added by the plays flush -------------------------------------------

async def watched(database, video_id) -> tuple[float, int]:
    row = await database["video_days"].find_one({"video_id": video_id}) or {}
    return round(row.get("watch_seconds", 0), 6), row.get("completions", 0)


async def reports(services, clock, user: str, video_id, positions) -> None:
    for position in positions:
        await services.watch_history.save(user, video_id, float(position), DURATION)
        clock.now += dt.timedelta(seconds=30)


@pytest.mark.gen_test
async def test_watching_is_buffered_and_added_exactly_by_the_next_flush(services, database, monkeypatch):
    clock = Clock(monkeypatch, dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0))
    video = (await database["videos"].find_one())["_id"]
    await reports(services, clock, "ann", video, [0, 30, 60, 115])  # 30 + 30 + 30 s, one completion
    # The history entry is written at once (the client reads its position back)...
    assert (await database["watch_history"].find_one({"user_id": "ann"}))["position_seconds"] == 115
    # ... the watching waits for the flush, which adds it exactly.
    assert await watched(database, video) == (0, 0)
    assert services.plays._rollups.watching_pending == 1
    await services.plays.flush()
    assert await watched(database, video) == (90, 1)
    await services.plays.flush()  # nothing new: nothing added
    await reports(services, clock, "bob", video, [0, 20])
    await services.plays.stop()  # shutdown writes what is buffered
    assert await watched(database, video) == (110, 1)
    assert services.plays._rollups.watching_pending == 0


@pytest.mark.gen_test
async def test_a_watching_batch_whose_write_failed_is_written_again_and_counts_once(services, database, monkeypatch):
    clock = Clock(monkeypatch, dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0))
    videos = [v["_id"] for v in await database["videos"].find().sort("_id", 1).to_list(length=2)]
    await reports(services, clock, "ann", videos[0], [0, 10])
    await reports(services, clock, "ann", videos[1], [0, 20])
    rollups = services.plays._rollups
    real = rollups._video_days
    # The write reaches the database but its answer is lost: the batch is kept.
    rollups._video_days = guarded({"video_days": FailingOnce(real)})["video_days"]
    await services.plays.flush()
    assert rollups.watching_pending == 2
    await reports(services, clock, "ann", videos[0], [40])  # reported meanwhile: the next batch
    await services.plays.flush()  # the same batch again, then the new one
    rollups._video_days = real
    assert rollups.watching_pending == 0
    assert [await watched(database, v) for v in videos] == [(10 + 30, 0), (20, 0)]
    await services.plays.flush()
    assert [await watched(database, v) for v in videos] == [(10 + 30, 0), (20, 0)]


@pytest.mark.gen_test
async def test_watching_an_outage_keeps_is_written_once_it_ends(services, database, monkeypatch):
    clock = Clock(monkeypatch, dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0))
    video = (await database["videos"].find_one())["_id"]
    await reports(services, clock, "ann", video, [0, 10])
    rollups = services.plays._rollups

    async def down(*args, **kwargs):
        raise AutoReconnect("gone")

    monkeypatch.setattr(rollups, "_video_days", guarded({"video_days": type("Down", (), {"bulk_write": down})()})[
        "video_days"])
    await services.plays.flush()  # refused before reaching the database: logged, kept
    await services.plays.flush()
    monkeypatch.undo()
    Clock(monkeypatch, clock.now)
    await services.plays.flush()
    assert await watched(database, video) == (10, 0)


@pytest.mark.gen_test
async def test_watching_is_bounded_and_what_does_not_fit_is_counted(services, database, monkeypatch):
    clock = Clock(monkeypatch, dt.datetime.now(dt.UTC).replace(hour=12, minute=0, second=0, microsecond=0))
    monkeypatch.setattr("services.catalog.rollups.WATCHING_KEPT", 1)
    videos = [v["_id"] for v in await database["videos"].find().sort("_id", 1).to_list(length=2)]
    await reports(services, clock, "ann", videos[0], [0, 10])
    await reports(services, clock, "ann", videos[1], [0, 10])  # a second video-day: no room
    await reports(services, clock, "ann", videos[0], [40])  # the same video-day: summed
    rollups = services.plays._rollups
    assert (rollups.watching_pending, rollups.watching_dropped) == (1, 1)
    await services.plays.flush()
    assert [await watched(database, v) for v in videos] == [(40, 0), (0, 0)]


@pytest.mark.gen_test
async def test_an_account_deleted_with_watching_buffered_stays_deleted(api, services, database):
    ann = await api.user("ann@example.com")
    user_id = (await database["users"].find_one({"email": "ann@example.com"}))["_id"]
    video = (await api.dashboard(ann))[0]
    for position in (0, 3):
        reply = await api.request("PUT", f"/video/{video['id']}/progress", token=ann,
                                  json_body={"position_seconds": position, "duration_seconds": 3})
        assert reply.status == 200  # the second: a completion, buffered
    assert services.plays._rollups.watching_pending == 1
    reply = await api.request("DELETE", "/auth/me", json_body={"password": PASSWORD}, token=ann)
    assert reply.status in (200, 204)
    await services.plays.flush()
    # The sums name no viewer: the flush adds them to the video's day as the rollups keep
    # every deleted account's plays, and writes nothing of the account's back.
    assert await database["watch_history"].count_documents({"user_id": str(user_id)}) == 0
    assert await database["watch_history"].count_documents({}) == 0
    row = await database["video_days"].find_one({"video_id": ObjectId(video["id"])})
    assert row["completions"] == 1 and not any(str(user_id) in str(value) for value in row.values())

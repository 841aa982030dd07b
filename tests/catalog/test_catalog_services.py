"""The catalog's building blocks on their own: YouTube ids, title words, cursors, progress bodies."""

import datetime as dt

import pytest
from bson import ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st

from services.catalog.cursors import MAX_CURSOR_CHARS, CursorCodec, parse_limit
from services.catalog.progress import PROGRESS, validated_progress
from services.catalog.videos import title_words
from services.catalog.youtube import EXPECTED, parse_youtube_id
from services.common import validation
from services.common.errors import InvalidInput

ID = "dQw4w9WgXcQ"

PASTED_FORMS = [
    ID,
    f"  {ID}\n",
    f"https://www.youtube.com/watch?v={ID}",
    f"http://www.youtube.com/watch?v={ID}",
    f"https://youtube.com/watch?v={ID}",
    f"www.youtube.com/watch?v={ID}",
    f"youtube.com/watch?v={ID}",
    f"https://www.youtube.com/watch?v={ID}&t=42s",
    f"https://www.youtube.com/watch?feature=share&v={ID}&list=PL123&index=2",
    f"https://www.youtube.com/watch/?v={ID}",
    f"https://www.youtube.com/watch?v={ID}#comments",
    f"https://m.youtube.com/watch?v={ID}",
    f"https://music.youtube.com/watch?v={ID}&si=abc",
    f"HTTPS://WWW.YOUTUBE.COM/watch?v={ID}",
    f"https://youtu.be/{ID}",
    f"https://youtu.be/{ID}?si=Xyz123&t=10",
    f"youtu.be/{ID}",
    f"https://youtu.be/{ID}/",
    f"https://www.youtube.com/shorts/{ID}",
    f"https://youtube.com/shorts/{ID}?feature=share",
    f"https://m.youtube.com/shorts/{ID}/",
    f"https://www.youtube.com/embed/{ID}",
    f"https://www.youtube.com/embed/{ID}?autoplay=1",
    f"https://www.youtube-nocookie.com/embed/{ID}?autoplay=0&controls=1",
    f"https://youtube-nocookie.com/embed/{ID}",
    f"https://www.youtube.com/live/{ID}",
    f"https://www.youtube.com/v/{ID}",
]

NOT_VIDEOS = [
    "", "   ", "dQw4w9WgXc", "dQw4w9WgXcQQ", "dQw4w9WgX!Q", None, 42, ["dQw4w9WgXcQ"], {"$ne": None},
    f"https://vimeo.com/watch?v={ID}",
    f"https://www.youtube.com.evil.example/watch?v={ID}",
    f"https://evil.example/?u=https://youtu.be/{ID}",
    f"ftp://www.youtube.com/watch?v={ID}",
    f"javascript://www.youtube.com/watch?v={ID}",
    "https://www.youtube.com/watch?v=short",
    "https://www.youtube.com/watch",
    f"https://www.youtube.com/watch?v={ID}&v=aaaaaaaaaaa",
    "https://www.youtube.com/channel/UCabcdefghijk",
    f"https://www.youtube.com/playlist?list={ID}",
    "https://youtu.be/",
    f"https://youtu.be/{ID}/extra",
    f"https://www.youtube-nocookie.com/shorts/{ID}",
    f"https://www.youtube.com/embed/{ID}/more",
    "https://[::1/watch?v=x",
    "https://www.youtube.com:99999/watch?v=" + ID,
    "https://www.youtube.com:8080/watch?v=" + ID,
    f"https://evil.example@www.youtube.com/watch?v={ID}",
    "x" * 5000,
]


@pytest.mark.parametrize("pasted", PASTED_FORMS)
def test_every_common_youtube_form_gives_the_id(pasted):
    assert parse_youtube_id(pasted) == ID


@pytest.mark.parametrize("pasted", NOT_VIDEOS, ids=repr)
def test_anything_else_says_what_was_expected(pasted):
    with pytest.raises(InvalidInput) as raised:
        parse_youtube_id(pasted)
    assert raised.value.message == EXPECTED


def test_ids_keep_their_case_and_may_use_dash_and_underscore():
    assert parse_youtube_id("https://youtu.be/a-B_c-D_e-F") == "a-B_c-D_e-F"


@pytest.mark.parametrize(("title", "words"), [
    ("Café número 5!", ["cafe", "numero", "5"]),
    ("How to Start a Startup - Sam Altman (Y Combinator)",
     ["how", "to", "start", "a", "startup", "sam", "altman", "y", "combinator"]),
    ("STRASSE straße", ["strasse"]),
    ("\uff26\uff55\uff4c\uff4c width", ["full", "width"]),  # full-width letters
    ("Ångström & Øre", ["angstrom", "øre"]),
    ("$ne .* ^(a+)+$", ["ne", "a"]),
    ("", []),
])
def test_title_words_fold_case_and_accents(title, words):
    assert title_words(title) == words


def test_a_cursor_round_trips_and_refuses_tampering_and_other_lists():
    codec = CursorCodec(("a-secret-that-is-long-enough-for-this-test-0123",))
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    oid = ObjectId()
    cursor = codec.encode("videos", moment, oid)
    assert codec.decode("videos", cursor) == (moment, oid)
    assert codec.decode("videos", None) is None
    # A changed character inside the payload (the last one of a base64 run may carry unused bits).
    tampered = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    for bad in ("", "x", tampered, "A" + cursor, cursor * 20):
        with pytest.raises(InvalidInput):
            codec.decode("videos", bad)
    with pytest.raises(InvalidInput):
        codec.decode("history", cursor)
    other = CursorCodec(("another-secret-that-is-long-enough-for-tests-987",))
    with pytest.raises(InvalidInput):
        other.decode("videos", cursor)
    rotated = CursorCodec(("the-newer-secret-that-is-long-enough-for-tests-42",
                           "a-secret-that-is-long-enough-for-this-test-0123"))
    assert rotated.decode("videos", cursor) == (moment, oid)


@pytest.mark.parametrize(("text", "limit"), [(None, 20), ("1", 1), ("50", 50), ("07", 7)])
def test_limits_in_range(text, limit):
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["0", "51", "-1", "", "abc", "1.5", "\u00b2", "\u0661", " 5", "99999999999999999999"])
def test_limits_out_of_range_are_refused(text):
    with pytest.raises(InvalidInput):
        parse_limit(text)


def test_admin_emails_are_read_from_the_environment_normalised():
    from server.config import load_config

    config = load_config(env={"ADMIN_EMAILS": " Boss@Example.com, ops@example.org ,,BOSS@example.com"},
                         jwt_secrets=("x" * 40,))
    assert config.admin_emails == ("boss@example.com", "ops@example.org")
    assert load_config(env={}, jwt_secrets=("x" * 40,)).admin_emails == ()


# ----- progress bodies: the quick path and schema's agree --------------------------------

def _progress_by_schema(body):
    """What PROGRESS alone answers (the path every body took before the quick one)."""
    try:
        fields = validation.validated(PROGRESS, body)
    except InvalidInput as error:
        return "refused", str(error)
    position, duration = float(fields["position_seconds"]), float(fields["duration_seconds"])
    return ("refused", "position_seconds cannot be past duration_seconds.") if position > duration \
        else (position, duration)


def _progress_answer(body):
    try:
        return validated_progress(body)
    except InvalidInput as error:
        return "refused", str(error)


_JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**400), max_value=10**400)
                 | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=5))
_PROGRESS_VALUES = _JSON_SCALARS | st.lists(_JSON_SCALARS, max_size=2) | st.dictionaries(st.text(max_size=3),
                                                                                         _JSON_SCALARS, max_size=2)


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.fixed_dictionaries({}, optional={"position_seconds": _PROGRESS_VALUES, "duration_seconds": _PROGRESS_VALUES,
                                        "extra": _JSON_SCALARS}),
    _PROGRESS_VALUES,
))
def test_a_progress_body_gets_the_answer_schema_gives(body):
    assert _progress_answer(body) == _progress_by_schema(body)


@pytest.mark.parametrize("body, answer", [
    ({"position_seconds": 42.5, "duration_seconds": 212}, (42.5, 212.0)),
    ({"position_seconds": 0, "duration_seconds": 1, "extra": "kept out"}, (0.0, 1.0)),
    ({"position_seconds": 5, "duration_seconds": 0}, "duration_seconds must be"),
    ({"position_seconds": True, "duration_seconds": 10}, "position_seconds must be"),
    ({"position_seconds": 11, "duration_seconds": 10}, "cannot be past"),
    ({"duration_seconds": 10}, "position_seconds"),
    ([1, 2], "JSON object"),
])
def test_progress_bodies_both_ways(body, answer):
    for way in (_progress_answer, _progress_by_schema):
        got = way(body)
        if isinstance(answer, tuple):
            assert got == answer
        else:
            assert got[0] == "refused" and answer in got[1]


def test_a_cursor_is_bound_to_its_query_and_stays_short_whatever_the_query():
    codec = CursorCodec(("a-secret-that-is-long-enough-for-this-test-0123",))
    moment, oid = dt.datetime(2026, 1, 2, tzinfo=dt.UTC), ObjectId()
    long_words = ["\u00e9\u00e8\u00ea" * 6] * 10  # as long as a q can be, every character escaped in JSON
    for query in (None, {"q": []}, {"q": ["zebra"]}, {"q": long_words}, {"active": True}, {"active": None}):
        cursor = codec.encode("videos", moment, oid, query=query)
        assert len(cursor) <= MAX_CURSOR_CHARS
        assert codec.decode("videos", cursor, query=query) == (moment, oid)
        assert codec.decode("videos", cursor, query=dict(query or {})) == (moment, oid)  # the same, rebuilt
    zebra = codec.encode("videos", moment, oid, query={"q": ["zebra"]})
    for other in (None, {"q": []}, {"q": ["steve"]}, {"q": ["zebra", "steve"]}, {"active": True}):
        with pytest.raises(InvalidInput, match="another query"):
            codec.decode("videos", zebra, query=other)
    active = codec.encode("admin-videos", moment, oid, query={"active": True})
    for other in ({"active": False}, {"active": None}):
        with pytest.raises(InvalidInput, match="another query"):
            codec.decode("admin-videos", active, query=other)

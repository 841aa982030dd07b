"""Playback tokens and the dashboard/stream/play use cases built on them.

A playback token is an itsdangerous timed signature over the video id, the user id
and the login session. It has a salt of its own, so the key it is signed with is not
the JWT's, and neither kind of token can pass for the other.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from urllib.parse import quote

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from services.accounts.sessions import Principal, SessionStore
from services.catalog.plays import PlayStore
from services.catalog.videos import PLAYABLE_FIELDS, VideoCatalog, embed_url
from services.common.errors import Forbidden, InvalidInput, NotAuthenticated, NotFound
from services.common.ids import canonical_video_id, parse_object_id
from services.common.tokens import VerifiedTokens

PLAYBACK_SALT = "video-app.playback-token.v1"
TOKEN_REUSE_SECONDS = 30
RECENT_TOKENS_KEPT = 8192
EXPIRED = "This playback link has expired. Go back to the dashboard for a new one."
INVALID = "This playback link is not valid."


@dataclasses.dataclass(frozen=True)
class PlaybackGrant:
    video_id: str
    principal: Principal


class PlaybackSigner:
    """``signing_keys`` newest first, as for the JWT: the newest signs, all verify.

    Every app launch asks for the dashboard, so the same user would get the same
    videos signed again and again. A token minted less than ``reuse_seconds`` ago for
    the same video, user and session is handed out again instead: it grants exactly the
    same, and only expires that much sooner. Its URL-quoted form (for ``play_url``) is
    kept with it, so a list of 20 videos does not quote 20 tokens again.
    """

    def __init__(self, signing_keys: tuple[str, ...], max_age_seconds: int, reuse_seconds: float = 0):
        # itsdangerous signs with the *last* key of the list and verifies with any.
        self._serializer = URLSafeTimedSerializer(list(reversed(signing_keys)), salt=PLAYBACK_SALT)
        self._max_age = max_age_seconds
        self._reuse_seconds = min(reuse_seconds, max_age_seconds / 10)
        self._recent: OrderedDict[tuple[str, Principal], tuple[float, str, str]] = OrderedDict()
        self._verified = VerifiedTokens(self._decode, self._is_current, EXPIRED)

    def sign(self, video_id: str, principal: Principal) -> str:
        return self.sign_for_url(video_id, principal)[0]

    def sign_for_url(self, video_id: str, principal: Principal) -> tuple[str, str]:
        """The token, and the token quoted for a URL's query string."""
        key = (video_id, principal)
        now = time.monotonic()
        recent = self._recent.get(key)
        if recent is not None and now - recent[0] < self._reuse_seconds:
            return recent[1], recent[2]
        token = self._serializer.dumps({"v": video_id, "u": principal.user_id, "s": principal.session_id})
        quoted = quote(token, safe="")
        self._recent[key] = (now, token, quoted)
        if len(self._recent) > RECENT_TOKENS_KEPT:
            self._recent.popitem(last=False)  # the oldest: memory stays bounded
        return token, quoted

    def verify(self, token: str) -> PlaybackGrant:
        return self._verified.verify(token)

    def _is_current(self, signed_at: float, now: float) -> bool:
        """A cached verification stays good only while the token itself is: the same age
        test itsdangerous makes, in whole seconds."""
        return 0 <= int(now) - signed_at <= self._max_age

    def _decode(self, token: str) -> tuple[PlaybackGrant, int]:
        """Signature and payload, checked once per token: a player asks for the same
        link again on every play and replay, so the result is cached (failures are not)."""
        try:
            payload, signed_at = self._serializer.loads(token, max_age=self._max_age, return_timestamp=True)
        except SignatureExpired:
            raise NotAuthenticated(EXPIRED) from None
        except BadData:
            raise NotAuthenticated(INVALID) from None
        if not (isinstance(payload, dict) and all(isinstance(payload.get(k), str) for k in "vus")):
            raise NotAuthenticated(INVALID)
        grant = PlaybackGrant(payload["v"], Principal(user_id=payload["u"], session_id=payload["s"]))
        return grant, int(signed_at.timestamp())


class Playback:
    def __init__(self, catalog: VideoCatalog, signer: PlaybackSigner, sessions: SessionStore,
                 dashboard_count: int, plays: PlayStore):
        self._catalog = catalog
        self._plays = plays
        self._signer = signer
        self._sessions = sessions
        self._dashboard_count = dashboard_count

    async def dashboard(self, principal: Principal, base_url: str) -> list[dict]:
        """The first active videos, as dashboard items."""
        return self.items(await self._catalog.active(self._dashboard_count), principal, base_url)

    def items(self, videos: list[dict], principal: Principal, base_url: str) -> list[dict]:
        """Dashboard items, the one shape every user-facing list of videos has: each video
        with a playback token for this user and session and the absolute ``play_url`` a
        webview can open as it is."""
        items = []
        for video in videos:
            video_id = str(video["_id"])
            token, quoted = self._signer.sign_for_url(video_id, principal)
            items.append({
                "id": video_id,
                "title": video["title"],
                "description": video.get("description", ""),
                "thumbnail_url": video.get("thumbnail_url", ""),
                "playback_token": token,
                "play_url": f"{base_url}/video/{video_id}/play?token={quoted}",
            })
        return items

    async def stream(self, principal: Principal, video_id: str, token: str | None, *,
                     count_play: bool = True) -> dict:
        """``count_play``: false for a HEAD, which asks about the link without playing it."""
        video, _ = await self._authorize(video_id, token, caller=principal)
        if count_play:
            self._plays.record(video["_id"], principal.user_id)
        # The canonical form of the id, whatever case the path used.
        return {"stream_url": embed_url(video["youtube_id"]), "video_id": str(video["_id"]), "title": video["title"]}

    async def play(self, video_id: str, token: str | None, *, count_play: bool = True) -> str:
        """The embed URL, for a caller whose only credential is the playback token."""
        video, grant = await self._authorize(video_id, token, caller=None)
        if count_play:
            self._plays.record(video["_id"], grant.principal.user_id)  # the viewer the link was minted for
        return embed_url(video["youtube_id"])

    async def _authorize(self, video_id: str, token: str | None,
                         caller: Principal | None) -> tuple[dict, PlaybackGrant]:
        if not token or not isinstance(token, str):
            raise InvalidInput("A playback token is required: use the playback_token from the dashboard.")
        oid = parse_object_id(video_id)  # the same video in upper or lower case
        if oid is None:
            raise NotFound("Video not found.")
        video_id = str(oid)
        grant = self._signer.verify(token)
        # Tokens are minted for the canonical form: only another form needs parsing.
        if grant.video_id != video_id and canonical_video_id(grant.video_id) != video_id:
            raise Forbidden("This playback link is for another video.")
        if caller is not None and grant.principal.user_id != caller.user_id:
            raise Forbidden("This playback link belongs to another user.")
        # The caller's own session was checked when its JWT was; any other session
        # (an older login of the same user, or none for /play) is checked here.
        if grant.principal != caller and not await self._sessions.is_live(grant.principal):
            raise NotAuthenticated("This playback link was revoked by a logout. Please log in again.")
        video = await self._catalog.get(oid, PLAYABLE_FIELDS)
        if video is None:
            raise NotFound("Video not found.")
        if not video.get("is_active"):
            raise Forbidden("This video is not available.")
        return video, grant

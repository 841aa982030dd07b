"""The dashboard and playback endpoints."""

from handlers.base import BaseHandler


class DashboardHandler(BaseHandler):
    async def get(self) -> None:
        videos = await self.services.playback.dashboard(self.principal, self.base_url())
        self.write_json({"videos": videos})


class StreamHandler(BaseHandler):
    async def get(self, video_id: str) -> None:
        token = self.get_query_argument("token", None, strip=False)
        self.write_json(await self.services.playback.stream(
            self.principal, video_id, token, count_play=self.request.method == "GET"))


class PlayHandler(BaseHandler):
    """For webviews, which cannot send an Authorization header: the signed playback
    token in the query is the whole credential, as with signed URLs at Mux or Cloudflare."""

    requires_auth = False

    def set_default_headers(self) -> None:
        super().set_default_headers()
        # The token is in this URL: never pass it on to YouTube in a Referer.
        self.set_header("Referrer-Policy", "no-referrer")

    async def get(self, video_id: str) -> None:
        embed_url = await self.services.playback.play(
            video_id, self.get_query_argument("token", None, strip=False),
            count_play=self.request.method == "GET")  # a HEAD (a link preview) is not a play
        if "application/json" in self.request.headers.get("Accept", ""):
            self.write_json({"embed_url": embed_url})
        else:
            self.clear_header("Content-Type")  # a redirect has no body to describe
            self.redirect(embed_url, status=302)

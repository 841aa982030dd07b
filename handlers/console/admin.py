"""The console's pages over CatalogAdmin (the service behind /admin): the videos (list,
search, add from a pasted link with a preview, edit, withdraw, restore, delete after a
confirmation) and the stats. Each error sentence is the service's, shown beside its field."""

from __future__ import annotations

from urllib.parse import urlencode

from handlers.console.base import ConsoleHandler
from handlers.console.chart import build_chart, duration_text
from services.common.clock import utcnow
from services.common.errors import InvalidInput

PAGE_SIZE = "20"
TOP_VIDEOS = 20
STAT_SPANS = (7, 30, 90)
# What the list page says after an action (by key: no text of the request is shown back).
NOTICES = {
    "added": "The video was added.",
    "saved": "The changes were saved.",
    "withdrawn": "The video was withdrawn: viewers no longer see it.",
    "restored": "The video was restored: viewers see it again.",
    "deleted": "The video was deleted.",
}
DONE = {"withdraw": "withdrawn", "restore": "restored"}
FILTERS = {"all": None, "active": "true", "withdrawn": "false"}


def field_of(message: str, fields: tuple[str, ...], default: str) -> str:
    """Which form field a service's sentence is about: the one it starts with."""
    return next((name for name in fields if message.startswith(name)), default)


class ConsoleVideosHandler(ConsoleHandler):
    """GET /console: the catalog, searched and filtered, a page at a time."""

    page = "videos"

    async def get(self) -> None:
        q = self.get_query_argument("q", "")
        shown = self.get_query_argument("show", "all")
        if shown not in FILTERS:
            shown = "all"
        cursor = self.get_query_argument("cursor", None)
        notice = NOTICES.get(self.get_query_argument("done", ""))
        videos: list[dict] = []
        next_cursor = error = None
        try:
            page = await self.services.admin.videos(limit=PAGE_SIZE, cursor=cursor, active=FILTERS[shown], q=q or None)
            videos, next_cursor = page.items, page.next_cursor
        except InvalidInput as invalid:
            error = invalid.message
            self.set_status(400)
        next_url = None
        if next_cursor:
            next_url = "/console?" + urlencode({"q": q, "show": shown, "cursor": next_cursor})
        first_url = "/console?" + urlencode({"q": q, "show": shown}) if cursor is not None else None
        self.render("videos.html", videos=videos, q=q, shown=shown, filters=tuple(FILTERS),
                    next_url=next_url, first_url=first_url, error=error, notice=notice)


class ConsoleAddVideoHandler(ConsoleHandler):
    """/console/add: paste a link, see its thumbnail, then give a title and save."""

    page = "videos"

    def get(self) -> None:
        self.render("add.html", link="", preview=None, title="", description="", errors={})

    async def post(self) -> None:
        form = self.form()
        link, title, description = form.get("youtube", ""), form.get("title", ""), form.get("description", "")
        admin = self.services.admin
        try:
            preview = admin.preview(link)
        except InvalidInput as invalid:
            self.render_page("add.html", status=400, link=link, preview=None, title=title,
                             description=description, errors={"youtube": invalid.message})
            return
        if form.get("action") != "save":
            self.render("add.html", link=link, preview=preview, title=title, description=description, errors={})
            return
        try:
            await admin.add({"youtube": link, "title": title, "description": description})
        except InvalidInput as invalid:
            where = field_of(invalid.message, ("title", "description"), "youtube")
            self.render_page("add.html", status=400, link=link, preview=preview, title=title,
                             description=description, errors={where: invalid.message})
            return
        self.redirect("/console?done=added", status=303)


class ConsoleVideoHandler(ConsoleHandler):
    """/console/videos/{id}: edit the title and description; withdraw or restore."""

    page = "videos"

    async def get(self, video_id: str) -> None:
        video = await self.services.admin.video(video_id)
        self.render("video.html", video=video, title=video["title"], description=video["description"], errors={})

    async def post(self, video_id: str) -> None:
        form = self.form()
        admin = self.services.admin
        action = form.get("action")
        if action in ("withdraw", "restore"):
            await admin.edit(video_id, {"is_active": action == "restore"})
            self.redirect(f"/console?done={DONE[action]}", status=303)
            return
        title, description = form.get("title", ""), form.get("description", "")
        try:
            await admin.edit(video_id, {"title": title, "description": description})
        except InvalidInput as invalid:
            video = await admin.video(video_id)
            where = field_of(invalid.message, ("title", "description"), "title")
            self.render_page("video.html", status=400, video=video, title=title, description=description,
                             errors={where: invalid.message})
            return
        self.redirect("/console?done=saved", status=303)


class ConsoleDeleteVideoHandler(ConsoleHandler):
    """/console/videos/{id}/delete: a confirmation page, then the deletion."""

    page = "videos"

    async def get(self, video_id: str) -> None:
        self.render("delete.html", video=await self.services.admin.video(video_id))

    async def post(self, video_id: str) -> None:
        self.form()
        await self.services.admin.remove(video_id)
        self.redirect("/console?done=deleted", status=303)


class ConsoleStatsHandler(ConsoleHandler):
    """/console/stats: plays and viewers per day as a chart and a table, and the top videos."""

    page = "stats"

    async def get(self) -> None:
        stats = await self.services.admin.stats(self.get_query_argument("days", None))
        span, videos = stats.days, stats.videos
        chart = build_chart(stats.per_day, span, utcnow().date())
        self.render("stats.html", span=span, spans=STAT_SPANS, chart=chart, videos=videos[:TOP_VIDEOS],
                    duration=duration_text)

"""The catalog for users: browsing and search, one video, watch progress and history."""

from handlers.base import BaseHandler


class VideosHandler(BaseHandler):
    async def get(self) -> None:
        page = await self.services.library.browse(
            self.principal, self.base_url(), **self.query_arguments("limit", "cursor", "q"))
        self.write_json({"videos": page.items, "next_cursor": page.next_cursor})


class VideoHandler(BaseHandler):
    async def get(self, video_id: str) -> None:
        self.write_json({"video": await self.services.library.video(self.principal, self.base_url(), video_id)})


class ProgressHandler(BaseHandler):
    async def put(self, video_id: str) -> None:
        self.write_json(await self.services.library.save_progress(self.principal, video_id, self.json_body()))


class HistoryHandler(BaseHandler):
    async def get(self) -> None:
        page = await self.services.library.history(
            self.principal, self.base_url(), **self.query_arguments("limit", "cursor"))
        self.write_json({"history": page.items, "next_cursor": page.next_cursor})

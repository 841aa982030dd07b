"""/admin: the catalog for operators. Every route is 401 without a valid token and
403 for an account that is not listed in ADMIN_EMAILS."""

from handlers.base import BaseHandler


class AdminHandler(BaseHandler):
    async def prepare(self) -> None:
        await super().prepare()
        if self.principal is not None:  # None for the CORS preflight
            await self.services.admin.require_admin(self.principal)


class AdminVideosHandler(AdminHandler):
    async def get(self) -> None:
        page = await self.services.admin.videos(**self.query_arguments("limit", "cursor", "active"))
        self.write_json({"videos": page.items, "next_cursor": page.next_cursor})

    async def post(self) -> None:
        self.write_json({"video": await self.services.admin.add(self.json_body())}, status=201)


class AdminVideoHandler(AdminHandler):
    async def patch(self, video_id: str) -> None:
        self.write_json({"video": await self.services.admin.edit(video_id, self.json_body())})

    async def delete(self, video_id: str) -> None:
        await self.services.admin.remove(video_id)
        self.write_json({"message": "Video deleted."})


class AdminStatsHandler(AdminHandler):
    async def get(self) -> None:
        stats = await self.services.admin.stats(self.get_query_argument("days", None))
        self.write_json({"days": stats.days, "videos": stats.videos, "per_day": stats.per_day})

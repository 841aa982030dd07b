"""Liveness and readiness."""

from handlers.base import BaseHandler
from services.common.errors import DatabaseUnavailable

API_VERSION = "1.0.0"


class RootHandler(BaseHandler):
    requires_auth = False

    def get(self) -> None:
        self.write_json({"message": "Video App API", "status": "running", "version": API_VERSION})


class LivenessHandler(BaseHandler):
    """The process is up: platforms restart it when this stops answering."""

    requires_auth = False

    def get(self) -> None:
        self.write_json({"status": "ok"})


class ReadinessHandler(BaseHandler):
    """The process can serve: the database answers. Load balancers route on this."""

    requires_auth = False

    async def get(self) -> None:
        if not await self.services.health.database_answers():
            raise DatabaseUnavailable("The database is not reachable right now.")
        self.write_json({"status": "ready"})

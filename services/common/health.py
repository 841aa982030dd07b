"""Whether the database answers, for the readiness probe."""

from __future__ import annotations

from services.common.datastore import Database
from services.common.errors import DatabaseUnavailable


class DatabaseHealth:
    def __init__(self, db: Database):
        self._db = db

    async def database_answers(self) -> bool:
        try:
            await self._db.command("ping")
        except DatabaseUnavailable:  # the data layer's guard (services/common/datastore.py)
            return False
        return True

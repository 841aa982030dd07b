"""Whether the database answers, for the readiness probe."""

from services.common.errors import DatabaseUnavailable


class DatabaseHealth:
    def __init__(self, db):
        self._db = db

    async def database_answers(self) -> bool:
        try:
            await self._db.command("ping")
        except DatabaseUnavailable:  # the data layer's guard (services/common/datastore.py)
            return False
        return True

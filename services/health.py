"""Whether the database answers, for the readiness probe."""

from services.errors import DATABASE_DOWN_ERRORS


class DatabaseHealth:
    def __init__(self, db):
        self._db = db

    async def database_answers(self) -> bool:
        try:
            await self._db.command("ping")
        except DATABASE_DOWN_ERRORS:
            return False
        return True

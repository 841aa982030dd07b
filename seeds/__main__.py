"""``python -m seeds``: create the indexes, upsert the demo catalog, and carry plays
stored before the per-day rollups over to them (once; a no-op when done).

The Procfile's release phase runs this before each deploy.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from seeds.loader import CatalogError, load_catalog, read_catalog
from server.app import build_services
from server.config import ConfigError, load_config, read_dotenv
from server.database import close, connect, describe
from server.logs import configure_logging
from server.runtime import use_event_loop
from services.common.errors import DatabaseUnavailable

log = logging.getLogger("seeds")


async def seed(config) -> int:
    client, db = connect(config)
    try:
        with ThreadPoolExecutor(max_workers=1) as executor:
            services = build_services(config, db, executor)
            await services.ensure_indexes()
            added = await load_catalog(services.catalog, read_catalog())
            await services.plays.carry_over()
    finally:
        await close(client)
    log.info("catalog seeded", extra={"database": describe(config), "new_videos": added})
    if config.uses_embedded_store:
        log.warning("MONGODB_URI is not set: this seeded the embedded store, which is gone when this command exits")
    return added


def main() -> int:
    configure_logging()
    read_dotenv()  # local runs (honcho, heroku local); the environment wins
    config = None
    try:
        config = load_config()
        use_event_loop(config.event_loop)
        asyncio.run(seed(config))
    except (ConfigError, CatalogError) as error:
        log.error(str(error))
        return 2
    except DatabaseUnavailable as error:
        # One line a person reads in the deploy output, not the driver's traceback: the
        # release fails, so the platform keeps the previous version running.
        log.error(f"the database at {describe(config)} did not answer within {config.mongodb_timeout_ms} ms; "
                  "nothing was seeded (is MONGODB_URI right, and is the database up?)",
                  extra={"error": error.reason})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m seeds``: create the indexes and upsert the demo catalog.

The Procfile's release phase runs this before each deploy.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from seeds.loader import CatalogError, load_catalog, read_catalog
from server.app import build_services
from server.config import ConfigError, load_config
from server.database import close, connect, describe
from server.logs import configure_logging

log = logging.getLogger("seeds")


async def seed(config) -> int:
    client, db = connect(config)
    try:
        with ThreadPoolExecutor(max_workers=1) as executor:
            services = build_services(config, db, executor)
            await services.ensure_indexes()
            added = await load_catalog(services.catalog, read_catalog())
    finally:
        await close(client)
    log.info("catalog seeded", extra={"database": describe(config), "new_videos": added})
    if config.uses_embedded_store:
        log.warning("MONGODB_URI is not set: this seeded the embedded store, which is gone when this command exits")
    return added


def main() -> int:
    configure_logging()
    try:
        asyncio.run(seed(load_config()))
    except (ConfigError, CatalogError) as error:
        log.error(str(error))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

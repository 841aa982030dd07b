"""Constants every test and the bench share."""

import os
from pathlib import Path

from seeds.loader import read_catalog

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"
# The password of every test and bench user: long enough for the sign-up rules.
PASSWORD = "correct horse"
# Signs the tokens of in-process test servers (>= 32 bytes, as production demands).
TEST_SECRET = "test-secret-long-enough-for-hs256-and-hs512-0123456789abcdefghijklmnop"
# The demo catalog's size (seeds/catalog.yaml, every video active): what a fresh server lists
# before a test adds anything, so that a new demo video changes no assertion.
SEEDED = len(read_catalog())
# The event loop the suite runs on, and so do the servers it starts (EVENT_LOOP, as the
# server reads it): uvloop by default, EVENT_LOOP=asyncio for asyncio's own.
SUITE_EVENT_LOOP = os.environ.get("EVENT_LOOP") or "uvloop"

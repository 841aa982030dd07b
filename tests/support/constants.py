"""Constants every test and the bench share."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"
# The password of every test and bench user: long enough for the sign-up rules.
PASSWORD = "correct horse"
# Signs the tokens of in-process test servers (>= 32 bytes, as production demands).
TEST_SECRET = "test-secret-long-enough-for-hs256-and-hs512-0123456789abcdefghijklmnop"

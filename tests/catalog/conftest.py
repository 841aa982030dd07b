"""Fixtures of the catalog's tests."""

import io

import pytest

from server.commands import verify_email

OPERATOR = "boss@example.com"  # listed in the tests' ADMIN_EMAILS


@pytest.fixture
def admin_token(database):
    """Signs the operator up, verifies the address (as ``python -m server verify-email``
    does) and logs in: ``await admin_token(api)``."""
    async def make(api, email=OPERATOR) -> str:
        token = await api.user(email)
        assert await verify_email(database, email, io.StringIO()) == 0
        return token
    return make

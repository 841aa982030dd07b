"""Fixtures of the accounts' tests: a real SMTP server (aiosmtpd) that receives the mail."""

import pytest
from aiosmtpd.controller import Controller

from tests.support import free_port
from tests.support.smtp import Inbox, authenticate


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def inbox(smtp_port):
    handler = Inbox()
    # A real SMTP server in its own thread; it requires a login (over plain text: a test).
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port, authenticator=authenticate,
                            auth_required=True, auth_require_tls=False)
    controller.start()
    yield handler
    controller.stop()

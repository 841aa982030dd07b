"""The one harness of the tests and the bench: constants, the clients and their
``Reply``, the API in this process, and a server as a child process.

Tests import from here (``from tests.support import Api, PASSWORD``); so does bench/.
"""

from tests.support.client import REQUEST_TIMEOUT_SECONDS, Api, Reply, assert_json_error, query_token, request
from tests.support.constants import HOST, PASSWORD, REPO_ROOT, SEEDED, SUITE_EVENT_LOOP, TEST_SECRET
from tests.support.inprocess import close_server, listen, loop_in_thread, prepared_services, serve_until_signalled
from tests.support.network import connection_refused, connections_drained, free_port, open_raw_connection
from tests.support.process import START_TIMEOUT_SECONDS, ServerFailed, ServerProcess, child_environment, running_server
from tests.support.waiting import WAIT_SECONDS, wait_until, wait_until_sync

__all__ = [
    "HOST",
    "PASSWORD",
    "REPO_ROOT",
    "REQUEST_TIMEOUT_SECONDS",
    "SEEDED",
    "START_TIMEOUT_SECONDS",
    "SUITE_EVENT_LOOP",
    "TEST_SECRET",
    "WAIT_SECONDS",
    "Api",
    "Reply",
    "ServerFailed",
    "ServerProcess",
    "assert_json_error",
    "child_environment",
    "close_server",
    "connection_refused",
    "connections_drained",
    "free_port",
    "listen",
    "loop_in_thread",
    "open_raw_connection",
    "prepared_services",
    "query_token",
    "request",
    "running_server",
    "serve_until_signalled",
    "wait_until",
    "wait_until_sync",
]

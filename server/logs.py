"""Logs as JSON lines: one object a line, easy for any log platform to index.

Access lines name the path without its query string: playback tokens travel in the
query and bearer tokens in a header, and neither is ever written to a log. Every line,
the access lines included, passes ``redact()``: the path (which can still carry
``%3Ftoken=…`` percent-encoded), the user agent and a forwarded address are the client's
text, and a client can put anything there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import sys
import time
from json.encoder import encode_basestring_ascii as _json_string
from typing import TextIO

from handlers.proxy import client_address

access_log = logging.getLogger("app.access")

# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


# Built once: json.dumps() with any option builds a new encoder on every call.
_ENCODER = json.JSONEncoder(default=str)

# Credentials as they can turn up in any line, ours or a library's (Tornado quotes a
# malformed header line whole, "Invalid header value 'Bearer eyJ...\r'"): a scheme and
# its credential, anything shaped like a JWT, a token in a query string, a password field.
REDACTED = "[redacted]"
_SECRETS = re.compile(
    r"(?P<keep>\b(?:Bearer|(?-i:Basic))\s+)[A-Za-z0-9._~+/=-]+"
    # A token in a query string, also percent-encoded into a path ("/x%3Ftoken%3D...").
    r"|(?P<keep2>(?:[?&;]|%3F|%26|%3B)[a-z_]*token(?:=|%3D))[^&\s'\"\\]+"
    r"|(?P<keep3>\\?[\"']password\\?[\"']\s*:\s*\\?[\"'])[^\"'\\]*"
    r"|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with every credential it contains replaced by ``[redacted]``."""
    # Every match of _SECRETS contains one of these words, lower-cased: a line with none of
    # them (most lines) is left as it is without running the expression (bench/README.md).
    lowered = text.lower()
    if not ("token" in lowered or "bearer" in lowered or "basic" in lowered or "eyj" in lowered
            or "password" in lowered):
        return text
    return _SECRETS.sub(lambda m: (m["keep"] or m["keep2"] or m["keep3"] or "") + REDACTED, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        # The one place every line passes: no secret reaches the log, whoever wrote the line.
        return redact(_ENCODER.encode(entry))


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Facts no line of ours uses, which logging would otherwise gather for every record
    # (the calling frame, thread and process names): the "Optimization" of the logging HOWTO.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # Library warnings (a mistyped MongoDB URI option, say) become JSON lines too.
    logging.captureWarnings(True)


# Enough to tell apps, versions and bots apart; a longer header is cut, never logged whole.
USER_AGENT_CHARS = 160
# Longer than any path of the API; a longer one (Tornado takes 64 KiB of headers) is cut, so
# that redacting a line costs a bounded time whatever the client sends.
PATH_CHARS = 1024
METHOD_CHARS = 16  # Tornado takes any word as a method; an unknown one is a 405, and logged


class AccessLog:
    """Tornado's ``log_function``: one JSON line a finished request, in the shape of every
    other line (time, level, logger, message) plus the request's own fields.

    Like nginx's buffered ``access_log``, it skips the general machinery: each line is
    formatted straight from the request (no LogRecord, no formatter pass over the
    record's attributes) and the lines of one event-loop turn go out in one write.
    Through the logging module the line was a sizeable share of a /dashboard request
    (bench/README.md). The
    ``app.access`` logger's level still decides whether lines are written; ``flush()``
    writes what is pending (the server calls it as it stops)."""

    def __init__(self, stream: TextIO, trust_proxy: bool = False):
        self._stream = stream
        self._trust_proxy = trust_proxy
        self._pending: list[str] = []
        self._second = -1
        self._second_text = ""

    def __call__(self, handler) -> None:
        status = handler.get_status()
        level = logging.ERROR if status >= 500 else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        request = handler.request
        now = time.time()
        # Through redact() as every other line: the path, the user agent and a forwarded
        # address are the client's text.
        self._pending.append(redact(
            f'{{"time":"{self._time_text(now)}","level":"{"error" if level == logging.ERROR else "info"}",'
            f'"logger":"{access_log.name}","message":"request",'
            f'"request_id":{_json_string(getattr(handler, "request_id", ""))},'
            f'"method":{_json_string(request.method[:METHOD_CHARS])},"path":{_json_string(request.path[:PATH_CHARS])},'
            f'"status":{status},"duration_ms":{round(1000 * request.request_time(), 2)},'
            f'"client":{_json_string(client_address(request, self._trust_proxy))},'
            f'"user_agent":{_json_string(request.headers.get("User-Agent", "")[:USER_AGENT_CHARS])}}}\n'
        ))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        if not self._pending:
            return
        lines, self._pending = "".join(self._pending), []
        try:
            self._stream.write(lines)
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken log stream must not fail requests (logging drops them too)

    def _time_text(self, now: float) -> str:
        """As JsonFormatter writes it: ISO 8601 in UTC, to the millisecond."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{int((now - second) * 1000):03d}+00:00"

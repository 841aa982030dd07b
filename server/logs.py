"""Logs as JSON lines: one object a line, easy for any log platform to index.

Access lines name the path without its query string: playback tokens travel in the
query and bearer tokens in a header, and neither is ever written to a log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

access_log = logging.getLogger("app.access")

# Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


# Built once: json.dumps() with any option builds a new encoder on every call.
_ENCODER = json.JSONEncoder(default=str)


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
        return _ENCODER.encode(entry)


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


def log_access(handler) -> None:
    """Tornado's ``log_function``: one line a finished request."""
    status = handler.get_status()
    level = logging.ERROR if status >= 500 else logging.INFO
    access_log.log(level, "request", extra={
        "request_id": getattr(handler, "request_id", None),
        "method": handler.request.method,
        "path": handler.request.path,
        "status": status,
        "duration_ms": round(1000 * handler.request.request_time(), 2),
    })

"""GET /openapi.json: the API description, kept as YAML in server/openapi.yaml and served as JSON."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import yaml

from handlers.base import BaseHandler

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "server" / "openapi.yaml"


@functools.cache
def openapi_document() -> dict:
    """The parsed document, read once, on first use (not at import). ``python -m server``
    calls this at start-up, so no request waits for the file."""
    with open(OPENAPI_PATH, encoding="utf-8") as fh:
        # libyaml's parser where PyYAML has it (its wheels do): far faster than the pure-Python one.
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader


@functools.cache
def openapi_json() -> str:
    return json.dumps(openapi_document(), ensure_ascii=False, separators=(",", ":"))


class OpenApiHandler(BaseHandler):
    requires_auth = False

    def get(self) -> None:
        self.set_status(200)
        self.finish(openapi_json())

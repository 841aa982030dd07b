"""Writes, or checks, what is generated from the settings declared in server/config.py:
``config.yaml`` (the defaults operators read), ``.env.example`` and the README's
configuration table.

    python -m server.settings_docs           # rewrite the three after changing a setting
    python -m server.settings_docs --check   # exit 1 naming each file that is out of date

tests/server/test_settings_docs.py runs the check, so a setting cannot be added or changed
without them.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from server.config import Config

REPO = Path(__file__).resolve().parent.parent
README_START = "<!-- settings: generated from server/config.py by python -m server.settings_docs -->"
README_END = "<!-- end of settings -->"
YAML_HEADER = """\
# Defaults for every setting, generated from server/config.py (python -m server.settings_docs):
# a default is changed, or a setting added, there. Each is overridden by the environment
# variable of the same name in upper case (PORT, MONGODB_URI, ...): see README.md.
# Secrets never belong here: JWT_SECRET and METRICS_TOKEN come from the environment only.
"""
ENV_HEADER = """\
# Generated from server/config.py (python -m server.settings_docs): every setting, its help
# and its default (or an example). Copy to .env: local runs (make run, python -m server,
# honcho, heroku local) read it, and docker compose passes every variable in it to the
# container. The environment wins over .env, and .env over config.yaml. A JWT_SECRET:
# python3 -c 'import secrets; print(secrets.token_urlsafe(48))'
"""


@dataclasses.dataclass(frozen=True)
class Variable:
    """One environment variable, as the documents show it."""

    name: str
    default: Any
    help: str
    row: str
    example: str | None
    in_file: bool  # a key of config.yaml (secrets are not)


def variables(fields: Iterable[dataclasses.Field] | None = None) -> list[Variable]:
    found = []
    for field in fields if fields is not None else dataclasses.fields(Config):
        meta = field.metadata
        if meta.get("variables"):
            found += [Variable(name, default, text, name, None, False)
                      for name, (default, text) in meta["variables"].items()]
        else:
            found.append(Variable(field.name.upper(), field.default, meta["help"], meta["row"] or field.name,
                                  meta["example"], not meta["secret"]))
    return found


def _text(value: Any) -> str:
    """A default as the environment spells it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def render_config_yaml(found: list[Variable]) -> str:
    lines = [YAML_HEADER]
    for var in found:
        if not var.in_file:
            continue
        value = _text(var.default)
        try:
            plain = yaml.safe_load(f"k: {value}")["k"] == (var.default if not isinstance(var.default, tuple) else value)
        except yaml.YAMLError:
            plain = False
        entry = f"{var.name.lower()}: {value if plain and value else json.dumps(value)}"
        lines.append(f"{entry:<40}# {var.help}" if len(entry) < 40 else f"{entry}  # {var.help}")
    return "\n".join(lines) + "\n"


def render_env_example(found: list[Variable]) -> str:
    lines = [ENV_HEADER]
    for var in found:
        value = var.example if var.example is not None else ("" if var.default is None else _text(var.default))
        if any(c in value for c in " #\"'"):
            value = json.dumps(value)
        lines += [f"# {var.help}", f"{var.name}={value}"]
    return "\n".join(lines) + "\n"


def _shown(var: Variable) -> str:
    if var.default is None:
        return "none"
    text = _text(var.default)
    return f"`{text}`" if text else "empty"


def render_readme_table(found: list[Variable]) -> str:
    rows: dict[str, list[Variable]] = {}
    for var in found:
        rows.setdefault(var.row, []).append(var)
    lines = [README_START, "| variable | default | meaning |", "|---|---|---|"]
    for group in rows.values():
        names = ", ".join(f"`{var.name}`" for var in group)
        defaults = ", ".join(_shown(var) for var in group)
        lines.append(f"| {names} | {defaults} | {'; '.join(var.help for var in group)} |")
    lines.append(README_END)
    return "\n".join(lines) + "\n"


def readme_with_table(readme: str, table: str) -> str:
    start, end = readme.index(README_START), readme.index(README_END) + len(README_END) + 1
    return readme[:start] + table + readme[end:]


TARGETS: dict[str, Callable[[list[Variable], str], str]] = {
    "config.yaml": lambda found, _: render_config_yaml(found),
    ".env.example": lambda found, _: render_env_example(found),
    "README.md": lambda found, current: readme_with_table(current, render_readme_table(found)),
}


def out_of_date(root: Path = REPO) -> list[str]:
    found = variables()
    return [name for name, render in TARGETS.items()
            if render(found, (root / name).read_text(encoding="utf-8")) != (root / name).read_text(encoding="utf-8")]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = out_of_date()
        for name in stale:
            print(f"{name} is out of date with server/config.py: run python -m server.settings_docs", file=sys.stderr)
        return 1 if stale else 0
    found = variables()
    for name, render in TARGETS.items():
        path = REPO / name
        path.write_text(render(found, path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

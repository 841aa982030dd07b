"""Each setting is declared once (server/config.py); config.yaml, .env.example and the
README's configuration table are generated from the declarations and cannot drift. The
README's endpoint table matches the route table."""

from __future__ import annotations

import dataclasses
import re

import pytest

from server.app import ROUTES
from server.config import Config, ConfigError, load_config, setting
from server.metrics import route_label
from server.settings_docs import TARGETS, out_of_date, variables
from tests.support import REPO_ROOT


def test_config_yaml_env_example_and_the_readme_table_are_generated_from_config():
    assert out_of_date() == [], "run: .venv/bin/python -m server.settings_docs"


def test_a_setting_added_without_regenerating_fails_each_document():
    @dataclasses.dataclass(frozen=True)
    class Added:
        brand_new_limit: int = setting(7, "a setting someone added")

    found = variables([*dataclasses.fields(Config), *dataclasses.fields(Added)])
    for name, render in TARGETS.items():
        current = (REPO_ROOT / name).read_text(encoding="utf-8")
        assert render(found, current) != current, name
        assert "brand_new_limit" in render(found, current).lower(), name


def test_every_setting_is_declared_with_a_help():
    for field in dataclasses.fields(Config):
        assert "help" in field.metadata, f"{field.name}: declare it with setting(default, help)"
    assert all(var.help for var in variables())


def test_config_yaml_gives_the_declared_defaults():
    loaded, declared = load_config(env={}), Config()
    for field in dataclasses.fields(Config):
        if field.name != "jwt_secrets":  # a random one per process in development
            assert getattr(loaded, field.name) == getattr(declared, field.name), field.name


@pytest.mark.parametrize(("env", "message"), [
    ({"PORT": "0"}, "PORT must be positive"),
    ({"MAX_CONNECTIONS": "-1"}, "MAX_CONNECTIONS must not be negative"),
    ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS must be between 4 and 31"),
    ({"BCRYPT_THREADS": "-2"}, "BCRYPT_THREADS must not be negative"),
])
def test_the_declared_checks_refuse_bad_values(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env=env)


# ----- the endpoint table -----------------------------------------------------------------

def documented_operations() -> set[tuple[str, str]]:
    """(method, path) of each row of the README's endpoint table; a path's parameters as {}."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Endpoints"):]
    section = section[:section.index("\n#", 1)]
    found = set()
    for row in re.findall(r"^\| (`[^|]*) \|", section, re.M):
        method = None
        for token_method, path in re.findall(r"`(?:([A-Z]+) )?(/[^`\s?]*)", row):
            method = token_method or method
            found.add((method, re.sub(r"\{[^}]*\}", "{}", path)))
    return found


def routed_operations() -> set[tuple[str, str]]:
    found = set()
    for pattern, handler, *_ in ROUTES:
        path = re.sub(r"\{[^}]*\}", "{}", route_label(pattern))
        found |= {(method, path) for method in handler.allowed_methods() if method not in ("HEAD", "OPTIONS")}
    return found


def test_the_readme_endpoint_table_lists_every_route_and_method():
    assert documented_operations() == routed_operations()

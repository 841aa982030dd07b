"""The folders' import rules, so the layering a newcomer reads in the README stays true:
services/ never imports tornado, handlers/ or server/; services/common imports nothing from
the domain folders; services/accounts nothing from services/catalog."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

# folder -> module prefixes none of its files may import
FORBIDDEN = {
    "services": ("tornado", "handlers", "server"),
    "services/common": ("services.accounts", "services.catalog"),
    "services/accounts": ("services.catalog",),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module the file imports (relative imports resolved), as (line, dotted name)."""
    package = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def violations(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(REPO_ROOT)}:{line}: {name}" for line, name in imported_modules(path)
            if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)]


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_folder_imports_only_what_it_stands_on(folder):
    paths = sorted((REPO_ROOT / folder).rglob("*.py"))
    assert paths
    assert [v for path in paths for v in violations(path, FORBIDDEN[folder])] == []


def test_the_check_itself_finds_forbidden_imports(tmp_path, monkeypatch):
    sample = REPO_ROOT / "services" / "common" / "_layout_sample.py"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: (
        "import tornado.web\nfrom services.catalog.videos import VideoCatalog\n"
        "from ..accounts import users\nfrom .errors import NotFound\nimport services.accountsx\n"))
    found = violations(sample, FORBIDDEN["services"] + FORBIDDEN["services/common"])
    assert [v.split(": ")[1] for v in found] == [
        "tornado.web", "services.catalog.videos.VideoCatalog", "services.accounts.users"]


def reply_messages(path: Path) -> list[str]:
    """Every dict literal with a "message" key: a success message, which handlers write."""
    return [f"{path.relative_to(REPO_ROOT)}:{node.lineno}"
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path)))
            if isinstance(node, ast.Dict)
            and any(isinstance(k, ast.Constant) and k.value == "message" for k in node.keys)]


def test_services_return_values_and_handlers_write_the_messages():
    assert [found for path in sorted((REPO_ROOT / "services").rglob("*.py")) for found in reply_messages(path)] == []
    assert reply_messages(REPO_ROOT / "handlers" / "admin.py")  # the check finds one where it is

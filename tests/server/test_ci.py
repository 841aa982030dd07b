"""The GitHub Actions workflow (.github/workflows/ci.yml): what it runs, on what, with
which privileges; and the two checks ``make lint`` runs over it, both offline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from server.config import MONGODB_DRIVERS
from tests.support import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"
SUPPORTED_PYTHONS = ["3.11", "3.12", "3.13"]
PINNED = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps(job: dict) -> list[dict]:
    return job["steps"]


def compose_mongo_image() -> str:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return compose["services"]["mongo"]["image"]


def test_every_action_is_pinned_by_commit_and_the_token_only_reads():
    flow = workflow()
    assert flow["permissions"] == {"contents": "read"}
    for name, job in flow["jobs"].items():
        assert "permissions" not in job, name  # none widens it
        for step in steps(job):
            if "uses" in step:
                assert PINNED.match(step["uses"]), (name, step["uses"])
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
            if step.get("uses", "").startswith("actions/setup-python@"):
                assert step["with"]["cache"] == "pip", name


def test_lint_and_tests_run_on_every_supported_python():
    job = workflow()["jobs"]["lint-and-test"]
    assert job["strategy"]["matrix"]["python"] == SUPPORTED_PYTHONS
    assert [s["run"] for s in steps(job) if "run" in s] == ["make lint", "make test"]


def test_the_suite_runs_against_the_compose_files_mongodb_through_each_driver():
    flow = workflow()
    job = flow["jobs"]["mongodb"]
    assert job["strategy"]["matrix"]["driver"] == list(MONGODB_DRIVERS)
    assert job["services"]["mongo"]["image"] == compose_mongo_image() == flow["env"]["MONGO_IMAGE"]
    assert job["env"]["MONGODB_URI"].startswith("mongodb://localhost:27017")
    assert job["env"]["MONGODB_DRIVER"] == "${{ matrix.driver }}"
    assert [s["run"] for s in steps(job) if "run" in s] == ["make test"]


def test_the_suite_runs_against_a_three_member_replica_set():
    job = workflow()["jobs"]["replica-set"]
    uri = job["env"]["MONGODB_URI"]
    assert uri.endswith("?replicaSet=rs0") and uri.count("localhost:270") == 3
    script = "\n".join(s["run"] for s in steps(job) if "run" in s)
    assert "$MONGO_IMAGE" in script and "rs.initiate" in script and "PRIMARY" in script
    assert steps(job)[-1]["run"] == "make test"


def test_the_workflow_matches_githubs_schema_offline():
    result = subprocess.run(  # noqa: S603 - our interpreter, our arguments
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_offline():
    zizmor = Path(sys.executable).parent / "zizmor"
    assert zizmor.exists(), "zizmor is in requirements-dev.txt"
    result = subprocess.run([str(zizmor), "--offline", "--no-progress", str(WORKFLOW)],  # noqa: S603
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_would_catch_an_unpinned_action(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "ci.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text(encoding="utf-8")
    broken.write_text(re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@main", text), encoding="utf-8")
    zizmor = Path(sys.executable).parent / "zizmor"
    result = subprocess.run([str(zizmor), "--offline", "--no-progress", str(broken)],  # noqa: S603
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout + result.stderr

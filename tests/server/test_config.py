"""Configuration: file defaults, environment overrides, and production refusals."""

import logging
import re
from pathlib import Path

import pytest
import yaml

from server.config import Config, ConfigError, load_config
from tests.support import REPO_ROOT

GOOD_SECRET = "s" * 40
PRODUCTION = {"APP_ENV": "production", "JWT_SECRET": GOOD_SECRET, "METRICS_TOKEN": "m" * 32,
              "MONGODB_URI": "mongodb://db:27017/video_app", "CORS_ORIGINS": "https://app.example.com"}


def test_defaults_come_from_config_yaml():
    config = load_config(env={})
    assert (config.port, config.bcrypt_rounds, config.jwt_ttl_seconds) == (8000, 12, 86400)
    assert (config.playback_ttl_seconds, config.dashboard_video_count) == (3600, 2)
    assert config.max_body_bytes == 65536
    assert config.uses_embedded_store


def test_environment_overrides_the_file():
    config = load_config(env={"PORT": "9001", "BCRYPT_ROUNDS": "10", "TRUST_PROXY": "true",
                              "CORS_ORIGINS": "https://a.example, https://b.example"})
    assert (config.port, config.bcrypt_rounds, config.trust_proxy) == (9001, 10, True)
    assert config.cors_origins == ("https://a.example", "https://b.example")


def test_development_without_a_secret_generates_one_per_process(caplog):
    with caplog.at_level(logging.WARNING):
        first, second = load_config(env={}), load_config(env={})
    assert len(first.jwt_secrets) == 1 and len(first.jwt_secrets[0]) >= 32
    assert first.jwt_secrets != second.jwt_secrets
    assert "JWT_SECRET" in caplog.text
    assert first.jwt_secrets[0] not in caplog.text


def test_production_accepts_a_complete_configuration_with_previous_secrets():
    config = load_config(env={**PRODUCTION, "JWT_PREVIOUS_SECRETS": "p" * 32 + "," + "q" * 32})
    assert config.jwt_secrets == (GOOD_SECRET, "p" * 32, "q" * 32)


@pytest.mark.parametrize("change, named", [
    ({"JWT_SECRET": None}, "JWT_SECRET"),
    ({"JWT_SECRET": "short"}, "JWT_SECRET"),
    ({"MONGODB_URI": None}, "MONGODB_URI"),
    ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
    ({"JWT_PREVIOUS_SECRETS": "tooshort"}, "JWT_PREVIOUS_SECRETS"),
    ({"METRICS_TOKEN": None}, "METRICS_TOKEN"),
    ({"METRICS_TOKEN": "  "}, "METRICS_PUBLIC=true"),
    ({"METRICS_TOKEN": None, "METRICS_PUBLIC": "false"}, "METRICS_TOKEN"),
])
def test_production_refuses_to_start_and_says_why(change, named):
    env = {k: v for k, v in {**PRODUCTION, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=named) as raised:
        load_config(env=env)
    assert GOOD_SECRET not in str(raised.value)


@pytest.mark.parametrize("env", [{"PORT": "eighty"}, {"APP_ENV": "staging"}, {"BCRYPT_ROUNDS": "3"},
                                 {"TRUST_PROXY": "maybe"}, {"MAX_BODY_BYTES": "0"}])
def test_nonsense_values_are_refused(env):
    with pytest.raises(ConfigError):
        load_config(env=env)


def test_unknown_keys_in_the_file_are_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("port: 1\njwt_secret: in-the-repo\n")
    with pytest.raises(ConfigError, match="unknown"):
        load_config(env={}, path=path)


def test_env_example_documents_every_setting():
    text = (REPO_ROOT / ".env.example").read_text()
    documented = {line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    settings = {name.upper() for name in Config.__dataclass_fields__} - {"JWT_SECRETS"}
    assert documented == settings | {"JWT_SECRET", "JWT_PREVIOUS_SECRETS"}


def test_operations_defaults():
    config = load_config(env={})
    assert (config.host, config.web_concurrency, config.log_level, config.metrics_token) == ("127.0.0.1", 1, "info", "")


def test_operations_settings_from_the_environment():
    config = load_config(env={"HOST": "192.0.2.10", "WEB_CONCURRENCY": "4", "LOG_LEVEL": "DEBUG",
                              "METRICS_TOKEN": " t0ken ", "MONGODB_URI": "mongodb://db:27017/video_app"})
    assert (config.host, config.web_concurrency, config.log_level, config.metrics_token) == \
        ("192.0.2.10", 4, "debug", "t0ken")


@pytest.mark.parametrize(("env", "message"), [
    ({"WEB_CONCURRENCY": "2"}, "WEB_CONCURRENCY above 1 needs MONGODB_URI"),
    ({"WEB_CONCURRENCY": "0", "MONGODB_URI": "mongodb://db/x"}, "WEB_CONCURRENCY must be at least 1"),
    ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY must be a int"),
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be one of debug, info, warning, error"),
    ({"HOST": " "}, "HOST must name an address"),
])
def test_operations_settings_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env=env)


def test_metrics_token_comes_from_the_environment_only(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("metrics_token: in-a-file\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="metrics_token"):
        load_config(env={}, path=path)


def test_dotenv_fills_what_the_environment_leaves_unset(tmp_path, monkeypatch):
    from server.config import read_dotenv

    (tmp_path / ".env").write_text("LOG_LEVEL=debug\nDASHBOARD_VIDEO_COUNT=7\n", encoding="utf-8")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.delenv("DASHBOARD_VIDEO_COUNT", raising=False)
    assert read_dotenv(tmp_path / ".env") is True
    config = load_config()
    assert (config.log_level, config.dashboard_video_count) == ("warning", 7)
    monkeypatch.delenv("DASHBOARD_VIDEO_COUNT")  # read_dotenv set it in os.environ
    assert read_dotenv(tmp_path / "missing.env") is False


def test_account_defaults_follow_the_contract():
    config = load_config(env={})
    assert (config.refresh_ttl_seconds, config.refresh_reuse_grace_seconds) == (30 * 86400, 10)
    assert config.password_reset_ttl_seconds == 30 * 60
    assert config.smtp_url == "" and "{token}" in config.password_reset_url
    assert (config.email_verify_url, config.email_verify_ttl_seconds) == ("videoapp://verify?token={token}", 86400)
    assert (config.require_email_verification, config.mail_dir) == (False, ".mail")
    assert load_config(env={"REQUIRE_EMAIL_VERIFICATION": "true"}).require_email_verification is True


@pytest.mark.parametrize("env", [{"SMTP_URL": "http://mail.example.com"}, {"SMTP_URL": "smtp://u:p@host:port"},
                                 {"PASSWORD_RESET_URL": "videoapp://reset"}, {"REFRESH_TTL_SECONDS": "0"},
                                 {"REFRESH_REUSE_GRACE_SECONDS": "-1"}, {"PASSWORD_RESET_TTL_SECONDS": "0"},
                                 {"EMAIL_VERIFY_URL": "videoapp://verify"}, {"EMAIL_CHANGE_URL": "x"},
                                 {"EMAIL_VERIFY_TTL_SECONDS": "0"}, {"MAIL_DIR": ""}])
def test_account_settings_that_cannot_work_are_refused(env):
    with pytest.raises(ConfigError) as raised:
        load_config(env=env)
    assert ":p@" not in str(raised.value)


def test_production_starts_with_open_metrics_only_when_told_they_are_public():
    open_metrics = {k: v for k, v in PRODUCTION.items() if k != "METRICS_TOKEN"}
    config = load_config(env={**open_metrics, "METRICS_PUBLIC": "true"})
    assert (config.metrics_token, config.metrics_public) == ("", True)
    assert load_config(env={**PRODUCTION, "METRICS_PUBLIC": "true"}).metrics_token == "m" * 32
    assert not load_config(env={}).metrics_public  # development: open without being told


def test_production_lists_every_problem_at_once():
    """Three missing settings are one refusal naming all three, not three restarts."""
    with pytest.raises(ConfigError) as raised:
        load_config(env={"APP_ENV": "production", "CORS_ORIGINS": "*", "PORT": "eighty", "BCRYPT_ROUNDS": "3"})
    message = str(raised.value)
    for named in ("JWT_SECRET", "MONGODB_URI", "CORS_ORIGINS", "METRICS_TOKEN", "PORT", "BCRYPT_ROUNDS"):
        assert named in message


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${NAME:-default} (the only form docker-compose.yml may use for the API)."""
    def one(match):
        name, default = match.group(1), match.group(2)
        return variables.get(name) or default
    assert not re.search(r"\$\{[^}]*:\?", value), "a required variable stops compose before the app can say why"
    return re.sub(r"\$\{(\w+):-([^}]*)\}", one, value)


def _container_env(dotenv: dict[str, str]) -> dict[str, str]:
    """What `docker compose up` hands the API with this .env: env_file, then environment."""
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    api = compose["services"]["api"]
    assert api["env_file"] == [".env"]
    return {**dotenv, **{k: _interpolate(str(v), dotenv) for k, v in api["environment"].items()}}


def test_docker_compose_with_env_example_as_dotenv_starts_and_passes_every_variable():
    dotenv = _env_file(REPO_ROOT / ".env.example")
    container = _container_env(dotenv)
    # Every documented variable that .env sets reaches the container as .env sets it:
    # compose's ${NAME:-default} only fills in what .env leaves empty. The exceptions are
    # the values compose pins outright (no ${...}), which are meant to win over .env.
    environment = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["api"]["environment"]
    pinned = {name for name, value in environment.items() if "${" not in str(value)}
    set_in_dotenv = {name: f"set-in-dotenv-{name.lower()}" for name in dotenv}
    reached = _container_env(set_in_dotenv)
    assert {name: reached[name] for name in set_in_dotenv if name not in pinned} == {
        name: value for name, value in set_in_dotenv.items() if name not in pinned}
    assert container["MONGODB_URI"] == "mongodb://mongo:27017/video_app"
    config = load_config(env=container)
    assert not config.uses_embedded_store

    production = _container_env({**dotenv, "APP_ENV": "production", "JWT_SECRET": GOOD_SECRET,
                                 "METRICS_TOKEN": "m" * 32})
    assert load_config(env=production).is_production  # CORS_ORIGINS=* used to crash-loop here
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):  # .env.example's METRICS_PUBLIC=false
        load_config(env={**production, "METRICS_TOKEN": ""})


def test_the_mongodb_driver_is_motor_unless_pymongo_is_chosen():
    assert load_config(env={}).mongodb_driver == "motor"
    assert load_config(env={"MONGODB_DRIVER": "pymongo"}).mongodb_driver == "pymongo"
    with pytest.raises(ConfigError, match="MONGODB_DRIVER must be one of motor, pymongo"):
        load_config(env={"MONGODB_DRIVER": "mongoengine"})


def test_the_server_collects_garbage_less_often_and_leaves_start_up_objects_alone():
    import gc

    from server.runtime import GC_THRESHOLDS, tune_garbage_collector

    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

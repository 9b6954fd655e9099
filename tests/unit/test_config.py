"""Settings precedence and validation: flag > environment > conf file > default."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from pathlib import Path

import pytest

from core.config import PIPELINE_VARIABLES, SETTINGS, Settings, load_settings, without_pipeline_settings
from core.errors import ConfigError
from core.settings_table import settings_table, table_in


def _conf(tmp_path: Path, text: str) -> str:
    path = tmp_path / "conf.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_apply_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load_settings(environ={}, conf_path=_conf(tmp_path, ""))
    assert settings.igdb_rate_limit_per_second == 4.0
    assert settings.igdb_max_in_flight == 8
    assert settings.lake_uri == "./lake"
    assert settings.uses_sandbox
    assert settings.sources["lake_uri"] == "default"


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    conf = _conf(tmp_path, "igdb:\n  page_size: 100\n  max_in_flight: 5\n  max_attempts: 3\n")
    env = {"IGDB_PAGE_SIZE": "200", "IGDB_MAX_IN_FLIGHT": "6"}
    settings = load_settings({"igdb.page_size": "300"}, environ=env, conf_path=conf)
    assert settings.igdb_page_size == 300  # flag
    assert settings.igdb_max_in_flight == 6  # environment
    assert settings.igdb_max_attempts == 3  # file
    assert settings.igdb_retry_rounds == 3  # default
    assert settings.sources["igdb_max_in_flight"] == "environment variable IGDB_MAX_IN_FLIGHT"


def test_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    settings = load_settings(environ={"LAKE_URI": ""}, conf_path=_conf(tmp_path, "lake:\n  uri: /data/lake\n"))
    assert settings.lake_uri == "/data/lake"


def test_credentials_switch_off_the_sandbox_and_stay_secret(tmp_path: Path) -> None:
    settings = load_settings(environ={"IGDB_CLIENT_ID": "abc", "IGDB_CLIENT_SECRET": "very-secret",
                                      "DATABASE_URL": "postgresql://u:pw-123@db:5432/igdb"},
                             conf_path=_conf(tmp_path, ""))
    assert not settings.uses_sandbox
    assert set(settings.secrets()) >= {"very-secret", "pw-123"}
    shown = settings.describe()
    assert shown["igdb.client_secret"] == "***" and shown["database.url"] == "***"
    assert "very-secret" not in str(shown)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"IGDB_RATE_LIMIT": "0"}, "igdb.rate_limit_per_second from environment variable IGDB_RATE_LIMIT must be a "
                                   "positive number"),
        ({"IGDB_PAGE_SIZE": "1000"}, "igdb.page_size from environment variable IGDB_PAGE_SIZE must be at most 500"),
        ({"LOG_FORMAT": "xml"}, "log.format from environment variable LOG_FORMAT must be one of text, json"),
        ({"SANDBOX_LATENCY_MS": "600-200"}, "sandbox.latency_ms"),
        ({"LAKE_URI": "s3://"}, "lake.uri from environment variable LAKE_URI must name a bucket"),
        ({"IGDB_CLIENT_SECRET": "x"}, "IGDB_CLIENT_ID is missing"),
    ],
)
def test_invalid_values_name_the_setting_and_source(env: dict[str, str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(environ=env, conf_path=_conf(tmp_path, ""))


def test_file_values_are_validated_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"setting ingest.full_refresh_days from .*conf.yaml must be a positive"):
        load_settings(environ={}, conf_path=_conf(tmp_path, "ingest:\n  full_refresh_days: -1\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_settings(environ={}, conf_path=_conf(tmp_path, "- a\n- b\n"))


def test_the_readme_table_is_the_one_the_settings_declare() -> None:
    """The README's configuration table is generated (make readme-settings): any hand edit, and any
    setting added, renamed or re-described without regenerating it, fails here."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert table_in(readme) == settings_table(), "README settings table is stale: run `make readme-settings`"
    for setting in SETTINGS:
        assert f"| `{setting.key}` | `{setting.env}` |" in readme


def test_every_setting_is_a_typed_field_with_its_declaration() -> None:
    """mypy reads the fields' annotations; the declarations behind them drive parsing and the table."""
    declared = {f.name: f for f in dataclasses.fields(Settings) if "setting" in f.metadata}
    assert set(declared) == {s.attr for s in SETTINGS}
    hints = typing.get_type_hints(Settings)
    for name, f in declared.items():
        s = f.metadata["setting"]
        assert name == s.attr and f.default == s.default
        assert hints[name] is not typing.Any, f"{s.key} has no type"
        assert s.help.strip() and s.env, f"{s.key} lacks a description or an environment variable"
    settings = load_settings(environ={"IGDB_PAGE_SIZE": "42", "GUARDS_ACCEPT_DATES": "2026-11-02,2026-11-01"},
                             conf_path=None)
    assert settings.igdb_page_size == 42
    assert settings.guards_accept_dates == (dt.date(2026, 11, 1), dt.date(2026, 11, 2))
    with pytest.raises(AttributeError):
        settings.igdb_page_sise  # type: ignore[attr-defined]  # noqa: B018 - a misspelt setting is an error


def test_child_environments_drop_every_variable_the_pipeline_reads(tmp_path: Path) -> None:
    caller = {"IGDB_PAGE_SIZE": "42", "VALIDATION_MAX_QUARANTINE_SHARE": "0.5", "LOAD_PARALLEL_MARTS": "1",
              "SPARK_SHUFFLE_PARTITIONS": "3", "LOG_LEVEL": "debug", "PATH": "/usr/bin", "JAVA_HOME": "/opt/java"}
    conf = _conf(tmp_path, "")
    assert load_settings(environ=caller, conf_path=conf).igdb_page_size == 42  # the caller's would reach it
    child = without_pipeline_settings(caller)
    assert child == {"PATH": "/usr/bin", "JAVA_HOME": "/opt/java"}
    assert load_settings(environ=child, conf_path=conf) == load_settings(environ={}, conf_path=conf)
    assert {s.env for s in SETTINGS if s.env} | {"PIPELINE_ENV", "PIPELINE_CONF"} == PIPELINE_VARIABLES

"""The command line as a user meets it: help, exit codes, and errors that name the setting."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, DAY, cli_environ, sandbox_environ

SUBCOMMANDS = ["ingest", "transform", "validate", "load", "run", "backfill", "status", "gc", "sandbox"]


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=cli_environ(**env), cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_help_lists_every_subcommand(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_explains_itself(name: str, tmp_path: Path) -> None:
    result = run_cli(name, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "--set KEY=VALUE" in result.stdout
    if name in ("ingest", "transform", "validate", "load", "run"):
        assert "--date YYYY-MM-DD" in result.stdout


@pytest.mark.parametrize("bad", ["2026-13-01", "20261120", "yesterday", "2026-02-30"])
def test_a_bad_date_exits_2_and_says_why(bad: str, tmp_path: Path) -> None:
    result = run_cli("ingest", "--date", bad, cwd=tmp_path)
    assert result.returncode == 2
    assert "--date" in result.stderr and "YYYY-MM-DD" in result.stderr
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"IGDB_RATE_LIMIT": "fast"}, "igdb.rate_limit_per_second from environment variable IGDB_RATE_LIMIT"),
        ({"IGDB_MAX_IN_FLIGHT": "-3"}, "igdb.max_in_flight"),
        ({"IGDB_PAGE_SIZE": "501"}, "igdb.page_size"),
        ({"IGDB_API_URL": "api.igdb.com"}, "igdb.api_url"),
        ({"LAKE_URI": "ftp://host/lake"}, "lake.uri"),
        ({"INGEST_ENTITIES": "games,dragons"}, "ingest.entities"),
        ({"IGDB_CLIENT_ID": "only-the-id"}, "IGDB_CLIENT_SECRET is missing"),
        ({"PIPELINE_ENV": "staging"}, "conf/staging.yaml"),
    ],
)
def test_bad_configuration_exits_2_naming_the_setting(env: dict[str, str], named: str, tmp_path: Path) -> None:
    result = run_cli("ingest", "--date", DAY.isoformat(), cwd=tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr


def test_a_secret_in_bad_config_is_never_echoed(tmp_path: Path) -> None:
    result = run_cli("ingest", "--date", DAY.isoformat(), cwd=tmp_path, IGDB_CLIENT_SECRET="s3cr3t-value",
                     DATABASE_URL="mysql://user:hunter2-pw@db/x")
    assert result.returncode == 2
    assert "database.url" in result.stderr
    assert "s3cr3t-value" not in result.stderr + result.stdout
    assert "hunter2-pw" not in result.stderr + result.stdout


def test_conf_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("igdb:\n  page_size: [unclosed\n")
    result = run_cli("ingest", "--date", DAY.isoformat(), "--conf", str(broken), cwd=tmp_path)
    assert result.returncode == 2 and "broken.yaml is not valid YAML" in result.stderr

    typo = tmp_path / "typo.yaml"
    typo.write_text("igdb:\n  rate_limt_per_second: 4\n")
    result = run_cli("ingest", "--date", DAY.isoformat(), "--conf", str(typo), cwd=tmp_path)
    assert result.returncode == 2 and "unknown setting(s) igdb.rate_limt_per_second" in result.stderr

    result = run_cli("ingest", "--date", DAY.isoformat(), "--set", "igdb.nope=1", cwd=tmp_path)
    assert result.returncode == 2 and "igdb.nope" in result.stderr


def test_wrong_credentials_fail_clearly_without_the_secret(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=20)
    env = sandbox_environ(sandbox, tmp_path / "lake", IGDB_CLIENT_SECRET="wrong-secret-123")
    result = run_cli("ingest", "--date", DAY.isoformat(), cwd=tmp_path, **env)
    assert result.returncode == 1
    assert "check IGDB_CLIENT_ID and IGDB_CLIENT_SECRET" in result.stderr
    assert "wrong-secret-123" not in result.stderr + result.stdout


def test_ingest_without_credentials_uses_the_builtin_sandbox(tmp_path: Path) -> None:
    result = run_cli("ingest", "--date", DAY.isoformat(), "--set", "sandbox.games=150", "--log-format", "json",
                     cwd=tmp_path, IGDB_RATE_LIMIT="100")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "using the built-in IGDB sandbox" in result.stderr
    assert (tmp_path / "lake" / "raw" / "games" / f"dt={DAY}" / "_manifest.json").is_file()
    import json

    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    landed = [line for line in lines if line["msg"] == "landed games"]
    assert landed and landed[0]["records"] == 150 and landed[0]["dt"] == DAY.isoformat() and landed[0]["run_id"]
    assert "sandbox-secret" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run"], "give either --date YYYY-MM-DD or --catchup"),
        (["run", "--date", "2026-11-20", "--catchup"], "give either --date YYYY-MM-DD or --catchup"),
        (["run", "--date", "2026-11-20", "--until", "2026-11-21"], "--until goes with --catchup"),
        (["run", "--catchup", "--from-step", "load"], "--from-step goes with --date"),
        (["run", "--catchup", "--to-step", "validate"], "--to-step goes with --date"),
        (["run", "--date", "2026-11-20", "--from-step", "load", "--to-step", "validate"],
         "--from-step load comes after --to-step validate: nothing would run"),
        (["backfill", "--from", "2026-11-21", "--to", "2026-11-20"], "--to 2026-11-20 is before --from 2026-11-21"),
    ],
)
def test_run_and_backfill_usage_errors_exit_2(args: list[str], says: str, tmp_path: Path) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert says in result.stderr
    assert not (tmp_path / "lake").exists() and not (tmp_path / ".data").exists()


def test_load_before_validate_is_refused_with_exit_3(tmp_path: Path) -> None:
    result = run_cli("load", "--date", DAY.isoformat(), cwd=tmp_path)
    assert result.returncode == 3
    assert f"dt={DAY} has not been validated: run `igdb-pipeline validate --date {DAY}` first" in result.stderr


def test_validate_before_transform_names_the_missing_step(tmp_path: Path) -> None:
    result = run_cli("validate", "--date", DAY.isoformat(), cwd=tmp_path)
    assert result.returncode == 1
    assert f"run `igdb-pipeline transform --date {DAY}` before validating" in result.stderr


def test_transform_before_ingest_names_the_missing_step(tmp_path: Path) -> None:
    result = run_cli("transform", "--date", DAY.isoformat(), cwd=tmp_path)
    assert result.returncode == 1
    assert f"has no _manifest.json: run `igdb-pipeline ingest --date {DAY}` first" in result.stderr


@pytest.mark.parametrize("command", [["validate", "--date", DAY.isoformat()], ["run", "--date", DAY.isoformat()],
                                     ["backfill", "--from", DAY.isoformat(), "--to", DAY.isoformat()]])
def test_a_wrong_user_expectation_exits_2_before_any_work(command: list[str], tmp_path: Path) -> None:
    """A typo in conf/expectations is found before ingest or Spark start, naming the file and entry."""
    suite = tmp_path / "conf" / "expectations" / "marts" / "dim_games.json"
    suite.parent.mkdir(parents=True)
    suite.write_text(json.dumps({"expectations": [{"type": "expect_column_values_to_not_be_null",
                                                   "kwargs": {"column": "ratting"}}]}), encoding="utf-8")

    result = run_cli(*command, cwd=tmp_path)  # conf/expectations of the working folder, as documented

    assert result.returncode == 2, result.stderr
    assert f"{suite}, expectation 1: expect_column_values_to_not_be_null names column(s) ratting" in result.stderr
    assert "SparkContext" not in result.stderr and "Setting default log level" not in result.stderr
    assert not (tmp_path / "lake").exists()

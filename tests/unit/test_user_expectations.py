"""The users' own GX suites: read in GX's own format, refused with the file and entry named."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from great_expectations.expectations.metadata_types import FailureSeverity

from core.config import PROJECT_ROOT, expectations_folder
from core.errors import ConfigError
from jobs.validate.user_expectations import read_user_suites
from tests.conftest import BUCKET

EXAMPLES = PROJECT_ROOT / "docs" / "examples" / "expectations"
NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "name"}}


def _folder(tmp_path: Path, files: dict[str, Any]) -> str:
    root = tmp_path / "expectations"
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(root)


def test_the_documented_examples_are_valid_suites() -> None:
    """The README's worked examples are these files: they must stay loadable as written."""
    suites = read_user_suites(str(EXAMPLES))

    assert sorted(suites) == ["marts/dim_games", "staging/popularity_primitives"]
    games = suites["marts/dim_games"].expectations
    assert [e.expectation_type for e in games] == ["expect_column_values_to_match_regex",
                                                    "expect_column_values_to_be_between"]
    assert [e.severity for e in games] == [FailureSeverity.CRITICAL, FailureSeverity.WARNING]
    freshness = suites["staging/popularity_primitives"].expectations[0]
    assert freshness.severity == FailureSeverity.WARNING  # given in meta, as older GX files keep it
    assert freshness.configuration.kwargs["min_value"] == {"$PARAMETER": "now() - timedelta(days=2)"}


def test_a_suite_file_as_gx_writes_it_is_read_whole(tmp_path: Path) -> None:
    written_by_gx = {"name": "marts.dim_games", "id": "ee4b85a2-d812-4284-8969-15e69a8bff1b", "notes": None,
                     "meta": {"great_expectations_version": "1.24.1"},
                     "expectations": [{**NOT_NULL, "id": "c24b6f61-3e3c-4511-8fcf-6465bb5ab6bf",
                                       "meta": {"owner": "me"}, "severity": "warning",
                                       "description": "every game has a name"}]}
    suites = read_user_suites(_folder(tmp_path, {"marts/dim_games.json": written_by_gx}))

    (expectation,) = suites["marts/dim_games"].expectations
    assert expectation.severity == FailureSeverity.WARNING and expectation.description == "every game has a name"
    assert expectation.meta == {"owner": "me"}


@pytest.mark.parametrize(("files", "says"), [
    ({"marts/dim_games.json": "{not json"}, "marts/dim_games.json: not valid JSON"),
    ({"marts/dim_games.json": {"expectations": {}}}, "an object with an \"expectations\" list"),
    ({"marts/dim_games.json": {"expectations": [NOT_NULL, {"type": "expect_games_to_be_fun", "kwargs": {}}]}},
     "marts/dim_games.json, expectation 2: expect_games_to_be_fun is not an expectation type GX knows"),
    ({"marts/dim_games.json": {"expectations": [{"type": "expect_column_values_to_be_between",
                                                 "kwargs": {"column": "rating", "min_value": "high"}}]}},
     "expectation 1: expect_column_values_to_be_between is not a valid GX expectation: "),
    ({"marts/dim_games.json": {"expectations": [{"type": "expect_column_values_to_not_be_null",
                                                 "kwargs": {"column": "ratting"}}]}},
     "expectation 1: expect_column_values_to_not_be_null names column(s) ratting that the output does not have"),
    ({"marts/dim_games.json": {"expectations": [{**NOT_NULL, "severity": "fatal"}]}},
     "expectation 1: severity 'fatal' is not one of critical, warning, info"),
    ({"marts/dim_games.json": {"expectations": [{**NOT_NULL, "severity": "warning",
                                                 "meta": {"severity": "critical"}}]}}, "disagree"),
    ({"marts/dim_games.json": {"expectations": [{**NOT_NULL, "kwarg": {}}]}}, "unknown field(s) kwarg"),
    ({"marts/dim_game.json": {"expectations": [NOT_NULL]}}, "marts/dim_game.json: not the suite of an output"),
    ({"marts/dim_games.json": {"name": "marts/fct_game_popularity", "expectations": [NOT_NULL]}},
     "the suite is named 'marts/fct_game_popularity' but its file is marts/dim_games's"),
])
def test_a_wrong_suite_file_is_a_config_error_naming_file_and_entry(files: dict[str, Any], says: str,
                                                                     tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        read_user_suites(_folder(tmp_path, files))
    assert says in str(refused.value)


def test_a_table_rule_may_name_columns_the_output_lacks_but_a_column_rule_may_not(tmp_path: Path) -> None:
    """expect_table_columns_to_match_set names columns to look for: that is its check, not a typo."""
    table_rule = {"type": "expect_table_columns_to_match_set", "kwargs": {"column_set": ["name", "metacritic"]}}
    assert read_user_suites(_folder(tmp_path, {"marts/dim_games.json": {"expectations": [table_rule]}}))
    compound = {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["name", "metacritic"]}}
    with pytest.raises(ConfigError, match="names column\\(s\\) metacritic"):
        read_user_suites(_folder(tmp_path / "2", {"marts/dim_games.json": {"expectations": [compound]}}))


def test_the_folder_is_the_setting_else_conf_expectations_when_present(tmp_path: Path) -> None:
    assert expectations_folder(None, tmp_path / "project", cwd=tmp_path) is None
    (tmp_path / "conf" / "expectations").mkdir(parents=True)
    assert expectations_folder(None, tmp_path / "project", cwd=tmp_path) == str(tmp_path / "conf" / "expectations")
    assert expectations_folder(str(EXAMPLES), tmp_path) == str(EXAMPLES)
    assert expectations_folder("s3://bucket/conf/expectations", tmp_path) == "s3://bucket/conf/expectations"
    with pytest.raises(ConfigError, match="VALIDATION_EXPECTATIONS_DIR"):
        expectations_folder(str(tmp_path / "missing"), tmp_path)


def test_the_readme_shows_the_examples_as_they_are() -> None:
    """The README's two worked examples are the files under docs/examples/expectations, word for word."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    shown = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", readme, flags=re.S)]
    files = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(EXAMPLES.rglob("*.json"))]
    assert sorted(shown, key=json.dumps) == sorted(files, key=json.dumps)


def test_suites_under_an_s3_prefix_read_as_the_same_folder_does(aws_endpoint: str) -> None:
    """On EMR the folder is uploaded beside the bundle and named by VALIDATION_EXPECTATIONS_DIR."""
    import boto3

    s3 = boto3.client("s3")
    for path in EXAMPLES.rglob("*.json"):
        s3.put_object(Bucket=BUCKET, Key=f"conf/expectations/{path.relative_to(EXAMPLES)}", Body=path.read_bytes())

    from_s3 = read_user_suites(f"s3://{BUCKET}/conf/expectations")

    local = read_user_suites(str(EXAMPLES))
    assert sorted(from_s3) == sorted(local)
    for output, suite in from_s3.items():
        assert suite.source == f"s3://{BUCKET}/conf/expectations/{output}.json"
        assert [e.configuration.to_json_dict() for e in suite.expectations] == \
            [e.configuration.to_json_dict() for e in local[output].expectations]

"""The lake on S3, through moto's server mode over real HTTP (no in-process patching)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import pytest

from core.lake import S3Lake
from ingestion.ingest import ingest
from tests.conftest import BUCKET, DAY, settings_for


def _objects(prefix: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in keys}


def test_ingest_lands_partitions_and_state_in_s3(aws_endpoint: str, make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=400)
    uri = f"s3://{BUCKET}/igdb"
    settings = settings_for(sandbox, uri, IGDB_PAGE_SIZE=50, INGEST_ENTITIES="games,genres",
                            PIPELINE_DATA_DIR=str(tmp_path / "data"))
    ingest(settings, DAY, "run-1")

    games = _objects(f"igdb/raw/games/dt={DAY}/")
    manifest = json.loads(games.pop(f"igdb/raw/games/dt={DAY}/_manifest.json"))
    assert manifest["records"] == 400
    assert {f"igdb/raw/games/dt={DAY}/{f['name']}" for f in manifest["files"]} == set(games)
    for entry in manifest["files"]:
        body = games[f"igdb/raw/games/dt={DAY}/{entry['name']}"]
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert len(body.splitlines()) == entry["records"]
    ids = [json.loads(line)["id"] for key in sorted(games) for line in games[key].splitlines()]
    assert ids == sandbox.state.store.ids("games")
    assert json.loads(_objects("igdb/state/watermarks.json")["igdb/state/watermarks.json"])["games"]["watermark"]
    assert not _objects("igdb/raw/games/_tmp/"), "staged uploads were left behind"

    # a rerun of the date replaces it: same objects, nothing doubled, nothing stale
    before = _objects(f"igdb/raw/games/dt={DAY}/")
    ingest(settings, DAY, "run-2")
    after = _objects(f"igdb/raw/games/dt={DAY}/")
    assert set(after) == set(before)
    assert {k: v for k, v in after.items() if "part-" in k} == {k: v for k, v in before.items() if "part-" in k}


def test_s3_publish_removes_files_the_new_partition_no_longer_has(aws_endpoint: str, tmp_path: Path) -> None:
    lake = S3Lake(f"s3://{BUCKET}/p", staging_root=tmp_path)
    with lake.staged_partition("raw/x/dt=2026-01-01", "a") as folder:
        for name in ("part-00000.jsonl", "part-00001.jsonl", "_manifest.json"):
            (folder / name).write_text(name)
    with lake.staged_partition("raw/x/dt=2026-01-01", "b") as folder:
        (folder / "part-00000.jsonl").write_text("new")
        (folder / "_manifest.json").write_text("{}")
    assert lake.list_files("raw/x/dt=2026-01-01") == ["_manifest.json", "part-00000.jsonl"]
    assert lake.read_text("raw/x/dt=2026-01-01/part-00000.jsonl") == "new"


def test_s3_failed_build_leaves_the_old_partition(aws_endpoint: str, tmp_path: Path) -> None:
    lake = S3Lake(f"s3://{BUCKET}/p", staging_root=tmp_path)
    with lake.staged_partition("raw/y/dt=2026-01-01", "a") as folder:
        (folder / "part-00000.jsonl").write_text("old")
        (folder / "_manifest.json").write_text("{}")
    with pytest.raises(RuntimeError), lake.staged_partition("raw/y/dt=2026-01-01", "b") as folder:
        (folder / "part-00000.jsonl").write_text("half")
        raise RuntimeError("the fetch failed")
    assert lake.read_text("raw/y/dt=2026-01-01/part-00000.jsonl") == "old"
    assert lake.read_text("raw/y/dt=2026-01-01/_manifest.json") == "{}"
    assert not _objects("p/raw/y/_tmp/")

"""The checks `make reliability` trusts must themselves catch what they claim to catch."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import duckdb

from reliability import checks

DAY = dt.date(2026, 11, 20)


def _raw_partition(lake: Path, lines: list[bytes]) -> Path:
    folder = lake / "raw" / "games" / f"dt={DAY}"
    folder.mkdir(parents=True)
    data = b"".join(line + b"\n" for line in lines)
    (folder / "part-00000.jsonl").write_bytes(data)
    manifest = {"files": [{"name": "part-00000.jsonl", "records": len(lines), "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()}], "records": len(lines)}
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_whole_raw_partition_has_a_digest_and_its_ids(tmp_path: Path) -> None:
    _raw_partition(tmp_path, [b'{"id": 2}', b'{"id": 1}', b'{"name": "no id"}'])
    states = checks.partition_states(tmp_path, DAY, ["games", "genres"])
    assert states["raw/games"] not in (checks.ABSENT,) and not states["raw/games"].startswith("partial")
    assert states["raw/genres"] == checks.ABSENT
    assert checks.raw_ids(tmp_path, "games", DAY) == [2, 1]


def test_a_raw_file_cut_short_or_missing_is_partial(tmp_path: Path) -> None:
    folder = _raw_partition(tmp_path, [b'{"id": 1}', b'{"id": 2}'])
    (folder / "part-00000.jsonl").write_bytes(b'{"id": 1}\n')
    assert checks.partition_states(tmp_path, DAY, ["games"])["raw/games"].startswith("partial")
    (folder / "part-00000.jsonl").unlink()
    assert "missing" in checks.partition_states(tmp_path, DAY, ["games"])["raw/games"]


def test_a_parquet_partition_with_a_file_missing_or_doubled_has_another_digest(tmp_path: Path) -> None:
    folder = tmp_path / "marts" / "dim_games" / f"dt={DAY}"
    folder.mkdir(parents=True)
    with duckdb.connect() as con:
        for part, ids in enumerate(([1, 2], [3])):
            con.execute(f"COPY (SELECT unnest({ids}) AS game_id) TO '{folder}/part-{part}.parquet' (FORMAT parquet)")
    whole = checks.partition_states(tmp_path, DAY, [])["marts/dim_games"]
    (folder / ".part-9.parquet.crc").write_bytes(b"hidden files are not read")
    assert checks.partition_states(tmp_path, DAY, [])["marts/dim_games"] == whole
    (folder / "part-1.parquet").rename(folder / "_part-1.parquet")
    assert checks.partition_states(tmp_path, DAY, [])["marts/dim_games"] != whole
    (folder / "_part-1.parquet").rename(folder / "part-1.parquet")
    (folder / "part-2.parquet").write_bytes((folder / "part-0.parquet").read_bytes())
    assert checks.partition_states(tmp_path, DAY, [])["marts/dim_games"] != whole
    assert checks.partition_states(tmp_path, DAY, [])["marts/fct_game_popularity"] == checks.ABSENT


def test_secrets_are_found_in_any_file_below_the_root(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "manifest.json").write_text('{"url": "postgresql://u:hunter22@db/x"}')
    (tmp_path / "clean.txt").write_text("nothing here")
    assert checks.files_containing(tmp_path, ["hunter22", "", "absent-value"]) == ["a/b/manifest.json: hunt..."]


def test_doubled_lists_each_repeated_id_once() -> None:
    assert checks.doubled([3, 1, 3, 2, 1, 3]) == [1, 3]
    assert checks.doubled([]) == []

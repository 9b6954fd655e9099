"""Schema drift against the sandbox over HTTP: a field IGDB adds, a declared field it stops returning."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from core.entities import ENTITIES
from core.lake import LocalLake
from ingestion.drift import check_drift, entity_drift
from ingestion.ingest import igdb_client, ingest
from ingestion.multiquery import page_source
from ingestion.sandbox.faults import Faults
from tests.conftest import DAY, settings_for

D2, D3 = DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)


def _drift(lake: Path, day: dt.date) -> dict:
    return json.loads((lake / f"reports/drift/dt={day}/summary.json").read_text())["entities"]


def test_a_new_field_and_a_field_no_longer_returned_are_reported(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=150)
    store = sandbox.state.store
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, INGEST_PARALLEL_RANGES=2)

    first = ingest(settings, DAY, "d1")
    assert all(r.drift is not None and not r.drift.drifted for r in first), [r.drift for r in first]
    manifest = json.loads((lake / f"raw/games/dt={DAY}/_manifest.json").read_text())
    assert "storyline" in manifest["fields_seen"] and "id" in manifest["fields_seen"]

    # IGDB adds a field to every game (and a documented one we do not use), and stops sending storyline
    store.put("games", [{**{k: v for k, v in g.items() if k != "storyline"}, "pulse_score": 7, "checksum": "ab"}
                        for g in store.records("games")])
    second = {r.entity: r.drift for r in ingest(settings, D2, "d2", full_refresh=True)}
    games = second["games"]
    assert games is not None and games.new == ["pulse_score"] and games.gone == ["storyline"]
    assert games.compared_with == DAY.isoformat() and games.sampled == 150
    assert not any(d is not None and d.drifted for e, d in second.items() if e != "games")
    report = _drift(lake, D2)
    assert report["games"]["new"] == ["pulse_score"] and report["games"]["gone"] == ["storyline"]
    # nothing fails and nothing is dropped: the landed records are the declared fields, as before
    landed = (lake / f"raw/games/dt={D2}").glob("part-*.jsonl")
    assert not any("pulse_score" in p.read_text() for p in landed)

    # an incremental day cannot tell that a field is gone (few records): only new fields are judged
    store.touch("games", 0, sandbox.state.dice, ids=store.ids("games")[:3])
    third = {r.entity: r.drift for r in ingest(settings, D3, "d3")}
    assert third["games"] is not None and third["games"].gone is None and third["games"].new == ["pulse_score"]


def test_a_failed_sample_is_noted_never_fatal(make_sandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(games=50)
    lake = tmp_path / "lake"
    settings = settings_for(sandbox, lake, INGEST_ENTITIES="genres", INGEST_DRIFT_CHECK="false",
                            IGDB_MAX_ATTEMPTS=1, IGDB_RETRY_ROUNDS=0)
    [report] = ingest(settings, DAY, "d1")
    assert report.records == 23 and report.drift is None  # not asked for
    sandbox.set_faults(Faults(error_rate=1.0))  # the API breaks after the day's data landed
    with igdb_client(settings) as client, page_source(client, True, 10) as source:
        found = check_drift(source, LocalLake(lake), DAY, ["genres"], 500)
    assert found["genres"].note.startswith("not checked") and not found["genres"].drifted
    assert _drift(lake, DAY)["genres"]["note"].startswith("not checked")


def test_fields_documented_as_unused_are_not_drift() -> None:
    spec = ENTITIES["games"]
    drift = entity_drift(spec, {*spec.fields, *spec.unused_fields}, 10, None, None)
    assert drift.new == [] and drift.gone is None

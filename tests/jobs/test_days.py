"""Day after day on one lake and one database: deletions, a comeback, guards, an empty mart, a failed date.

One story, told once (module fixture), then checked claim by claim. After every date that loads,
PostgreSQL must equal the truth computed in plain Python from what the sandbox served
(reliability/truth.py), not from the pipeline's own code.
  D1  full refresh: the first catalogue;
  D2  incremental: ratings change, one game loses every genre, another one genre, a genre is
      renamed, two games are added;
  D3  full refresh that no longer finds four games: deleted as of D3, with their bridges, facts
      and marketing rows;
  D4  a game's record arrives with a wrong type: quarantined, over the 0% threshold, so the gate
      fails; D5 (ingested meanwhile, the record fixed) then stops at its transform, naming D4; D4
      is rerun with the quarantine accepted and loads, then D5 runs;
  D6  a full refresh truncated to a tenth of the catalogue: the change guards refuse it; an
      older date (D2) loaded again meanwhile changes nothing; the operator accepts D6;
  D7  full refresh with the catalogue back (a comeback of one of D3's deleted games too) and no
      upcoming game left: mart_top_hyped is empty and loaded as empty for D7; D6 loaded again
      re-deletes nothing. D7's lake alone, loaded into an empty schema, gives the same catalogue.
  gc  keeping one day, as of D9: D1..D7 are old, only what D8 reads of D7 stays; D8 then runs on
      what is left and gives the outputs it gives on a copy of the lake from before gc.
Every run is real: the sandbox over HTTP, the shared local SparkSession, a real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from core.errors import ExitCode
from core.lake import LocalLake
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import start_sandbox
from ingestion.sandbox.store import Store
from jobs.datasets import DATASETS
from jobs.transform.run import run_transform
from pipeline.runner import StepFailed, collect_garbage, run_date, run_single_step
from pipeline.steps import SparkHandle
from reliability.checks import parquet_rows, table_digests
from reliability.truth import RANKED_MARTS, Truth, differences, loaded
from tests.conftest import FAST_LIMITS, settings_for

pytestmark = pytest.mark.slow  # an end-to-end scenario: xdist starts it first (tests/conftest.py)

D1, D2, D3, D4, D5, D6, D7, D8 = (dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(8))
TOP_N = 10


def _failure(call: Any) -> StepFailed:
    with pytest.raises(StepFailed) as caught:
        call()
    return caught.value


@pytest.fixture(scope="module")
def days(spark, pg_url, tmp_path_factory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("days")
    lake = root / "lake"
    schema = "days_story"
    sandbox = start_sandbox(Store.generated(GeneratorSpec(games=120, seed=9)), limits=FAST_LIMITS)
    store = sandbox.state.store
    handle = SparkHandle.of(spark)
    truth = Truth(TOP_N)
    seen: dict[str, Any] = {"lake": lake, "schema": schema, "url": pg_url, "checks": {}}

    def settings(**extra: Any) -> Any:  # a full refresh only when a date asks for one
        return settings_for(sandbox, lake, **{"DATABASE_URL": pg_url, "DATABASE_SCHEMA": schema,
                                              "MARTS_TOP_N": TOP_N, "INGEST_FULL_REFRESH_DAYS": 100, **extra})

    def loaded_and_checked(day: dt.date) -> None:
        truth.fold(lake, day)
        seen["checks"][day] = differences(truth.expected(), loaded(pg_url, schema))

    def full_refresh(day: dt.date) -> None:
        run_single_step(settings(), day, "ingest", handle, full_refresh=True)

    try:
        seen["d1"] = run_date(settings(), D1, handle)
        loaded_and_checked(D1)

        games = store.records("games")
        ids = [g["id"] for g in games]
        for game in games[5:8]:
            store.update("games", game["id"], total_rating=55.5, total_rating_count=game["total_rating_count"] + 3)
        emptied = next(g for g in games[10:] if len(g.get("genres") or []) >= 1)
        store.update("games", emptied["id"], genres=[])
        narrowed = next(g for g in games[20:] if len(g.get("genres") or []) >= 2)
        store.update("games", narrowed["id"], genres=narrowed["genres"][1:])
        genre = max(store.ids("genres"), key=lambda g: sum(g in (x.get("genres") or []) for x in games))
        store.update("genres", genre, name="Renamed Überspiel")
        added = [store.create("games", sandbox.state.dice) for _ in range(2)]
        seen.update(emptied=emptied["id"], narrowed=narrowed["id"], genre=genre, added=added)
        seen["d2"] = run_date(settings(), D2, handle)
        loaded_and_checked(D2)

        deleted = store.delete("games", ids[30:34])
        seen["deleted"] = [g["id"] for g in deleted]
        full_refresh(D3)
        seen["d3"] = run_date(settings(), D3, handle)
        loaded_and_checked(D3)

        bad = ids[40]
        store.update("games", bad, total_rating="ninety")
        seen["bad"] = bad
        seen["d4_failure"] = _failure(lambda: run_date(settings(VALIDATION_MAX_QUARANTINE_SHARE="0"), D4, handle))
        store.update("games", bad, total_rating=71.5)  # IGDB fixes the record before D5 is fetched
        run_single_step(settings(), D5, "ingest", handle)
        seen["d5_failure"] = _failure(lambda: run_date(settings(), D5, handle))
        # the operator accepts D4's one quarantined line (of the few games that changed that day)
        seen["d4"] = run_date(settings(VALIDATION_MAX_QUARANTINE_SHARE="0.5"), D4, handle)
        loaded_and_checked(D4)
        seen["d5"] = run_date(settings(), D5, handle)
        loaded_and_checked(D5)

        hidden = store.delete("games", store.ids("games")[12:])
        full_refresh(D6)
        seen["d6_failure"] = _failure(lambda: run_date(settings(), D6, handle))
        before = table_digests(pg_url, schema)
        seen["d2_again"] = run_date(settings(LOAD_MODE="full"), D2, handle, from_step="load")
        seen["unchanged_by_d2_again"] = table_digests(pg_url, schema) == before
        seen["d6"] = run_date(settings(), D6, handle, accept_changes=True)
        loaded_and_checked(D6)

        store.put("games", [*hidden, deleted[0]])  # the catalogue is whole again, one D3 deletion comes back
        seen["comeback"] = deleted[0]["id"]
        upcoming = [g["id"] for g in store.records("games")
                    if g.get("first_release_date", 0) > int(dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp())]
        for game_id in upcoming:  # every upcoming game is released: no game for mart_top_hyped
            store.update("games", game_id, first_release_date=1_700_000_000)
        seen["upcoming"] = upcoming
        full_refresh(D7)
        seen["d7"] = run_date(settings(), D7, handle)
        loaded_and_checked(D7)
        before = table_digests(pg_url, schema)
        seen["d6_again"] = run_date(settings(LOAD_MODE="full"), D6, handle, from_step="load")
        seen["unchanged_by_d6_again"] = table_digests(pg_url, schema) == before

        replay = f"{schema}_replay"  # D7's marts alone into an empty schema
        run_single_step(settings(DATABASE_SCHEMA=replay), D7, "load", handle)
        seen["reports"] = {day: json.loads((lake / f"reports/transform/dt={day}/summary.json").read_text())
                           for day in (D2, D3, D6)}
        seen["replayed"] = loaded(pg_url, replay)
        seen["story"] = loaded(pg_url, schema)
        seen["truth"] = truth

        # retention keeping one day as of D9: all of D1..D7 is old, D7 is what D8 builds on. D8 then
        # runs on what is left as on the whole lake
        whole = root / "whole-lake"
        shutil.copytree(lake, whole)
        seen["gc"] = collect_garbage(settings(RETENTION_DAYS="1"), D8 + dt.timedelta(days=1))
        seen["d8"] = run_date(settings(), D8, handle)
        for entity_dir in (lake / "raw").iterdir():
            shutil.copytree(entity_dir / f"dt={D8}", whole / "raw" / entity_dir.name / f"dt={D8}")
        run_transform(spark, LocalLake(whole), D8, top_n=TOP_N)
        seen["d8_outputs"] = {ds.rel_path: (parquet_rows(lake / ds.partition_rel_path(str(D8))),
                                            parquet_rows(whole / ds.partition_rel_path(str(D8))))
                              for ds in DATASETS.values()}
        yield seen
    finally:
        sandbox.stop()


def test_after_every_loaded_date_postgresql_equals_the_truth_from_what_the_sandbox_served(days) -> None:
    assert list(days["checks"]) == [D1, D2, D3, D4, D5, D6, D7]
    for day, problems in days["checks"].items():
        assert not problems, f"dt={day}: " + "\n".join(problems)


def test_the_story_exercised_what_it_claims(days) -> None:
    story, truth = days["story"], days["truth"]
    catalogue = {row[0]: row for row in story["dim_games"]}
    assert catalogue[days["emptied"]][4] == () and not [b for b in story["game_genres"] if b[0] == days["emptied"]]
    assert "Renamed Überspiel" in {row[1] for row in story["dim_genres"]}
    assert all(game in catalogue for game in days["added"])
    assert days["upcoming"], "the catalogue had no upcoming game: the empty mart proved nothing"
    deleted_d3 = set(days["deleted"]) - {days["comeback"]}
    assert {g for g, row in catalogue.items() if row[3] == D3} == deleted_d3
    assert catalogue[days["comeback"]][3] is None  # live again after its comeback
    assert days["reports"][D6]["deletions"]["dim_games"]["deleted"] >= 100  # D6 deleted nine tenths...
    assert not [row for row in story["dim_games"] if row[3] == D6]  # ...all live again after D7
    assert set(truth.deleted) == deleted_d3


def test_deleted_games_leave_bridges_fact_and_marketing_marts_of_every_date(days) -> None:
    story = days["story"]
    gone = set(days["deleted"]) - {days["comeback"]}
    for table in ("game_platforms", "game_genres", "game_themes", "game_modes", "game_player_perspectives"):
        assert not [row for row in story[table] if row[0] in gone], table
    assert not [row for row in story["fct_game_popularity"] if row[1] in gone]
    for mart in RANKED_MARTS:
        assert not [row for row in story[mart] if row[2] in gone], mart
    # the comeback is back in D7's fact, and only there (its history up to D3 left with its deletion)
    comeback_days = sorted(row[0] for row in story["fct_game_popularity"] if row[1] == days["comeback"])
    assert comeback_days == [D7]


def test_a_failed_date_blocks_the_next_until_it_is_fixed(days) -> None:
    failure = days["d4_failure"]
    assert failure.step == "validate" and failure.exit_code == ExitCode.VALIDATION
    blocked = days["d5_failure"]
    assert blocked.step == "transform" and blocked.exit_code == ExitCode.FAILED
    assert f"dt={D5} would build on the catalogue of dt={D4}, which has not passed validation" in str(blocked)
    assert f"dt={D4} failed validation" in str(blocked)
    assert list(days["d4"].ran) == ["validate", "load"] and list(days["d5"].ran) == ["transform", "validate", "load"]
    catalogue = {row[0]: row for row in days["story"]["dim_games"]}
    assert days["bad"] in catalogue and catalogue[days["bad"]][3] is None  # quarantined, not deleted


def test_a_truncated_full_refresh_is_refused_by_the_guards_and_loads_once_accepted(days) -> None:
    failure = days["d6_failure"]
    assert failure.step == "validate" and failure.exit_code == ExitCode.VALIDATION
    text = str(failure)
    assert "checks/history: a full refresh deletes at most 5.0% of the catalogue" in text
    assert f"live games of dt={D5} deleted" in text and "setting guards.max_deleted_share" in text
    assert f"against dt={D5}, the last date loaded" in text and "setting guards.max_drop_share" in text
    summary = days["d6"].markers["validate"]["details"]
    assert summary["accepted_changes"] and list(days["d6"].ran) == ["validate", "load"]
    assert {w["suite"] for w in summary["warnings"]} >= {"checks/history"}


def test_loading_an_older_date_again_never_resurrects_nor_re_deletes(days) -> None:
    assert days["d2_again"].markers["load"]["details"]["marts"]["dim_games"]["mode"] == "full"
    assert days["unchanged_by_d2_again"], "reloading D2 after D3 and D6 changed a table"
    assert days["unchanged_by_d6_again"], "reloading D6 after D7 changed a table"


def test_an_empty_ranked_mart_is_a_warning_and_is_loaded_as_empty(days) -> None:
    warned = {(w["suite"], w["description"]) for w in days["d7"].markers["validate"]["details"]["warnings"]}
    assert ("marts/mart_top_hyped", "at least 1 row(s): a ranked mart no game qualifies for is loaded as empty "
                                    "(load.on_empty)") in warned
    assert not [row for row in days["story"]["mart_top_hyped"] if row[0] == D7]
    assert days["d7"].markers["load"]["details"]["marts"]["mart_top_hyped"]["rows"] == 0
    assert days["d5"].markers["load"]["details"]["marts"]["mart_top_hyped"]["rows"] > 0  # it had rows before


def test_the_lake_alone_replays_the_deletions(days) -> None:
    for table in ("dim_games", "game_genres", "game_platforms", "dim_genres"):
        assert days["replayed"][table] == days["story"][table], table


def test_the_transform_reports_the_deletions_and_their_evidence(days) -> None:
    catalogue = days["reports"][D3]["deletions"]["dim_games"]
    assert catalogue["deleted"] == 4 and catalogue["evidence"] == "complete full refresh"
    assert catalogue["base"] == D2.isoformat() and catalogue["live"] == catalogue["previous_live"] - 4
    quiet = days["reports"][D2]
    assert quiet["deletions"]["dim_games"]["deleted"] == 0
    assert quiet["deletions"]["dim_games"]["evidence"].startswith("incremental")


def test_gc_keeps_what_the_next_date_reads(days) -> None:
    plan, lake = days["gc"], days["lake"]
    assert sorted(plan.remove) == [D1, D2, D3, D4, D5, D6, D7] and not plan.busy
    assert not (lake / "raw" / "games" / f"dt={D1}").exists()
    assert not (lake / "marts" / "dim_games" / f"dt={D6}").exists()
    # D7's raw and staging go; its catalogue, dimensions, fact and reports stay: D8 reads them
    assert not (lake / "raw" / "games" / f"dt={D7}").exists() and not (lake / "staging" / "games" / f"dt={D7}").exists()
    kept = {p.split("/dt=")[0] for p in plan.kept}
    assert kept == {"marts/fct_game_popularity", "reports/transform", "reports/validation",
                    *(f"marts/dim_{e}" for e in ("games", "platforms", "genres", "themes", "game_modes",
                                                 "player_perspectives", "popularity_types"))}
    assert (lake / "_done" / "load" / f"dt={D1}").is_file(), "the done markers stay"
    assert list(days["d8"].ran) == ["ingest", "transform", "validate", "load"]
    for output, (after_gc, whole) in days["d8_outputs"].items():
        assert after_gc == whole, f"{output}/dt={D8} differs after gc"
    assert days["d8_outputs"]["marts/dim_games"][0], "D8 wrote no catalogue: the comparison proved nothing"


def test_after_a_full_refresh_the_bridges_send_only_the_sets_of_changed_games(days) -> None:
    """D3 lists every game again: the catalogue sends the rows that differ from D2 (the deleted
    ones), and the bridges follow it, sending no set of a game whose row did not change."""
    marts = days["d3"].markers["load"]["details"]["marts"]
    assert marts["dim_games"]["mode"] == "delta" and marts["dim_games"]["staged"] == 4
    for bridge in ("game_platforms", "game_genres", "game_themes", "game_modes", "game_player_perspectives"):
        assert marts[bridge]["mode"] == "delta" and marts[bridge]["staged"] == 0, (bridge, marts[bridge])
    assert marts["game_genres"]["rows"] > 100  # the whole sets a full refresh used to send

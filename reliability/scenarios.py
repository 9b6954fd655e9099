"""The reliability scenarios: each drives `igdb-pipeline` as a real process against the sandbox and
PostgreSQL, then checks "nothing lost, nothing doubled" on what the runs left behind.

A scenario returns an Outcome: PASS when `problems` is empty, with the figures that show it ran
what it claims (kills that landed, faults the sandbox really injected, lines quarantined).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

from core.entities import ENTITIES
from core.errors import ExitCode
from ingestion.sandbox.faults import FaultDice, Faults, Limits
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, RunningSandbox, start_sandbox
from ingestion.sandbox.store import Store
from pipeline.ledger import STEPS
from pipeline.progress import marker_path
from reliability import checks
from reliability.truth import Truth, differences, loaded
from reliability.world import Postgres, Run, World

D1 = dt.date(2026, 11, 20)
D2 = D1 + dt.timedelta(days=1)
# The limits are enforced, just higher than IGDB's: these scenarios are about faults, not rate.
FAST = Limits(per_second=200.0, max_open=8)
ALL_FAULTS = Faults(error_rate=0.10, burst_429_rate=0.05, burst_429_length=3, retry_after_seconds=0.05,
                    drop_rate=0.05, truncate_rate=0.05, token_ttl_seconds=0.5, announced_ttl_seconds=3600,
                    latency_ms=(0, 10))


@dataclass
class Outcome:
    name: str
    figures: str = ""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        text = f"{verdict}  {self.name:<22} {self.figures}  ({self.seconds:.0f} s)"
        return text + "".join(f"\n      - {p}" for p in self.problems[:8])


@dataclass
class Context:
    """What every scenario shares: a scratch folder, the PostgreSQL server, the seed, the sizes."""

    root: Path
    postgres: Postgres
    seed: int = 7
    games: int = 300
    kill_trials: int = 20

    @contextmanager
    def sandbox(self, faults: Faults | None = None, store: Store | None = None,
                client_id: str = SANDBOX_CLIENT_ID, client_secret: str = SANDBOX_CLIENT_SECRET,
                ) -> Iterator[RunningSandbox]:
        running = start_sandbox(store or Store.generated(GeneratorSpec(games=self.games, seed=self.seed)),
                                limits=FAST, faults=faults, client_id=client_id, client_secret=client_secret)
        try:
            yield running
        finally:
            running.stop()


def expect_ok(run: Run, problems: list[str], what: str) -> bool:
    if run.code != 0:
        problems.append(f"{what}: {run.describe()}")
        return False
    return True


def mutate_catalogue(store: Store, count: int, rng: random.Random) -> list[int]:
    """Edit some games as IGDB editors do: a new rating, one genre fewer; returns their ids."""
    ids = rng.sample(store.ids("games"), count)
    current = {r["id"]: r for r in store.records("games")}
    for game_id in ids:
        genres = list(current[game_id].get("genres") or [])
        store.update("games", game_id, total_rating=round(rng.uniform(10, 99), 2), genres=genres[1:])
    return ids


# -- SIGKILL at a random point of each step ------------------------------------------------------

def kill_each_step(ctx: Context) -> Outcome:
    """Kill `run` at a seeded random point inside each step; the rerun must equal a clean run.

    A clean world runs D1, the catalogue changes, then D2 step by step, snapshotting the world
    before each step. Half the trials start from a snapshot (first run of D2, killed inside the
    step); half from the finished world with `--from-step` (a rerun replacing D2, killed inside
    the step). Right after the kill every loaded table must be whole (as before or as after the
    step) and every lake partition absent or whole; after the rerun everything must equal the
    clean run: same table contents, same partitions, no duplicate keys, no leftover load tables.
    """
    out = Outcome("kill-each-step")
    rng = random.Random(ctx.seed)
    with ctx.sandbox() as sandbox:
        base = World.create("kill_base", ctx.root, ctx.postgres, sandbox)
        if not expect_ok(base.run("run", "--date", str(D1)), out.problems, "clean run of D1"):
            return out
        mutate_catalogue(sandbox.state.store, max(3, ctx.games // 30), rng)
        before = checks.table_digests(base.url, base.schema)
        snapshots: dict[str, World] = {}
        step_seconds: dict[str, float] = {}
        for step in STEPS:
            snapshots[step] = base.clone(f"kill_snap_{step}")
            run = base.run(step, "--date", str(D2))
            if not expect_ok(run, out.problems, f"clean {step} of D2"):
                return out
            step_seconds[step] = run.step_seconds().get(step, run.seconds)
        clean_tables = checks.table_digests(base.url, base.schema)
        raw_entities = [e for e in ENTITIES if sandbox.state.store.has(e)]
        clean_parts = checks.partition_states(base.lake, D2, raw_entities)

        landed = {"inside": 0, "after": 0}
        for trial in range(ctx.kill_trials):
            step = STEPS[trial % len(STEPS)]
            rerun = (trial // len(STEPS)) % 2 == 1
            fraction = rng.random()
            label = f"trial {trial} ({'rerun' if rerun else 'first run'}, {step} at {fraction:.0%})"
            world = (base if rerun else snapshots[step]).clone(f"kill_trial_{trial}")
            args = ["run", "--date", str(D2), *(["--from-step", step] if rerun else [])]
            with world.start(*args) as running:
                if not running.wait_for(f"{step} started"):
                    out.problems.append(f"{label}: the run ended before {step} started: "
                                        f"{running.finish().describe()}")
                    world.discard()
                    continue
                time.sleep(fraction * step_seconds[step])
                alive = running.handle.poll() is None
                running.kill()
                landed["inside" if alive else "after"] += 1
            allowed_tables = [clean_tables] if rerun else [before, clean_tables]
            after_kill = checks.table_digests(world.url, world.schema)
            for table, digest in after_kill.items():
                if digest not in {d[table] for d in allowed_tables}:
                    out.problems.append(f"{label}: {table} is partly loaded after the kill")
            for part, state in checks.partition_states(world.lake, D2, raw_entities).items():
                if state not in (checks.ABSENT, clean_parts[part]):
                    out.problems.append(f"{label}: {part}/dt={D2} is visible but partial ({state[:80]})")
            if alive and (world.lake / marker_path(step, D2)).exists():
                out.problems.append(f"{label}: {step} is marked done although it was killed")

            rerun_result = world.run("run", "--date", str(D2))
            if expect_ok(rerun_result, out.problems, f"{label}: the rerun"):
                if checks.table_digests(world.url, world.schema) != clean_tables:
                    out.problems.append(f"{label}: the tables differ from the clean run's")
                if checks.partition_states(world.lake, D2, raw_entities) != clean_parts:
                    out.problems.append(f"{label}: the lake's partitions differ from the clean run's")
                if dup := checks.duplicate_keys(world.url, world.schema):
                    out.problems.append(f"{label}: duplicate keys {dup}")
                if left := checks.leftover_tables(world.url, world.schema):
                    out.problems.append(f"{label}: load tables left behind {left}")
            world.discard()
        for snapshot in snapshots.values():
            snapshot.discard()
        base.discard()
    out.figures = (f"{ctx.kill_trials} trials over {len(STEPS)} steps (seed {ctx.seed}): "
                   f"{landed['inside']} kills inside the step, {landed['after']} just after it; "
                   f"reruns equal to the clean run: {ctx.kill_trials - _count(out.problems, 'rerun')}"
                   f"/{ctx.kill_trials}")
    return out


def _count(problems: list[str], word: str) -> int:
    return len({p.split(":")[0] for p in problems if word in p})


# -- the sandbox's faults, all at once ------------------------------------------------------------

def faults_together(ctx: Context) -> Outcome:
    """10% 5xx, 429 bursts, token expiry, dropped connections, truncated bodies in one run:
    every id the sandbox holds lands exactly once in the raw lake and in dim_games."""
    out = Outcome("faults-together")
    with ctx.sandbox(faults=ALL_FAULTS) as sandbox:
        # small pages, one per multiquery request: enough requests (well over a hundred) for every kind
        # of fault to happen; ten pages a request left about 45, and a 5% fault then missed one run in ten
        world = World.create("faults", ctx.root, ctx.postgres, sandbox, IGDB_PAGE_SIZE="25",
                             IGDB_SUBQUERIES_PER_REQUEST="1")
        if expect_ok(world.run("run", "--date", str(D1)), out.problems, "run under faults"):
            store = sandbox.state.store
            landed = 0
            for entity in (e for e in ENTITIES if store.has(e)):
                ids = checks.raw_ids(world.lake, entity, D1)
                landed += len(ids)
                _compare_ids(out.problems, f"raw {entity}", ids, store.ids(entity))
            game_ids = [int(str(i)) for i in checks.mart_column(world.url, world.schema, "dim_games", "game_id")]
            _compare_ids(out.problems, "dim_games", game_ids, store.ids("games"))
            stats = sandbox.state.stats
            for key in ("fault_5xx", "fault_429", "fault_drop", "fault_truncate", "rejected_auth"):
                if stats[key] == 0:
                    out.problems.append(f"the sandbox never produced {key}: the scenario proved nothing")
            out.figures = (f"{stats['requests']} requests: {stats['fault_5xx']} 5xx, {stats['fault_429']} 429, "
                           f"{stats['fault_drop']} dropped, {stats['fault_truncate']} truncated, "
                           f"{stats['rejected_auth']} expired-token 401s; {landed} ids landed, each once")
        world.discard()
    return out


def _compare_ids(problems: list[str], what: str, got: list[int], expected: list[int]) -> None:
    if doubled := checks.doubled(got):
        problems.append(f"{what}: {len(doubled)} ids twice, e.g. {doubled[:5]}")
    if lost := sorted(set(expected) - set(got)):
        problems.append(f"{what}: {len(lost)} ids lost, e.g. {lost[:5]}")
    if extra := sorted(set(got) - set(expected)):
        problems.append(f"{what}: {len(extra)} ids the source does not have, e.g. {extra[:5]}")


# -- records updated while the client pages -------------------------------------------------------

def updated_while_paging(ctx: Context) -> Outcome:
    """Games change while D1 pages through them; D1 loses no id, and D2 (the incremental window
    with its safety margin) brings every change: dim_games ends equal to the source's updated_at."""
    out = Outcome("updated-while-paging")
    with ctx.sandbox(faults=Faults(mutate_rate=0.5, mutate_count=5, latency_ms=(1, 5))) as sandbox:
        world = World.create("paging", ctx.root, ctx.postgres, sandbox, IGDB_PAGE_SIZE="25")
        store = sandbox.state.store
        if expect_ok(world.run("run", "--date", str(D1)), out.problems, "run of D1 while games change"):
            _compare_ids(out.problems, "raw games of D1", checks.raw_ids(world.lake, "games", D1), store.ids("games"))
            sandbox.set_faults(Faults())  # the source is quiet again
            changed = sandbox.state.stats["records_updated_while_paging"]
            if expect_ok(world.run("run", "--date", str(D2)), out.problems, "run of D2"):
                source = {r["id"]: int(r["updated_at"]) for r in store.records("games")}
                loaded = _updated_at(world)
                stale = sorted(i for i, ts in source.items() if loaded.get(i) != ts)
                if stale:
                    out.problems.append(f"{len(stale)} games in dim_games lack their latest update, e.g. {stale[:5]}")
                out.figures = (f"{changed} updates while paging D1 over {sandbox.state.stats['requests']} requests; "
                               f"{len(source)} games, {len(stale)} ids lost or stale after D2")
            if changed == 0:
                out.problems.append("no record changed while paging: the scenario proved nothing")
        world.discard()
    return out


def _updated_at(world: World) -> dict[int, int]:
    conn = psycopg2.connect(world.url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT game_id, extract(epoch FROM updated_at)::bigint FROM {}.dim_games")
                        .format(sql.Identifier(world.schema)))
            return {int(i): int(ts) for i, ts in cur.fetchall()}
    finally:
        conn.close()


# -- a corpus of bad input -------------------------------------------------------------------------

HUGE = "Ω" * 200_000
# Records an API can send (JSON it serialises itself): wrong types are quarantined; strings and
# arrays that are odd but valid are staged intact (a null in an id array is no relation).
API_CORPUS: list[tuple[dict[str, Any], str | None]] = [
    ({"total_rating": "ninety"}, "wrong type: total_rating"),
    ({"genres": "action"}, "wrong type: genres"),
    ({"first_release_date": {"y": 2020}}, "wrong type: first_release_date"),
    ({"name": "nul\x00byte"}, "NUL character: PostgreSQL text cannot store it"),
    ({"name": HUGE}, None),
    ({"name": "tab\tnew\nline\rbell\x07 esc\x1b del\x7f"}, None),
    ({"name": "ゼルダの伝説 🗡️ Ünïcödé ☃ עברית"}, None),
    ({"genres": [None, "__GENRE__", None]}, None),
]
# Lines only a damaged file can hold: added to a landed raw file (and its manifest) after ingest.
FILE_CORPUS: list[tuple[str, str]] = [
    ('{"id": 900000001, "name": "cut off', "malformed JSON"),
    ('{"name": "no id", "updated_at": 1700000000}', "missing id"),
    ('{"id": 900000002, "name": "no updated_at"}', "missing updated_at"),
    ("[900000003, 1700000000]", "not a JSON object"),
    ('{"id": -4, "updated_at": 1700000000}', "invalid id: not positive"),
    ("", "empty line"),
]


def bad_input_corpus(ctx: Context) -> Outcome:
    """Each bad line is quarantined with its reason, odd-but-valid ones are loaded intact, raw =
    staged + quarantined; the default 1% quarantine threshold stops the load, a raised one lets it."""
    out = Outcome("bad-input-corpus")
    store = Store.generated(GeneratorSpec(games=ctx.games, seed=ctx.seed))
    games = store.ids("games")
    genre = store.ids("genres")[0]
    expected: dict[int, str | None] = {}
    for (fields, reason), game_id in zip(API_CORPUS, games[5::17], strict=False):
        values = {k: ([genre if v == "__GENRE__" else v for v in val] if isinstance(val, list) else val)
                  for k, val in fields.items()}
        store.update("games", game_id, **values)
        expected[game_id] = reason
    with ctx.sandbox(store=store) as sandbox:
        world = World.create("corpus", ctx.root, ctx.postgres, sandbox)
        if not expect_ok(world.run("ingest", "--date", str(D1)), out.problems, "ingest"):
            return out
        _damage_raw_file(world.lake, D1, [line for line, _ in FILE_CORPUS])
        gated = world.run("run", "--date", str(D1))
        if gated.code != ExitCode.VALIDATION:
            out.problems.append(f"over the default 1% quarantine threshold the gate must stop the load (exit 3): "
                                f"{gated.describe()}")
        if expect_ok(world.run("run", "--date", str(D1), VALIDATION_MAX_QUARANTINE_SHARE="0.05"), out.problems,
                     "run with the threshold raised to 5%"):
            _check_corpus(world, expected, out)
        world.discard()
    return out


def _damage_raw_file(lake: Path, day: dt.date, lines: list[str]) -> None:
    """Append lines to the first raw games file and restate its manifest entry (size, count, hash)."""
    import hashlib

    folder = lake / "raw" / "games" / f"dt={day}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    entry = manifest["files"][0]
    path = folder / entry["name"]
    data = path.read_bytes() + "".join(line + "\n" for line in lines).encode()
    path.write_bytes(data)
    entry.update(records=len(data.splitlines()), bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest["records"] = sum(f["records"] for f in manifest["files"])
    (folder / "_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _check_corpus(world: World, expected: dict[int, str | None], out: Outcome) -> None:
    quarantined = checks.parquet_rows(world.lake / "quarantine" / "games" / f"dt={D1}") or []
    import duckdb

    folder = world.lake / "quarantine" / "games" / f"dt={D1}"
    with duckdb.connect() as con:
        rows = con.execute("SELECT raw_line, reason FROM read_parquet(?)",
                           [[str(p) for p in folder.glob("*.parquet")]]).fetchall()
    by_line: dict[str, str | None] = {line: reason for line, reason in rows}
    for line, reason in FILE_CORPUS:
        if by_line.get(line) != reason:
            out.problems.append(f"{line[:40]!r}: quarantined as {by_line.get(line)!r}, expected {reason!r}")
    by_id: dict[int, str | None] = {}
    for line, why in rows:
        try:
            by_id[int(json.loads(line)["id"])] = why
        except (ValueError, KeyError, TypeError):
            continue
    names = dict(_names(world))
    for game_id, want in expected.items():
        if want is not None and by_id.get(game_id) != want:
            out.problems.append(f"game {game_id}: quarantined as {by_id.get(game_id)!r}, expected {want!r}")
        if want is None and game_id not in names:
            out.problems.append(f"game {game_id} (odd but valid) is missing from dim_games")
    for fields, want in API_CORPUS:
        if want is None and "name" in fields and fields["name"] not in names.values():
            out.problems.append(f"the name {fields['name'][:20]!r}... did not reach PostgreSQL intact")
    summary = json.loads((world.lake / "reports" / "transform" / f"dt={D1}" / "summary.json").read_text())
    games = summary["entities"]["games"]
    if games["raw_lines"] != games["staged"] + games["collapsed"] + games["quarantined"]:
        out.problems.append(f"raw {games['raw_lines']} != staged {games['staged']} + collapsed {games['collapsed']}"
                            f" + quarantined {games['quarantined']}")
    out.figures = (f"{len(FILE_CORPUS) + len(API_CORPUS)} bad or odd lines: {len(quarantined)} quarantined with "
                   f"their reasons, raw {games['raw_lines']} = staged {games['staged']} + collapsed "
                   f"{games['collapsed']} + quarantined {games['quarantined']}; the gate stopped the load at 1%")


def _names(world: World) -> list[tuple[int, str]]:
    conn = psycopg2.connect(world.url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT game_id, name FROM {}.dim_games").format(sql.Identifier(world.schema)))
            return [(int(i), n) for i, n in cur.fetchall()]
    finally:
        conn.close()


# -- older date after newer -----------------------------------------------------------------------

def older_after_newer(ctx: Context) -> Outcome:
    """D1, changes, D2; then D1 again (transformed and loaded anew): no table moves back."""
    out = Outcome("older-after-newer")
    with ctx.sandbox() as sandbox:
        world = World.create("older", ctx.root, ctx.postgres, sandbox)
        if expect_ok(world.run("run", "--date", str(D1)), out.problems, "run of D1"):
            changed = mutate_catalogue(sandbox.state.store, max(3, ctx.games // 30), random.Random(ctx.seed))
            if expect_ok(world.run("run", "--date", str(D2)), out.problems, "run of D2"):
                newer = checks.table_digests(world.url, world.schema)
                older = world.run("run", "--date", str(D1), "--from-step", "transform")
                if expect_ok(older, out.problems, "D1 again after D2"):
                    moved = [t for t, d in checks.table_digests(world.url, world.schema).items() if newer[t] != d]
                    if moved:
                        out.problems.append(f"reloading D1 after D2 changed {', '.join(moved)}")
                    out.figures = (f"{len(changed)} games changed on D2; after D1 was transformed and loaded "
                                   f"again, {len(newer) - len(moved)}/{len(newer)} tables unchanged")
        world.discard()
    return out


# -- two runs of one date at once ------------------------------------------------------------------

def two_runs_at_once(ctx: Context) -> Outcome:
    """Two `run --date D` started together: one runs, the other exits 4; the result equals a
    single clean run's, in PostgreSQL and in the lake."""
    out = Outcome("two-runs-at-once")
    with ctx.sandbox() as sandbox:
        world = World.create("twice", ctx.root, ctx.postgres, sandbox)
        with world.start("run", "--date", str(D1)) as first, world.start("run", "--date", str(D1)) as second:
            runs = [first.finish(), second.finish()]
        codes = sorted(r.code for r in runs)
        if codes != [ExitCode.OK, ExitCode.BUSY]:
            out.problems.append(f"exit codes {codes}, expected [0, 4]: " + " | ".join(r.describe() for r in runs))
        refused = next((r for r in runs if r.code == ExitCode.BUSY), None)
        if refused is not None and "is running" not in (refused.stderr + refused.stdout):
            out.problems.append(f"the refusal does not say why: {refused.describe()}")
        clean = World.create("twice_clean", ctx.root, ctx.postgres, sandbox)
        if expect_ok(clean.run("run", "--date", str(D1)), out.problems, "the clean run"):
            entities = [e for e in ENTITIES if sandbox.state.store.has(e)]
            if checks.table_digests(world.url, world.schema) != checks.table_digests(clean.url, clean.schema):
                out.problems.append("the tables differ from a single clean run's")
            if checks.partition_states(world.lake, D1, entities) != checks.partition_states(clean.lake, D1, entities):
                out.problems.append("the lake differs from a single clean run's")
            if dup := checks.duplicate_keys(world.url, world.schema):
                out.problems.append(f"duplicate keys {dup}")
        out.figures = f"exit codes {codes}; tables and lake equal to one clean run: {not out.problems}"
        world.discard()
        clean.discard()
    return out


# -- secrets ----------------------------------------------------------------------------------------

class Webhook:
    """A Slack-compatible receiver on 127.0.0.1 that keeps every message body."""

    def __init__(self) -> None:
        bodies: list[str] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/{token}"


def secrets_stay_secret(ctx: Context, first: str = "run") -> Outcome:
    """Credentials, a database password and a webhook token set; a good run and three failing
    ones (wrong secret, database down, API down): no output, file, ledger row or message holds them.
    `first` is the good run's command (the pytest subset uses `ingest`, which needs no Spark)."""
    out = Outcome("secrets")
    client_secret = f"igdb-secret-{secrets.token_hex(8)}"
    wrong_secret = f"wrong-secret-{secrets.token_hex(8)}"
    password = f"pw-{secrets.token_hex(8)}"
    hook_token = f"hook-{secrets.token_hex(8)}"
    webhook = Webhook()
    with ctx.sandbox(client_id="reliability-client", client_secret=client_secret) as sandbox:
        world = World.create("secrets", ctx.root, ctx.postgres, sandbox)
        role = f"rel_user_{secrets.token_hex(3)}"
        ctx.postgres.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)), (password,))
        ctx.postgres.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(world.database),
                                                                              sql.Identifier(role)))
        world.env.update(DATABASE_URL=ctx.postgres.url_for(world.database, user=role, password=password),
                         SLACK_WEBHOOK_URL=webhook.url(hook_token))
        runs = [world.run(first, "--date", str(D1))]
        expect_ok(runs[0], out.problems, "the run with every secret set")
        runs.append(world.run("run", "--date", str(D2), IGDB_CLIENT_SECRET=wrong_secret))
        runs.append(world.run("run", "--date", str(D2), DATABASE_URL=f"postgresql://{role}:{password}@127.0.0.1:9/x"))
        sandbox.set_faults(Faults(error_rate=1.0))
        runs.append(world.run("run", "--date", str(D2), IGDB_MAX_ATTEMPTS="2", IGDB_RETRY_ROUNDS="0"))
        for run in runs[1:]:
            if run.code == 0:
                out.problems.append(f"a run meant to fail succeeded: {run.args}")
        needles = [client_secret, wrong_secret, password, hook_token, *sandbox.state.tokens]
        for run in runs:
            for needle in needles:
                if needle in run.stdout or needle in run.stderr:
                    out.problems.append(f"`{' '.join(run.args)}` printed a secret ({needle[:6]}...)")
        out.problems += [f"file {hit}" for hit in checks.files_containing(world.root, needles)]
        ledger = _ledger_text(world)
        out.problems += [f"the ledger holds a secret ({n[:6]}...)" for n in needles if n in ledger]
        out.problems += [f"a webhook message holds a secret ({n[:6]}...)" for n in needles
                         for body in webhook.bodies if n in body]
        if not webhook.bodies:
            out.problems.append("no webhook message was sent: the scenario proved nothing about them")
        files = sum(1 for p in world.root.rglob("*") if p.is_file())
        out.figures = (f"{len(runs)} runs ({sum(r.code != 0 for r in runs)} failing), {files} files, "
                       f"{len(ledger.splitlines())} ledger rows, {len(webhook.bodies)} webhook messages "
                       f"searched for {len(needles)} secret values: none found")
        world.discard()
        ctx.postgres.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    webhook.server.shutdown()
    return out


def _ledger_text(world: World) -> str:
    conn = psycopg2.connect(world.postgres.url_for(world.database))
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT t::text FROM {}.pipeline_runs t").format(sql.Identifier(world.schema)))
            return "\n".join(r[0] for r in cur.fetchall())
    finally:
        conn.close()


# -- a month in the life ---------------------------------------------------------------------------

MONTH_START = dt.date(2026, 10, 1)
MONTH_DAYS = 30
BAD_DAY = 14  # a full refresh day (every 7th): the source answers with half the catalogue
NEW_FIELD_DAY = 9


def evolve(store: Store, rng: random.Random, n: int, deleted: list[dict[str, Any]], events: Counter[str]) -> None:
    """What IGDB's editors do to the catalogue on day n of the month (seeded): edits every day, new
    games, deletions (seen on the next full refresh), a comeback, renames, a field added."""
    mutate_catalogue(store, 3, rng)
    events["updates"] += 3
    if n % 3 == 1:
        store.create("games", FaultDice(Faults(seed=n)))
        events["adds"] += 1
    if n % 7 == 3:
        gone = store.delete("games", rng.sample(store.ids("games"), 2))
        deleted.extend(gone)
        events["deletions"] += len(gone)
    if n == 19 and deleted:
        store.put("games", [deleted.pop(0)])
        events["comebacks"] += 1
    if n in (5, 20):
        entity = "genres" if n == 5 else "platforms"
        ref = rng.choice(store.ids(entity))
        store.update(entity, ref, name=f"Renamed {entity[:-1]} {n}")
        events["renames"] += 1
    if n == NEW_FIELD_DAY:
        store.put("games", [{**g, "pulse_score": rng.randint(0, 99)} for g in store.records("games")])
        events["new field"] += 1


def month_in_the_life(ctx: Context) -> Outcome:
    """Thirty dates on a small catalogue that changes every day (edits, new games, deletions and a
    comeback, renames, a field IGDB adds), with a full refresh every seventh day and `gc` after each
    load (seven days kept). One bad day: the full refresh comes back with half the catalogue; the
    guards refuse it, the source is fixed, and the date is rerun from its ingest. After every date
    that loads, PostgreSQL must equal the truth computed from what the sandbox served."""
    out = Outcome("month-in-the-life")
    rng = random.Random(ctx.seed)
    store = Store.generated(GeneratorSpec(games=min(ctx.games, 200), seed=ctx.seed))
    truth, events = Truth(20), Counter[str]()
    deleted: list[dict[str, Any]] = []
    loaded_days = 0
    with ctx.sandbox(store=store) as sandbox:
        world = World.create("month", ctx.root, ctx.postgres, sandbox, RETENTION_AFTER_LOAD="true",
                             RETENTION_DAYS="7", INGEST_FULL_REFRESH_DAYS="7")
        for n in range(MONTH_DAYS):
            day = MONTH_START + dt.timedelta(days=n)
            evolve(store, rng, n, deleted, events)
            hidden = store.delete("games", store.ids("games")[::2]) if n == BAD_DAY else []
            run = world.run("run", "--date", str(day))
            if n == BAD_DAY:
                if run.code != ExitCode.VALIDATION or "checks/history" not in run.stderr:
                    out.problems.append(f"dt={day}: half the catalogue must be refused by the guards: "
                                        f"{run.describe()}")
                store.put("games", hidden)  # the source is whole again; the date is fetched anew
                run = world.run("run", "--date", str(day), "--force")
            if not expect_ok(run, out.problems, f"dt={day}"):
                break
            truth.fold(world.lake, day)
            loaded_days += 1
            if problems := differences(truth.expected(), loaded(world.url, world.schema)):
                out.problems += [f"dt={day}: {p}" for p in problems]
                break
            if n == NEW_FIELD_DAY and "pulse_score" not in run.stdout:
                out.problems.append(f"dt={day}: the run summary does not report the field IGDB added")
        kept = sorted({p.name for p in (world.lake / "raw" / "games").iterdir() if p.name.startswith("dt=")})
        if len(kept) > 8:
            out.problems.append(f"gc after each load kept {len(kept)} raw games partitions, expected 8 at most")
        out.figures = (f"{loaded_days}/{MONTH_DAYS} dates equal to the truth; {events['updates']} edits, "
                       f"{events['adds']} new games, {events['deletions']} deletions, {events['comebacks']} "
                       f"comeback, {events['renames']} renames, a new field; the half catalogue refused, then "
                       f"rerun; {len(kept)} raw dates kept by gc; {len(truth.deleted)} games deleted at the end")
        world.discard()
    return out


SCENARIOS: dict[str, Callable[[Context], Outcome]] = {
    "kill-each-step": kill_each_step,
    "faults-together": faults_together,
    "updated-while-paging": updated_while_paging,
    "bad-input-corpus": bad_input_corpus,
    "older-after-newer": older_after_newer,
    "two-runs-at-once": two_runs_at_once,
    "secrets": secrets_stay_secret,
    "month-in-the-life": month_in_the_life,
}


def run_scenario(name: str, ctx: Context) -> Outcome:
    """One scenario, timed; an exception is a FAIL with its message, never a crash of the suite."""
    started = time.monotonic()
    try:
        outcome = SCENARIOS[name](ctx)
    except Exception as exc:  # noqa: BLE001 - reported as the scenario's failure
        outcome = Outcome(name, problems=[f"{type(exc).__name__}: {exc}"])
    outcome.seconds = time.monotonic() - started
    return outcome

"""`igdb-pipeline sandbox`: serve the IGDB sandbox until interrupted.

Latency is off unless asked for (tests want fast sandboxes); benchmarks pass the realistic model,
`--latency-ms 100-300 --latency-per-record-ms 0.08` (faults.DEFAULT_LATENCY_MS and
DEFAULT_LATENCY_PER_RECORD_MS).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from core.config import millis_range
from ingestion.sandbox.faults import DEFAULT_LATENCY_MS, DEFAULT_LATENCY_PER_RECORD_MS, Faults, Limits
from ingestion.sandbox.generator import GeneratorSpec
from ingestion.sandbox.server import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, start_sandbox
from ingestion.sandbox.store import Store


def _millis(text: str) -> tuple[int, int]:
    try:
        return millis_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_sandbox_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "sandbox", parents=[common], help="serve an IGDB-compatible sandbox API on 127.0.0.1",
        description="An IGDB v4 look-alike: /oauth2/token, /v4/<entity>, /v4/<entity>/count and /v4/multiquery "
                    "(up to 10 named sub-queries in one request), Apicalypse queries, IGDB's limits (4 req/s, "
                    "8 open; a multiquery counts as one request) and optional faults and latency. Point the "
                    "pipeline at it with IGDB_API_URL, TWITCH_TOKEN_URL, IGDB_CLIENT_ID and IGDB_CLIENT_SECRET.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8788, help="port (0 picks a free one; default 8788)")
    p.add_argument("--data", metavar="DIR", help="serve DIR/<entity>.jsonl as is instead of generated data")
    p.add_argument("--games", type=int, default=2000, help="games to generate (default 2000)")
    p.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    p.add_argument("--rate", type=float, default=4.0, help="requests per second allowed (default 4)")
    p.add_argument("--max-open", type=int, default=8, help="open requests allowed (default 8)")
    p.add_argument("--latency-ms", type=_millis, default=(0, 0), metavar="LOW-HIGH",
                   help="answer latency range in ms, e.g. 200-600 "
                        f"(default 0; realistic: {DEFAULT_LATENCY_MS[0]}-{DEFAULT_LATENCY_MS[1]})")
    p.add_argument("--latency-per-record-ms", type=float, default=0.0, metavar="MS",
                   help="extra latency per record in an answer, all sub-queries summed "
                        f"(default 0; realistic: {DEFAULT_LATENCY_PER_RECORD_MS:g})")
    p.add_argument("--error-rate", type=float, default=0.0, help="share of answers that are 5xx")
    p.add_argument("--burst-429-rate", type=float, default=0.0, help="chance per request of a 429 burst")
    p.add_argument("--drop-rate", type=float, default=0.0, help="share of connections dropped unanswered")
    p.add_argument("--truncate-rate", type=float, default=0.0, help="share of bodies cut in half")
    p.add_argument("--token-ttl", type=float, default=5_000_000, help="token lifetime in seconds")
    p.add_argument("--mutate-rate", type=float, default=0.0, help="chance per request that records change")
    p.add_argument("--create-rate", type=float, default=0.0, help="chance per request that a game appears")
    p.add_argument("--subquery-error-rate", type=float, default=0.0,
                   help="chance per multiquery sub-query that it fails inside a 200 answer")
    p.add_argument("--client-id", default=None, help="accepted client id (default sandbox-client)")
    p.add_argument("--client-secret", default=None, help="accepted client secret (default sandbox-secret)")
    p.add_argument("--ready-file", metavar="PATH", help="write the URLs as JSON here once serving")
    p.set_defaults(handler=run_sandbox)


def faults_from_args(args: argparse.Namespace) -> Faults:
    """The sandbox's faults and latency as the flags ask (all off unless given)."""
    return Faults(latency_ms=args.latency_ms, latency_per_record_ms=args.latency_per_record_ms,
                  error_rate=args.error_rate, burst_429_rate=args.burst_429_rate, drop_rate=args.drop_rate,
                  truncate_rate=args.truncate_rate, token_ttl_seconds=args.token_ttl, mutate_rate=args.mutate_rate,
                  create_rate=args.create_rate, subquery_error_rate=args.subquery_error_rate)


def run_sandbox(args: argparse.Namespace, settings: Any) -> int:
    started = time.monotonic()
    store = Store.from_dir(args.data) if args.data else Store.generated(GeneratorSpec(args.games, args.seed))
    # A served process is benchmarked, so its first pass must be as fast as the next. Games only:
    # their wide records are what limits a cold pass; small records serve cold far above IGDB's
    # ceiling, and warming the popularity rows too would double the startup.
    store.warm(["games"])
    faults = faults_from_args(args)
    client_id = args.client_id or SANDBOX_CLIENT_ID
    client_secret = args.client_secret or SANDBOX_CLIENT_SECRET
    sandbox = start_sandbox(store, host=args.host, port=args.port, limits=Limits(args.rate, args.max_open),
                            faults=faults, client_id=client_id, client_secret=client_secret)
    info = {"url": sandbox.url, "api_url": sandbox.api_url, "token_url": sandbox.token_url,
            "games": store.size("games"), "startup_s": round(time.monotonic() - started, 2)}
    if args.ready_file:
        Path(args.ready_file).write_text(json.dumps(info), encoding="utf-8")
    print(f"IGDB sandbox serving {info['games']} games at {sandbox.url} (ready in {info['startup_s']}s)")
    print(f"  export IGDB_API_URL={sandbox.api_url} TWITCH_TOKEN_URL={sandbox.token_url}")
    print(f"  export IGDB_CLIENT_ID={client_id} IGDB_CLIENT_SECRET=<the sandbox secret>")
    print("Ctrl-C stops it.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    sandbox.stop()
    return 0

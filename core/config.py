"""Settings: one declaration per setting drives parsing, precedence, validation and the README table.

Precedence (highest first): command-line flag (`--set key=value` or a dedicated flag) >
environment variable > `conf/<env>.yaml` (or the file named by `--conf` / `PIPELINE_CONF`) >
built-in default. Errors name the setting and where it came from; secret values are never shown.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from core.days import strict_date
from core.entities import ENTITIES
from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXPECTATIONS_FOLDER = "expectations"  # the users' own GX suites, under conf/ beside the settings files


# --- value parsers: each takes the raw value (str from env/flags, anything from YAML) ----------


def _number(raw: Any, kind: type) -> Any:
    if isinstance(raw, bool):
        raise ValueError("must be a number")
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"must be {'an integer' if kind is int else 'a number'}") from None


def positive_int(raw: Any) -> int:
    value = _number(raw, int)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return int(value)


def non_negative_int(raw: Any) -> int:
    value = _number(raw, int)
    if value < 0:
        raise ValueError("must be zero or a positive integer")
    return int(value)


def positive_float(raw: Any) -> float:
    value = _number(raw, float)
    if not value > 0:
        raise ValueError("must be a positive number")
    return float(value)


def non_negative_float(raw: Any) -> float:
    value = _number(raw, float)
    if value < 0:
        raise ValueError("must be zero or a positive number")
    return float(value)


def ratio(raw: Any) -> float:
    value = _number(raw, float)
    if not 0.0 <= value <= 1.0:
        raise ValueError("must be between 0 and 1")
    return float(value)


def page_size(raw: Any) -> int:
    value = positive_int(raw)
    if value > 500:
        raise ValueError("must be at most 500 (the IGDB limit)")
    return value


def subqueries(raw: Any) -> int:
    value = positive_int(raw)
    if value > 10:
        raise ValueError("must be at most 10 (IGDB's multiquery limit)")
    return value


def http_url(raw: Any) -> str:
    text = str(raw).strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return text.rstrip("/")


def optional_str(raw: Any) -> str | None:
    text = "" if raw is None else str(raw).strip()
    return text or None


def optional_http_url(raw: Any) -> str | None:
    return http_url(raw) if optional_str(raw) else None


def lake_uri(raw: Any) -> str:
    text = str(raw).strip()
    if not text:
        raise ValueError("must not be empty")
    if text.startswith("s3://"):
        if not urlsplit(text).netloc:
            raise ValueError("must name a bucket: s3://bucket/prefix")
        return text.rstrip("/")
    if "://" in text:
        raise ValueError("must be a local folder or s3://bucket/prefix")
    return text


def database_url(raw: Any) -> str | None:
    text = optional_str(raw)
    if text is not None and urlsplit(text).scheme not in ("postgresql", "postgres"):
        raise ValueError("must be a postgresql:// URL")
    return text


def memory_size(raw: Any) -> str:
    text = str(raw).strip().lower()
    if not re.fullmatch(r"\d+[kmgt]", text):
        raise ValueError("must be a JVM memory size like 4g or 512m")
    return text


def iso_date(raw: Any) -> dt.date | None:
    if raw is None or str(raw).strip() == "":
        return None
    if isinstance(raw, dt.date):  # YAML reads an unquoted 2026-11-01 as a date already
        return raw
    return strict_date(str(raw).strip())


def boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def date_list(raw: Any) -> tuple[dt.date, ...]:
    """Dates, comma-separated (or a YAML list); empty is none."""
    if raw is None:
        return ()
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    days = []
    for item in items:
        if isinstance(item, dt.date):
            days.append(item)
        elif str(item).strip():
            days.append(strict_date(str(item).strip()))
    return tuple(sorted(set(days)))


def choice(*allowed: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = str(raw).strip().lower()
        if text not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return text

    return parse


def name_list(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    names = tuple(str(item).strip() for item in items if str(item).strip())
    if not names:
        raise ValueError("must list at least one name")
    return names


def millis_range(raw: Any) -> tuple[int, int]:
    """`"200-600"` or `"250"` (milliseconds): the sandbox's simulated latency."""
    text = str(raw).strip()
    low, _, high = text.partition("-")
    try:
        lo, hi = int(low), int(high or low)
    except ValueError:
        raise ValueError("must be milliseconds like 200-600 or 250") from None
    if lo < 0 or hi < lo:
        raise ValueError("must be a non-negative range low-high")
    return lo, hi


# --- the declaration: one typed field per setting ---------------------------------------------


@dataclass(frozen=True)
class Setting:
    """Everything about one setting; the field of `Settings` that holds it is the key with '.' -> '_'."""

    key: str  # dotted path in the YAML file
    default: Any
    parse: Callable[[Any], Any]
    env: str | None
    help: str
    secret: bool = False
    shown: str | None = None  # the default as the README's table says it, when repr() would not do

    @property
    def attr(self) -> str:
        return self.key.replace(".", "_")


def setting(key: str, default: Any, parse: Callable[[Any], Any], env: str | None, help: str,  # noqa: A002
            secret: bool = False, shown: str | None = None) -> Any:
    """A field of `Settings` carrying its declaration (mypy reads the field's annotation)."""
    return field(default=default, metadata={"setting": Setting(key, default, parse, env, help, secret, shown)})


ALL_ENTITIES = tuple(ENTITIES)  # the entity catalogue is the one list of entities


@dataclass(frozen=True)
class Settings:
    """The resolved configuration: one typed attribute per setting, and where each value came from."""

    igdb_client_id: str | None = setting(
        "igdb.client_id", None, optional_str, "IGDB_CLIENT_ID",
        "Twitch client id. Unset (with the secret): the built-in IGDB sandbox is used.")
    igdb_client_secret: str | None = setting(
        "igdb.client_secret", None, optional_str, "IGDB_CLIENT_SECRET",
        "Twitch client secret. Never logged.", secret=True)
    igdb_api_url: str = setting(
        "igdb.api_url", "https://api.igdb.com/v4", http_url, "IGDB_API_URL",
        "IGDB API base URL (point it at a sandbox or a proxy).")
    igdb_token_url: str = setting(
        "igdb.token_url", "https://id.twitch.tv/oauth2/token", http_url, "TWITCH_TOKEN_URL",
        "Twitch OAuth2 token endpoint.")
    igdb_rate_limit_per_second: float = setting(
        "igdb.rate_limit_per_second", 4.0, positive_float, "IGDB_RATE_LIMIT",
        "Requests per second for the whole process (IGDB allows 4).")
    igdb_max_in_flight: int = setting(
        "igdb.max_in_flight", 8, positive_int, "IGDB_MAX_IN_FLIGHT",
        "Open requests at once for the whole process (IGDB allows 8).")
    igdb_rate_margin: float = setting(
        "igdb.rate_margin", 0.01, ratio, "IGDB_RATE_MARGIN",
        "Share by which requests are spaced wider than the limit, to absorb clock jitter.")
    igdb_page_size: int = setting(
        "igdb.page_size", 500, page_size, "IGDB_PAGE_SIZE",
        "Records per page (max 500).")
    igdb_multiquery: bool = setting(
        "igdb.multiquery", True, boolean, "IGDB_MULTIQUERY",
        "Send pages through /v4/multiquery, several per request (off: one page per request).")
    igdb_subqueries_per_request: int = setting(
        "igdb.subqueries_per_request", 10, subqueries, "IGDB_SUBQUERIES_PER_REQUEST",
        "Pages per multiquery request (IGDB allows 10).")
    igdb_request_timeout_seconds: float = setting(
        "igdb.request_timeout_seconds", 30.0, positive_float, "IGDB_REQUEST_TIMEOUT",
        "Read timeout of one request.")
    igdb_max_attempts: int = setting(
        "igdb.max_attempts", 6, positive_int, "IGDB_MAX_ATTEMPTS",
        "Attempts per request (429, 5xx, timeouts, broken bodies) before a page is parked.")
    igdb_retry_rounds: int = setting(
        "igdb.retry_rounds", 3, non_negative_int, "IGDB_RETRY_ROUNDS",
        "Later rounds in which parked pages are tried again before the run fails.")
    igdb_backoff_base_seconds: float = setting(
        "igdb.backoff_base_seconds", 0.5, non_negative_float, "IGDB_BACKOFF_BASE",
        "First retry delay; doubles per attempt, with full jitter.")
    igdb_backoff_max_seconds: float = setting(
        "igdb.backoff_max_seconds", 20.0, non_negative_float, "IGDB_BACKOFF_MAX",
        "Longest retry delay (a Retry-After header may ask for more).")
    ingest_entities: tuple[str, ...] = setting(
        "ingest.entities", ALL_ENTITIES, name_list, "INGEST_ENTITIES",
        "Entities to ingest, comma-separated.", shown="every entity")
    ingest_parallel_ranges: int = setting(
        "ingest.parallel_ranges", 6, positive_int, "INGEST_PARALLEL_RANGES",
        "Without multiquery: id ranges of a large entity walked at once (keyset pagination in each).")
    ingest_safety_margin_seconds: int = setting(
        "ingest.safety_margin_seconds", 3600, non_negative_int, "INGEST_SAFETY_MARGIN_SECONDS",
        "Incremental games start this far before the stored watermark.")
    ingest_full_refresh_days: int = setting(
        "ingest.full_refresh_days", 7, positive_int, "INGEST_FULL_REFRESH_DAYS",
        "A full refresh of games runs when the last one is this many days old.")
    ingest_progress_seconds: float = setting(
        "ingest.progress_seconds", 5.0, positive_float, "INGEST_PROGRESS_SECONDS",
        "How often long fetches log their progress.")
    lake_uri: str = setting(
        "lake.uri", "./lake", lake_uri, "LAKE_URI",
        "Lake root: a local folder or s3://bucket/prefix.")
    data_dir: str = setting(
        "data_dir", "./.data", str, "PIPELINE_DATA_DIR",
        "Local working folder: embedded PostgreSQL, temporary files.")
    sandbox_games: int = setting(
        "sandbox.games", 2000, positive_int, "SANDBOX_GAMES",
        "Games the built-in sandbox generates.")
    sandbox_seed: int = setting(
        "sandbox.seed", 42, non_negative_int, "SANDBOX_SEED",
        "Seed of the sandbox generator (same seed, same data).")
    sandbox_latency_ms: tuple[int, int] = setting(
        "sandbox.latency_ms", (0, 0), millis_range, "SANDBOX_LATENCY_MS",
        "Simulated latency of the built-in sandbox per answer, e.g. 100-300.", shown="`0-0`")
    sandbox_latency_per_record_ms: float = setting(
        "sandbox.latency_per_record_ms", 0.0, non_negative_float, "SANDBOX_LATENCY_PER_RECORD_MS",
        "Simulated latency of the built-in sandbox per record answered, e.g. 0.08.")
    spark_master: str = setting(
        "spark.master", "local[2]", str, "SPARK_MASTER",
        "Spark master of local runs; 'spark-submit' takes the one spark-submit was given (EMR).")
    spark_shuffle_partitions: int = setting(
        "spark.shuffle_partitions", 8, positive_int, "SPARK_SHUFFLE_PARTITIONS",
        "spark.sql.shuffle.partitions of local runs (adaptive execution coalesces further).")
    spark_driver_memory: str = setting(
        "spark.driver_memory", "4g", memory_size, "SPARK_DRIVER_MEMORY",
        "Driver memory of local runs (the whole local Spark lives in the driver).")
    marts_top_n: int = setting(
        "marts.top_n", 100, positive_int, "MARTS_TOP_N",
        "Rows of each marketing mart.")
    validation_max_quarantine_share: float = setting(
        "validation.max_quarantine_share", 0.01, ratio, "VALIDATION_MAX_QUARANTINE_SHARE",
        "Largest share of an entity's raw lines that may be quarantined before validation blocks the "
        "load.")
    validation_expectations_dir: str | None = setting(
        "validation.expectations_dir", None, optional_str, "VALIDATION_EXPECTATIONS_DIR",
        "Folder (or s3:// prefix) of your own GX suites, <layer>/<dataset>.json. Unset: "
        "conf/expectations.")
    validation_data_docs: bool = setting(
        "validation.data_docs", True, boolean, "VALIDATION_DATA_DOCS",
        "Record each gate in the lake's GX project (gx/) and update its Data Docs.")
    validation_engine: Literal["fast", "gx"] = setting(
        "validation.engine", "fast", choice("fast", "gx"), "VALIDATION_ENGINE",
        "fast: the one-pass evaluator decides what passes and GX explains failures; gx: GX's own Spark "
        "engine evaluates every expectation (the reference, slower).")
    database_url: str | None = setting(
        "database.url", None, database_url, "DATABASE_URL",
        "PostgreSQL URL. Unset: an embedded PostgreSQL under data_dir.", secret=True)
    database_schema: str = setting(
        "database.schema", "igdb", str, "DATABASE_SCHEMA",
        "PostgreSQL schema of the marts.")
    load_on_empty: Literal["load", "skip", "fail"] = setting(
        "load.on_empty", "load", choice("load", "skip", "fail"), "LOAD_ON_EMPTY",
        "A ranked mart no game qualifies for (the gate warns): load it as empty for D (its stored rows of"
        " D go), skip it (they stay), or fail the load before writing anything.")
    load_mode: Literal["auto", "full"] = setting(
        "load.mode", "auto", choice("auto", "full"), "LOAD_MODE",
        "auto: send only the catalogue rows that differ from the date last loaded, and nothing for a "
        "partition loaded already; full: send every row (after the tables were edited by hand).")
    load_parallel_marts: int = setting(
        "load.parallel_marts", 4, positive_int, "LOAD_PARALLEL_MARTS",
        "Marts loaded at once, each in its own transaction, after the catalogue (which loads alone).")
    guards_max_deleted_share: float = setting(
        "guards.max_deleted_share", 0.05, ratio, "GUARDS_MAX_DELETED_SHARE",
        "Largest share of the catalogue a full refresh may delete, and by which the catalogue may shrink "
        "against the last loaded date, before the gate blocks the load.")
    guards_max_drop_share: float = setting(
        "guards.max_drop_share", 0.5, ratio, "GUARDS_MAX_DROP_SHARE",
        "Largest share by which the popularity fact's rows may drop against the last loaded date.")
    guards_severity: Literal["critical", "warning"] = setting(
        "guards.severity", "critical", choice("critical", "warning"), "GUARDS_SEVERITY",
        "What a change guard that trips does: critical blocks the load, warning only reports it.")
    guards_accept_dates: tuple[dt.date, ...] = setting(
        "guards.accept_dates", (), date_list, "GUARDS_ACCEPT_DATES",
        "Dates whose changes an operator checked and accepts (like `run --accept-changes`), comma-"
        "separated.", shown="none")
    retention_days: int = setting(
        "retention.days", 30, positive_int, "RETENTION_DAYS",
        "Days of raw, staging, quarantine, mart and report partitions `gc` keeps (before what later runs "
        "read).")
    retention_after_load: bool = setting(
        "retention.after_load", False, boolean, "RETENTION_AFTER_LOAD",
        "Run `gc` after every successful load.")
    retention_tmp_max_age_hours: float = setting(
        "retention.tmp_max_age_hours", 24.0, positive_float, "RETENTION_TMP_MAX_AGE_HOURS",
        "Age after which `gc` removes leftovers of killed writes (`_tmp/`, Spark's `_temporary`).")
    ingest_drift_check: bool = setting(
        "ingest.drift_check", True, boolean, "INGEST_DRIFT_CHECK",
        "Once per ingest, fetch one page of every entity with `fields *` and report fields IGDB added or "
        "dropped.")
    pipeline_start_date: dt.date | None = setting(
        "pipeline.start_date", None, iso_date, "PIPELINE_START_DATE",
        "First date `run --catchup` and `status` consider (default: the earliest date ever run).")
    notify_slack_webhook_url: str | None = setting(
        "notify.slack_webhook_url", None, optional_http_url, "SLACK_WEBHOOK_URL",
        "Slack-compatible incoming webhook: a summary on success, the failing step on failure. "
        "Never logged.", secret=True)
    log_format: Literal["text", "json"] = setting(
        "log.format", "text", choice("text", "json"), "LOG_FORMAT",
        "text (readable) or json (one object per line, for EMR/CloudWatch).")
    log_level: Literal["debug", "info", "warning", "error"] = setting(
        "log.level", "INFO", choice("debug", "info", "warning", "error"), "LOG_LEVEL",
        "Log level.")
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def igdb_credentials(self) -> tuple[str, str] | None:
        """Twitch client id and secret; None: the built-in sandbox (load_settings wants both or neither)."""
        if self.igdb_client_id is None or self.igdb_client_secret is None:
            return None
        return self.igdb_client_id, self.igdb_client_secret

    @property
    def uses_sandbox(self) -> bool:
        return self.igdb_credentials is None

    def secrets(self) -> list[str]:
        """Secret values to scrub from every log line, report and error."""
        found = [str(getattr(self, s.attr)) for s in SETTINGS if s.secret and getattr(self, s.attr)]
        if self.database_url and (password := urlsplit(self.database_url).password):
            found.append(password)
        return found

    def describe(self) -> dict[str, str]:
        """Effective settings for `--help`-style display, secrets masked."""
        shown = {}
        for s in SETTINGS:
            value = getattr(self, s.attr)
            shown[s.key] = "***" if (s.secret and value) else repr(value)
        return shown


SETTINGS: tuple[Setting, ...] = tuple(f.metadata["setting"] for f in fields(Settings) if "setting" in f.metadata)
SETTINGS_BY_KEY = {s.key: s for s in SETTINGS}
# every environment variable the pipeline reads: the settings' and the two that pick the conf file
PIPELINE_VARIABLES = frozenset({s.env for s in SETTINGS if s.env} | {"PIPELINE_ENV", "PIPELINE_CONF"})


def without_pipeline_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` minus every variable the pipeline reads: the base of a child process's environment
    (tests, benchmarks, reliability scenarios), so that only what the caller sets on purpose reaches it."""
    return {name: value for name, value in environ.items() if name not in PIPELINE_VARIABLES}


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _fetch_s3_conf(uri: str) -> Path:
    """An EMR step names its settings file in the bundle (s3://...); read it into a local temp file."""
    import boto3  # only an s3:// settings file needs it: the heaviest import of a local command
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(uri)
    try:
        body = boto3.client("s3").get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"config file {uri} (--conf / PIPELINE_CONF) cannot be read: {exc}") from None
    handle = tempfile.NamedTemporaryFile("wb", prefix="igdb-conf-", suffix=".yaml", delete=False)
    with handle:
        handle.write(body)
    return Path(handle.name)


def expectations_folder(configured: str | None, project_root: Path, cwd: Path | None = None) -> str | None:
    """Where the users' suites are: the setting when given (a folder or an s3:// prefix; it must
    exist), else conf/expectations under the working folder or the project, when one exists."""
    if configured:
        if not configured.startswith("s3://") and not Path(configured).is_dir():
            raise ConfigError(f"validation.expectations_dir (VALIDATION_EXPECTATIONS_DIR) {configured} "
                              "is not a folder")
        return configured
    for base in ((cwd or Path.cwd()) / "conf", project_root / "conf"):
        if (base / EXPECTATIONS_FOLDER).is_dir():
            return str(base / EXPECTATIONS_FOLDER)
    return None


def _conf_file(env_name: str, explicit: str | None) -> Path | None:
    if explicit and explicit.startswith("s3://"):
        return _fetch_s3_conf(explicit)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {explicit} (--conf / PIPELINE_CONF) does not exist")
        return path
    for base in (Path.cwd() / "conf", PROJECT_ROOT / "conf"):
        candidate = base / f"{env_name}.yaml"
        if candidate.is_file():
            return candidate
    if env_name != "local":
        raise ConfigError(f"environment {env_name!r} (--env / PIPELINE_ENV) has no conf/{env_name}.yaml")
    return None


def _read_conf(path: Path) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if not isinstance(tree, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    flat = _flatten(tree)
    unknown = sorted(set(flat) - set(SETTINGS_BY_KEY))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return flat


def parse_overrides(pairs: list[str] | None) -> dict[str, str]:
    """`--set key=value` pairs from the command line."""
    overrides: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or key not in SETTINGS_BY_KEY:
            raise ConfigError(f"--set {key or pair!r}: expected key=value with a known key (see the README)")
        overrides[key] = value
    return overrides


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    env_name: str | None = None,
    conf_path: str | None = None,
) -> Settings:
    """Resolve every setting by precedence and validate it; raise ConfigError naming the setting."""
    environ = os.environ if environ is None else environ
    env_name = env_name or environ.get("PIPELINE_ENV") or "local"
    conf = _conf_file(env_name, conf_path or environ.get("PIPELINE_CONF"))
    from_file = _read_conf(conf) if conf else {}
    flags = {k: v for k, v in (flags or {}).items() if v is not None}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for s in SETTINGS:
        if s.key in flags:
            raw, source = flags[s.key], f"flag for {s.key}"
        elif s.env and environ.get(s.env, "") != "":
            raw, source = environ[s.env], f"environment variable {s.env}"
        elif s.key in from_file:
            raw, source = from_file[s.key], f"{conf}"
        else:
            values[s.attr], sources[s.attr] = s.default, "default"
            continue
        try:
            values[s.attr] = s.parse(raw)
        except ValueError as exc:
            shown = "" if s.secret else f" (got {str(raw)[:60]!r})"
            raise ConfigError(f"setting {s.key} from {source} {exc}{shown}") from None
        sources[s.attr] = source

    if (values["igdb_client_id"] is None) != (values["igdb_client_secret"] is None):
        missing = "IGDB_CLIENT_SECRET" if values["igdb_client_secret"] is None else "IGDB_CLIENT_ID"
        raise ConfigError(
            f"setting {missing} is missing: set both IGDB_CLIENT_ID and IGDB_CLIENT_SECRET, "
            "or neither to use the built-in sandbox"
        )
    unknown_entities = sorted(set(values["ingest_entities"]) - set(ALL_ENTITIES))
    if unknown_entities:
        raise ConfigError(
            f"setting ingest.entities names unknown entities {', '.join(unknown_entities)}; "
            f"known: {', '.join(ALL_ENTITIES)}"
        )
    return Settings(**values, sources=sources)

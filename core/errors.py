"""Errors that map to process exit codes, so an operator (or a scheduler) can tell failures apart."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import ParamSpec

Params = ParamSpec("Params")


class ExitCode(IntEnum):
    """What `igdb-pipeline` exits with. Documented in the README; schedulers key alerts on it."""

    OK = 0
    FAILED = 1  # a step ran and failed (API gave up, I/O error, ...): rerun resumes
    USAGE = 2  # bad flag, bad date, bad configuration: fix the input, rerunning will not help
    VALIDATION = 3  # data failed the validation gate: nothing was loaded
    BUSY = 4  # another run holds the lock for this date


class PipelineError(Exception):
    """Base class: carries the exit code the CLI should use."""

    exit_code: ExitCode = ExitCode.FAILED


class ConfigError(PipelineError):
    """A setting is missing or malformed. The message names the setting, never a secret value."""

    exit_code = ExitCode.USAGE


class IngestError(PipelineError):
    """Ingestion could not land a complete, consistent partition."""


class ApiError(IngestError):
    """The IGDB API (or its token endpoint) answered with an error we cannot retry away."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status



def tool_main(main: Callable[Params, int]) -> Callable[Params, int]:
    """The `main` of a tool module (python -m pipeline.emr, ...): a PipelineError becomes one
    `error: ...` line on stderr and its exit code, instead of a traceback."""

    @functools.wraps(main)
    def reporting(*args: Params.args, **kwargs: Params.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except PipelineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return int(exc.exit_code)

    return reporting

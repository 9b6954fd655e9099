"""Keep the ingest's memory flat: fewer malloc arenas for its many threads.

glibc gives each thread that allocates under contention its own malloc arena (up to 8 per
core) and keeps what is freed there for that arena's later use. The ingest's dispatcher and
walker threads each handle multi-megabyte answers in turn, so every arena grows to hold one,
and resident memory grows with the number of threads, not with what is alive (bench-ingest's
peak RSS shows it). One arena costs no contention here: the GIL already serialises nearly
every allocation. Setting M_ARENA_MAX is the standard remedy (the MALLOC_ARENA_MAX variable,
applied from inside because `run` and `spark-submit` start the process); it does nothing off
glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Cap glibc's malloc arenas for this process; False where there is no glibc mallopt."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        return False

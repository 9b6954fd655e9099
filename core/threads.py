"""Work on threads that log with the caller's context: a list of items, or a graph of tasks.

Spark runs jobs from several threads at once. On a small cluster most jobs of a date leave
cores idle (one small file is one task; a job waits on the driver between its stages), so
running independent jobs side by side keeps the cores busy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from core.logs import bind_context, current_context

T = TypeVar("T")
R = TypeVar("R")


def map_in_threads(work: Callable[[T], R], items: Iterable[T], workers: int, name: str) -> list[R]:
    """work(item) for every item on `workers` threads, results in the items' order; each thread logs
    with the caller's context."""
    context = current_context()

    def bound(item: T) -> R:
        bind_context(context)
        return work(item)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        return list(pool.map(bound, items))


@dataclass(frozen=True)
class Task(Generic[R]):
    """One piece of work and the tasks it needs done first; `work` gets their results by name."""

    name: str
    work: Callable[[Mapping[str, Any]], R]
    after: tuple[str, ...] = field(default=())


def run_graph(tasks: Sequence[Task[R]], workers: int, name: str) -> dict[str, R]:
    """Run each task as soon as every task it comes `after` is done, at most `workers` at once;
    among the tasks ready, the earlier in `tasks` starts first. Results by task name.

    A failure stops further starts; it is raised once the tasks already running have ended (a
    Spark job cannot be taken back half-way, and a half-reported step is worse than a late one).
    """
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"task names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}")
    if unknown := sorted({a for t in tasks for a in t.after} - set(names)):
        raise ValueError(f"tasks come after unknown task(s): {', '.join(unknown)}")
    context = current_context()

    def bound(task: Task[R]) -> R:
        bind_context(context)
        return task.work({name: results[name] for name in task.after})

    results: dict[str, R] = {}
    pending = list(tasks)
    running: dict[Future[R], str] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        while pending or running:
            ready = [t for t in pending if set(t.after) <= results.keys()] if failure is None else []
            for task in ready[:workers - len(running)]:
                pending.remove(task)
                running[pool.submit(bound, task)] = task.name
            if not running:
                if failure is not None:
                    break
                raise ValueError(f"tasks wait for each other: {', '.join(t.name for t in pending)}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task_name = running.pop(future)
                try:
                    results[task_name] = future.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below, once the others end
                    failure = failure or exc
    if failure is not None:
        raise failure
    return results

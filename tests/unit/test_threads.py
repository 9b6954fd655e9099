"""Work on threads: results in order, the caller's log context kept, a task graph run in its order."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import pytest

from core.logs import current_context, log_context
from core.threads import Task, map_in_threads, run_graph


def test_map_in_threads_keeps_the_order_and_the_callers_context() -> None:
    def work(item: int) -> tuple[int, dict, str]:
        return item * 10, current_context(), threading.current_thread().name

    with log_context(run_id="r1", step="transform"):
        results = map_in_threads(work, [3, 1, 2], workers=2, name="unit")
    assert [value for value, _, _ in results] == [30, 10, 20]
    assert all(context == {"run_id": "r1", "step": "transform"} for _, context, _ in results)
    assert all(thread.startswith("unit") for _, _, thread in results)
    assert current_context() == {}


def test_map_in_threads_raises_what_the_work_raised() -> None:
    def work(item: int) -> int:
        if item == 2:
            raise ValueError("bad item 2")
        return item

    with pytest.raises(ValueError, match="bad item 2"):
        map_in_threads(work, [1, 2, 3], workers=2, name="unit")


class Recorder:
    """Tasks that note when they start and end, and how many run at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.running = 0
        self.most = 0

    def task(self, name: str, after: tuple[str, ...] = (), seconds: float = 0.05) -> Task[str]:
        def work(needs: Mapping[str, str]) -> str:
            assert set(needs) == set(after), "a task gets the results of the tasks it is after"
            with self.lock:
                self.events.append(("start", name))
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(seconds)
            with self.lock:
                self.running -= 1
                self.events.append(("end", name))
            return f"{name} {current_context().get('step')}"

        return Task(name, work, after)

    def position(self, kind: str, name: str) -> int:
        return self.events.index((kind, name))


def test_a_task_starts_only_after_the_tasks_it_needs_and_as_soon_as_they_end() -> None:
    r = Recorder()
    tasks = [r.task("slow", seconds=0.3), r.task("quick"), r.task("after quick", ("quick",)),
             r.task("after both", ("slow", "after quick"))]
    with log_context(step="transform"):
        results = run_graph(tasks, workers=2, name="unit")
    assert results == {t.name: f"{t.name} transform" for t in tasks}
    assert r.position("start", "after quick") > r.position("end", "quick")
    assert r.position("start", "after quick") < r.position("end", "slow"), "it did not wait for the slow task"
    assert r.position("start", "after both") > max(r.position("end", "slow"), r.position("end", "after quick"))
    assert r.most == 2


def test_at_most_workers_run_at_once_and_the_earlier_ready_task_starts_first() -> None:
    r = Recorder()
    run_graph([r.task(f"t{i}") for i in range(6)], workers=3, name="unit")
    assert r.most == 3
    assert [name for kind, name in r.events if kind == "start"][:3] == ["t0", "t1", "t2"]


def test_a_failure_stops_new_starts_and_is_raised_after_the_running_tasks_end() -> None:
    r = Recorder()

    def broken(_: Mapping[str, str]) -> str:
        time.sleep(0.05)
        raise RuntimeError("stage games failed")

    tasks = [Task("broken", broken), r.task("long", seconds=0.3), r.task("needs broken", ("broken",)),
             r.task("queued"), r.task("queued too")]
    with pytest.raises(RuntimeError, match="stage games failed"):
        run_graph(tasks, workers=2, name="unit")
    assert ("end", "long") in r.events, "the running task was abandoned"
    assert ("start", "needs broken") not in r.events
    assert not {("start", "queued"), ("start", "queued too")} & set(r.events), "a task started after the failure"


@pytest.mark.parametrize(("tasks", "message"), [
    ([Task("a", lambda _: 1, ("b",)), Task("b", lambda _: 2, ("a",))], "wait for each other: a, b"),
    ([Task("a", lambda _: 1, ("nowhere",))], "unknown task.*nowhere"),
    ([Task("a", lambda _: 1), Task("a", lambda _: 2)], "repeat.*'a'"),
])
def test_a_graph_that_cannot_run_is_refused(tasks: list[Task[int]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_graph(tasks, workers=2, name="unit")

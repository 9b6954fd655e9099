"""Log context across threads: work done on a pool logs with the run's fields."""

from __future__ import annotations

import threading

import pytest

from pipeline.logs import current_context, log_context, map_in_threads


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

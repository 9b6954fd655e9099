"""A real Spark standalone cluster (a master and two one-core workers on 127.0.0.1) per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline import local_cluster


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_cluster.Cluster]:
    directory = tmp_path_factory.mktemp("cluster")
    # not waited for here: the JVMs start while a test does its local-mode work
    cluster = local_cluster.start(directory, workers=2, worker_memory="1500m", wait=False)
    try:
        yield cluster
    finally:
        local_cluster.stop(directory)

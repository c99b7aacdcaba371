"""Shared fixtures: the offline encoding, small configurations."""
from __future__ import annotations

import os

import pytest

# the same cache as `make setup` fills (numba's compiled UMAP, tiktoken's files): the checkout's .cache
os.environ.setdefault("EMBEDVIZ_CACHE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".cache")))



@pytest.fixture(scope="session")
def enc():
    from embedviz.tokens import load_encoding

    return load_encoding("cl100k_base")


@pytest.fixture(scope="module")
def trainings_on_a_thread():
    """Pages of the module train on a thread of the test process, with a patient registry.

    A training process is forked from a server that imports torch first: 10-40 s per test worker on a
    busy 2-core machine, for pages whose only threads are the test's own (nothing to starve the
    training thread). The training processes are tested in tests/test_jobs.py and, behind a real
    server, by the Chromium tier. AppTest reruns the page only when told, which can take longer than
    `abandon_after_s` on a loaded machine, so jobs are kept for 10 minutes without a watcher.
    """
    from embedviz import config, jobs
    from embedviz.ui import loaders

    lim = config.limits()
    registry = jobs.JobRegistry(max_running=lim.max_concurrent_trainings, max_queued=lim.max_queued_trainings,
                                max_kept=lim.max_kept_models, max_seconds=lim.max_train_seconds,
                                abandon_after_s=600.0, isolated=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loaders, "registry", lambda: registry)
        mp.setattr(jobs, "warm_up", lambda: None)  # no fork server to start
        yield registry

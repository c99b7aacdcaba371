"""Tiny work functions for tests/test_jobs.py's training processes: module-level, so they pickle.

Each takes the training loop's keywords (`on_progress`, `should_stop`) and returns an object with
`stopped_early`, like embedviz.training.train.
"""
from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace


def steps(n: int, *, on_progress, should_stop) -> SimpleNamespace:
    for i in range(n):
        if should_stop():
            return SimpleNamespace(step=i, stopped_early=True)
        on_progress(i)
        time.sleep(0.01)
    return SimpleNamespace(step=n, stopped_early=False)


def fail(*, on_progress, should_stop) -> SimpleNamespace:
    raise ValueError("corpus too short")


def die(*, on_progress, should_stop) -> SimpleNamespace:
    os._exit(3)


def record_pid_and_wait(path: str, *, on_progress, should_stop) -> SimpleNamespace:
    """Writes its process id to `path`, then waits for should_stop (60 s at most) without ever
    reporting progress, like a slow training between two reports."""
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    end = time.monotonic() + 60
    while not should_stop() and time.monotonic() < end:
        time.sleep(0.05)
    return SimpleNamespace(stopped_early=True)


def gil_handoffs(seconds: float, *, on_progress, should_stop) -> SimpleNamespace:
    """Counts GIL releases and take-backs (`sleep(0)`) for `seconds`, like a torch step's short calls."""
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0)
        count += 1
    return SimpleNamespace(count=count, stopped_early=False)


def loaded_modules(*, on_progress, should_stop) -> SimpleNamespace:
    return SimpleNamespace(modules=set(sys.modules), stopped_early=False)

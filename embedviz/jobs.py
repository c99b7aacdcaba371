"""Training jobs shared by every session of one server: bounded, queued, stoppable.

A job is keyed by everything that determines its result, so a second visitor with the same
settings gets the running or finished job instead of a new one. At most `max_running` jobs
train at once (the others wait in a queue); at most `max_kept` finished ones are kept.

With `isolated=True` each job trains in its own process (forked from a server that has torch
loaded already), so the pages other visitors are drawing cannot slow it down and it uses the
second core; its progress and result come back through a pipe. Work must then be picklable.
"""
from __future__ import annotations

import collections
import multiprocessing as mp
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

QUEUED, RUNNING, DONE, STOPPED, FAILED = "queued", "running", "done", "stopped", "failed"

# A training step is ~50 short torch calls, each giving up the GIL and taking it back. With Python's
# default 5 ms switch interval, one busy thread (a page being drawn) made each take-back wait up to
# 5 ms: 100 steps took 47 s instead of 1.7 s. At 0.5 ms they took 1.6 s (measured on 2 cores).
# Ten busy pages still starve a training thread, hence isolated=True for the server.
SWITCH_INTERVAL_S = 0.0005
PRELOAD = ("embedviz.training",)  # imported once by the fork server, so each training starts at once


@dataclass
class Job:
    key: Hashable
    state: str = QUEUED
    progress: Any = None  # the last progress report of the training loop
    history: list = field(default_factory=list)  # every progress report, for the live loss curve
    result: Any = None
    error: str | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.state in (DONE, STOPPED, FAILED)

    def stop(self) -> None:
        """Ask the loop to stop after its current step; it keeps the model reached so far."""
        self.stop_requested.set()


class Trainer:
    """The registry of jobs. Thread-safe; one instance per server process."""

    def __init__(self, *, max_running: int, max_kept: int, max_seconds: float, isolated: bool = False,
                 preload: tuple[str, ...] = PRELOAD) -> None:
        """preload: modules the fork server imports once; include what the main module imports,
        since every training process re-imports the main module (guarded by __name__)."""
        self._preload = preload
        self._slots = threading.Semaphore(max_running)
        self._max_kept = max_kept
        self._max_seconds = max_seconds
        self._isolated = isolated
        self._lock = threading.Lock()
        self._jobs: collections.OrderedDict[Hashable, Job] = collections.OrderedDict()
        if not isolated:
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))

    def get(self, key: Hashable) -> Job | None:
        with self._lock:
            job = self._jobs.get(key)
            if job is not None:
                self._jobs.move_to_end(key)
            return job

    def submit(self, key: Hashable, work: Callable[..., Any]) -> Job:
        """Start `work(on_progress=, should_stop=)` unless a live or finished job has this key.

        A job that was stopped early or failed is replaced: pressing Train again retrains.
        """
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state not in (STOPPED, FAILED):
                self._jobs.move_to_end(key)
                return job
            job = Job(key)
            self._jobs[key] = job
            self._evict()
        threading.Thread(target=self._run, args=(job, work), name=f"train-{hash(key) & 0xFFFF:x}",
                         daemon=True).start()
        return job

    def waiting_ahead(self, job: Job) -> int:
        """How many queued jobs were submitted before this one."""
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.state == QUEUED and j.submitted < job.submitted)

    def running(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.state == RUNNING)

    def _run(self, job: Job, work: Callable[..., Any]) -> None:
        with self._slots:
            if job.stop_requested.is_set():
                job.state = STOPPED
                job.done.set()
                return
            job.state = RUNNING
            deadline = time.monotonic() + self._max_seconds

            def on_progress(progress: Any) -> None:
                job.progress = progress
                job.history.append(progress)

            def should_stop() -> bool:
                return job.stop_requested.is_set() or time.monotonic() > deadline

            try:
                if self._isolated:
                    job.result = _in_process(work, on_progress, should_stop, preload=self._preload)
                else:
                    job.result = work(on_progress=on_progress, should_stop=should_stop)
                job.state = STOPPED if getattr(job.result, "stopped_early", False) else DONE
            except Exception as exc:  # reported on the page; the server keeps serving
                job.error = f"{type(exc).__name__}: {exc}"
                job.state = FAILED
            finally:
                job.done.set()

    def _evict(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.finished]
        for key in finished[: max(0, len(finished) - self._max_kept)]:
            del self._jobs[key]


_context_lock = threading.Lock()


def context(preload: tuple[str, ...] = PRELOAD) -> mp.context.BaseContext:
    """The fork server's context; the server process itself starts on first use (or warm_up)."""
    with _context_lock:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(preload))
        return ctx


def warm_up(preload: tuple[str, ...] = PRELOAD) -> None:
    """Start the fork server now (it imports torch once, ~2 s) rather than at the first Train."""
    from multiprocessing import forkserver

    context(preload)
    forkserver.ensure_running()


def _in_process(work: Callable[..., Any], on_progress, should_stop, *, preload: tuple[str, ...]) -> Any:
    ctx = context(preload)
    receiver, sender = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    proc = ctx.Process(target=_child, args=(work, sender, stop), daemon=True, name="embedviz-training")
    proc.start()
    sender.close()
    try:
        while True:
            if should_stop():
                stop.set()
            if receiver.poll(0.05):
                try:
                    kind, payload = receiver.recv()
                except EOFError:
                    raise RuntimeError(_ended(proc)) from None
                if kind == "progress":
                    on_progress(payload)
                elif kind == "result":
                    return payload
                else:
                    raise RuntimeError(payload)
            elif not proc.is_alive() and not receiver.poll():
                raise RuntimeError(_ended(proc))
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
        receiver.close()


def _ended(proc) -> str:
    proc.join(1)
    return (f"the training process ended without a result (exit code {proc.exitcode}); "
            "it may have run out of memory: try a smaller vocabulary, width or batch")


def _child(work: Callable[..., Any], sender, stop) -> None:
    """Runs in the training process: progress and the result go back through the pipe."""
    try:
        result = work(on_progress=lambda p: sender.send(("progress", p)), should_stop=stop.is_set)
        sender.send(("result", result))
    except Exception as exc:
        sender.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        sender.close()

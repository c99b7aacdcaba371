"""Training jobs shared by every session of one server: a registry with a bounded queue and owners.

A job is keyed by everything that determines its result, so a second visitor with the same settings
gets the queued, running or finished job instead of a new one. `max_running` worker threads take
jobs from a queue of at most `max_queued`; a job nobody has watched for `abandon_after_s` is
cancelled (queued) or stopped (running). Only a job's owner (a session id) may stop it or see it
stopped or cancelled; jobs that are queued, running or done are shared with everyone.

By default each job trains in its own process, forked from a server that has torch loaded already,
so the pages other visitors are drawing cannot slow it down (a training thread among ten busy page
threads is starved of the GIL) and it uses the second core; progress and result come back through a
pipe, so work must be picklable. The process ends by itself within a step if the server dies.
"""
from __future__ import annotations

import collections
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

QUEUED, RUNNING, DONE = "queued", "running", "done"
STOPPED, FAILED, CANCELLED = "stopped", "failed", "cancelled"  # cancelled: left the queue, never ran
FINISHED = (DONE, STOPPED, FAILED, CANCELLED)
# Imported once by the fork server, so each training process starts with torch loaded. torch._dynamo
# is imported by the first optimizer a process creates (torch.optim.Optimizer.__init__ is wrapped by
# torch._disable_dynamo): 2-6 s of CPU and ~70 MiB, paid once here instead of by every training.
# A training process also re-runs the main module's file as "__mp_main__" (app.py under `streamlit
# run`): that must import nothing at module level (tests/test_package.py checks app.py).
PRELOAD = ("embedviz.jobs", "embedviz.training", "torch._dynamo")


class QueueFull(ValueError):
    """Too many trainings are waiting already; the visitor should try again shortly."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} training(s) are already waiting for a free trainer. "
                         "Try again in a minute, or use settings someone has trained already.")
        self.waiting = waiting


@dataclass(eq=False)
class Job:
    """One training run. Pages read it and never write it.

    Written by the worker thread: `state` (under the registry's lock), `progress`, `history`, `result`
    and `error`, then `done` is set once the state is final (`result` is written before the state, so
    whoever sees DONE sees the result). Written under the lock by pages: `last_watched` (through
    `JobRegistry.watch`) and `stop_requested` (through `JobRegistry.stop`).
    """

    key: Hashable
    owner: str  # the session that submitted it: only it may stop the job or see it STOPPED
    state: str = QUEUED
    progress: Any = None  # the last progress report of the training loop
    history: list = field(default_factory=list)  # every progress report, for the live loss curve
    result: Any = None  # passed back by value (a copy from the training process)
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    last_watched: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class JobRegistry:
    """The jobs of one server process, shared by every session. Thread-safe."""

    def __init__(self, *, max_running: int, max_queued: int, max_kept: int, max_seconds: float,
                 abandon_after_s: float, isolated: bool = True) -> None:
        """max_kept: finished jobs kept for other visitors (oldest dropped first); max_seconds: a
        running job is stopped (model kept) after this long. isolated=False runs work on the worker
        thread itself: only for tests and unpicklable work, since busy page threads starve it."""
        assert max_running >= 1 and max_queued >= 0 and max_kept >= 0 and abandon_after_s > 0
        self._max_running = max_running
        self._max_queued = max_queued
        self._max_kept = max_kept
        self._max_seconds = max_seconds
        self._abandon_after_s = abandon_after_s
        self._isolated = isolated
        self._lock = threading.Condition()
        self._jobs: collections.OrderedDict[Hashable, Job] = collections.OrderedDict()
        self._queue: collections.deque[tuple[Job, Callable[..., Any]]] = collections.deque()
        for i in range(max_running):  # a fixed number: abandoned jobs cannot grow the thread count
            threading.Thread(target=self._serve, name=f"embedviz-trainer-{i}", daemon=True).start()

    def get(self, key: Hashable, *, owner: str) -> Job | None:
        """The job for `key`, unless it was stopped or cancelled and `owner` did not start it (a
        partial model is not offered to others as the trained one)."""
        with self._lock:
            self._cancel_abandoned()
            job = self._jobs.get(key)
            if job is None or (job.state in (STOPPED, CANCELLED) and job.owner != owner):
                return None
            self._jobs.move_to_end(key)
            return job

    def submit(self, key: Hashable, work: Callable[..., Any], *, owner: str) -> Job:
        """Queue `work(on_progress=, should_stop=)` unless a queued, running or done job has this key.

        A job that was stopped early, failed or cancelled is replaced: pressing Train again retrains.
        A session has at most one queued job: its older one is cancelled. Raises QueueFull when
        `max_queued` jobs are waiting and no trainer is free.
        """
        with self._lock:
            self._cancel_abandoned()
            job = self._jobs.get(key)
            if job is not None and job.state in (QUEUED, RUNNING, DONE):
                job.last_watched = time.monotonic()
                self._jobs.move_to_end(key)
                return job
            for older, _ in list(self._queue):
                if older.owner == owner:
                    self._cancel(older)
            free = self._max_running - sum(1 for j in self._jobs.values() if j.state == RUNNING)
            if len(self._queue) >= self._max_queued + free:
                raise QueueFull(len(self._queue))
            job = Job(key, owner)
            self._jobs[key] = job
            self._queue.append((job, work))
            self._evict()
            self._lock.notify()
            return job

    def watch(self, job: Job) -> None:
        """Someone is looking at this job: call it at every redraw (twice a second), from any session.
        A job nobody watches for `abandon_after_s` is cancelled or stopped."""
        with self._lock:
            job.last_watched = time.monotonic()

    def stop(self, job: Job, *, owner: str) -> bool:
        """Stop `job` if `owner` started it: a queued job never runs, a running one stops after its
        current step and keeps the model reached so far. False (and nothing done) otherwise."""
        with self._lock:
            if job.owner != owner or job.finished:
                return False
            if job.state == QUEUED:
                self._cancel(job)
            else:
                job.stop_requested.set()
            return True

    def waiting_ahead(self, job: Job) -> int:
        """How many queued jobs will start before this one."""
        with self._lock:
            self._cancel_abandoned()
            ahead = [j for j, _ in self._queue]
            return ahead.index(job) if job in ahead else 0

    def running(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.state == RUNNING)

    def _serve(self) -> None:
        """One worker thread: takes the next job that someone still watches, runs it, repeats."""
        while True:
            with self._lock:
                self._cancel_abandoned()
                while not self._queue:
                    self._lock.wait()
                    self._cancel_abandoned()
                job, work = self._queue.popleft()
                job.state = RUNNING
            self._run(job, work)

    def _run(self, job: Job, work: Callable[..., Any]) -> None:
        deadline = time.monotonic() + self._max_seconds

        def on_progress(progress: Any) -> None:
            job.progress = progress
            job.history.append(progress)

        def should_stop() -> bool:
            now = time.monotonic()
            return (job.stop_requested.is_set() or now > deadline
                    or now - job.last_watched > self._abandon_after_s)

        result, error = None, None
        try:
            if self._isolated:
                result = _in_process(work, on_progress, should_stop)
            else:
                result = work(on_progress=on_progress, should_stop=should_stop)
        except Exception as exc:  # reported on the page; the server keeps serving
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            job.result, job.error = result, error
            if error is not None:
                job.state = FAILED
            else:
                job.state = STOPPED if getattr(result, "stopped_early", False) else DONE
            self._evict()
        job.done.set()

    def _cancel_abandoned(self) -> None:
        now = time.monotonic()
        for job, _ in list(self._queue):
            if now - job.last_watched > self._abandon_after_s:
                self._cancel(job)

    def _cancel(self, job: Job) -> None:
        """A queued job leaves the queue without running. Caller holds the lock."""
        self._queue = collections.deque(item for item in self._queue if item[0] is not job)
        job.state = CANCELLED
        job.done.set()
        self._evict()

    def _evict(self) -> None:
        """Keep `max_kept` finished jobs: cancelled ones (no model) go first, then the least recently used."""
        finished = ([k for k, j in self._jobs.items() if j.state == CANCELLED]
                    + [k for k, j in self._jobs.items() if j.finished and j.state != CANCELLED])
        for key in finished[: max(0, len(finished) - self._max_kept)]:
            del self._jobs[key]


_context_lock = threading.Lock()


def context() -> mp.context.BaseContext:
    """The fork server's context; the server process itself starts on first use (or warm_up)."""
    with _context_lock:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
        return ctx


def warm_up() -> None:
    """Start the fork server now (it imports torch once, ~2 s) rather than at the first Train."""
    from multiprocessing import forkserver

    context()
    forkserver.ensure_running()


def _in_process(work: Callable[..., Any], on_progress: Callable[[Any], None],
                should_stop: Callable[[], bool]) -> Any:
    ctx = context()
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


def _ended(proc: mp.process.BaseProcess) -> str:
    proc.join(1)
    return (f"the training process ended without a result (exit code {proc.exitcode}); "
            "it may have run out of memory: try a smaller vocabulary, width or batch")


def _child(work: Callable[..., Any], sender: Any, stop: Any) -> None:
    """Runs in the training process: progress and the result go back through the pipe.

    Its parent is the fork server, not the server, so nothing kills it when the server dies; it
    stops at the next step instead, when the server's end of the start-up pipe (the sentinel
    `parent_process()` watches) closes.
    """
    server = mp.parent_process()

    def should_stop() -> bool:
        return stop.is_set() or not server.is_alive()

    try:
        result = work(on_progress=lambda p: sender.send(("progress", p)), should_stop=should_stop)
        message = ("result", result)
    except Exception as exc:
        message = ("error", f"{type(exc).__name__}: {exc}")
    try:
        sender.send(message)
    except OSError:  # the server is gone: nobody is left to tell
        pass
    finally:
        sender.close()

import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

from embedviz.jobs import CANCELLED, DONE, FAILED, PRELOAD, QUEUED, RUNNING, STOPPED, Job, JobRegistry, QueueFull
from tests import jobs_work

ROOT = Path(__file__).resolve().parents[1]


def registry(**overrides) -> JobRegistry:
    """In-thread by default (fast, closures allowed); the isolated tests below use processes."""
    settings = dict(max_running=1, max_queued=4, max_kept=4, max_seconds=60, abandon_after_s=60,
                    isolated=False)
    return JobRegistry(**{**settings, **overrides})


def occupied(r: JobRegistry, gate: threading.Event) -> Job:
    """Fill the registry's one trainer with a job that runs until `gate` is set."""
    running = r.submit("a", counting_work(gate=gate), owner="A")
    assert until(lambda: running.state == RUNNING)
    return running


def until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def counting_work(steps=5, gate: threading.Event | None = None, delay=0.0, ran: list | None = None):
    def work(*, on_progress, should_stop):
        if ran is not None:
            ran.append(True)
        for i in range(steps):
            if gate is not None:
                gate.wait(5)
            time.sleep(delay)
            if should_stop():
                return SimpleNamespace(step=i, stopped_early=True)
            on_progress(i)
        return SimpleNamespace(step=steps, stopped_early=False)
    return work


def test_same_key_is_shared_across_sessions():
    r = registry()
    a = r.submit("k", counting_work(), owner="A")
    assert r.submit("k", counting_work(), owner="B") is a
    assert a.done.wait(5) and a.state == DONE and a.result.step == 5
    assert a.history == [0, 1, 2, 3, 4]
    assert r.get("k", owner="B") is a  # a finished model is everyone's
    assert r.submit("k", counting_work(), owner="B") is a  # and is served, not retrained


def test_owner_stop_keeps_the_model_reached_so_far():
    r = registry()
    job = r.submit("k", counting_work(steps=1000, delay=0.005), owner="A")
    assert until(lambda: job.history)
    assert r.stop(job, owner="A")
    assert job.done.wait(5)
    assert job.state == STOPPED and 0 < job.result.step < 1000


def test_another_session_cannot_stop_a_job():
    gate = threading.Event()
    r = registry()
    job = r.submit("k", counting_work(gate=gate), owner="A")
    assert until(lambda: job.state == RUNNING)
    assert r.stop(job, owner="B") is False
    gate.set()
    assert job.done.wait(5) and job.state == DONE and job.result.step == 5


def test_a_stopped_job_is_shown_only_to_its_owner():
    r = registry()
    job = r.submit("k", counting_work(steps=1000, delay=0.005), owner="A")
    assert until(lambda: job.history)
    r.stop(job, owner="A")
    assert job.done.wait(5) and job.state == STOPPED
    assert r.get("k", owner="A") is job
    assert r.get("k", owner="B") is None  # a partial model is not "the trained model" for others
    again = r.submit("k", counting_work(), owner="B")  # B trains afresh
    assert again is not job and again.done.wait(5) and again.state == DONE
    assert r.get("k", owner="A") is again


def test_bounded_concurrency_queues_the_rest():
    gate = threading.Event()
    r = registry()
    first = r.submit("a", counting_work(gate=gate), owner="A")
    second = r.submit("b", counting_work(gate=gate), owner="B")
    assert until(lambda: first.state == RUNNING)
    assert second.state == QUEUED
    assert r.waiting_ahead(second) == 0 and r.running() == 1
    gate.set()
    assert second.done.wait(5) and second.state == DONE


def test_a_full_queue_refuses_and_says_how_many_wait():
    gate = threading.Event()
    r = registry(max_queued=2)
    occupied(r, gate)
    queued = [r.submit(k, counting_work(gate=gate), owner=k) for k in "bc"]
    with pytest.raises(QueueFull, match="2 training") as refused:
        r.submit("d", counting_work(), owner="D")
    assert isinstance(refused.value, ValueError) and refused.value.waiting == 2
    assert r.submit("b", counting_work(), owner="D") is queued[0]  # same settings: no new place taken
    assert r.waiting_ahead(queued[1]) == 1
    gate.set()
    assert all(j.done.wait(5) and j.state == DONE for j in queued)


def test_a_session_keeps_one_queued_job():
    gate, ran = threading.Event(), []
    r = registry()
    occupied(r, gate)
    older = r.submit("b1", counting_work(ran=ran), owner="B")
    newer = r.submit("b2", counting_work(), owner="B")
    assert older.state == CANCELLED and older.done.is_set() and r.waiting_ahead(newer) == 0
    assert r.get("b1", owner="B") is older and r.get("b1", owner="C") is None  # seen by its owner only
    gate.set()
    assert newer.done.wait(5) and newer.state == DONE
    assert ran == []  # the cancelled job never ran


def test_stopping_a_queued_job_means_it_never_runs():
    gate, ran = threading.Event(), []
    r = registry()
    running = occupied(r, gate)
    queued = r.submit("b", counting_work(ran=ran), owner="B")
    assert r.stop(queued, owner="B")
    assert queued.state == CANCELLED
    gate.set()
    assert running.done.wait(5)
    assert r.submit("c", counting_work(), owner="C").done.wait(5)  # the worker went on to the next
    assert ran == []


def test_an_abandoned_queued_job_never_runs():
    gate, ran = threading.Event(), []
    r = registry(abandon_after_s=0.3)
    watched = r.submit("a", counting_work(gate=gate), owner="A")
    abandoned = r.submit("b", counting_work(ran=ran), owner="B")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # A's page polls twice a second (faster here); B's tab is closed
        r.watch(watched)
        time.sleep(0.05)
    assert r.waiting_ahead(abandoned) == 0 and abandoned.state == CANCELLED
    assert r.get("b", owner="C") is None
    again = r.submit("b", counting_work(), owner="B")  # B comes back: pressing Train queues it again
    assert again is not abandoned and again.state == QUEUED
    gate.set()
    assert watched.done.wait(5) and watched.result is not None  # it ran
    assert ran == []


def test_an_abandoned_running_job_is_stopped_and_anyone_watching_keeps_it_alive():
    r = registry(abandon_after_s=0.3)
    job = r.submit("k", counting_work(steps=1000, delay=0.01), owner="A")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # only B, another session, watches it
        r.watch(job)
        time.sleep(0.05)
    assert job.state == RUNNING
    assert job.done.wait(3) and job.state == STOPPED and job.result.step < 1000
    assert r.get("k", owner="B") is None


def test_queued_jobs_take_no_thread_and_abandoned_ones_are_dropped():
    gate = threading.Event()
    r = registry(max_running=2, max_queued=20, abandon_after_s=0.3)
    before = threading.active_count()
    jobs = [r.submit(i, counting_work(gate=gate), owner=f"tab{i}") for i in range(12)]
    assert until(lambda: r.running() == 2)
    assert threading.active_count() == before
    time.sleep(0.4)  # every tab closed
    assert r.waiting_ahead(jobs[-1]) == 0 and all(j.state == CANCELLED for j in jobs[2:])
    gate.set()
    assert all(j.done.wait(5) for j in jobs[:2])


def test_time_limit_stops_training():
    r = registry(max_seconds=0.05)

    def slow(*, on_progress, should_stop):
        while not should_stop():
            time.sleep(0.01)
        return SimpleNamespace(stopped_early=True)

    job = r.submit("k", slow, owner="A")
    assert job.done.wait(5) and job.state == STOPPED


def test_failure_is_reported_and_server_goes_on():
    r = registry()

    def broken(*, on_progress, should_stop):
        raise ValueError("corpus too short")

    job = r.submit("k", broken, owner="A")
    assert job.done.wait(5) and job.state == FAILED and "corpus too short" in job.error
    assert r.submit("k2", counting_work(), owner="A").done.wait(5)


def test_old_finished_jobs_are_evicted():
    r = registry(max_running=2, max_kept=2)
    for k in range(5):
        assert r.submit(k, counting_work(steps=1), owner="A").done.wait(5)
    assert r.submit("last", counting_work(steps=1), owner="A").done.wait(5)
    kept = [k for k in [0, 1, 2, 3, 4, "last"] if r.get(k, owner="A") is not None]
    assert kept == [4, "last"]


def test_cancelled_jobs_are_evicted_before_trained_models():
    gate = threading.Event()
    r = registry(max_kept=1)
    model = r.submit("m", counting_work(), owner="A")
    assert model.done.wait(5)
    running = occupied(r, gate)
    r.stop(r.submit("b", counting_work(), owner="B"), owner="B")
    assert r.get("b", owner="B") is None and r.get("m", owner="C") is model
    gate.set()
    assert running.done.wait(5)


# ---- isolated: each job in its own process (what the server uses)

def isolated(**overrides) -> JobRegistry:
    return registry(isolated=True, **overrides)


def test_isolated_job_reports_progress_and_result():
    job = isolated().submit("k", partial(jobs_work.steps, 5), owner="A")
    assert job.done.wait(60), job.state
    assert job.state == DONE and job.result.step == 5 and job.history == [0, 1, 2, 3, 4]


def test_isolated_job_stops_and_keeps_its_result():
    r = isolated()
    job = r.submit("k", partial(jobs_work.steps, 100_000), owner="A")
    assert until(lambda: job.history, timeout=60)
    assert r.stop(job, owner="A")
    assert job.done.wait(30)
    assert job.state == STOPPED and 0 < job.result.step < 100_000


def test_isolated_errors_and_crashes_are_reported():
    r = isolated(max_running=2)
    failed, died = r.submit("a", jobs_work.fail, owner="A"), r.submit("b", jobs_work.die, owner="B")
    assert failed.done.wait(60) and died.done.wait(60)
    assert failed.state == FAILED and "corpus too short" in failed.error
    assert died.state == FAILED and "exit code 3" in died.error


def test_isolated_training_is_not_starved_by_busy_threads():
    """Page threads hog the GIL; a training process has its own, a training thread waits for it."""
    quit_ = threading.Event()

    def busy() -> None:
        while not quit_.is_set():
            pass

    spinners = [threading.Thread(target=busy, daemon=True) for _ in range(3)]
    try:
        for t in spinners:
            t.start()
        # at the same time, so both see the same machine load
        in_process = isolated().submit("k", partial(jobs_work.gil_handoffs, 1.0), owner="A")
        in_thread = registry().submit("k", partial(jobs_work.gil_handoffs, 1.0), owner="A")
        assert in_process.done.wait(60) and in_thread.done.wait(60)
    finally:
        quit_.set()
    assert in_process.state == DONE and in_thread.state == DONE
    assert in_process.result.count > 5 * in_thread.result.count, (in_process.result, in_thread.result)


SERVER = """
import sys, time
from functools import partial

from embedviz import jobs
from tests import jobs_work

if __name__ == "__main__":  # the training process re-runs this file as __mp_main__
    registry = jobs.JobRegistry(max_running=1, max_queued=1, max_kept=1, max_seconds=120, abandon_after_s=120)
    registry.submit("k", partial(jobs_work.record_pid_and_wait, sys.argv[1]), owner="A")
    time.sleep(120)
"""


def alive(pid: int) -> bool:
    """Running (a zombie has ended; nobody may reap it in a container)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_training_process_ends_soon_after_its_server_is_killed(tmp_path):
    script, pid_file = tmp_path / "server.py", tmp_path / "child.pid"
    script.write_text(SERVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen([sys.executable, str(script), str(pid_file)], cwd=ROOT, env=env)
    child = None
    try:
        assert until(pid_file.exists, timeout=90), "the training process did not start"
        child = int(pid_file.read_text())
        assert alive(child)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        assert until(lambda: not alive(child), timeout=10), "the training process outlived its server"
    finally:
        server.kill()
        server.wait(10)
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)


def test_training_processes_start_with_torch_loaded_by_the_fork_server():
    job = isolated().submit("k", jobs_work.loaded_modules, owner="A")  # jobs_work imports no torch
    assert job.done.wait(60) and job.state == DONE, job.error
    assert set(PRELOAD) | {"torch"} <= job.result.modules


def test_isolated_training_result_crosses_processes_intact():
    import numpy as np
    import torch

    from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig
    from embedviz.training import train

    cfg = ModelConfig(EmbeddingConfig(vocab_size=16, dim=8, positions=4, seed=2), n_layer=1, n_head=2)
    tcfg = TrainConfig(steps=10, batch_size=4, eval_every=5, snapshot_every=5)
    rows = np.arange(300) % 16
    job = isolated().submit("k", partial(train, cfg, tcfg, rows), owner="A")
    assert job.done.wait(120) and job.state == DONE, job.error
    here = train(cfg, tcfg, rows)
    assert torch.equal(job.result.model.wte.weight, here.model.wte.weight)
    assert job.result.model.lm_head.weight is job.result.model.wte.weight  # still tied
    assert [p.step for p in job.history] == [h[0] for h in here.history]
    np.testing.assert_array_equal(job.result.snapshots[-1][1], here.snapshots[-1][1])

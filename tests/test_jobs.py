import threading
import time
from types import SimpleNamespace

from embedviz.jobs import DONE, FAILED, QUEUED, RUNNING, STOPPED, Trainer


def counting_work(steps=5, gate: threading.Event | None = None, delay=0.0):
    def work(*, on_progress, should_stop):
        for i in range(steps):
            if gate is not None:
                gate.wait(5)
            time.sleep(delay)
            if should_stop():
                return SimpleNamespace(step=i, stopped_early=True)
            on_progress(i)
        return SimpleNamespace(step=steps, stopped_early=False)
    return work


def test_same_key_shares_one_job():
    t = Trainer(max_running=1, max_kept=4, max_seconds=60)
    a = t.submit("k", counting_work())
    b = t.submit("k", counting_work())
    assert a is b
    assert a.done.wait(5) and a.state == DONE and a.result.step == 5
    assert a.history == [0, 1, 2, 3, 4]
    assert t.submit("k", counting_work()) is a  # finished results are served, not retrained


def test_stop_keeps_the_model_reached_so_far():
    gate = threading.Event()
    t = Trainer(max_running=1, max_kept=4, max_seconds=60)
    job = t.submit("k", counting_work(steps=1000, gate=gate, delay=0.005))
    gate.set()
    while not job.history:
        time.sleep(0.01)
    job.stop()
    assert job.done.wait(5)
    assert job.state == STOPPED and 0 < job.result.step < 1000
    again = t.submit("k", counting_work())  # a stopped job is replaced on the next Train
    assert again is not job and again.done.wait(5) and again.state == DONE


def test_bounded_concurrency_queues_the_rest():
    gate = threading.Event()
    t = Trainer(max_running=1, max_kept=4, max_seconds=60)
    first = t.submit("a", counting_work(gate=gate))
    second = t.submit("b", counting_work(gate=gate))
    for _ in range(100):
        if first.state == RUNNING:
            break
        time.sleep(0.01)
    assert first.state == RUNNING and second.state == QUEUED
    assert t.waiting_ahead(second) == 0 and t.running() == 1
    gate.set()
    assert second.done.wait(5) and second.state == DONE


def test_time_limit_stops_training():
    t = Trainer(max_running=1, max_kept=4, max_seconds=0.05)

    def slow(*, on_progress, should_stop):
        while not should_stop():
            time.sleep(0.01)
        return SimpleNamespace(stopped_early=True)

    job = t.submit("k", slow)
    assert job.done.wait(5) and job.state == STOPPED


def test_failure_is_reported_and_server_goes_on():
    t = Trainer(max_running=1, max_kept=4, max_seconds=60)

    def broken(*, on_progress, should_stop):
        raise ValueError("corpus too short")

    job = t.submit("k", broken)
    assert job.done.wait(5) and job.state == FAILED and "corpus too short" in job.error
    assert t.submit("k2", counting_work()).done.wait(5)


def test_old_finished_jobs_are_evicted():
    t = Trainer(max_running=2, max_kept=2, max_seconds=60)
    for k in range(5):
        t.submit(k, counting_work(steps=1)).done.wait(5)
    t.submit("last", counting_work(steps=1)).done.wait(5)
    kept = [k for k in [0, 1, 2, 3, 4, "last"] if t.get(k) is not None]
    assert len(kept) <= 3 and "last" in kept


def test_training_threads_are_not_starved_by_busy_threads():
    import sys

    from embedviz.jobs import SWITCH_INTERVAL_S

    Trainer(max_running=1, max_kept=1, max_seconds=1)
    assert sys.getswitchinterval() <= SWITCH_INTERVAL_S


# ---- isolated: each job in its own process (what the server uses)

def _steps(n: int, *, on_progress, should_stop):
    for i in range(n):
        if should_stop():
            return SimpleNamespace(step=i, stopped_early=True)
        on_progress(i)
        time.sleep(0.01)
    return SimpleNamespace(step=n, stopped_early=False)


def _fail(*, on_progress, should_stop):
    raise ValueError("corpus too short")


def _die(*, on_progress, should_stop):
    import os

    os._exit(3)


def test_isolated_job_reports_progress_and_result():
    from functools import partial

    t = Trainer(max_running=1, max_kept=4, max_seconds=60, isolated=True)
    job = t.submit("k", partial(_steps, 5))
    assert job.done.wait(60), job.state
    assert job.state == DONE and job.result.step == 5 and job.history == [0, 1, 2, 3, 4]


def test_isolated_job_stops_and_keeps_its_result():
    from functools import partial

    t = Trainer(max_running=1, max_kept=4, max_seconds=60, isolated=True)
    job = t.submit("k", partial(_steps, 100_000))
    deadline = time.monotonic() + 60
    while not job.history and time.monotonic() < deadline:
        time.sleep(0.02)
    job.stop()
    assert job.done.wait(30)
    assert job.state == STOPPED and 0 < job.result.step < 100_000


def test_isolated_errors_and_crashes_are_reported():
    t = Trainer(max_running=2, max_kept=4, max_seconds=60, isolated=True)
    failed, died = t.submit("a", _fail), t.submit("b", _die)
    assert failed.done.wait(60) and died.done.wait(60)
    assert failed.state == FAILED and "corpus too short" in failed.error
    assert died.state == FAILED and "exit code 3" in died.error


def test_isolated_training_result_crosses_processes_intact():
    from functools import partial

    import numpy as np
    import torch

    from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig
    from embedviz.training import train

    cfg = ModelConfig(EmbeddingConfig(vocab_size=16, dim=8, positions=4, seed=2), n_layer=1, n_head=2)
    tcfg = TrainConfig(steps=10, batch_size=4, eval_every=5, snapshot_every=5)
    rows = np.arange(300) % 16
    t = Trainer(max_running=1, max_kept=4, max_seconds=60, isolated=True)
    job = t.submit("k", partial(train, cfg, tcfg, rows))
    assert job.done.wait(120) and job.state == DONE, job.error
    here = train(cfg, tcfg, rows)
    assert torch.equal(job.result.model.wte.weight, here.model.wte.weight)
    assert job.result.model.lm_head.weight is job.result.model.wte.weight  # still tied
    assert [p.step for p in job.history] == [h[0] for h in here.history]
    np.testing.assert_array_equal(job.result.snapshots[-1][1], here.snapshots[-1][1])

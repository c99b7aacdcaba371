"""Memory, in each mode: the peak of the largest training allowed, for each positional scheme (a fresh
process trains it for a few steps: its VmHWM, plus the snapshots a full run would keep), the resident
memory of a process that has served 50 and 100 distinct settings (AppTest sessions, as a server holds
them), and the process tree's peak while that process's job registry runs the largest training.
Figures are printed as each is measured, not asserted. `python -m benchmarks.memory --training-peak
hosted --positional alibi` prints one figure as JSON."""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from . import harness
from .report import Row, log

# Steps run to reach a training's peak; the snapshots of the rest are added by count. The second step is
# the first with the optimizer's state and the previous gradients alive during the forward pass, but the
# peak still creeps up after it (hosted, 2026-11-30: 649-658 MiB after 3 steps, 698-703 after 20). A
# local step of the largest training takes tens of seconds on a busy machine, so it runs only a few.
PEAK_STEPS = {"hosted": 10, "local": 3}
# Schemes measured per mode. Locally only learned (the is_causal kernel, as sinusoidal, rope and none)
# and alibi (the only one with an attention mask): five local trainings would take most of an hour.
SCHEMES = {"hosted": ("learned", "sinusoidal", "rope", "alibi", "none"), "local": ("learned", "alibi")}
SETTINGS_COUNTS = (50, 100)


def largest_training(mode: str, positional: str = "learned") -> tuple[Any, Any]:
    """(ModelConfig, TrainConfig) of the largest training `mode` ("local" or "hosted") allows with
    `positional`: every bound at its maximum, the batch the largest that keeps the logits of a step
    within the limit."""
    from embedviz import training
    from embedviz.config import HEAD_COUNTS, HOSTED_LIMITS, LOCAL_LIMITS, EmbeddingConfig, ModelConfig, TrainConfig

    lim = HOSTED_LIMITS if mode == "hosted" else LOCAL_LIMITS
    V, P, d = lim.max_train_vocab, min(lim.max_positions, lim.max_train_positions), lim.max_train_dim
    batch = max(b for b in TrainConfig.BATCH_SIZES
                if b <= lim.max_batch_size and b * P * V <= training.MAX_LOGITS_PER_STEP)
    heads = max(h for h in HEAD_COUNTS if d % h == 0)
    model_cfg = ModelConfig(EmbeddingConfig(V, d, P, 0), n_layer=lim.max_train_layers, n_head=heads,
                            positional=positional)
    return model_cfg, TrainConfig(steps=lim.max_train_steps, batch_size=batch)


def training_peak(mode: str, positional: str = "learned", *, steps: int | None = None) -> dict[str, Any]:
    """In this process (run it in a fresh one): train the largest allowed model with `positional` for
    `steps` steps (PEAK_STEPS of the mode by default) and return its VmHWM, and that plus the snapshots
    a run of all its steps would keep."""
    import numpy as np

    from embedviz import training
    from embedviz.config import HOSTED_LIMITS, LOCAL_LIMITS

    steps = PEAK_STEPS[mode] if steps is None else steps
    model_cfg, train_cfg = largest_training(mode, positional)
    lim = HOSTED_LIMITS if mode == "hosted" else LOCAL_LIMITS
    V, P, d = model_cfg.embedding.vocab_size, model_cfg.embedding.positions, model_cfg.embedding.dim
    rows = np.random.default_rng(0).integers(0, V, 200_000)  # (N,): memory does not depend on the text
    before = harness.vm_hwm_mib()
    asked = 0

    def should_stop() -> bool:  # asked once before every step
        nonlocal asked
        asked += 1
        return asked > steps

    start = time.perf_counter()
    result = training.train(model_cfg, train_cfg, rows, should_stop=should_stop)
    seconds = time.perf_counter() - start
    peak = harness.vm_hwm_mib()
    every = training._snapshot_interval(train_cfg, V, P, d)
    snapshots = train_cfg.steps // every + 2
    per_snapshot = (V + P) * d * 4 / 2**20  # MiB of one (wte, wpe) pair
    return {"mode": mode, "positional": positional, "V": V, "d": d, "P": P, "layers": model_cfg.n_layer,
            "heads": model_cfg.n_head, "batch": train_cfg.batch_size, "steps": train_cfg.steps,
            "steps_run": result.steps_done, "s_per_step": seconds / max(result.steps_done, 1),
            "vm_hwm_after_imports_mib": before, "vm_hwm_mib": peak, "snapshots_of_a_full_run": snapshots,
            "snapshot_mib": snapshots * per_snapshot, "full_run_peak_mib": peak + snapshots * per_snapshot,
            "max_concurrent_trainings": lim.max_concurrent_trainings}


def _training_peak_in_child(mode: str, positional: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--training-peak", mode,
                          "--positional", positional],
                         cwd=harness.ROOT, env=env, capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def server_figures(counts: tuple[int, ...] = SETTINGS_COUNTS, *, positional: str = "learned",
                   steps: int | None = None) -> Iterator[dict[str, Any]]:
    """In this process, standing in for a server: RSS (MiB) after n AppTest sessions with distinct
    table shapes and text, for each n in `counts` (what stays is what the caches keep); then the
    peak of the process tree (summed PSS: this process, the fork server, the training process) while
    the page's own job registry trains the largest training this mode allows with `positional` for
    `steps` steps (PEAK_STEPS of the mode by default). Yields each figure as it is measured."""
    from streamlit.testing.v1 import AppTest

    from embedviz import training
    from embedviz.config import hosted
    from embedviz.ui import loaders

    for i in range(max(counts)):
        at = AppTest.from_file(str(harness.APP), default_timeout=300)
        at.query_params.update({"d": str(8 + i % 64), "P": str(8 + i // 64 * 8 + i % 7),
                                "text": f"Sentence number {i} about a cat and a dog."})
        at.run()
        if i + 1 in counts:
            yield {"sessions": i + 1, "rss_mib": harness.status_mib("self", "VmRSS")}

    import numpy as np

    mode = "hosted" if hosted() else "local"
    steps = PEAK_STEPS[mode] if steps is None else steps
    model_cfg, train_cfg = largest_training(mode, positional)
    train_cfg = dataclasses.replace(train_cfg, eval_every=steps)  # a progress report once `steps` are done
    rows = np.random.default_rng(0).integers(0, model_cfg.embedding.vocab_size, 200_000)  # (N,)
    registry = loaders.registry()
    sampler = harness.TreeMemory(os.getpid())
    sampler.start()
    start = time.perf_counter()
    work = functools.partial(training.train, model_cfg, train_cfg, rows)
    job = registry.submit("bench-memory", work, owner="bench")
    while not job.finished:
        registry.watch(job)
        if job.progress is not None and job.progress.step >= steps:
            registry.stop(job, owner="bench")
        time.sleep(0.2)
    sampler.stop()
    yield {"positional": positional, "tree_peak_sum_pss_mib": sampler.peak_sum_pss,
           "tree_at_peak_mib": sampler.at_peak, "training_state": job.state,
           "steps_run": job.progress.step if job.progress else 0, "seconds": time.perf_counter() - start}


def _server_figures_in_child(env: dict[str, str], counts: tuple[int, ...],
                             positional: str) -> Iterator[dict[str, Any]]:
    """server_figures in a fresh process, each figure passed on as soon as the child prints it."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.memory", "--server", ",".join(map(str, counts)),
                             "--positional", positional],
                            cwd=harness.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("{"):
            yield json.loads(line)
    if proc.wait(timeout=60) != 0:
        raise RuntimeError(f"python -m benchmarks.memory --server failed with exit code {proc.returncode}")


def memory_section(*, quick: bool, env: dict[str, str]) -> tuple[list[Row], dict]:
    """The section: each figure measured in a fresh child process, so none inherits another's peak;
    the tree is measured with the scheme whose training peaked highest."""
    counts = (10, 20) if quick else SETTINGS_COUNTS
    details: dict[str, Any] = {}
    rows = []
    for mode in ("hosted", "local"):
        mode_env = {**env, "EMBEDVIZ_HOSTED": "1" if mode == "hosted" else "0"}
        peaks = {}
        for positional in SCHEMES[mode]:
            log(f"memory ({mode}): peak of the largest training, {positional} positions "
                f"(python -m benchmarks.memory --training-peak {mode} --positional {positional})")
            peak = peaks[positional] = _training_peak_in_child(mode, positional, mode_env)
            log(f"memory ({mode}, {positional}): VmHWM {peak['vm_hwm_mib']:.0f} MiB after {peak['steps_run']} "
                f"steps ({peak['s_per_step']:.2f} s/step), {peak['full_run_peak_mib']:.0f} MiB with the "
                "snapshots of a full run")
            rows.append(Row("memory", f"{mode}: largest training's process, {positional} (V {peak['V']}, "
                            f"d {peak['d']}, P {peak['P']}, batch {peak['batch']}, {peak['layers']} layers, "
                            "with its snapshots)", round(peak["full_run_peak_mib"]), unit="MiB"))
        details[f"training_peak_{mode}"] = peaks
        worst = max(peaks, key=lambda k: peaks[k]["full_run_peak_mib"])
        log(f"memory ({mode}): RSS after {counts} distinct settings, then the tree while training ({worst}) "
            f"(python -m benchmarks.memory --server {','.join(map(str, counts))} --positional {worst})")
        server: dict[str, Any] = {"settings_rss_mib": {}}
        for figure in _server_figures_in_child(mode_env, counts, worst):
            if "sessions" in figure:
                server["settings_rss_mib"][figure["sessions"]] = figure["rss_mib"]
                log(f"memory ({mode}): server RSS {figure['rss_mib']:.0f} MiB after {figure['sessions']} settings")
                rows.append(Row("memory", f"{mode}: server RSS after {figure['sessions']} distinct settings",
                                round(figure["rss_mib"]), unit="MiB"))
            else:
                server.update(figure)
                split = ", ".join(f"{k} {v:.0f}" for k, v in figure["tree_at_peak_mib"].items())
                log(f"memory ({mode}): tree peak {figure['tree_peak_sum_pss_mib']:.0f} MiB summed PSS ({split})")
                rows.append(Row("memory", f"{mode}: process tree peak (summed PSS) while the largest training "
                                f"({worst}) runs", round(figure["tree_peak_sum_pss_mib"]), unit="MiB",
                                target="hosted_tree_memory" if mode == "hosted" else ""))
        details[f"server_{mode}"] = server
    return rows, details


def main(argv: list[str] | None = None) -> None:
    from embedviz.config import POSITIONAL_KINDS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("--training-peak", choices=("hosted", "local"))
    parser.add_argument("--server", help="comma-separated session counts, e.g. 50,100")
    parser.add_argument("--positional", choices=POSITIONAL_KINDS, default="learned")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: PEAK_STEPS of the mode)")
    args = parser.parse_args(argv)
    if args.training_peak:
        print(json.dumps(training_peak(args.training_peak, args.positional, steps=args.steps)))
    elif args.server:
        for figure in server_figures(tuple(int(n) for n in args.server.split(",")), positional=args.positional,
                                     steps=args.steps):
            print(json.dumps(figure, default=str), flush=True)
    else:
        rows, details = memory_section(quick=True, env=dict(os.environ))
        print(json.dumps(details, indent=1, default=str))


if __name__ == "__main__":
    main()

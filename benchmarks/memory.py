"""Memory, in each mode: the peak of the largest training allowed (a fresh process trains it for a few
steps: its VmHWM, plus the snapshots a full run would keep), the resident memory of a process that has
served 50 and 100 distinct settings (AppTest sessions, as a server holds them), and the process tree's
peak while that process's job registry runs the largest training. Figures are printed, not asserted.
`python -m benchmarks.memory --training-peak hosted` prints one figure as JSON."""
from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from typing import Any

from . import harness
from .report import Row, log

PEAK_STEPS = 20  # steps run to reach the training's steady peak; snapshots of the rest are added by count
SETTINGS_COUNTS = (50, 100)


def largest_training(mode: str) -> tuple[Any, Any]:
    """(ModelConfig, TrainConfig) of the largest training `mode` ("local" or "hosted") allows: every
    bound at its maximum, the batch the largest that keeps the logits of a step within the limit."""
    from embedviz import training
    from embedviz.config import HEAD_COUNTS, HOSTED_LIMITS, LOCAL_LIMITS, EmbeddingConfig, ModelConfig, TrainConfig

    lim = HOSTED_LIMITS if mode == "hosted" else LOCAL_LIMITS
    V, P, d = lim.max_train_vocab, lim.max_positions, lim.max_train_dim
    batch = max(b for b in TrainConfig.BATCH_SIZES
                if b <= lim.max_batch_size and b * P * V <= training.MAX_LOGITS_PER_STEP)
    heads = max(h for h in HEAD_COUNTS if d % h == 0)
    model_cfg = ModelConfig(EmbeddingConfig(V, d, P, 0), n_layer=lim.max_train_layers, n_head=heads)
    return model_cfg, TrainConfig(steps=lim.max_train_steps, batch_size=batch)


def training_peak(mode: str, *, steps: int = PEAK_STEPS) -> dict[str, Any]:
    """In this process (run it in a fresh one): train the largest allowed model for `steps` steps and
    return its VmHWM, and that plus the snapshots a run of all its steps would keep."""
    import numpy as np

    from embedviz import training
    from embedviz.config import HOSTED_LIMITS, LOCAL_LIMITS

    model_cfg, train_cfg = largest_training(mode)
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
    return {"mode": mode, "V": V, "d": d, "P": P, "layers": model_cfg.n_layer, "heads": model_cfg.n_head,
            "batch": train_cfg.batch_size, "steps": train_cfg.steps, "steps_run": result.steps_done,
            "s_per_step": seconds / max(result.steps_done, 1), "vm_hwm_after_imports_mib": before,
            "vm_hwm_mib": peak, "snapshots_of_a_full_run": snapshots,
            "snapshot_mib": snapshots * per_snapshot, "full_run_peak_mib": peak + snapshots * per_snapshot,
            "max_concurrent_trainings": lim.max_concurrent_trainings}


def _training_peak_in_child(mode: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--training-peak", mode],
                         cwd=harness.ROOT, env=env, capture_output=True, text=True, timeout=1800, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def server_figures(counts: tuple[int, ...] = SETTINGS_COUNTS, *, steps: int = PEAK_STEPS) -> dict[str, Any]:
    """In this process, standing in for a server: RSS (MiB) after n AppTest sessions with distinct
    table shapes and text, for each n in `counts` (what stays is what the caches keep); then the
    peak of the process tree (summed PSS: this process, the fork server, the training process) while
    the page's own job registry trains the largest training this mode allows for `steps` steps."""
    from streamlit.testing.v1 import AppTest

    from embedviz import training
    from embedviz.ui import loaders

    rss: dict[int, float | None] = {}
    for i in range(max(counts)):
        at = AppTest.from_file(str(harness.APP), default_timeout=300)
        at.query_params.update({"d": str(8 + i % 64), "P": str(8 + i // 64 * 8 + i % 7),
                                "text": f"Sentence number {i} about a cat and a dog."})
        at.run()
        if i + 1 in counts:
            rss[i + 1] = harness.status_mib("self", "VmRSS")

    import numpy as np

    model_cfg, train_cfg = largest_training("hosted" if os.environ.get("EMBEDVIZ_HOSTED") == "1" else "local")
    rows = np.random.default_rng(0).integers(0, model_cfg.embedding.vocab_size, 200_000)  # (N,)
    registry = loaders.registry()
    sampler = harness.TreeMemory(os.getpid())
    sampler.start()
    work = functools.partial(training.train, model_cfg, train_cfg, rows)
    job = registry.submit("bench-memory", work, owner="bench")
    while not job.finished:
        registry.watch(job)
        if job.progress is not None and job.progress.step >= steps:
            registry.stop(job, owner="bench")
        time.sleep(0.2)
    sampler.stop()
    return {"settings_rss_mib": rss, "tree_peak_sum_pss_mib": sampler.peak_sum_pss,
            "tree_at_peak_mib": sampler.at_peak, "training_state": job.state}


def _server_figures_in_child(env: dict[str, str], counts: tuple[int, ...]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--server", ",".join(map(str, counts))],
                         cwd=harness.ROOT, env=env, capture_output=True, text=True, timeout=3600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory_section(*, quick: bool, env: dict[str, str]) -> tuple[list[Row], dict]:
    """The section: each figure measured in a fresh child process, so none inherits another's peak."""
    counts = (10, 20) if quick else SETTINGS_COUNTS
    details: dict[str, Any] = {}
    rows = []
    for mode in ("hosted", "local"):
        mode_env = {**env, "EMBEDVIZ_HOSTED": "1" if mode == "hosted" else "0"}
        log(f"memory ({mode}): peak of the largest training")
        peak = _training_peak_in_child(mode, mode_env)
        details[f"training_peak_{mode}"] = peak
        rows.append(Row("memory", f"{mode}: largest training's process (V {peak['V']}, d {peak['d']}, "
                        f"P {peak['P']}, batch {peak['batch']}, {peak['layers']} layers, with its snapshots)",
                        round(peak["full_run_peak_mib"]), unit="MiB"))
        log(f"memory ({mode}): RSS after {counts} distinct settings, then the tree while training")
        server = _server_figures_in_child(mode_env, counts)
        details[f"server_{mode}"] = server
        rows += [Row("memory", f"{mode}: server RSS after {n} distinct settings", round(v), unit="MiB")
                 for n, v in server["settings_rss_mib"].items()]
        rows.append(Row("memory", f"{mode}: process tree peak (summed PSS) while the largest training runs",
                        round(server["tree_peak_sum_pss_mib"]), unit="MiB", target="tree_memory"))
    return rows, details


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("--training-peak", choices=("hosted", "local"))
    parser.add_argument("--server", help="comma-separated session counts, e.g. 50,100")
    args = parser.parse_args(argv)
    if args.training_peak:
        print(json.dumps(training_peak(args.training_peak)))
    elif args.server:
        print(json.dumps(server_figures(tuple(int(n) for n in args.server.split(",")))))
    else:
        rows, details = memory_section(quick=True, env=dict(os.environ))
        print(json.dumps(details, indent=1, default=str))


if __name__ == "__main__":
    main()

"""Projection: a first map in a fresh process (import + numba), warm maps before and after training,
and their trustworthiness, for embedviz.projection beside umap-learn as it comes."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig

from .harness import ROOT
from .report import Row, log, median
from .world import toy_world

COLD_CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import numpy as np
kind, before_path = sys.argv[1:3]
warnings.filterwarnings("ignore")
if kind == "plain":
    import umap
else:
    from embedviz.projection import project, warm_up
imported = time.perf_counter() - t0
warmed = warm_up() if kind == "ours-warmed" else 0.0  # what app.py starts in a thread at server start
before = np.load(before_path)
t1 = time.perf_counter()
if kind == "plain":
    umap.UMAP(random_state=0).fit_transform(before)
else:
    project(before)
print(json.dumps({"import_s": imported, "warm_up_s": warmed, "first_s": time.perf_counter() - t1}))
"""


def trained_toy_pair(n: int, dim: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(before, after) wte rows of the n most frequent toy-world tokens, a d-wide default model trained."""
    from embedviz.training import train

    world = toy_world()
    cfg = ModelConfig(EmbeddingConfig(dim=dim))
    result = train(cfg, TrainConfig(), world.rows)
    rows = world.view.rows[:n]
    return result.snapshots[0][1][rows], result.snapshots[-1][1][rows]


def blob_pair(n: int, dim: int = 64, *, classes: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian rows with class structure: faint before (like early training), clear after."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))  # (K, d)
    labels = np.arange(n) % classes  # (N,)
    start = rng.normal(size=(n, dim))  # (N, d), like a random initialisation
    before = start + 0.3 * centres[labels]  # (N, d)
    after = 0.5 * start + 1.5 * centres[labels]  # (N, d): every row moved from where it started
    return before.astype(np.float32), after.astype(np.float32)


def ours_pair(before: np.ndarray, after: np.ndarray) -> tuple[list[float], list[np.ndarray]]:
    """Seconds and maps of the app's two projections: before, then after started from before."""
    from embedviz.projection import project

    t0 = time.perf_counter()
    first = project(before)
    t1 = time.perf_counter()
    second = project(after, init=first.xy)
    t2 = time.perf_counter()
    return [t1 - t0, t2 - t1], [first.xy, second.xy]


def plain_pair(before: np.ndarray, after: np.ndarray) -> tuple[list[float], list[np.ndarray]]:
    """umap-learn as it comes: UMAP(random_state=0).fit_transform on each matrix."""
    import umap

    times, maps = [], []
    for m in (before, after):
        t0 = time.perf_counter()
        maps.append(umap.UMAP(random_state=0).fit_transform(m))
        times.append(time.perf_counter() - t0)
    return times, maps


def trust(x: np.ndarray, xy: np.ndarray, metric: str = "euclidean") -> float:
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(x, xy, n_neighbors=10, metric=metric))


def cold_projection(kind: str, before_path: Path, env: dict) -> dict:
    """Import + first projection in a fresh interpreter (the parent's wall time is kept too)."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", COLD_CHILD, kind, str(before_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"cold {kind} projection failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["cold_s"] = result["import_s"] + result["warm_up_s"] + result["first_s"]
    result["process_wall_s"] = time.perf_counter() - start
    return result


def projection_section(*, quick: bool, env: dict) -> tuple[list[Row], dict]:
    sizes = (200, 1000) if quick else (200, 1000, 3000)
    data = {}
    for n in sizes:
        data[n] = trained_toy_pair(n) if n == 200 else blob_pair(n)
    plain_env = {k: v for k, v in env.items() if k != "NUMBA_CACHE_DIR"}  # umap-learn as it comes
    details: dict = {"sizes": list(sizes), "dim": 64,
                     "data": {"200": "toy world wte rows (200 most frequent), d=64 model, default training",
                              "other": "12 gaussian blobs, faint before / clear after (blob_pair)"},
                     "by_size": {}}
    with tempfile.TemporaryDirectory(prefix="embedviz-bench-") as tmp:
        cold: dict[int, dict] = {}
        for n in sizes:
            path = Path(tmp) / f"before-{n}.npy"
            np.save(path, data[n][0])
            if quick and n != 200:
                continue
            log(f"projection: cold, ours, {n} rows")
            cold[n] = {"ours": cold_projection("ours", path, env),
                       "ours_warmed": cold_projection("ours-warmed", path, env)}
            if not quick:
                log(f"projection: cold, plain umap-learn, {n} rows (numba compiles: slow)")
                cold[n]["plain"] = cold_projection("plain", path, plain_env)

    # umap-learn's notes (n_jobs overridden by random_state, ...); kept for the whole process, as
    # projection._load_umap installs its own filters once and a catch_warnings() block would drop them
    warnings.filterwarnings("ignore", category=UserWarning, module="umap")
    warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
    log("projection: warm, first calls in this process (discarded)")
    ours_pair(*data[sizes[0]])
    plain_pair(*data[sizes[0]])
    warm: dict[int, dict] = {}
    for n in sizes:
        log(f"projection: warm, {n} rows")
        before, after = data[n]
        ours_runs, plain_runs = [], []
        for rep in range(5):  # taking turns, so a burst of load elsewhere falls on both sides alike
            ours_runs.append(ours_pair(before, after))
            if rep < (1 if quick or n >= 3000 else 3):
                plain_runs.append(plain_pair(before, after))
        warm[n] = {
            "ours_s": [median([r[0][i] for r in ours_runs]) for i in (0, 1)],
            "plain_s": [median([r[0][i] for r in plain_runs]) for i in (0, 1)],
            "ours_all_s": [r[0] for r in ours_runs],
            "plain_all_s": [r[0] for r in plain_runs],
        }
        for metric in ("euclidean", "cosine"):
            warm[n][f"trust_{metric}"] = {
                who: [trust(m, xy, metric) for m, xy in zip((before, after), runs[0][1])]
                for who, runs in (("ours", ours_runs), ("plain", plain_runs))
            }

    rows = []
    for n in sizes:
        shape = f"{n}x64"
        if n in cold:
            c = cold[n]
            ours_s = c["ours"]["cold_s"]
            rows.append(Row("projection", f"{shape} cold: import + first map", ours_s,
                            c.get("plain", {}).get("cold_s"), target="cold_first_map" if n == 200 else ""))
            w = c["ours_warmed"]
            rows.append(Row("projection", f"{shape} fresh process after warm_up(): first map", w["first_s"],
                            note=f"what a fresh server does: app.py runs projection.warm_up() in a thread at "
                                 f"start (here import + warm_up took {w['import_s'] + w['warm_up_s']:.1f} s)"))
        w = warm[n]
        for i, label in enumerate(("first map", "after map (init=before)")):
            ours_s, gate = w["ours_s"][i], n == 1000
            best = (min(r[i] for r in w["ours_all_s"]), min(r[i] for r in w["plain_all_s"]))
            rows.append(Row("projection", f"{shape} warm: {label}", ours_s, w["plain_s"][i],
                            target="warm_map" if gate else "",
                            note=f"median of {len(w['ours_all_s'])} / {len(w['plain_all_s'])} runs; best: "
                                 f"{best[0]:.2f} s (ours) / {best[1]:.2f} s (plain)" if gate else ""))
        for metric in ("euclidean", "cosine"):
            t = w[f"trust_{metric}"]
            ours_t, plain_t = tuple(t["ours"]), tuple(t["plain"])
            gate = metric == "euclidean" and n == 1000  # the target's size; sklearn's default metric
            rows.append(Row("projection", f"{shape} trustworthiness ({metric}) before / after", ours_t,
                            plain_t, unit="", better="higher", target="trustworthiness" if gate else ""))
        details["by_size"][str(n)] = {"cold": cold.get(n), "warm": w}
    return rows, details


"""The benchmark: every figure of embedviz measured side by side, in the same run, with the plain way
of doing the same work (plain umap-learn, a nanoGPT-style loop, a plain Streamlit page).

`python -m embedviz.bench [--quick] [--json PATH]` prints one table (ours, plain, plain/ours, target)
and writes every number, with the machine it ran on, to JSON. Figures are printed, never asserted;
the browser part is skipped (with the reason) when Chromium or Playwright is missing.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedviz.config import EmbeddingConfig, ModelConfig, ProjectionConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "artifacts" / "bench.json"
SECTIONS = ("projection", "training", "explorer", "browser")
AGREEMENT = 0.8  # the kNN agreement that counts as "the space has organised"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 1000}
# The large explorer settings: GPT-2 small's tables and a long sentence filling every position.
LARGE = {"vocab_size": 50_257, "dim": 768, "positions": 64, "tokens": 64}


# ---------------------------------------------------------------- rows and the table

@dataclass
class Row:
    """One line of the table. Values are in seconds, tokens/s, MiB or plain numbers (unit "")."""

    section: str
    figure: str
    ours: Any = None  # a number, a tuple of numbers (shown "a / b"), or None
    plain: Any = None
    unit: str = "s"
    better: str = "lower"  # "lower" (times, memory) or "higher" (rates, quality)
    target: str = ""
    met: bool | None = None  # None: no target on this row
    note: str = ""  # printed under the row

    @property
    def ratio(self) -> float | None:
        """plain cost / ours cost: > 1 means ours is faster (or smaller); for rates ours / plain."""
        a, b = self.ours, self.plain
        if self.unit == "":  # quality figures (agreement, trustworthiness) are compared, not divided
            return None
        if not all(isinstance(v, (int, float)) and v > 0 for v in (a, b)):
            return None
        return b / a if self.better == "lower" else a / b


def format_value(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return " / ".join(format_value(v, unit) for v in value)
    if unit == "s":
        if value < 0.01:
            return f"{value * 1000:.1f} ms"
        if value < 1:
            return f"{value * 1000:.0f} ms"
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    if unit == "tok/s":
        return f"{value:,.0f} tok/s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    return f"{value:.3f}"


def format_table(rows: Sequence[Row]) -> str:
    """Rows grouped by section, columns aligned; notes on their own line under a row."""
    header = ("figure", "ours", "plain", "plain/ours", "target", "")
    cells = []
    for r in rows:
        status = "" if r.met is None else ("met" if r.met else "NOT MET")
        ratio = "–" if r.ratio is None else f"{r.ratio:.2f}x"
        cells.append((r.figure, format_value(r.ours, r.unit), format_value(r.plain, r.unit), ratio,
                      r.target, status))
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(c: Sequence[str]) -> str:
        parts = [c[0].ljust(widths[0])] + [c[i].rjust(widths[i]) for i in (1, 2, 3)]
        parts += [c[4].ljust(widths[4]), c[5]]
        return "  ".join(parts).rstrip()

    out = [line(header), "-" * len(line(header))]
    section = None
    for r, c in zip(rows, cells):
        if r.section != section:
            section = r.section
            out.append(f"[{section}]")
        out.append(line(c))
        if r.note:
            out.append(" " * 4 + r.note)
    out.append("plain/ours: plain cost / our cost (for tokens/s: ours / plain); > 1 = ours faster or smaller.")
    return "\n".join(out)


def skipped(section: str, reason: str) -> list[Row]:
    return [Row(section, f"skipped: {reason}")]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def timed(fn: Callable[[], Any], *, repeats: int) -> list[float]:
    """Seconds of `repeats` calls of fn (no warm-up call: the caller decides what is warm)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


# ---------------------------------------------------------------- the machine

def machine_info() -> dict:
    import torch

    info = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "load_average_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "memory_gib": _meminfo_gib(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for name in ("torch", "umap", "numba", "sklearn", "streamlit", "plotly", "tiktoken"):
        info[f"{name}_version"] = _version(name)
    return info


def _version(module: str) -> str | None:
    from importlib import metadata

    dist = {"umap": "umap-learn", "sklearn": "scikit-learn"}.get(module, module)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _meminfo_gib() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    m = re.search(r"MemTotal:\s+(\d+) kB", text)
    return round(int(m.group(1)) / 2**20, 1) if m else None


def vm_hwm_mib(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process in MiB, from /proc/<pid>/status."""
    return _status_mib(pid, "VmHWM")


def _status_mib(pid: int | str, field_name: str) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(rf"{field_name}:\s+(\d+) kB", text)
    return int(m.group(1)) / 1024 if m else None


def descendants(pid: int) -> list[int]:
    """Every live process started (directly or not) by `pid`, e.g. a fork server and its trainings."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children.get(child, [])
    return out


def pss_mib(pid: int) -> float | None:
    """Proportional set size: pages shared with a fork parent are split between the sharers, so a
    sum over a process tree does not count them twice (VmRSS would)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    m = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def _process_label(pid: int, *, root: int) -> str:
    """'server', 'fork server', 'forked <pid>' (what a fork server started: a training),
    'resource tracker' or 'pid <pid>'."""
    if pid == root:
        return "server"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return f"pid {pid}"
    if "forkserver import main" in cmdline:  # its children keep its command line
        return "fork server" if parent == root else f"forked {pid}"
    return "resource tracker" if "resource_tracker" in cmdline else f"pid {pid}"


class TreeMemory(threading.Thread):
    """Samples a process and its descendants every `every` s: each one's VmHWM, and the peak of
    their summed PSS (what the whole tree held at once), until stop()."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(name="bench-tree-memory", daemon=True)
        self.pid, self.every = pid, every
        self.peaks: dict[int, float] = {}  # pid -> VmHWM (MiB), last seen
        self.peak_sum_pss = 0.0
        self.at_peak: dict[str, float] = {}  # process -> PSS (MiB) at the moment of the peak
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.every)

    def sample(self) -> None:
        now: dict[int, float] = {}
        for pid in [self.pid, *descendants(self.pid)]:
            hwm = _status_mib(pid, "VmHWM")
            if hwm is not None:
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm)
            now[pid] = pss_mib(pid) or _status_mib(pid, "VmRSS") or 0.0
        if sum(now.values()) > self.peak_sum_pss:
            self.peak_sum_pss = sum(now.values())
            self.at_peak = {_process_label(pid, root=self.pid): v for pid, v in now.items()}

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)
        self.sample()


# ---------------------------------------------------------------- the toy world, as the app sets it up

@dataclass(frozen=True)
class ToyWorld:
    enc: Any  # tiktoken.Encoding
    corpus: Any  # embedviz.corpus.Corpus
    ids: np.ndarray  # (N,) tiktoken ids of the corpus
    vocab: Any  # embedviz.vocab.Vocab with the default V
    rows: np.ndarray  # (N,) table rows of the corpus: what training sees
    view: Any  # embedviz.space.Space: the rows drawn and scored, as the app selects them


@functools.lru_cache(maxsize=1)
def toy_world() -> ToyWorld:
    from embedviz import corpus, space, tokens
    from embedviz.vocab import Vocab

    enc = tokens.load_encoding("cl100k_base")
    world = corpus.toy_world(enc)
    ids = np.asarray(enc.encode(world.text, disallowed_special=()), dtype=np.int64)
    vocab = Vocab.build(enc, EmbeddingConfig.vocab_size, reference_ids=ids)
    view = space.select(vocab, world, enc, max_points=ProjectionConfig.max_points)
    return ToyWorld(enc, world, ids, vocab, vocab.rows(ids), view)


def agreement(wte: np.ndarray, view: Any) -> float:
    """5-NN class agreement of the drawn rows, exactly as the training tab computes it."""
    from embedviz.neighbours import knn_agreement

    return knn_agreement(np.asarray(wte)[view.rows], view.scored, k=5)


def sentence_of(enc: Any, n_tokens: int, *, skip: int = 0) -> str:
    """One line of toy-world text that encodes to exactly n_tokens tokens (skip: tokens passed over)."""
    flat = " ".join(toy_world().corpus.text.split())
    ids = enc.encode(flat)
    for k in range(n_tokens, n_tokens + 8):
        text = enc.decode(ids[skip:skip + k]).strip()
        if len(enc.encode(text)) == n_tokens:
            return text
    raise AssertionError(f"no cut of the toy world has exactly {n_tokens} tokens")


# ---------------------------------------------------------------- 1. projection

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
                            c.get("plain", {}).get("cold_s"), target="<= 3 s" if n == 200 else "",
                            met=ours_s <= 3 if n == 200 else None))
            w = c["ours_warmed"]
            rows.append(Row("projection", f"{shape} fresh process after warm_up(): first map", w["first_s"],
                            note=f"what a fresh server does: app.py runs projection.warm_up() in a thread at "
                                 f"start (here import + warm_up took {w['import_s'] + w['warm_up_s']:.1f} s)"))
        w = warm[n]
        for i, label in enumerate(("first map", "after map (init=before)")):
            ours_s, gate = w["ours_s"][i], n == 1000
            best = (min(r[i] for r in w["ours_all_s"]), min(r[i] for r in w["plain_all_s"]))
            rows.append(Row("projection", f"{shape} warm: {label}", ours_s, w["plain_s"][i],
                            target="<= 0.6 s" if gate else "", met=ours_s <= 0.6 if gate else None,
                            note=f"median of {len(w['ours_all_s'])} / {len(w['plain_all_s'])} runs; best: "
                                 f"{best[0]:.2f} s (ours) / {best[1]:.2f} s (plain)" if gate else ""))
        for metric in ("euclidean", "cosine"):
            t = w[f"trust_{metric}"]
            ours_t, plain_t = tuple(t["ours"]), tuple(t["plain"])
            gate = metric == "euclidean" and n == 1000  # the target's size; sklearn's default metric
            rows.append(Row("projection", f"{shape} trustworthiness ({metric}) before / after", ours_t,
                            plain_t, unit="", better="higher", target=">= plain" if gate else "",
                            met=all(round(o, 3) >= round(p, 3) for o, p in zip(ours_t, plain_t)) if gate
                            else None))
        details["by_size"][str(n)] = {"cold": cold.get(n), "warm": w}
    return rows, details


# ---------------------------------------------------------------- 2. training

def ours_training(model_cfg: ModelConfig, train_cfg: TrainConfig, world: ToyWorld) -> dict:
    """embedviz.training.train; agreement is computed afterwards from its snapshots (every 25 steps),
    stamped with the time the loop reported that step: nothing is added to its clock."""
    from embedviz.training import train

    stamps: dict[int, float] = {}
    start = time.perf_counter()
    result = train(model_cfg, train_cfg, world.rows,
                   on_progress=lambda p: stamps.setdefault(p.step, time.perf_counter() - start))
    wall = time.perf_counter() - start
    curve = [(step, stamps[step], agreement(wte, world.view)) for step, wte, _ in result.snapshots]
    steps = result.history[-1][0]
    return {"wall_s": wall, "tokens_per_s": steps * train_cfg.batch_size * model_cfg.embedding.positions / wall,
            "curve": curve, "final_loss": result.history[-1][1]}


def plain_training(model_cfg: ModelConfig, train_cfg: TrainConfig, world: ToyWorld, *,
                   check_every: int = 25) -> dict:
    """A nanoGPT-style loop over the same TinyGPT: Python-list batching, default AdamW, loss.item()
    every step, torch's default threads. Agreement every `check_every` steps with the clock paused."""
    import torch

    from embedviz.model import TinyGPT

    P, B = model_cfg.embedding.positions, train_cfg.batch_size
    paused = 0.0
    curve: list[tuple[int, float, float]] = []
    start = time.perf_counter()
    n_held = int(len(world.rows) * train_cfg.held_out)  # the same 90 % as ours trains on
    data = torch.from_numpy(world.rows[: len(world.rows) - n_held].astype(np.int64))  # (N,)
    torch.manual_seed(model_cfg.embedding.seed)
    model = TinyGPT(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.learning_rate)

    def check(step: int) -> None:
        nonlocal paused
        t = time.perf_counter()
        curve.append((step, t - start - paused, agreement(model.wte.weight.detach().numpy(), world.view)))
        paused += time.perf_counter() - t

    check(0)
    losses = []
    for step in range(1, train_cfg.steps + 1):
        ix = torch.randint(len(data) - P, (B,))
        x = torch.stack([data[i:i + P] for i in ix])  # (B, T)
        y = torch.stack([data[i + 1:i + 1 + P] for i in ix])  # (B, T)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % check_every == 0 or step == train_cfg.steps:
            check(step)
    wall = time.perf_counter() - start - paused
    return {"wall_s": wall, "tokens_per_s": train_cfg.steps * B * P / wall, "curve": curve,
            "final_loss": float(np.mean(losses[-check_every:])), "model": model}


def time_to(curve: Sequence[tuple[int, float, float]], threshold: float = AGREEMENT) -> float | None:
    """Seconds at the first checkpoint whose agreement reaches the threshold; None if none does."""
    return next((seconds for _, seconds, a in curve if a >= threshold), None)


def training_section(*, quick: bool, env: dict) -> tuple[list[Row], dict]:
    import torch

    world = toy_world()
    model_cfg, train_cfg = ModelConfig(), TrainConfig()
    runs: dict[str, list[dict]] = {"ours": [], "plain": []}
    for i in range(1 if quick else 3):
        log(f"training: run {i + 1}, ours then plain ({train_cfg.steps} steps each)")
        runs["ours"].append(ours_training(model_cfg, train_cfg, world))
        runs["plain"].append({k: v for k, v in plain_training(model_cfg, train_cfg, world).items() if k != "model"})
    summary = {}
    for who, rs in runs.items():
        reached = [time_to(r["curve"]) for r in rs]
        summary[who] = {
            "time_to_agreement_s": median(reached),
            "reached": sum(t is not None for t in reached),
            "runs": len(rs),
            "tokens_per_s": median([r["tokens_per_s"] for r in rs]),
            "wall_s": median([r["wall_s"] for r in rs]),
            "final_agreement": median([r["curve"][-1][2] for r in rs]),
        }
    o, p = summary["ours"], summary["plain"]
    tps_ratio = o["tokens_per_s"] / p["tokens_per_s"]

    def reached_note(s: dict) -> str:
        return "" if s["reached"] == s["runs"] else f"reached {AGREEMENT} in {s['reached']}/{s['runs']} runs"

    note = "; ".join(f"{who}: {reached_note(summary[who])}" for who in summary if reached_note(summary[who]))
    rows = [
        Row("training", f"default model to kNN agreement >= {AGREEMENT}", o["time_to_agreement_s"],
            p["time_to_agreement_s"] or f"> {p['wall_s']:.1f} s", target="<= 10 s",
            met=o["time_to_agreement_s"] is not None and o["time_to_agreement_s"] <= 10, note=note),
        Row("training", f"tokens/s ({train_cfg.steps} steps, batch {train_cfg.batch_size} x "
            f"{model_cfg.embedding.positions})", o["tokens_per_s"], p["tokens_per_s"], unit="tok/s",
            better="higher", target=">= 2x plain", met=tps_ratio >= 2),
        Row("training", f"wall time, {train_cfg.steps} steps", o["wall_s"], p["wall_s"]),
        Row("training", f"kNN agreement after {train_cfg.steps} steps", o["final_agreement"],
            p["final_agreement"], unit="", better="higher"),
    ]
    details = {"summary": summary, "runs": runs, "torch_default_threads": torch.get_num_threads(),
               "ours_threads": 1, "model": repr(model_cfg), "train": repr(train_cfg)}
    return rows, details


# ---------------------------------------------------------------- 3. explorer

# The plain way to write the explorer page: the textbook code on every rerun, three heatmaps.
PLAIN_EXPLORER = (ROOT / "benchmarks" / "plain_explorer.py").read_text()


def _set(at: Any, key: str, value: Any, *, select_vocab: bool) -> None:
    if key == "text":
        at.text_area(key="text").input(value)
    elif key == "vocab_size" and select_vocab:
        at.sidebar.select_slider(key=key).set_value(value)
    else:
        at.sidebar.slider(key=key).set_value(value)


def _run(at: Any) -> float:
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the page raised: {at.exception[0].value}")
    return seconds


def _join_warm_up() -> None:
    """The app warms up (umap, training) in a background thread on its first run: let it finish
    before timing reruns."""
    for thread in threading.enumerate():
        if thread.name.endswith("warm-up"):
            thread.join(180)


def rerun_times(apps: dict[str, tuple[Path, bool]], *, settings: dict[str, dict], repeats: int) -> dict:
    """Seconds of at.run() after one widget change (d, P, text), per app, setting and change.

    apps: name -> (script, whether V is a select_slider). The apps take turns change by change, so a
    burst of load from elsewhere on a shared machine falls on both sides alike."""
    from streamlit.testing.v1 import AppTest

    tests = {}
    for who, (script, _) in apps.items():
        tests[who] = AppTest.from_file(str(script), default_timeout=300)
        _run(tests[who])
    _join_warm_up()
    out: dict[str, dict] = {who: {} for who in apps}
    for name, s in settings.items():
        for who, at in tests.items():
            for key in ("vocab_size", "dim", "positions", "text"):  # V first: d=768 only fits once V is set
                _set(at, key, s[key], select_vocab=apps[who][1])
                _run(at)
        times = {who: {"d": [], "P": [], "text": []} for who in apps}
        for i in range(repeats):
            for who, at in tests.items():
                select_vocab = apps[who][1]
                _set(at, "dim", s["dim"] - 1 - i, select_vocab=select_vocab)  # a new d: table regenerated
                times[who]["d"].append(_run(at))
                _set(at, "positions", s["positions"] + 1 if i % 2 == 0 else s["positions"], select_vocab=select_vocab)
                times[who]["P"].append(_run(at))
                _set(at, "text", s["other_text"] if i % 2 == 0 else s["text"], select_vocab=select_vocab)
                times[who]["text"].append(_run(at))
        for who in apps:
            out[who][name] = times[who]
    return out


def trained_rerun_times(app: Path, *, setting: dict, repeats: int, timeout_s: float = 600) -> list[float]:
    """Seconds of at.run() after changing the text once the default model is trained and its results
    (loss, maps, neighbours, positions) are on the page: every rerun redraws them too."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(app), default_timeout=300)
    _run(at)
    _join_warm_up()
    at.button(key="train").click()
    _run(at)
    deadline = time.monotonic() + timeout_s
    while not any(c.proto.id.endswith("-scatter_after") for c in at.get("plotly_chart")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"training in AppTest did not show its results within {timeout_s:.0f} s")
        time.sleep(0.5)
        _run(at)
    times = []
    for i in range(repeats):
        _set(at, "text", setting["other_text"] if i % 2 == 0 else setting["text"], select_vocab=True)
        times.append(_run(at))
    return times


def ours_bare(text: str, cfg: EmbeddingConfig, enc: Any, vocab: Any) -> Any:
    from embedviz import explorer

    batch = explorer.from_text(text, enc=enc, vocab=vocab, positions=cfg.positions)
    wte, wpe = explorer.tables(cfg)
    return explorer.embed(batch, wte, wpe)


def plain_bare(text: str, cfg: EmbeddingConfig, enc: Any) -> Any:
    """The textbook: manual_seed, two nn.Embedding, wte(ids) + wpe(arange(T))."""
    import torch

    ids = [min(i, cfg.vocab_size - 1) for i in enc.encode(text)][: cfg.positions]
    torch.manual_seed(cfg.seed)
    wte, wpe = torch.nn.Embedding(cfg.vocab_size, cfg.dim), torch.nn.Embedding(cfg.positions, cfg.dim)
    return wte(torch.tensor([ids])) + wpe(torch.arange(len(ids)))  # (1, T, d)


def explorer_settings() -> dict[str, dict]:
    from embedviz.corpus import CLASSROOM_SENTENCE

    enc = toy_world().enc
    default = EmbeddingConfig()
    return {
        "default": {"vocab_size": default.vocab_size, "dim": default.dim, "positions": default.positions,
                    "text": CLASSROOM_SENTENCE, "other_text": "On Friday, my brother took the cat to the farm."},
        "large": {"vocab_size": LARGE["vocab_size"], "dim": LARGE["dim"], "positions": LARGE["positions"],
                  "text": sentence_of(enc, LARGE["tokens"]),
                  "other_text": sentence_of(enc, LARGE["tokens"], skip=500)},
    }


def explorer_section(*, quick: bool, env: dict) -> tuple[list[Row], dict]:
    from embedviz.vocab import Vocab

    world = toy_world()
    settings = explorer_settings()
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="embedviz-bench-") as tmp:
        plain_app = Path(tmp) / "plain_explorer.py"
        plain_app.write_text(PLAIN_EXPLORER)
        log("explorer: AppTest reruns, ours (app.py) and the plain page taking turns")
        reruns = rerun_times({"ours": (ROOT / "app.py", True), "plain": (plain_app, False)},
                             settings=settings, repeats=repeats)
        ours, plain = reruns["ours"], reruns["plain"]
        log("explorer: AppTest reruns, ours with the default model trained")
        trained = trained_rerun_times(ROOT / "app.py", setting=settings["default"], repeats=repeats)

    bare: dict[str, dict] = {}
    for name, s in settings.items():
        cfg = EmbeddingConfig(s["vocab_size"], s["dim"], s["positions"])
        vocab = Vocab.build(world.enc, cfg.vocab_size, reference_ids=world.ids)  # cached by the app
        bare[name] = {"ours_s": [], "plain_s": []}
        for _ in range(repeats):  # taking turns, as above
            bare[name]["ours_s"] += timed(lambda: ours_bare(s["text"], cfg, world.enc, vocab), repeats=1)
            bare[name]["plain_s"] += timed(lambda: plain_bare(s["text"], cfg, world.enc), repeats=1)

    rows = []
    labels = {"d": "moving d (table regenerated)", "P": "moving P (table cached)",
              "text": "changing the text (table cached)"}
    for name, s in settings.items():
        where = f"V={s['vocab_size']:,} d={s['dim']} P={s['positions']}"
        for change, label in labels.items():
            o, p = median(ours[name][change]), median(plain[name][change])
            large = name == "large"
            rows.append(Row("explorer", f"{name} ({where}): rerun after {label}", o, p,
                            target="<= 100 ms" if large else "", met=o <= 0.1 if large else None))
        if name == "default":
            rows.append(Row("explorer", f"{name}, model trained: rerun after changing the text", median(trained),
                            note="the training results (12 charts, neighbours) are redrawn on every rerun; "
                                 "the plain page has no training"))
        rows.append(Row("explorer", f"{name}: bare from_text + tables + embed vs textbook",
                        median(bare[name]["ours_s"]), median(bare[name]["plain_s"])))
    details = {"settings": {k: {kk: vv for kk, vv in v.items()} for k, v in settings.items()},
               "repeats": repeats, "rerun_s": {"ours": ours, "plain": plain, "ours_trained_text": trained},
               "bare_s": bare,
               "plain_page": PLAIN_EXPLORER}
    return rows, details


# ---------------------------------------------------------------- 4 and 5. the browser: cold start, memory

# The plain page: one torch + plotly heatmap; "Train" runs the plain loop and plain umap-learn.
PLAIN_PAGE = (ROOT / "benchmarks" / "plain_page.py").read_text()

FIRST_HEATMAP_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).some(g =>
    g.data && g.data.length > 0 && g.querySelector('.heatmaplayer image, .heatmaplayer .hm'))"""
SCATTER_AFTER_JS = """() => { const g = document.querySelector('.st-key-scatter_after .js-plotly-plot');
    return !!(g && g.data && g.data.length > 0 && g.querySelector('.scatterlayer .point')); }"""
NAVIGATION_TIMING_JS = """() => { const n = performance.getEntriesByType('navigation')[0];
    return {domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }"""
IDLE_JS = ("() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
           "!document.querySelector('[data-stale=\"true\"]')")


def plain_page_training() -> tuple[np.ndarray, np.ndarray]:
    """For PLAIN_PAGE: wte rows (drawn rows of the toy world) before and after the plain loop."""
    world = toy_world()
    model_cfg = ModelConfig()
    from embedviz.model import TinyGPT

    before = TinyGPT(model_cfg).wte.weight.detach().numpy()[world.view.rows]
    model = plain_training(model_cfg, TrainConfig(), world)["model"]
    return before, model.wte.weight.detach().numpy()[world.view.rows]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(script: Path, env: dict) -> tuple[subprocess.Popen, str]:
    """`streamlit run script` on a free 127.0.0.1 port; returns once /_stcore/health answers.
    The process is stopped here if it never does."""
    (ROOT / "artifacts").mkdir(exist_ok=True)
    port = free_port()
    log_path = ROOT / "artifacts" / f"bench-streamlit-{port}.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", "127.0.0.1",
             "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}, stdout=log_file,
            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        time.sleep(0.05)
    stop_server(proc)
    raise RuntimeError(f"streamlit did not start; see {log_path}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(15)


def _wait_idle(page: Any, timeout_s: float = 120, settle: int = 3) -> None:
    deadline = time.monotonic() + timeout_s
    calm = 0
    while calm < settle:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the page kept running for {timeout_s:.0f} s")
        calm = calm + 1 if page.evaluate(IDLE_JS) else 0
        time.sleep(0.1)


def time_to_heatmap(browser: Any, url: str, *, since: float | None = None) -> dict:
    """A new visitor opens the page: seconds until the first heatmap is drawn (since `since`, else goto),
    with the browser's own milestones (HTML and Streamlit's scripts loaded) for a breakdown."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)  # Chromium's own counters: main-thread time spent in JS
        cdp.send("Performance.enable")
        start = time.perf_counter() if since is None else since
        goto = time.perf_counter()
        page.goto(url)
        page.wait_for_function(FIRST_HEATMAP_JS, timeout=180_000)
        done = time.perf_counter()
        nav = page.evaluate(NAVIGATION_TIMING_JS)
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return {"seconds": done - start, "goto_to_heatmap_s": done - goto,
                "dom_content_loaded_s": nav["domContentLoaded"] / 1000, "load_event_s": nav["load"] / 1000,
                "browser_script_s": metrics.get("ScriptDuration"), "browser_busy_s": metrics.get("TaskDuration")}
    finally:
        context.close()


def train_in_browser(browser: Any, url: str) -> dict:
    """Open the page, press Train (in the training tab if there is one), wait for both scatter plots."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_function(FIRST_HEATMAP_JS, timeout=180_000)
        _wait_idle(page)
        tab = page.locator('[data-testid="stTab"]', has_text="2 · Training")
        if tab.count():
            tab.first.click()
        page.locator(".st-key-train button:visible").first.click()
        start = time.perf_counter()
        page.wait_for_function(SCATTER_AFTER_JS, timeout=600_000)
        seconds = time.perf_counter() - start
        trained = page.locator('[data-testid="stAlert"]', has_text="Trained in")
        m = re.search(r"Trained in ([\d.]+) s", trained.first.inner_text()) if trained.count() else None
        return {"train_to_scatter_s": seconds, "training_s": float(m.group(1)) if m else None}
    finally:
        context.close()


def serve_and_measure(browser: Any, script: Path, env: dict, *, navigations: int, train: bool) -> dict:
    start = time.perf_counter()
    proc, url = start_server(script, env)
    try:
        out: dict = {"health_s": time.perf_counter() - start}
        out["cold"] = time_to_heatmap(browser, url, since=start)
        out["navigations"] = [time_to_heatmap(browser, url) for _ in range(navigations)]
        out["cold_first_heatmap_s"] = out["cold"]["seconds"]
        out["navigation_s"] = [n["seconds"] for n in out["navigations"]]
        out["vm_hwm_mib_before_train"] = vm_hwm_mib(proc.pid)
        if train:
            tree = TreeMemory(proc.pid)
            tree.start()
            try:
                out.update(train_in_browser(browser, url))
            finally:
                tree.stop()
            out["vm_hwm_mib"] = vm_hwm_mib(proc.pid)
            out["children_vm_hwm_mib"] = {str(p): v for p, v in tree.peaks.items() if p != proc.pid}
            out["tree_peak_pss_mib"] = tree.peak_sum_pss
            out["tree_pss_at_peak_mib"] = tree.at_peak
        return out
    finally:
        stop_server(proc)


def _nav_median(result: dict, key: str) -> float:
    return median([n[key] for n in result["navigations"]]) or 0.0


def browser_section(*, quick: bool, env: dict) -> tuple[list[Row], dict]:
    if not Path(CHROMIUM).exists():
        return skipped("browser", f"{CHROMIUM} is missing (make test-setup installs it)"), {}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        return skipped("browser", f"playwright is not installed ({exc})"), {}
    navigations = 2 if quick else 3
    with tempfile.TemporaryDirectory(prefix="embedviz-bench-") as tmp, sync_playwright() as pw:
        plain_page = Path(tmp) / "plain_page.py"
        plain_page.write_text(PLAIN_PAGE)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            log("browser: ours (app.py): cold start, navigations, Train")
            ours = serve_and_measure(browser, ROOT / "app.py", env, navigations=navigations, train=True)
            log("browser: plain page: cold start, navigations" + ("" if quick else ", Train"))
            plain = serve_and_measure(browser, plain_page, env, navigations=navigations, train=not quick)
        finally:
            browser.close()
    nav_o, nav_p = median(ours["navigation_s"]), median(plain["navigation_s"])
    mem_o = ours.get("vm_hwm_mib")
    rows = [
        Row("browser", "cold start: streamlit run -> first heatmap drawn", ours["cold_first_heatmap_s"],
            plain["cold_first_heatmap_s"],
            note=f"health endpoint answered after {ours['health_s']:.1f} s (ours) / {plain['health_s']:.1f} s (plain)"),
        Row("browser", f"navigation on a started server -> first heatmap (median of {navigations})", nav_o, nav_p,
            target="<= 3 s", met=nav_o <= 3, note="Chromium's main thread: " + " / ".join(
                f"{_nav_median(r, 'browser_busy_s'):.1f} s busy, {_nav_median(r, 'browser_script_s'):.1f} s "
                f"of it in JS, load event at {_nav_median(r, 'load_event_s'):.1f} s ({who})"
                for who, r in (("ours", ours), ("plain", plain)))),
        Row("browser", "Train pressed -> both scatter plots drawn (fresh server)", ours.get("train_to_scatter_s"),
            plain.get("train_to_scatter_s"),
            note="" if ours.get("training_s") is None else
            f"of which training {ours['training_s']:.1f} s (the page's own figure); plain: 300-step plain "
            "loop + 2 umap-learn fits" + (" (skipped in --quick)" if quick else "")),
        Row("browser", "server peak RSS (VmHWM) after Train, scatter drawn", mem_o, plain.get("vm_hwm_mib"),
            unit="MiB", target="<= 800 MiB", met=mem_o is not None and mem_o <= 800,
            note=f"before Train: {ours['vm_hwm_mib_before_train']:.0f} MiB (ours) / "
                 f"{plain['vm_hwm_mib_before_train']:.0f} MiB (plain page)"),
    ]
    if ours.get("children_vm_hwm_mib"):  # training in child processes: count the whole tree too
        tree_o = ours["tree_peak_pss_mib"]
        rows.append(Row("browser", "server + child processes: peak of summed PSS while training", tree_o,
                        plain.get("tree_peak_pss_mib"), unit="MiB", target="<= 800 MiB", met=tree_o <= 800,
                        note="PSS at the peak: " + ", ".join(
                            f"{who} {v:.0f}" for who, v in ours["tree_pss_at_peak_mib"].items())
                             + " MiB; children's own VmHWM: " + ", ".join(
                            f"{v:.0f}" for v in ours["children_vm_hwm_mib"].values()) + " MiB"))
    return rows, {"ours": ours, "plain": plain, "plain_page": PLAIN_PAGE}


# ---------------------------------------------------------------- the run

SECTION_RUNNERS: dict[str, Callable[..., tuple[list[Row], dict]]] = {
    "projection": projection_section,
    "training": training_section,
    "explorer": explorer_section,
    "browser": browser_section,
}


@dataclass
class Report:
    mode: str
    machine: dict
    rows: list[Row] = field(default_factory=list)
    sections: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def to_json(self) -> str:
        rows = [{**asdict(r), "ratio": r.ratio} for r in self.rows]
        return json.dumps({"mode": self.mode, "machine": self.machine, "rows": rows, "sections": self.sections,
                           "errors": self.errors}, indent=1, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def warm_numba_cache(env: dict) -> float:
    """`python -m embedviz.projection --warm-up`, as `make setup` runs it; seconds taken."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "embedviz.projection", "--warm-up"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=600)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embedviz.bench",
                                     description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a few minutes; for CI)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write (default {DEFAULT_JSON})")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run, from {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")

    os.environ.setdefault("EMBEDVIZ_CACHE_DIR", str(ROOT / ".cache"))  # as the Makefile exports it
    env = dict(os.environ)  # taken before umap, in this process, sets NUMBA_CACHE_DIR
    report = Report(mode="quick" if args.quick else "full", machine=machine_info())
    m = report.machine
    load = ", ".join(f"{v:.2f}" for v in m["load_average_start"])
    print(f"embedviz bench ({report.mode}) · {m['cpu_count']} cores · torch {m['torch_threads']} threads · "
          f"load average {load} · {m['platform']}", flush=True)
    if m["load_average_start"][0] > (m["cpu_count"] or 1):
        print("note: the machine is busy (load average above the core count): times are inflated.", flush=True)
    report.machine["numba_warm_up_s"] = warm_numba_cache(env)

    started = time.perf_counter()
    for name in chosen:
        log(f"section {name}")
        t0 = time.perf_counter()
        try:
            rows, details = SECTION_RUNNERS[name](quick=args.quick, env=env)
        except Exception as exc:  # one broken section still leaves the others' figures
            traceback.print_exc()
            rows, details = [Row(name, f"error: {type(exc).__name__}: {str(exc)[:200]}")], {}
            report.errors[name] = traceback.format_exc()
        details["section_s"] = time.perf_counter() - t0
        report.rows += rows
        report.sections[name] = details
    report.machine["load_average_end"] = list(os.getloadavg())
    report.machine["bench_s"] = time.perf_counter() - started

    print(format_table(report.rows))
    met = [r for r in report.rows if r.met is not None]
    print(f"targets met: {sum(r.met for r in met)}/{len(met)} · load average at the end "
          + ", ".join(f"{v:.2f}" for v in report.machine["load_average_end"])
          + f" · {report.machine['bench_s']:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(report.to_json())
    print(f"written to {args.json}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())

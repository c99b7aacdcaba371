"""2D maps of embedding rows: UMAP (umap-learn, imported lazily, numba code cached on disk), PCA for
inputs too small or too degenerate for UMAP, and Procrustes alignment of one map onto another.
Does not subsample: the caller keeps at most cfg.max_points rows.
"""
from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from embedviz.config import ProjectionConfig

METRICS = ("cosine", "euclidean")
# umap-learn fails for 2 rows, and for 3 with its spectral init; a map of 3 points says nothing anyway.
MIN_UMAP_ROWS = 4
# Rows closer than this (cosine distance, or euclidean relative to the largest norm) count as duplicates.
_DUPLICATE_TOL = 1e-6
# Modules whose numba functions umap-learn compiles on every process start unless caching is enabled.
_UMAP_NUMBA_MODULES = (
    "umap.umap_",
    "umap.utils",
    "umap.layouts",
    "umap.distances",
    "umap.spectral",
    "umap.sparse",
)

_load_lock = threading.Lock()
_umap_class: Any = None


@dataclass(frozen=True)
class Projection:
    """One 2D point per input row."""

    xy: np.ndarray  # (N, 2) float32
    method: Literal["umap", "pca"]
    note: str | None = None  # why the map is not a plain UMAP of every row, for the reader


def project(
    matrix: np.ndarray,
    *,
    cfg: ProjectionConfig = ProjectionConfig(),
    init: np.ndarray | None = None,
) -> Projection:
    """Map the rows of `matrix` (N, d) to 2D; the same input and cfg.seed give the same map.

    `init` (N, 2), e.g. the map of an earlier snapshot of the same rows, is where the layout starts,
    and the result is returned in its frame (rotated, scaled and shifted onto it), so that a map of
    trained rows can be compared point by point with the map it started from.
    """
    x = _check_matrix(matrix, cfg)
    n, d = x.shape
    start = None if init is None else _check_init(init, n)

    if n == 1:
        return _finish(np.zeros((1, 2)), "pca", "Only one row: it is drawn at the origin.", start)
    if d == 1:
        note = "The rows have a single dimension: they are drawn on a line at their values."
        return _finish(np.hstack([x, np.zeros_like(x)]), "pca", note, start)

    x = x / np.abs(x).max(initial=0.0) if x.any() else x  # maps are scale-free; avoids overflow
    points = _normalise_rows(x) if cfg.metric == "cosine" else x  # (N, d)
    if n < MIN_UMAP_ROWS:
        note = f"Only {n} rows: too few for UMAP (it needs {MIN_UMAP_ROWS}), so this is a PCA map."
        return _finish(_pca2(points), "pca", note, start)

    dist = _distances(x, cfg.metric)  # (N, N) float32
    distinct = _count_distinct(dist, tol=_DUPLICATE_TOL * _distance_scale(x, cfg.metric))
    if distinct == 1:
        note = f"All {n} rows are identical under {cfg.metric} distance: they are drawn at one point."
        return _finish(np.zeros((n, 2)), "pca", note, start)
    if distinct < MIN_UMAP_ROWS:
        note = (
            f"Only {distinct} distinct rows under {cfg.metric} distance: too few for UMAP "
            f"(it needs {MIN_UMAP_ROWS}), so this is a PCA map."
        )
        return _finish(_pca2(points), "pca", note, start)

    k = min(cfg.n_neighbors, n - 1)
    note = None
    if k < cfg.n_neighbors:
        note = f"Only {n} rows: UMAP used {k} neighbours per row instead of {cfg.n_neighbors}."
    layout_start = _spread_out(_pca2(points) if start is None else start, seed=cfg.seed)
    xy = _umap(dist, k=k, cfg=cfg, init=layout_start)
    return _finish(xy, "umap", note, start)


def align(reference: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """Rotate (or reflect), scale uniformly and shift `moving` (N, 2) to best match `reference` (N, 2).

    Least squares (orthogonal Procrustes with scale), so a map that only turned or mirrored between two
    snapshots lands back on the first one and the points that really moved stand out. Returns float32.
    """
    ref = np.asarray(reference, dtype=np.float64)
    mov = np.asarray(moving, dtype=np.float64)
    if ref.ndim != 2 or ref.shape[1] != 2 or mov.shape != ref.shape:
        raise ValueError(
            f"align needs two (N, 2) arrays of the same shape; got {np.shape(reference)} "
            f"and {np.shape(moving)}."
        )
    if not (np.isfinite(ref).all() and np.isfinite(mov).all()):
        raise ValueError("align got NaN or infinite coordinates; project the rows again.")
    if len(ref) == 0:
        return np.zeros((0, 2), dtype=np.float32)
    ref_mean, mov_mean = ref.mean(axis=0), mov.mean(axis=0)
    ref_c, mov_c = ref - ref_mean, mov - mov_mean  # (N, 2)
    spread = float((mov_c**2).sum())
    if spread <= 1e-24:
        return np.broadcast_to(ref_mean, ref.shape).astype(np.float32)
    u, s, vt = np.linalg.svd(mov_c.T @ ref_c)  # (2, 2)
    rotation = u @ vt  # (2, 2), orthogonal
    scale = s.sum() / spread
    return (scale * mov_c @ rotation + ref_mean).astype(np.float32)


def warm_up() -> float:
    """Load (or compile and cache) umap's numba code; returns the seconds it took.

    Call it once per server process, early and off the request path: afterwards a first projection
    costs about as much as any later one.
    """
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 8))
    rows = centres[np.arange(64) % 4] + 0.1 * rng.normal(size=(64, 8))  # (64, 8)
    project(rows, cfg=ProjectionConfig(n_epochs=20))
    return time.perf_counter() - started


def numba_cache_dir() -> Path:
    """Where umap's compiled numba code is kept: $NUMBA_CACHE_DIR if the user set it, else ours.

    numba loads its cache index with pickle, so anyone who can write to the directory can run code
    in this process: ours must be a real directory (no symlink) of this user that no one else can
    write to. Raises OSError saying why when there is none; UMAP then runs without the cache.
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    home_cache = os.path.join(os.path.expanduser("~"), ".cache", "embedviz")
    base = Path(os.environ.get("EMBEDVIZ_CACHE_DIR") or home_cache)
    fallback = Path(tempfile.gettempdir()) / f"embedviz-{os.getuid()}"  # e.g. a read-only home
    problems = []
    for chain in ((base / "numba",), (fallback, fallback / "numba")):  # each folder of the chain ours
        problem = next(filter(None, map(_private_dir_problem, chain)), None)
        if problem is None:
            return chain[-1]
        problems.append(problem)
    raise OSError(
        f"No private directory for the numba cache ({'; '.join(problems)}), so UMAP runs uncached. "
        "Set EMBEDVIZ_CACHE_DIR to a directory of your own that only you can write to."
    )


def _private_dir_problem(path: Path) -> str | None:
    """Create `path` (0o700) if missing; None if it is a directory of ours that only we can write, else why not."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a directory"
    if info.st_uid != os.getuid():
        return f"{path} belongs to another user"
    if info.st_mode & 0o022:
        return f"{path} can be written by other users (chmod go-w it)"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable"
    return None


def _check_matrix(matrix: np.ndarray, cfg: ProjectionConfig) -> np.ndarray:
    if cfg.metric not in METRICS:
        raise ValueError(f"Unknown projection metric {cfg.metric!r}; use {' or '.join(METRICS)}.")
    if cfg.n_neighbors < 2:
        raise ValueError("UMAP needs at least 2 neighbours per row (n_neighbors >= 2).")
    if not 0.0 <= cfg.min_dist <= 1.0:
        raise ValueError("min_dist must be between 0 and 1.")
    if cfg.n_epochs < 1:
        raise ValueError("n_epochs must be at least 1.")
    if not cfg.learning_rate > 0:
        raise ValueError("The projection learning rate must be positive.")
    if not 0 <= cfg.seed < 2**32:
        raise ValueError("The projection seed must be between 0 and 4294967295.")
    x = np.asarray(matrix)
    if x.ndim != 2:
        raise ValueError(f"Expected a matrix with one row per point, (N, d); got shape {x.shape}.")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"Expected a matrix of real numbers; got dtype {x.dtype}.")
    n, d = x.shape
    if n == 0:
        raise ValueError("There are no rows to project; select at least one token.")
    if d == 0:
        raise ValueError("The rows have no columns; an embedding needs at least one dimension.")
    if n > cfg.max_points:
        raise ValueError(
            f"{n:,} rows is more than the {cfg.max_points:,} a map can show; keep the most "
            "frequent rows (or raise max_points)."
        )
    x = x.astype(np.float64)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{len(rows)} row(s) contain NaN or infinite values (first: row {rows[0]}); "
            "training may have diverged: lower the learning rate and train again."
        )
    return x


def _check_init(init: np.ndarray, n: int) -> np.ndarray:
    start = np.asarray(init)
    if start.shape != (n, 2) or start.dtype.kind not in "biuf":
        raise ValueError(
            f"init must be an ({n}, 2) array of coordinates, one per row; got {start.shape}."
        )
    start = start.astype(np.float64)
    if not np.isfinite(start).all():
        raise ValueError("init contains NaN or infinite coordinates.")
    return start


def _finish(
    xy: np.ndarray, method: Literal["umap", "pca"], note: str | None, start: np.ndarray | None
) -> Projection:
    out = xy if start is None else align(start, xy)
    out = np.ascontiguousarray(out, dtype=np.float32)
    assert out.shape == (len(xy), 2) and np.isfinite(out).all()
    return Projection(xy=out, method=method, note=note)


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # (N, 1)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _distances(x: np.ndarray, metric: str) -> np.ndarray:
    """Dense (N, N) float32 distances with an exact zero diagonal."""
    if metric == "cosine":
        unit = _normalise_rows(x).astype(np.float32)  # (N, d)
        dist = 1.0 - unit @ unit.T  # (N, N)
        zero = ~unit.any(axis=1)
        dist[np.ix_(zero, zero)] = 0.0  # zero rows have no direction: treat them as one point
    else:  # float64: in float32 the cancellation below leaves copies ~1e-4 apart
        centred = x - x.mean(axis=0)  # (N, d)
        sq = np.einsum("ij,ij->i", centred, centred)  # (N,)
        dist = sq[:, None] + sq[None, :] - 2.0 * (centred @ centred.T)  # (N, N)
        np.maximum(dist, 0.0, out=dist)
        np.sqrt(dist, out=dist)
    np.maximum(dist, 0.0, out=dist)
    np.fill_diagonal(dist, 0.0)
    return np.ascontiguousarray(dist, dtype=np.float32)


def _distance_scale(x: np.ndarray, metric: str) -> float:
    return 1.0 if metric == "cosine" else max(1.0, float(np.linalg.norm(x, axis=1).max()))


def _count_distinct(dist: np.ndarray, *, tol: float) -> int:
    repeats = np.tril(dist <= tol, k=-1).any(axis=1)  # (N,) equal to an earlier row
    return int(len(dist) - repeats.sum())


def _pca2(points: np.ndarray) -> np.ndarray:
    """The first two principal-component coordinates (N, 2), zero where the rank runs out."""
    centred = points - points.mean(axis=0)  # (N, d)
    n, d = centred.shape
    if d <= n:
        evals, evecs = np.linalg.eigh(centred.T @ centred)  # (d,), (d, d) ascending
        coords = centred @ evecs[:, ::-1][:, :2]  # (N, <=2)
    else:
        evals, evecs = np.linalg.eigh(centred @ centred.T)  # (N,), (N, N) ascending
        coords = evecs[:, ::-1][:, :2] * np.sqrt(np.clip(evals[::-1][:2], 0.0, None))  # (N, <=2)
    top = evals[::-1][:2]
    xy = np.zeros((n, 2))
    for j in range(coords.shape[1]):
        if top[j] > 1e-12 * max(top[0], 1e-300):
            column = coords[:, j]
            xy[:, j] = column if column[np.argmax(np.abs(column))] >= 0 else -column  # fixed sign
    return xy


def _spread_out(start: np.ndarray, *, seed: int) -> np.ndarray:
    """umap-learn rescales each axis of an initial layout by its range: give flat axes some."""
    span = np.ptp(start, axis=0)  # (2,)
    if span.min() > 1e-6 * span.max():
        return start
    scale = 1e-3 * span.max() if span.max() > 0 else 1.0
    return start + np.random.default_rng(seed).normal(size=start.shape) * scale


def _nearest(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest rows, itself first, as umap-learn's precomputed_knn wants them."""
    ranked = dist.copy()
    np.fill_diagonal(ranked, -1.0)  # self first even among duplicates
    idx = np.argpartition(ranked, k - 1, axis=1)[:, :k]  # (N, k) unordered
    order = np.argsort(np.take_along_axis(ranked, idx, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)  # (N, k)
    return idx.astype(np.int32), np.take_along_axis(dist, idx, axis=1).astype(np.float32)


def _umap(dist: np.ndarray, *, k: int, cfg: ProjectionConfig, init: np.ndarray) -> np.ndarray:
    umap_class = _load_umap()
    reducer = umap_class(
        n_neighbors=k,
        n_components=2,
        metric="precomputed",  # our dense distances: no per-pair numba calls, nothing from pynndescent
        precomputed_knn=_nearest(dist, k),
        force_approximation_algorithm=True,  # use the neighbours above instead of argsorting every row
        n_epochs=cfg.n_epochs,
        min_dist=cfg.min_dist,
        learning_rate=cfg.learning_rate,
        init=init.astype(np.float32),
        random_state=cfg.seed,  # also makes the layout single-threaded, hence reproducible
        n_jobs=1,
        verbose=False,
    )
    xy = reducer.fit_transform(dist)  # (N, 2)
    assert xy.shape == (len(dist), 2)
    if not np.isfinite(xy).all():
        raise ValueError("UMAP produced non-finite coordinates; try another projection seed.")
    return xy


def _load_umap() -> Any:
    """Import umap-learn once per process with its numba code cached in our own directory."""
    global _umap_class
    with _load_lock:
        if _umap_class is None:
            caching = True
            if not os.environ.get("NUMBA_CACHE_DIR"):
                try:
                    cache = str(numba_cache_dir())
                except OSError as exc:
                    warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
                    caching = False
                else:
                    os.environ["NUMBA_CACHE_DIR"] = cache
                    if "numba" in sys.modules:  # imported before us: numba has read its config already
                        sys.modules["numba"].config.CACHE_DIR = cache
            import importlib

            with warnings.catch_warnings():  # umap warns that TensorFlow is missing: irrelevant here
                warnings.simplefilter("ignore", ImportWarning)
                from umap import UMAP
            from numba.core.registry import CPUDispatcher

            if caching:
                for name in _UMAP_NUMBA_MODULES:
                    for value in vars(importlib.import_module(name)).values():
                        if isinstance(value, CPUDispatcher):
                            value.enable_caching()
            for message in ("using precomputed metric", r"precomputed_knn\[2\]"):
                warnings.filterwarnings("ignore", message=message, category=UserWarning, module="umap")
            _umap_class = UMAP
    return _umap_class


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m embedviz.projection",
        description="Fill the on-disk numba cache so UMAP maps are fast from a server's first request.",
    )
    parser.add_argument("--warm-up", action="store_true", help="compile and cache umap's numba code")
    args = parser.parse_args(argv)
    if not args.warm_up:
        parser.print_help()
        return 2
    seconds = warm_up()
    try:
        print(f"numba cache {numba_cache_dir()} ready in {seconds:.1f} s")
    except OSError as exc:
        print(f"UMAP compiled in {seconds:.1f} s but nothing was cached: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

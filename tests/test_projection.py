"""Tests for embedviz.projection: UMAP/PCA maps, edge cases, init, align, lazy import."""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from embedviz.config import ProjectionConfig
from embedviz.projection import Projection, align, main, numba_cache_dir, project, warm_up
from tests import fresh

# umap-learn's notices about the precomputed metric; projection.py silences them once per process,
# but pytest resets warning filters for every test
pytestmark = pytest.mark.filterwarnings("ignore:using precomputed metric", "ignore:precomputed_knn")


def blobs(n: int = 200, d: int = 32, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3.0
    labels = np.arange(n) % k
    return centres[labels] + rng.normal(size=(n, d)), labels


def knn_agreement_2d(xy: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    dist = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


@pytest.fixture(scope="session", autouse=True)
def warm() -> None:
    """Pay umap's import and numba loading once (compiled code comes from the on-disk cache)."""
    warm_up()


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray, Projection]:
    x, labels = blobs()
    return x, labels, project(x)


def test_shape_dtype_and_method(clustered) -> None:
    x, _, proj = clustered
    assert proj.xy.shape == (len(x), 2)
    assert proj.xy.dtype == np.float32
    assert proj.method == "umap"
    assert proj.note is None
    assert np.isfinite(proj.xy).all()


def test_clusters_stay_separate_in_2d(clustered) -> None:
    x, labels, proj = clustered
    assert knn_agreement_2d(proj.xy, labels) > 0.95
    assert trustworthiness(x, proj.xy, n_neighbors=10) > 0.9


def test_same_seed_same_map_and_other_seed_differs(clustered) -> None:
    x, _, proj = clustered
    assert np.array_equal(project(x).xy, proj.xy)
    assert not np.allclose(project(x, cfg=ProjectionConfig(seed=1)).xy, proj.xy)


@pytest.mark.xdist_group("fresh")  # one worker runs the fresh interpreter for both
def test_same_map_in_a_fresh_process(clustered) -> None:
    _, _, proj = clustered
    assert fresh.report()["projection_sha256"] == hashlib.sha256(proj.xy.tobytes()).hexdigest()


def test_no_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="no rows"):
        project(np.zeros((0, 8)))


def test_one_row_is_drawn_at_the_origin() -> None:
    proj = project(np.ones((1, 8)))
    assert proj.method == "pca" and proj.note
    assert np.array_equal(proj.xy, np.zeros((1, 2), dtype=np.float32))


@pytest.mark.parametrize("n", [2, 3])
def test_too_few_rows_for_umap_fall_back_to_pca(n: int) -> None:
    x = np.random.default_rng(n).normal(size=(n, 8))
    proj = project(x)
    assert proj.method == "pca"
    assert "too few for UMAP" in proj.note
    assert proj.xy.shape == (n, 2) and proj.xy.dtype == np.float32
    assert len(np.unique(proj.xy.round(6), axis=0)) == n  # distinct rows stay distinct


@pytest.mark.parametrize("n", [4, 5, 15])
def test_small_inputs_use_umap_with_fewer_neighbours(n: int) -> None:
    x = np.random.default_rng(n).normal(size=(n, 8))
    proj = project(x)
    assert proj.method == "umap"
    assert f"{n - 1} neighbours" in proj.note
    assert proj.xy.shape == (n, 2) and np.isfinite(proj.xy).all()


def test_one_dimension_is_drawn_on_a_line() -> None:
    values = np.random.default_rng(0).normal(size=(30, 1))
    proj = project(values)
    assert proj.method == "pca" and "single dimension" in proj.note
    np.testing.assert_array_equal(proj.xy, np.hstack([values, np.zeros_like(values)]).astype(np.float32))


def test_duplicate_rows_land_together() -> None:
    distinct = np.random.default_rng(0).normal(size=(8, 16))
    x = np.repeat(distinct, 5, axis=0)  # (40, 16): 8 rows, 5 copies each
    proj = project(x)
    assert proj.method == "umap" and np.isfinite(proj.xy).all()
    copies = proj.xy.reshape(8, 5, 2)
    within = np.linalg.norm(copies - copies.mean(axis=1, keepdims=True), axis=-1).max()
    assert within < 0.1 * np.ptp(proj.xy, axis=0).max()


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_identical_rows_are_one_point(metric: str) -> None:
    proj = project(np.full((20, 8), 0.5), cfg=ProjectionConfig(metric=metric))
    assert proj.method == "pca" and "identical" in proj.note
    assert np.all(proj.xy == 0)


def test_few_distinct_rows_fall_back_to_pca() -> None:
    x = np.tile(np.random.default_rng(0).normal(size=(3, 8)), (10, 1))  # (30, 8), 3 distinct
    proj = project(x)
    assert proj.method == "pca" and "3 distinct rows" in proj.note


def test_zero_rows_do_not_crash_cosine() -> None:
    x = np.vstack([np.zeros((10, 8)), np.random.default_rng(0).normal(size=(30, 8))])
    proj = project(x)
    assert proj.method == "umap" and np.isfinite(proj.xy).all()


def test_euclidean_metric_separates_clusters() -> None:
    x, labels = blobs(n=100, seed=3)
    proj = project(x, cfg=ProjectionConfig(metric="euclidean"))
    assert knn_agreement_2d(proj.xy, labels) > 0.95


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_are_rejected(bad: float) -> None:
    x = np.random.default_rng(0).normal(size=(10, 4))
    x[7, 2] = bad
    with pytest.raises(ValueError, match="row 7"):
        project(x)


@pytest.mark.parametrize(
    ("matrix", "cfg", "message"),
    [
        (np.zeros(5), ProjectionConfig(), "shape"),
        (np.array([["a", "b"]]), ProjectionConfig(), "real numbers"),
        (np.zeros((4, 0)), ProjectionConfig(), "no columns"),
        (np.zeros((11, 2)), ProjectionConfig(max_points=10), "most frequent"),
        (np.zeros((5, 2)), ProjectionConfig(metric="jaccard"), "metric"),
        (np.zeros((5, 2)), ProjectionConfig(n_neighbors=1), "neighbours"),
        (np.zeros((5, 2)), ProjectionConfig(learning_rate=0.0), "learning rate"),
    ],
)
def test_bad_input_gets_an_actionable_error(matrix, cfg, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        project(matrix, cfg=cfg)


def test_bad_init_is_rejected() -> None:
    x = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match="init"):
        project(x, init=np.zeros((9, 2)))
    with pytest.raises(ValueError, match="init"):
        project(x, init=np.full((10, 2), np.nan))


def test_init_places_the_clusters() -> None:
    x, labels = blobs(n=150, k=5, seed=1)
    angles = 2 * np.pi * np.arange(5) / 5
    spots = 10 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (5, 2) where each cluster starts
    start = spots[labels] + np.random.default_rng(0).normal(size=(150, 2))
    proj = project(x, init=start)
    centroids = np.stack([proj.xy[labels == c].mean(axis=0) for c in range(5)])  # (5, 2)
    nearest_spot = np.linalg.norm(centroids[:, None] - spots[None], axis=-1).argmin(axis=1)
    assert np.array_equal(nearest_spot, np.arange(5))  # each cluster stays where init put it
    assert knn_agreement_2d(proj.xy, labels) > 0.95


def test_init_from_the_same_rows_keeps_the_map(clustered) -> None:
    x, labels, proj = clustered
    again = project(x, init=proj.xy).xy
    scale = np.ptp(proj.xy, axis=0).max()
    before = np.stack([proj.xy[labels == c].mean(axis=0) for c in range(5)])
    after = np.stack([again[labels == c].mean(axis=0) for c in range(5)])
    assert np.linalg.norm(after - before, axis=1).max() < 0.3 * scale  # measured ~0.16


def test_init_is_followed_by_the_pca_fallback() -> None:
    x = np.random.default_rng(0).normal(size=(3, 8))
    start = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    assert project(x, init=start).xy.mean(axis=0) == pytest.approx(start.mean(axis=0), abs=1e-5)


def test_align_recovers_rotation_scale_and_shift() -> None:
    reference = np.random.default_rng(0).normal(size=(50, 2))
    turn = np.deg2rad(37.0)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    moving = 2.5 * reference @ rotation + np.array([4.0, -7.0])
    np.testing.assert_allclose(align(reference, moving), reference, atol=1e-5)
    mirrored = moving * np.array([-1.0, 1.0])
    np.testing.assert_allclose(align(reference, mirrored), reference, atol=1e-5)


def test_align_edge_cases() -> None:
    assert align(np.zeros((0, 2)), np.zeros((0, 2))).shape == (0, 2)
    np.testing.assert_allclose(align([[1.0, 2.0]], [[5.0, 5.0]]), [[1.0, 2.0]])
    np.testing.assert_allclose(align([[0.0, 0.0], [2.0, 0.0]], [[3.0, 3.0], [3.0, 3.0]]), [[1.0, 0.0]] * 2)
    with pytest.raises(ValueError, match="same shape"):
        align(np.zeros((3, 2)), np.zeros((4, 2)))


def test_warm_up_and_cli() -> None:
    assert warm_up() >= 0.0
    assert main(["--warm-up"]) == 0
    assert main([]) == 2


def test_numba_cache_dir_honours_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert numba_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("EMBEDVIZ_CACHE_DIR", str(tmp_path / "ours"))
    assert numba_cache_dir() == tmp_path / "ours" / "numba"
    assert (tmp_path / "ours" / "numba").is_dir()


def test_numba_cache_dir_is_created_private(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("EMBEDVIZ_CACHE_DIR", str(tmp_path / "ours"))
    path = numba_cache_dir()
    assert path == tmp_path / "ours" / "numba"
    assert path.stat().st_mode & 0o777 == 0o700 and path.stat().st_uid == os.getuid()


@pytest.mark.parametrize("unsafe", ["symlink", "group_writable", "file"])
def test_unsafe_numba_cache_dirs_are_refused(monkeypatch, tmp_path, unsafe) -> None:
    """numba unpickles its cache index: a directory others could write to must never be used."""
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("EMBEDVIZ_CACHE_DIR", str(tmp_path / "ours"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "ours").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    for target in (tmp_path / "ours" / "numba", tmp_path / "tmp" / f"embedviz-{os.getuid()}"):
        if unsafe == "symlink":
            target.symlink_to(elsewhere)
        elif unsafe == "group_writable":
            target.mkdir()
            target.chmod(0o770)
        else:
            target.write_text("not a directory")
    with pytest.raises(OSError, match="No private directory") as info:
        numba_cache_dir()
    expected = {"symlink": "symbolic link", "group_writable": "written by other users",
                "file": "not a directory|File exists"}[unsafe]
    assert len(re.findall(expected, str(info.value))) == 2  # both candidates, each with its reason
    assert list(elsewhere.iterdir()) == []


def test_the_temp_fallback_is_used_when_ours_is_unsafe(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("EMBEDVIZ_CACHE_DIR", str(tmp_path / "ours"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "numba").mkdir(mode=0o777)
    (tmp_path / "ours" / "numba").chmod(0o777)
    fallback = tmp_path / "tmp" / f"embedviz-{os.getuid()}"
    assert numba_cache_dir() == fallback / "numba"
    assert fallback.stat().st_mode & 0o777 == 0o700


def test_umap_runs_uncached_when_no_private_dir(monkeypatch, tmp_path) -> None:
    """With only unsafe candidates, loading UMAP warns why and points numba at no directory."""
    from embedviz import projection

    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "numba").symlink_to(tmp_path)
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / f"embedviz-{os.getuid()}").symlink_to(tmp_path)
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("EMBEDVIZ_CACHE_DIR", str(tmp_path / "ours"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setattr(projection, "_umap_class", None)  # load again, as a fresh process would
    with pytest.warns(RuntimeWarning, match="symbolic link.*runs uncached"):
        assert projection._load_umap().__name__ == "UMAP"
    assert "NUMBA_CACHE_DIR" not in os.environ
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ours", "tmp"]  # nothing written through the links

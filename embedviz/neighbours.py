"""Nearest rows of an embedding matrix by cosine similarity, and how well they agree with known classes.

Works on the full d-dimensional rows (never on a 2D projection). All-zero rows have similarity 0 to
everything. Labels come from elsewhere (e.g. the toy world's word classes); None means unlabelled.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"Expected an (N, d) matrix, got an array of shape {m.shape}.")
    norms = np.linalg.norm(m, axis=1, keepdims=True)  # (N, 1)
    return m / np.where(norms > 0, norms, 1.0)  # (N, d); zero rows stay zero


def cosine_matrix(matrix: np.ndarray) -> np.ndarray:
    """(N, N) cosine similarity of every row with every other (zero rows: 0)."""
    unit = _unit_rows(matrix)  # (N, d)
    return unit @ unit.T


def cosine_neighbours(
    matrix: np.ndarray, row: int, *, k: int = 10
) -> list[tuple[int, float]]:
    """The k rows most cosine-similar to `row` (itself excluded), best first; ties go to the lower row."""
    unit = _unit_rows(matrix)  # (N, d)
    n = len(unit)
    if not 0 <= row < n:
        raise ValueError(f"Row {row} is outside the table's {n} rows.")
    if k < 1:
        raise ValueError("k must be at least 1.")
    cand = np.arange(n)
    cand = cand[cand != row]  # (N-1,)
    sims = unit[cand] @ unit[row]  # (N-1,)
    order = np.lexsort((cand, -sims))[:k]  # by similarity, then by row
    return [(int(cand[i]), float(sims[i])) for i in order]


def knn_agreement(matrix: np.ndarray, labels: Sequence[str | None], *, k: int = 5) -> float:
    """Mean over labelled rows of the share of their k nearest labelled rows (cosine) with the same label.

    Unlabelled rows (None) are neither scored nor counted as neighbours. Ties go to the lower row.
    """
    unit = _unit_rows(matrix)  # (N, d)
    if len(labels) != len(unit):
        raise ValueError(f"Got {len(labels)} labels for {len(unit)} rows.")
    if k < 1:
        raise ValueError("k must be at least 1.")
    labelled = np.array([i for i, lab in enumerate(labels) if lab is not None], dtype=np.int64)  # (L,)
    if len(labelled) < 2:
        raise ValueError("Agreement needs at least two labelled rows.")
    k = min(k, len(labelled) - 1)
    sub = unit[labelled]  # (L, d)
    sims = sub @ sub.T  # (L, L)
    np.fill_diagonal(sims, -np.inf)  # a row is not its own neighbour
    # A stable sort of -sims keeps the lower row first among equal similarities.
    nearest = np.argsort(-sims, axis=1, kind="stable")[:, :k]  # (L, k) positions in `labelled`
    names = np.array([labels[i] for i in labelled], dtype=object)  # (L,)
    same = names[nearest] == names[:, None]  # (L, k)
    return float(same.mean())


def chance_agreement(labels: Sequence[str | None]) -> float:
    """The agreement expected from random neighbours: P(another labelled row shares a row's label)."""
    counts = Counter(lab for lab in labels if lab is not None)
    n = sum(counts.values())
    if n < 2:
        raise ValueError("Agreement needs at least two labelled rows.")
    return sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))

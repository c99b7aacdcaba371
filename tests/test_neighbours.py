from __future__ import annotations

import numpy as np
import pytest

from embedviz.neighbours import chance_agreement, cosine_neighbours, knn_agreement

# rows 0-2 point along x, rows 3-5 along y; row 6 is all zeros
M = np.array([
    [1.0, 0.0],
    [2.0, 0.1],
    [3.0, -0.2],
    [0.0, 1.0],
    [0.1, 5.0],
    [-0.1, 2.0],
    [0.0, 0.0],
])


def test_cosine_neighbours_ranks_by_angle_not_length():
    got = cosine_neighbours(M, 0, k=3)
    assert [r for r, _ in got] == [1, 2, 4]
    assert got[0][1] == pytest.approx(2 / np.hypot(2, 0.1))
    assert all(a[1] >= b[1] for a, b in zip(got, got[1:]))


def test_cosine_neighbours_excludes_the_row():
    got = cosine_neighbours(M, 3, k=10)
    assert len(got) == 6 and 3 not in [r for r, _ in got]


def test_cosine_neighbours_zero_row_and_ties():
    got = cosine_neighbours(M, 6, k=3)
    assert got == [(0, 0.0), (1, 0.0), (2, 0.0)]  # similarity 0 to everything, lower rows first
    assert (6, 0.0) in cosine_neighbours(M, 0, k=7)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"row": 7}, "outside"), ({"row": -1}, "outside"), ({"row": 0, "k": 0}, "k must")],
)
def test_cosine_neighbours_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cosine_neighbours(M, **kwargs)


def test_knn_agreement_perfect_and_mixed():
    labels = ["x", "x", "x", "y", "y", "y", None]
    assert knn_agreement(M, labels, k=2) == 1.0
    # k=3: each row's third neighbour is from the other class
    assert knn_agreement(M, labels, k=3) == pytest.approx(2 / 3)
    # k larger than the labelled rows allow is clipped to all others
    assert knn_agreement(M, labels, k=50) == pytest.approx(2 / 5)


def test_knn_agreement_ignores_unlabelled_rows():
    labels = ["x", None, "x", "y", None, "y", None]
    assert knn_agreement(M, labels, k=1) == 1.0
    swapped = ["y", "x", "x", "y", "y", "x", None]
    assert knn_agreement(M, swapped, k=1) < 0.5


def test_knn_agreement_on_random_vectors_is_near_chance():
    rng = np.random.default_rng(0)
    labels = [str(i % 4) for i in range(400)]
    agree = knn_agreement(rng.normal(size=(400, 16)), labels, k=5)
    assert abs(agree - chance_agreement(labels)) < 0.05


def test_knn_agreement_errors():
    with pytest.raises(ValueError, match="two labelled rows"):
        knn_agreement(M, ["x"] + [None] * 6)
    with pytest.raises(ValueError, match="7 rows"):
        knn_agreement(M, ["x", "y"])
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        knn_agreement(np.zeros(3), ["x", "y", "x"])


def test_chance_agreement():
    assert chance_agreement(["a", "a", "b", "b", None]) == pytest.approx(1 / 3)
    assert chance_agreement(["a", "a", "a"]) == 1.0
    assert chance_agreement(["a", "b", "c"]) == 0.0
    with pytest.raises(ValueError, match="two labelled rows"):
        chance_agreement(["a", None])


def test_cosine_matrix():
    from embedviz.neighbours import cosine_matrix

    m = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, 0.0]])
    sim = cosine_matrix(m)
    np.testing.assert_allclose(sim[:3, :3], [[1, 0, -1], [0, 1, 0], [-1, 0, 1]], atol=1e-12)
    assert (sim[3] == 0).all()

from __future__ import annotations

import numpy as np
import pytest

from embedviz import positional_figures as pf
from embedviz.figures import style
from embedviz.positional import (
    alibi_bias,
    alibi_slopes,
    causal_mask,
    rope_angles,
    rope_frequencies,
    rope_pair_path,
    rope_relative_scores,
)

S = style()


def test_rope_rotation_puts_position_m_at_angle_m_theta():
    theta = float(rope_frequencies(head_dim=4, base=100.0)[1])  # 100^(-2/4) = 0.1 rad per position
    points = rope_pair_path(length=12, head_dim=4, pair=1, base=100.0).numpy()  # (T, 2)
    fig = pf.rope_rotation(points, pair=1, theta=theta, angles_shape=rope_angles(length=12, head_dim=4).shape,
                           style=S)
    path = fig.data[1]
    assert np.allclose(path.x, np.cos(0.1 * np.arange(12)), atol=1e-6)
    assert np.allclose(path.y, np.sin(0.1 * np.arange(12)), atol=1e-6)
    assert list(path.text) == [str(m) for m in range(12)]
    assert "torch.Size([12, 2])" in fig.layout.title.text and "pair 1 (dims 2, 3)" in fig.layout.title.text
    assert fig.layout.yaxis.scaleanchor == "x"  # a circle looks like a circle


def test_rope_rotation_rejects_bad_points():
    with pytest.raises(ValueError, match=r"\(positions, 2\)"):
        pf.rope_rotation(np.zeros((4, 3)), pair=0, theta=1.0, angles_shape=(4, 2), style=S)


def test_rope_frequency_schedule():
    theta = rope_frequencies(head_dim=16, base=10_000.0).numpy()
    fig = pf.rope_frequency_schedule(theta, base=10_000.0, style=S)
    assert np.allclose(fig.data[0].y, 10_000.0 ** (-2 * np.arange(8) / 16))
    assert np.allclose(fig.data[0].customdata, 2 * np.pi / theta)  # wavelength in positions
    assert fig.layout.yaxis.type == "log"
    assert "10,000^(−2i/16)" in fig.layout.title.text and "torch.Size([8])" in fig.layout.title.text


def test_rope_decay_says_which_vectors_and_marks_the_trained_length():
    scores = rope_relative_scores(max_distance=63, head_dim=16).numpy()
    fig = pf.rope_decay(scores, head_dim=16, base=10_000.0, trained_positions=16, style=S)
    y = np.asarray(fig.data[0].y)
    theta = 10_000.0 ** (-2 * np.arange(8) / 16)  # (hs/2,)
    expected = 2 * np.cos(np.arange(64)[:, None] * theta).sum(axis=1)  # each pair (1, 1) . its rotation
    assert np.allclose(y, expected, atol=1e-3) and y[0] == pytest.approx(16.0)
    assert y[16:].mean() < 0.7 * y[0]  # the long-range decay
    title = fig.layout.title.text.replace("<br>", " ")  # long titles are wrapped
    assert "q = k = all ones" in title and "torch.Size([64])" in title
    assert fig.layout.shapes[0].x0 == 15


def test_alibi_bias_heatmaps_share_one_colour_scale():
    bias = alibi_bias(n_head=8, length=10).numpy()
    slopes = alibi_slopes(8).numpy()
    fig = pf.alibi_bias_heatmaps(bias, heads=[0, 3, 7], slopes=slopes, style=S)
    assert len(fig.data) == 3 and {t.coloraxis for t in fig.data} == {"coloraxis"}
    assert fig.layout.coloraxis.cmax == 0.0 and fig.layout.coloraxis.cmin == pytest.approx(-9 * 0.5)
    z = np.asarray(fig.data[1].z, dtype=float)  # head 4: m = 1/16
    assert z[9, 0] == pytest.approx(-9 / 16) and np.isnan(z[0, 9])  # masked cells are blank, not -inf
    assert [a.text for a in fig.layout.annotations][:3] == ["head 1: m = 1/2", "head 4: m = 1/16",
                                                           "head 8: m = 1/256"]
    assert "torch.Size([8, 10, 10])" in fig.layout.title.text


def test_alibi_bias_heatmaps_reject_missing_heads():
    with pytest.raises(ValueError, match="between 0 and 1"):
        pf.alibi_bias_heatmaps(alibi_bias(n_head=2, length=4).numpy(), heads=[2], slopes=alibi_slopes(2).numpy(),
                               style=S)


def test_alibi_slope_chart_labels_powers_of_two():
    fig = pf.alibi_slope_chart(alibi_slopes(8).numpy(), style=S)
    assert list(fig.data[0].text) == ["1/2", "1/4", "1/8", "1/16", "1/32", "1/64", "1/128", "1/256"]
    assert fig.layout.yaxis.type == "log" and "torch.Size([8])" in fig.layout.title.text
    # 3 heads: the 2 slopes of 2 heads, then every other slope of 4 heads
    assert list(pf.alibi_slope_chart(alibi_slopes(3).numpy(), style=S).data[0].text) == ["1/16", "1/256", "1/4"]


def test_causal_mask_heatmap():
    fig = pf.causal_mask_heatmap(causal_mask(5).numpy(), style=S)
    z = np.asarray(fig.data[0].z)
    assert np.array_equal(z, np.tril(np.ones((5, 5))))
    assert fig.data[0].customdata[0][1] == "masked" and fig.data[0].customdata[1][0] == "may attend"
    assert fig.layout.yaxis.autorange == "reversed" and "torch.Size([5, 5])" in fig.layout.title.text
    with pytest.raises(ValueError, match="square"):
        pf.causal_mask_heatmap(np.ones((2, 3)), style=S)


def test_shape_text_matches_torch():
    import torch

    assert pf.shape_text((16, 32)) == str(torch.Size([16, 32])) == "torch.Size([16, 32])"


def _evaluation(kind: str, P: int = 4) -> "LengthEvaluation":
    from embedviz.evaluation import LengthEvaluation

    lengths = (P, 2 * P, 4 * P)
    losses = {L: np.linspace(2.0, 3.0, L) for L in lengths}
    if kind == "learned":
        losses = {L: np.concatenate([v[:P], np.full(L - P, np.nan)]) for L, v in losses.items()}
    return LengthEvaluation(kind, P, lengths, losses, {L: 3 for L in lengths},
                            "no rows past P" if kind == "learned" else None)


def test_loss_by_position_draws_one_line_per_scheme_and_no_invented_numbers():
    fig = pf.loss_by_position([_evaluation("learned"), _evaluation("rope")], style=S)
    learned, rope = fig.data
    assert (learned.name, rope.name) == ("learned", "rope")
    assert list(learned.x) == [0, 1, 2, 3] and np.isfinite(learned.y).all()  # stops at P
    assert list(rope.x) == list(range(16)) and np.allclose(rope.y, np.linspace(2.0, 3.0, 16))
    notes = [a.text for a in fig.layout.annotations]
    assert "learned: no rows past P" in notes and not any(n.startswith("rope:") for n in notes)
    [line] = [s for s in fig.layout.shapes if s.type == "line"]
    assert line.x0 == line.x1 == 3.5  # between the last trained position and the first untrained one
    assert "P = 4" in " ".join(notes)
    title = fig.layout.title.text.replace("<br>", " ")  # long titles are wrapped
    assert "trained on P = 4" in title and "torch.Size([16])" in title
    assert fig.layout.xaxis.title.text.startswith("position in a 16-token window")


def test_loss_by_position_refuses_mixed_contexts_and_nothing():
    with pytest.raises(ValueError, match="same context P"):
        pf.loss_by_position([_evaluation("rope", 4), _evaluation("alibi", 8)], style=S)
    with pytest.raises(ValueError, match="at least one"):
        pf.loss_by_position([], style=S)

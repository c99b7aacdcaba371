"""Tests for embedviz.figures: traces, layout and hover templates of each builder (no pixels)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from embedviz import figures as F
from embedviz.training import LossPoint, Progress

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
NASTY = [SCRIPT, IMG, "$x$", "a&b", "'s"]


@pytest.fixture(params=[False, True], ids=["normal", "presentation"])
def st(request) -> F.FigureStyle:
    return F.style(presentation=request.param)


def _strings(obj) -> list[str]:
    """Every string anywhere in a figure's JSON-able dict (titles, ticks, hover, legend names)."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, (list, tuple)):
        return [s for v in obj for s in _strings(v)]
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "OU":
        return [s for v in obj.ravel() for s in _strings(v)]
    return []


def _assert_no_raw_html(fig: go.Figure) -> None:
    for s in _strings(fig.to_plotly_json()):
        low = s.lower()
        assert "<script" not in low and "<img" not in low, s
        assert "$x$" not in s, s


def _hover(tokens: list[str], pad_from: int | None = None) -> list[dict]:
    return [
        dict(token=t, id=None if i == 1 else 1000 + i, row=None if i == 2 else 10 + i, position=i,
             pad=pad_from is not None and i >= pad_from)
        for i, t in enumerate(tokens)
    ]


def _heatmap(T: int = 5, d: int = 4, *, pad_from: int | None = None, style=None, tokens=None):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(T, d))
    if pad_from is not None:
        values[pad_from:] = np.nan
    tokens = tokens or [f"␣t{i}" for i in range(T)]
    return values, F.embedding_heatmap(
        values, row_labels=tokens, hover=_hover(tokens, pad_from), title="Token embeddings", zmax=2.5,
        style=style or F.style(),
    )


# --- style ---------------------------------------------------------------------------------------

def test_style_sizes_palette_and_scale():
    normal, big = F.style(), F.style(presentation=True)
    assert 15 <= normal.font_size <= 16 and big.font_size >= 22
    assert big.tick_size > normal.tick_size and big.title_size > normal.title_size
    assert normal.palette[:3] == ("#0072B2", "#E69F00", "#009E73")  # Okabe-Ito
    assert "#F0E442" not in big.palette  # yellow is unreadable on a projector
    for s in (normal, big):
        stops = s.diverging
        assert stops[0][0] == 0.0 and stops[-1][0] == 1.0 and stops[len(stops) // 2][0] == 0.5
        assert stops[0][1].lower() == "#053061" and stops[-1][1].lower() == "#67001f"  # blue < 0 < red
        assert s.pad_color not in {c for _, c in stops} and s.pad_color not in s.palette
    assert hash(normal) != hash(big)


def test_shared_zmax_ignores_nan_and_never_returns_zero():
    assert F.shared_zmax(np.array([[1.0, -3.0]]), np.array([[np.nan, 2.0]])) == 3.0
    assert F.shared_zmax(np.zeros((2, 2))) == 1.0
    assert F.shared_zmax(np.full((1, 1), np.nan)) == 1.0


# --- embedding_heatmap ---------------------------------------------------------------------------

def test_heatmap_shape_range_axes_and_hover(st):
    values, fig = _heatmap(6, 5, style=st)
    (data,) = fig.data
    assert data.z.shape == (6, 5)
    np.testing.assert_allclose(data.z, values, rtol=1e-6)
    assert (data.zmin, data.zmax, data.zmid) == (-2.5, 2.5, 0.0)
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.xaxis.title.text == "dimension"
    assert list(data.x) == list(range(5))
    assert fig.layout.template.layout.paper_bgcolor is not None  # plotly_white applied
    tpl = data.hovertemplate
    assert "dimension %{x}" in tpl and "%{z:.4f}" in tpl and "%{y}" in tpl
    header = data.y[0]
    assert "token <b>␣t0</b>" in header and "id 1000" in header and "row 10" in header
    assert "position 0" in header
    assert "id \u2014" in data.y[1] and "row \u2014" in data.y[2]  # None shown as a dash
    assert list(fig.layout.yaxis.ticktext) == [f"{i} · ␣t{i}" for i in range(6)]
    assert list(fig.layout.yaxis.tickvals) == list(data.y)
    assert fig.layout.font.size == st.font_size


def test_heatmap_padding_is_grey_and_labelled(st):
    _, fig = _heatmap(6, 3, pad_from=4, style=st)
    data, mask = fig.data
    assert np.isnan(data.z[4:]).all() and np.isfinite(data.z[:4]).all()
    assert data.hoverongaps is False and mask.hoverongaps is False
    assert mask.z.shape == (6, 1)
    assert np.isnan(mask.z[:4]).all() and (mask.z[4:] == 1).all()
    assert list(mask.x) == [-0.5, 2.5]  # one brick across every dimension
    assert {c for _, c in mask.colorscale} == {st.pad_color}
    assert mask.showscale is False
    assert list(mask.y) == list(data.y)
    assert "padding — not real data" in mask.y[5] and mask.hovertemplate.startswith("%{y}")
    assert list(fig.layout.yaxis.ticktext[4:]) == ["4 · pad", "5 · pad"]
    assert "padding" in fig.layout.title.subtitle.text
    assert list(mask.text[:, 0]) == ["", "", "", "", "padding", "padding"]


def test_heatmap_pad_flag_wins_over_values():
    values = np.ones((3, 2))
    hover = _hover(["a", "b", "c"], pad_from=2)
    fig = F.embedding_heatmap(values, row_labels=["a", "b", "c"], hover=hover, title="t", zmax=1,
                              style=F.style())
    assert np.isnan(fig.data[0].z[2]).all()  # never coloured like data


def test_heatmap_escapes_tokens_and_title():
    tokens = NASTY
    _, fig = _heatmap(len(tokens), 3, tokens=tokens)
    _assert_no_raw_html(fig)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in fig.data[0].y[0]
    assert fig.layout.yaxis.ticktext[1].startswith("1 · &lt;img src=x")
    assert "&#36;x&#36;" in fig.data[0].y[2]

    t = F.embedding_heatmap(np.ones((1, 1)), title=SCRIPT, zmax=1, style=F.style())
    assert t.layout.title.text == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_heatmap_small_table_gets_cell_text_large_does_not(st):
    _, small = _heatmap(4, 5, style=st)
    assert small.data[0].texttemplate == "%{z:.2f}"
    assert small.data[0].textfont.size == st.cell_text_size >= 14
    _, wide = _heatmap(2, 40, style=st)
    assert wide.data[0].texttemplate is None


def test_heatmap_1024_square_builds_without_cell_text():
    values = np.random.default_rng(0).normal(size=(1024, 1024)).astype(np.float32)
    fig = F.embedding_heatmap(values, title="wpe", zmax=4.0, style=F.style())
    (data,) = fig.data
    assert data.z.shape == (1024, 1024) and data.z.dtype == np.float32
    assert data.texttemplate is None and data.text is None and not fig.layout.annotations
    assert data.xgap == 0 and data.ygap == 0
    assert fig.layout.height <= F.style().max_plot_px + 200
    assert data.hovertemplate.startswith("position %{y}")


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1)])
def test_heatmap_tiny_shapes(shape):
    T, d = shape
    values, fig = _heatmap(T, d)
    assert fig.data[0].z.shape == shape
    assert fig.layout.height > 100
    assert list(fig.layout.xaxis.range) == [-0.5, d - 0.5]


def test_heatmap_whole_table_rows_are_positions():
    values = np.arange(12.0).reshape(4, 3)
    fig = F.embedding_heatmap(values, title="wpe", zmax=11, style=F.style())
    (data,) = fig.data
    assert list(data.y) == [0, 1, 2, 3]
    assert fig.layout.yaxis.title.text == "position" and fig.layout.yaxis.autorange == "reversed"

    labelled = F.embedding_heatmap(values, row_labels=list("abcd"), title="t", zmax=11, style=F.style())
    assert list(labelled.layout.yaxis.ticktext) == ["0 · a", "1 · b", "2 · c", "3 · d"]
    assert labelled.data[0].hovertemplate.startswith("%{y}<br>dimension")

    hover_only = F.embedding_heatmap(values, hover=_hover(list("abcd")), title="t", zmax=11,
                                     style=F.style())
    assert list(hover_only.layout.yaxis.ticktext) == ["0", "1", "2", "3"]


def test_heatmap_all_nan_rows_are_padding_without_hover():
    values = np.ones((3, 2))
    values[2] = np.nan
    fig = F.embedding_heatmap(values, title="t", zmax=1, style=F.style())
    assert len(fig.data) == 2 and fig.data[1].name == "padding"


def test_heatmap_labels_every_row_up_to_64_then_thins():
    _, fig64 = _heatmap(64, 8)
    assert len(fig64.layout.yaxis.tickvals) == 64
    _, fig300 = _heatmap(300, 8)
    n = len(fig300.layout.yaxis.tickvals)
    assert 20 < n < 300
    px_per_label = F.style().max_plot_px / n
    assert px_per_label >= F.style().row_px


def test_heatmap_repeated_rows_stay_separate():
    values = np.ones((2, 2))
    hover = [dict(token="a", id=1, row=1, position=0, pad=False)] * 2
    fig = F.embedding_heatmap(values, row_labels=["a", "a"], hover=hover, title="t", zmax=1,
                              style=F.style())
    assert len(set(fig.data[0].y)) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(values=np.ones(3)), "2-D"),
        (dict(values=np.ones((0, 3))), "nothing to draw"),
        (dict(zmax=0.0), "zmax"),
        (dict(zmax=float("nan")), "zmax"),
        (dict(row_labels=["a"]), "row labels"),
        (dict(hover=[{}]), "hover"),
        (dict(values=np.array([[np.nan, 1.0], [1.0, 1.0]])), "NaN"),
    ],
)
def test_heatmap_rejects_bad_input(kwargs, match):
    args = dict(values=np.ones((2, 2)), title="t", zmax=1.0, style=F.style()) | kwargs
    with pytest.raises(ValueError, match=match):
        F.embedding_heatmap(**args)


# --- similarity_heatmap --------------------------------------------------------------------------

def test_similarity_heatmap_title_is_escaped():
    fig = F.similarity_heatmap(np.eye(3), title=IMG, style=F.style())
    _assert_no_raw_html(fig)
    assert list(fig.data[0].x) == list(fig.data[0].y) == [0, 1, 2]


def test_similarity_heatmap_fixed_range_square_reversed(st):
    rng = np.random.default_rng(1)
    pos = rng.normal(size=(8, 4))
    pos /= np.linalg.norm(pos, axis=1, keepdims=True)
    fig = F.similarity_heatmap(pos @ pos.T, title="Positions", style=st)
    (data,) = fig.data
    assert data.z.shape == (8, 8)
    assert (data.zmin, data.zmax, data.zmid) == (-1.0, 1.0, 0.0)
    assert [c for _, c in data.colorscale] == [c for _, c in st.diverging]
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.scaleratio == 1
    assert "cosine similarity %{z:.3f}" in data.hovertemplate


def test_similarity_heatmap_one_position_and_bad_shapes():
    assert F.similarity_heatmap(np.ones((1, 1)), title="t", style=F.style()).data[0].z.shape == (1, 1)
    with pytest.raises(ValueError, match="square"):
        F.similarity_heatmap(np.ones((2, 3)), title="t", style=F.style())


# --- loss_curve ----------------------------------------------------------------------------------

def test_loss_curve_train_and_sparse_held_out(st):
    history = [LossPoint(0, 6.0, 6.1), LossPoint(10, 5.0, None), LossPoint(20, 4.0, 4.3),
               LossPoint(30, 3.5, None)]
    fig = F.loss_curve(history, style=st, baseline=np.log(512))
    train, held = fig.data
    assert list(train.x) == [0, 10, 20, 30] and list(train.y) == [6.0, 5.0, 4.0, 3.5]
    assert list(held.x) == [0, 20] and list(held.y) == [6.1, 4.3]
    assert "train loss %{y:.4f}" in train.hovertemplate
    assert train.line.color != held.line.color and held.line.dash == "dash"
    assert fig.layout.yaxis.type == "linear"
    assert fig.layout.shapes[0].line.dash == "dot"
    assert fig.layout.xaxis.title.text == "training step"


def test_loss_curve_edge_cases():
    empty = F.loss_curve([], style=F.style())
    assert len(empty.data) == 0 and "No training" in empty.layout.annotations[0].text
    one = F.loss_curve([LossPoint(0, 6.2, None)], style=F.style(), title=SCRIPT)
    assert len(one.data) == 1 and "markers" in one.data[0].mode
    assert one.layout.yaxis.type == "linear"
    _assert_no_raw_html(one)


TRAIN_NOTE = "train: mean of the batches since the previous point, each scored before its update"
HELD_NOTE = "held-out: unseen text, scored at the point's step"
ABOVE_NOTE = "step 0 is above guessing uniformly: an untrained model's random guesses score worse on average"


def _subtitle(fig: go.Figure) -> list[str]:
    """The subtitle's lines as plain text (Plotly gets them HTML-escaped)."""
    return fig.layout.title.subtitle.text.replace("&#x27;", "'").split("<br>")


def test_loss_curve_says_how_train_and_held_out_are_measured(st):
    """A8: train is a mean of earlier batches, held-out is measured at the step, so early on train sits
    above held-out; step 0 starts above ln V. The chart says so, in lines a phone can show."""
    history = [LossPoint(0, 6.17, 6.15), LossPoint(25, 5.0, 4.2), LossPoint(50, 3.1, 3.4)]
    fig = F.loss_curve(history, style=st, baseline=np.log(256))
    lines = _subtitle(fig)
    assert " ".join(lines) == f"{TRAIN_NOTE} {HELD_NOTE}, so early on train sits above it {ABOVE_NOTE}"
    assert lines[0].startswith("train: ") and any(line.startswith("held-out: ") for line in lines)
    assert len(lines) <= 9 and all(len(line) <= st.subtitle_chars for line in lines)
    assert fig.layout.title.subtitle.font.size == st.font_size
    plain = F.loss_curve(history, style=st)
    assert " ".join(_subtitle(plain)) == f"{TRAIN_NOTE} {HELD_NOTE}, so early on train sits above it"
    # the subtitle adds to the figure's height instead of squeezing the plot
    assert fig.layout.height - fig.layout.margin.t == plain.layout.height - plain.layout.margin.t
    untitled = F.loss_comparison({}, style=st, title="Loss during training")  # the same title, no subtitle
    assert fig.layout.height - fig.layout.margin.t == untitled.layout.height - untitled.layout.margin.t
    assert list(fig.data[0].customdata) == ["the first batch, before any update",
                                            "mean of the 25 batches of steps 1–25",
                                            "mean of the 25 batches of steps 26–50"]
    assert "%{customdata}" in fig.data[0].hovertemplate


def test_loss_curve_claims_only_what_its_numbers_show():
    below = [LossPoint(0, 2.6, 2.7), LossPoint(1, 2.5, 2.6), LossPoint(10, 2.0, 2.1)]  # train below held-out
    fig = F.loss_curve(below, style=F.style(), baseline=np.log(16))  # and step 0 below ln V = 2.77
    assert " ".join(_subtitle(fig)) == f"{TRAIN_NOTE} {HELD_NOTE}"
    assert list(fig.data[0].customdata)[1:] == ["the batch of step 1", "mean of the 9 batches of steps 2–10"]
    no_held = F.loss_curve([LossPoint(0, 6.2, None), LossPoint(20, 4.0, None)], style=F.style(), baseline=5.5)
    assert " ".join(_subtitle(no_held)) == f"{TRAIN_NOTE} {ABOVE_NOTE}"
    assert F.loss_curve([], style=F.style()).layout.title.subtitle.text is None


def test_loss_curve_draws_live_progress_like_the_finished_history():
    reports = [Progress(step=0, steps=20, train_loss=6.0, held_out_loss=6.1, tokens_per_s=0.0, seconds=0.0,
                        eta_s=None),
               Progress(step=20, steps=20, train_loss=4.0, held_out_loss=None, tokens_per_s=9e4, seconds=1.0,
                        eta_s=0.0)]
    history = [LossPoint(0, 6.0, 6.1), LossPoint(20, 4.0, None)]
    live, done = F.loss_curve(reports, style=F.style()), F.loss_curve(history, style=F.style())
    assert live.to_json() == done.to_json()
    assert [list(t.y) for t in live.data] == [[6.0, 4.0], [6.1]]


# --- agreement_curve -----------------------------------------------------------------------------

def test_agreement_curve_range_and_chance(st):
    fig = F.agreement_curve([0, 100, 200], [0.1, 0.4, 0.8], chance=0.12, style=st)
    assert list(fig.layout.yaxis.range) == [0, 1]
    assert list(fig.data[0].y) == [0.1, 0.4, 0.8]
    (line,) = fig.layout.shapes
    assert line.line.dash == "dash" and line.y0 == line.y1 == 0.12
    assert "agreement %{y:.1%}" in fig.data[0].hovertemplate


def test_agreement_curve_edge_cases():
    none = F.agreement_curve([0], [0.5], chance=None, style=F.style())
    assert not none.layout.shapes and len(none.data) == 1
    empty = F.agreement_curve([], [], chance=0.2, style=F.style())
    assert len(empty.data) == 0 and list(empty.layout.yaxis.range) == [0, 1]
    with pytest.raises(ValueError, match="agreement values"):
        F.agreement_curve([0, 1], [0.5], chance=None, style=F.style())


# --- class_colors and embedding_scatter ----------------------------------------------------------

def test_class_colors_sorted_stable_and_grey_for_other(st):
    a = F.class_colors(["verb", "noun", "other", "noun", "<unk>", "adj"], style=st)
    b = F.class_colors(["adj", "<unk>", "verb", "other", "noun"], style=st)
    assert a == b
    assert list(a) == sorted(a)
    assert a["adj"] == st.palette[0] and a["noun"] == st.palette[1] and a["verb"] == st.palette[2]
    assert a["other"] == a["<unk>"] == st.neutral_color
    assert st.neutral_color not in st.palette


def _scatter_inputs(n: int = 12):
    rng = np.random.default_rng(2)
    classes = [["noun", "verb", "other"][i % 3] for i in range(n)]
    tokens = [f"␣w{i}" for i in range(n)]
    tokens[0] = SCRIPT
    tokens[1] = IMG
    return dict(
        xy=rng.normal(size=(n, 2)), tokens=tokens, ids=[None if i == 2 else i + 100 for i in range(n)],
        rows=list(range(n)), frequencies=[i * 1000 for i in range(n)], classes=classes,
    )


def test_scatter_one_trace_per_class_and_hover(st):
    inp = _scatter_inputs()
    colours = F.class_colors(inp["classes"], style=st)
    fig = F.embedding_scatter(**inp, class_colors=colours, title="Before", style=st)
    names = [t.name for t in fig.data]
    assert sorted(names) == ["noun", "other", "verb"]
    assert names[0] == "other"  # grey drawn underneath ...
    assert fig.data[0].legendrank > fig.data[1].legendrank  # ... but listed last
    for trace in fig.data:
        assert trace.marker.color == colours[trace.name]
        assert len(trace.x) == 4
        for field in ("token", "id", "row", "corpus frequency", "class"):
            assert field in trace.hovertemplate
    noun = next(t for t in fig.data if t.name == "noun")
    assert list(noun.customdata[0]) == ["&lt;script&gt;alert(1)&lt;/script&gt;", "100", "0", "0", "noun"]
    verb = next(t for t in fig.data if t.name == "verb")
    assert verb.customdata[0][0] == "&lt;img src=x onerror=alert(1)&gt;"
    assert verb.customdata[1][3] == "4,000"
    assert fig.data[0].customdata[0][1] == "\u2014"  # id None
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.scaleratio == 1
    assert fig.layout.xaxis.showticklabels is False and fig.layout.yaxis.showticklabels is False
    assert fig.layout.legend.font.size == st.font_size
    _assert_no_raw_html(fig)


def test_scatter_highlight_is_bigger_outlined_and_labelled(st):
    inp = _scatter_inputs()
    colours = F.class_colors(inp["classes"], style=st)
    fig = F.embedding_scatter(**inp, class_colors=colours, highlight=[0, 4, 0], title=SCRIPT,
                              style=st, note="UMAP, 12 tokens")
    mark = fig.data[-1]
    assert mark.name == "your text" and mark.showlegend is False
    assert mark.mode == "markers"
    labels = [a.text for a in fig.layout.annotations]
    assert len(labels) == 2 and labels[1] == "␣w4"  # duplicates dropped
    assert labels[0].startswith("&lt;script&gt;alert(1)")  # escaped after shortening
    for a, i in zip(fig.layout.annotations, (0, 4)):  # each label's line ends at its own point
        assert (a.x, a.y) == (inp["xy"][i, 0], inp["xy"][i, 1]) and a.showarrow and a.axref == "x"
    assert mark.customdata[0][0] == "&lt;script&gt;alert(1)&lt;/script&gt;"  # hover: in full
    assert mark.marker.size == st.highlight_size > st.marker_size
    assert mark.marker.line.color == st.outline_color and mark.marker.line.width >= 2
    assert list(mark.marker.color) == [colours["noun"], colours["verb"]]
    assert list(mark.x) == [inp["xy"][0, 0], inp["xy"][4, 0]]
    assert "UMAP, 12 tokens" in fig.layout.title.subtitle.text
    _assert_no_raw_html(fig)


def test_scatter_shares_colours_between_before_and_after():
    inp = _scatter_inputs()
    colours = F.class_colors(inp["classes"], style=F.style())
    before = F.embedding_scatter(**inp, class_colors=colours, title="before", style=F.style())
    inp["xy"] = inp["xy"] * 3
    after = F.embedding_scatter(**inp, class_colors=colours, title="after", style=F.style())
    assert {t.name: t.marker.color for t in before.data} == {t.name: t.marker.color for t in after.data}


def test_scatter_many_classes_reuse_colours_with_new_symbols():
    st = F.style(presentation=True)
    classes = [f"c{i:02d}" for i in range(len(st.palette) + 2)]
    colours = F.class_colors(classes, style=st)
    fig = F.embedding_scatter(np.zeros((len(classes), 2)), tokens=classes, ids=range(len(classes)),
                              rows=range(len(classes)), frequencies=[1] * len(classes),
                              classes=classes, class_colors=colours, title="t", style=st)
    pairs = {(t.marker.color, t.marker.symbol) for t in fig.data}
    assert len(pairs) == len(classes)


def test_scatter_single_point_and_bad_input():
    fig = F.embedding_scatter(np.zeros((1, 2)), tokens=["a"], ids=[1], rows=[0], frequencies=[3],
                              classes=["noun"], class_colors={"noun": "#0072B2"}, highlight=[0],
                              title="t", style=F.style())
    assert len(fig.data) == 2
    inp = _scatter_inputs(3)
    with pytest.raises(ValueError, match="No colour"):
        F.embedding_scatter(**inp, class_colors={"noun": "#000"}, title="t", style=F.style())
    colours = F.class_colors(inp["classes"], style=F.style())
    with pytest.raises(ValueError, match="between 0 and 2"):
        F.embedding_scatter(**inp, class_colors=colours, highlight=[3], title="t", style=F.style())
    with pytest.raises(ValueError, match="tokens"):
        F.embedding_scatter(**(inp | {"tokens": ["a"]}), class_colors=colours, title="t",
                            style=F.style())
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        F.embedding_scatter(**(inp | {"xy": np.zeros((3, 3))}), class_colors=colours, title="t",
                            style=F.style())


def test_scatter_caps_labels_when_many_tokens_are_highlighted():
    st = F.style()
    n = st.max_point_labels + 5
    inp = _scatter_inputs(n)
    colours = F.class_colors(inp["classes"], style=st)
    fig = F.embedding_scatter(**inp, class_colors=colours, highlight=range(n), title="t", style=st)
    assert len(fig.data[-1].x) == n
    assert 0 < len(fig.layout.annotations) <= st.max_point_labels
    assert f"{len(fig.layout.annotations)} of {n} labelled" in fig.layout.title.subtitle.text


# --- evolution_scatter ---------------------------------------------------------------------------

def _frames(n_frames: int = 4, n: int = 9):
    rng = np.random.default_rng(3)
    base = rng.normal(size=(n, 2))
    return [(step, base * (1 + k) + k) for k, step in enumerate(range(0, 100 * n_frames, 100))]


def test_evolution_frames_slider_and_identity(st):
    frames = _frames()
    classes = [["noun", "verb", "<unk>"][i % 3] for i in range(9)]
    tokens = [SCRIPT] + [f"w{i}" for i in range(1, 9)]
    colours = F.class_colors(classes, style=st)
    fig = F.evolution_scatter(frames, tokens=tokens, classes=classes, class_colors=colours, style=st,
                              title="Training")
    assert len(fig.frames) == 4
    (slider,) = fig.layout.sliders
    assert [s.label for s in slider.steps] == ["0", "100", "200", "300"]
    assert [s.args[0][0] for s in slider.steps] == [f.name for f in fig.frames]
    assert slider.currentvalue.prefix.startswith("training step")
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert any("play" in lbl for lbl in labels) and any("pause" in lbl for lbl in labels)
    assert [t.name for t in fig.data] == ["<unk>".replace("<", "&lt;").replace(">", "&gt;"), "noun", "verb"]
    for frame in fig.frames:
        assert list(frame.traces) == [0, 1, 2]
        for trace, moving in zip(fig.data, frame.data):
            assert list(moving.ids) == list(trace.ids)  # same points, same order, every frame
    noun = fig.data[1]
    assert list(noun.ids) == ["0", "3", "6"]
    last = fig.frames[-1].data[1]
    np.testing.assert_allclose(last.x, frames[-1][1][[0, 3, 6], 0])
    everything = np.concatenate([xy for _, xy in frames])
    x0, x1 = fig.layout.xaxis.range
    y0, y1 = fig.layout.yaxis.range
    assert x0 <= everything[:, 0].min() and x1 >= everything[:, 0].max()
    assert y0 <= everything[:, 1].min() and y1 >= everything[:, 1].max()
    assert fig.layout.xaxis.autorange is False
    _assert_no_raw_html(fig)


def test_evolution_single_frame_and_bad_input():
    frames = _frames(1, 3)
    colours = {"a": "#0072B2"}
    fig = F.evolution_scatter(frames, tokens=["x", "y", "z"], classes=["a"] * 3, class_colors=colours,
                              style=F.style(), title="t")
    assert len(fig.frames) == 1 and not fig.layout.sliders and not fig.layout.updatemenus
    assert "training step 0" in fig.layout.title.subtitle.text
    one_point = F.evolution_scatter([(0, np.zeros((1, 2))), (5, np.zeros((1, 2)))], tokens=["x"],
                                    classes=["a"], class_colors=colours, style=F.style(), title="t")
    assert len(one_point.frames) == 2
    assert one_point.layout.xaxis.range[0] < one_point.layout.xaxis.range[1]
    with pytest.raises(ValueError, match="no training snapshots"):
        F.evolution_scatter([], tokens=[], classes=[], class_colors=colours, style=F.style(), title="t")
    with pytest.raises(ValueError, match="same points"):
        F.evolution_scatter([(0, np.zeros((3, 2))), (1, np.zeros((2, 2)))], tokens=["x"] * 3,
                            classes=["a"] * 3, class_colors=colours, style=F.style(), title="t")


def test_loss_comparison_draws_one_line_per_run():
    from embedviz.figures import loss_comparison, style

    runs = {"learned": [LossPoint(0, 5.0, 5.1), LossPoint(10, 3.0, 3.2)],
            "<b>sinusoidal</b>": [LossPoint(0, 5.0, None), LossPoint(10, 3.5, None)]}
    fig = loss_comparison(runs, style=style())
    assert [len(t.x) for t in fig.data] == [2, 2]
    assert list(fig.data[0].y) == [5.1, 3.2]  # held-out where measured
    assert list(fig.data[1].y) == [5.0, 3.5]  # train loss otherwise
    assert "<b>" not in fig.data[1].name
    assert len(loss_comparison({}, style=style()).data) == 0


# --- legibility (issue 10): classroom, projector, phone --------------------------------------------

FOURTEEN = ["adj", "adv", "animal", "body", "colour", "det", "food", "job", "name", "number", "place", "pron",
            "verb", "word"]


def test_every_class_has_its_own_colour_and_shape_the_same_in_every_mode():
    classes = [*FOURTEEN, "other", "<unk>"]
    n = len(classes)
    maps = {}
    for st in (F.style(), F.style(presentation=True)):
        colours = F.class_colors(classes, style=st)
        fig = F.embedding_scatter(np.arange(2 * n, dtype=float).reshape(n, 2), tokens=classes, ids=range(n),
                                  rows=range(n), frequencies=[1] * n, classes=classes, class_colors=colours,
                                  title="t", style=st)
        legend = {t.name.replace("&lt;", "<").replace("&gt;", ">"): (t.marker.color, t.marker.symbol)
                  for t in fig.data}
        assert legend == {c: (colours[c], F.class_symbols(colours)[c]) for c in classes}  # legend = points
        coloured = [legend[c] for c in FOURTEEN]
        assert len(set(coloured)) == 14  # a colour-shape pair of its own
        assert len({symbol for _, symbol in coloured}) == 14  # and a shape of its own: colour is never the only cue
        assert "#F0E442" not in {colour for colour, _ in coloured}  # no yellow on white
        maps[st.presentation] = legend
    assert {c: maps[False][c] for c in FOURTEEN} == {c: maps[True][c] for c in FOURTEEN}  # job, word: both black once


def _boxes_px(fig: go.Figure, st: F.FigureStyle) -> list[tuple[float, float, float, float]]:
    """Each label's box in pixels on the smallest plot the figure promises to keep labels apart on."""
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    sx, sy = st.scatter_min_px / (x1 - x0), st.scatter_min_px / (y1 - y0)
    boxes = []
    for a in fig.layout.annotations:
        hw, hh = F._label_box_px(a.text, st.font_size)
        cx, cy = (a.ax - x0) * sx, (a.ay - y0) * sy
        boxes.append((cx - hw, cy - hh, cx + hw, cy + hh))
    return boxes


@pytest.mark.parametrize("spread", [1e-3, 0.05, 1.0])
def test_labels_of_a_cluster_of_typed_tokens_never_overlap(st, spread):
    rng = np.random.default_rng(4)
    n_bg, n_typed = 200, 12
    xy = np.concatenate([rng.normal(size=(n_bg, 2)) * 5, rng.normal(size=(n_typed, 2)) * spread])
    tokens = [f"bg{i}" for i in range(n_bg)] + ["The", "␣cat", "␣sat", "␣on", "␣the", "␣mat", ".", "␣and",
                                                 "␣then", "␣it", "␣slept", "␣there"]
    classes = ["other"] * (n_bg + n_typed)
    fig = F.embedding_scatter(xy, tokens=tokens, ids=range(len(xy)), rows=range(len(xy)),
                              frequencies=[1] * len(xy), classes=classes,
                              class_colors=F.class_colors(classes, style=st),
                              highlight=range(n_bg, n_bg + n_typed), title="after", style=st)
    boxes = _boxes_px(fig, st)
    assert len(boxes) == n_typed  # all twelve found a place
    for i, a in enumerate(boxes):
        assert 0 <= a[0] and 0 <= a[1] and a[2] <= st.scatter_min_px and a[3] <= st.scatter_min_px
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_place_labels_gives_up_rather_than_overlapping_and_rejects_bad_input():
    points = np.zeros((30, 2))
    placed = F.place_labels(points, ["a-long-token-label"] * 30, x_range=(-1, 1), y_range=(-1, 1), plot_px=300,
                            font_px=16, marker_px=16)
    assert 0 < sum(c is not None for c in placed) < 30
    with pytest.raises(ValueError, match="2 labels for 30 points"):
        F.place_labels(points, ["a", "b"], x_range=(-1, 1), y_range=(-1, 1), plot_px=300, font_px=16,
                       marker_px=16)
    with pytest.raises(ValueError, match="increasing axis ranges"):
        F.place_labels(points[:1], ["a"], x_range=(1, 1), y_range=(-1, 1), plot_px=300, font_px=16,
                       marker_px=16)


def test_scatter_maps_are_square_whatever_the_shape_of_the_cloud(st):
    inp = _scatter_inputs()
    inp["xy"] = inp["xy"] * np.array([10.0, 0.5])  # a long, flat cloud: used to draw a short, wide map
    fig = F.embedding_scatter(**inp, class_colors=F.class_colors(inp["classes"], style=st), title="t", style=st)
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    assert x1 - x0 == pytest.approx(y1 - y0)
    assert x0 <= inp["xy"][:, 0].min() and inp["xy"][:, 0].max() <= x1
    assert fig.layout.xaxis.autorange is False and fig.layout.yaxis.scaleanchor == "x"


def test_long_titles_wrap_instead_of_running_off_a_phone(st):
    _, fig = _heatmap(style=st)
    title = "tok = wte(ids)  ·  tok.shape = torch.Size([1, 12, 32])"
    fig = F.embedding_heatmap(np.ones((3, 4)), row_labels=["a", "b", "c"], hover=None, title=title, zmax=1.0,
                              style=st)
    lines = fig.layout.title.text.split("<br>")
    assert len(lines) == 2 and lines[0] == "tok = wte(ids)"
    assert all(len(line) <= st.title_chars for line in lines)
    assert F.wrap("a b c", limit=3) == ["a b", "c"]
    assert F.wrap("tok.shape = torch.Size([1, 12, 32])", limit=20) == ["tok.shape =", "torch.Size([1, 12, 32])"]
    assert F.wrap("x · y", limit=80) == ["x · y"]
    assert F.wrap("q·k against distance · torch.Size([64])", limit=22) == ["q·k against distance", "torch.Size([64])"]
    with pytest.raises(ValueError, match="at least one character"):
        F.wrap("x", limit=0)


def test_titles_of_charts_three_to_a_row_wrap_sooner_except_when_presenting(st):
    narrow = F.in_columns(st, 3)
    assert F.in_columns(st, 2) == st
    assert narrow == st if st.presentation else narrow.title_chars == 26 < st.title_chars
    fig = F.similarity_heatmap(np.eye(3), title="sinusoidal · torch.Size([16, 32])", style=narrow)
    assert fig.layout.title.text.count("<br>") == (0 if st.presentation else 1)


def test_maps_keep_their_toolbar_above_so_the_map_takes_the_full_width(st):
    inp = _scatter_inputs()
    fig = F.embedding_scatter(**inp, class_colors=F.class_colors(inp["classes"], style=st), title="t", style=st)
    assert fig.layout.modebar.orientation == "h" and fig.layout.margin.r == fig.layout.margin.l


def test_toolbar_has_a_margin_of_its_own_off_colour_bars(st):
    _, fig = _heatmap(style=st)
    assert fig.layout.modebar.orientation == "v" and fig.layout.margin.r >= 36

"""Plotly figure builders: numpy arrays and plain strings in, `go.Figure` out, sized for a projector.

Every string passed in is plain text and is HTML-escaped here, since Plotly renders a subset of HTML in
labels. Builders do no modelling: callers compute projections, similarities and a shared colour range.
"""
from __future__ import annotations

import functools
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

# Okabe & Ito (2008), reordered so the first few classes are the most distinct under colour blindness;
# without its yellow, which is hard to see on white (worst under a projector). The same in every mode.
_OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
# ColorBrewer RdBu (colour-blind safe), reversed: negative = blue, zero = near white, positive = red.
_RDBU_REVERSED = (
    "#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
    "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f",
)
# Classes that mean "no class": always grey, drawn underneath and listed last.
NEUTRAL_CLASSES = frozenset({"other", "<unk>"})
# One filled shape per class, so colour is never the only cue (classes past the 16th reuse a shape
# with another colour). Circles are kept for the neutral classes, the background of every map.
_SYMBOLS = ("square", "diamond", "triangle-up", "cross", "star", "triangle-down", "x", "pentagon",
            "hexagon", "triangle-left", "star-diamond", "triangle-right", "hourglass", "hexagram",
            "bowtie", "star-square")
_NEUTRAL_SYMBOLS = {"other": "circle", "<unk>": "circle-x"}
_PADDING_HOVER = "padding — not real data"
_MODEBAR_PX = 40  # Plotly's vertical toolbar is ~30 px wide
# ... and 142 px tall (from 2 px below the figure's top) with the five buttons a heatmap keeps: download,
# zoom, pan, reset (ui/charts.py removes the others) and Streamlit's full screen. A heatmap's plot area,
# and so its colour bar, starts below it.
_MODEBAR_TALL_PX = 152
_EMPTY = "\u2014"  # shown for a missing id or row


class LossRecord(Protocol):
    """One point of a loss curve: training.LossPoint, or a training.Progress report during a run."""

    @property
    def step(self) -> int: ...

    @property
    def train_loss(self) -> float: ...

    @property
    def held_out_loss(self) -> float | None: ...


@dataclass(frozen=True)
class FigureStyle:
    """Sizes and colours shared by every figure; hashable so it can key a cache."""

    presentation: bool
    font_family: str
    font_size: int  # body text, legends, axis titles
    tick_size: int  # tick labels (row labels of heatmaps)
    title_size: int
    hover_size: int
    cell_text_size: int  # numbers written inside small heatmaps
    text_color: str
    muted_color: str  # subtitles and notes: still dark enough for a projector
    palette: tuple[str, ...]  # categorical colours, colour-blind safe
    neutral_color: str  # classes in NEUTRAL_CLASSES
    pad_color: str  # padding rows of a heatmap: a grey no data value can take
    diverging: tuple[tuple[float, str], ...]  # THE colour scale for signed values, centred at 0
    marker_size: int
    highlight_size: int
    line_width: float
    outline_color: str  # outline of highlighted points
    row_px: int  # vertical pixels per labelled heatmap row; fewer and labels would collide
    max_plot_px: int  # tallest heatmap plot area before row labels are thinned
    max_cell_text_columns: int  # widest heatmap that still gets numbers in its cells
    max_point_labels: int  # highlighted points labelled with their token text
    scatter_height: int
    scatter_min_px: int  # the smallest plot side at which the labels of highlighted points never overlap
    title_chars: int  # longest title line: longer titles wrap (a phone is ~360 px wide)
    subtitle_chars: int
    line_height: int  # loss and agreement curves


def style(*, presentation: bool = False) -> FigureStyle:
    """Normal (laptop) or presentation (projector, read from the back row) sizes."""
    big = presentation
    return FigureStyle(
        presentation=presentation,
        font_family="'Source Sans Pro', 'DejaVu Sans', Verdana, Arial, sans-serif",
        font_size=22 if big else 16,
        tick_size=20 if big else 15,
        title_size=28 if big else 20,
        hover_size=22 if big else 16,
        cell_text_size=18 if big else 14,
        text_color="#000000" if big else "#1a1a1a",
        muted_color="#333333" if big else "#444444",
        palette=_OKABE_ITO,
        neutral_color="#8c8c8c" if big else "#a6a6a6",
        pad_color="#8c8c8c" if big else "#a6a6a6",
        diverging=tuple(
            (i / (len(_RDBU_REVERSED) - 1), c) for i, c in enumerate(_RDBU_REVERSED)
        ),
        marker_size=11 if big else 8,
        highlight_size=22 if big else 16,
        line_width=4.0 if big else 2.5,
        outline_color="#000000" if big else "#111111",
        row_px=30 if big else 22,
        max_plot_px=1500 if big else 1410,
        max_cell_text_columns=8,  # ~60 px per cell in a 700 px wide figure
        max_point_labels=25 if big else 40,
        scatter_height=940 if big else 720,
        scatter_min_px=560 if big else 400,
        title_chars=40 if big else 36,
        subtitle_chars=52 if big else 40,
        line_height=480 if big else 380,
    )


def in_columns(style: FigureStyle, columns: int) -> FigureStyle:
    """`style` for charts drawn `columns` to a row on a laptop (a third of the page is ~310 px wide):
    titles wrap sooner. Presentation mode stacks such charts, so its style is kept."""
    if columns <= 2 or style.presentation:
        return style
    return replace(style, title_chars=min(style.title_chars, 26))


def shared_zmax(*arrays: np.ndarray) -> float:
    """The largest |value| over all arrays, ignoring NaN: pass it as `zmax` to heatmaps that must compare."""
    biggest = 0.0
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        finite = a[np.isfinite(a)]
        if finite.size:
            biggest = max(biggest, float(np.abs(finite).max()))
    return biggest if biggest > 0 else 1.0


def embedding_heatmap(
    values: np.ndarray,
    *,
    row_labels: Sequence[str] | None = None,
    hover: Sequence[Mapping] | None = None,
    title: str,
    zmax: float,
    style: FigureStyle,
) -> go.Figure:
    """Rows of an embedding (tokens or positions) x dimensions, first row at the top.

    row_labels: token text per row (without the position, which is added: "0 · ␣cat"); None -> positions.
    hover: one mapping per row with token, id (int | None), row (int | None), position (int), pad (bool).
    Rows with pad=True (or, without hover, rows that are all NaN) are drawn as grey padding.
    """
    z = _embedding_values(values, row_labels=row_labels, hover=hover, zmax=zmax)  # (rows, dim)
    n_rows, dim = z.shape
    pad, positions = _padding(z, hover)
    plot_px = min(max(n_rows * style.row_px, 5 * style.row_px), style.max_plot_px)  # room for a colour bar
    rows = _row_axis(row_labels, hover, positions, pad)
    gaps = 1 if n_rows <= 64 and dim <= 48 else 0
    padded = bool(pad.any())
    data = [_values_trace(z, rows, zmax=zmax, gaps=gaps, plot_px=plot_px, style=style)]
    if padded:
        data.append(_padding_trace(pad, rows, dim=dim, gaps=gaps, style=style))
    return _figure(data, _heatmap_layout(rows, n_rows=n_rows, dim=dim, title=title, padded=padded,
                                         plot_px=plot_px, style=style))


def _figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """A figure from plain trace and layout dicts, without Plotly's property-by-property validation:
    building a heatmap through the validating API took 170-250 ms at load ~10 (~50 ms quiet), most of a
    page rerun, and this takes 7.6 ms at the same load. What is built this way is validated by Plotly in tests/test_figures_plotly.py instead."""
    return go.Figure({"data": data, "layout": {**layout, "template": _plotly_white()}}, _validate=False)


@functools.cache
def _plotly_white() -> dict[str, Any]:
    """The "plotly_white" template as Plotly expands the name, cut to the parts a 2-D heatmap or scatter
    reads (no 3-D, polar, map or colour-axis defaults): a quarter of the bytes, copied for every chart."""
    full = pio.templates["plotly_white"].to_plotly_json()
    unused = {"polar", "ternary", "scene", "geo", "coloraxis", "colorscale"}
    return {"layout": {k: v for k, v in full["layout"].items() if k not in unused},
            "data": {k: full["data"][k] for k in ("heatmap", "scatter")}}


@dataclass(frozen=True)
class _RowAxis:
    """The y axis of an embedding heatmap: one category per row (tokens), or the position numbers."""

    y: Sequence  # category names (their hover headers), or np.arange(rows)
    header: str  # how a hover names the row
    ticktext: list[str] | None  # "0 · ␣cat" per row; None: the axis shows position numbers

    @property
    def categorical(self) -> bool:
        return self.ticktext is not None


def _embedding_values(values: np.ndarray, *, row_labels: Sequence[str] | None, hover: Sequence[Mapping] | None,
                      zmax: float) -> np.ndarray:
    """The values as a float64 copy (rows, dim), after checking every argument a caller can get wrong."""
    z = np.array(values, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"Embedding values must be a 2-D (rows, dimensions) array, got shape {z.shape}.")
    n_rows, dim = z.shape
    if n_rows == 0 or dim == 0:
        raise ValueError("There is nothing to draw: type some text so there is at least one token.")
    if not (math.isfinite(zmax) and zmax > 0):
        raise ValueError(f"zmax must be a positive finite number, got {zmax!r}; see shared_zmax().")
    if row_labels is not None and len(row_labels) != n_rows:
        raise ValueError(f"Got {len(row_labels)} row labels for {n_rows} rows.")
    if hover is not None and len(hover) != n_rows:
        raise ValueError(f"Got {len(hover)} hover entries for {n_rows} rows.")
    return z


def _padding(z: np.ndarray, hover: Sequence[Mapping] | None) -> tuple[np.ndarray, list[int]]:
    """(pad (rows,) bool, position of each row); sets padding rows of z to NaN, refuses NaN elsewhere."""
    if hover is not None:
        pad = np.array([bool(h.get("pad", False)) for h in hover])
        positions = [int(h.get("position", i)) for i, h in enumerate(hover)]
    else:
        pad = np.all(np.isnan(z), axis=1)
        positions = list(range(len(z)))
    z[pad] = np.nan
    if not np.all(np.isfinite(z[~pad])):
        raise ValueError("The embedding has NaN or infinite values outside padding rows (training diverged?).")
    return pad, positions


def _row_axis(row_labels: Sequence[str] | None, hover: Sequence[Mapping] | None, positions: list[int],
              pad: np.ndarray) -> _RowAxis:
    if row_labels is None and hover is None:
        return _RowAxis(y=np.arange(len(positions)), header="position %{y}", ticktext=None)
    ticktext = [
        f"{positions[i]} · pad" if pad[i]
        else f"{positions[i]} · {_esc(_short(row_labels[i]))}" if row_labels is not None
        else str(positions[i])
        for i in range(len(positions))
    ]
    headers = [_row_header(ticktext[i], None if hover is None else hover[i], positions[i], pad[i])
               for i in range(len(positions))]
    return _RowAxis(y=_unique(headers), header="%{y}", ticktext=ticktext)


def _values_trace(z: np.ndarray, rows: _RowAxis, *, zmax: float, gaps: int, plot_px: int,
                  style: FigureStyle) -> dict[str, Any]:
    """The embedding itself on the diverging scale, with numbers in the cells when they fit."""
    n_rows, dim = z.shape
    trace = dict(
        type="heatmap",
        z=z.astype(np.float32),
        x=np.arange(dim),
        y=rows.y,
        name="embedding",
        colorscale=[list(stop) for stop in style.diverging],
        zmin=-zmax,
        zmax=zmax,
        zmid=0.0,
        xgap=gaps,
        ygap=gaps,
        hoverongaps=False,
        hovertemplate=f"{rows.header}<br>dimension %{{x}}<br>value %{{z:.4f}}<extra></extra>",
        colorbar=dict(
            title=dict(text="value", font=dict(size=style.font_size)),
            tickfont=dict(size=style.tick_size),
            thickness=22 if style.presentation else 16,
            len=min(1.0, max(0.5, 300 / plot_px)),
            lenmode="fraction",
            y=1.0,
            yanchor="top",
            # a short bar has room for three labels only
            **({"tickvals": [-zmax, 0.0, zmax], "tickformat": ".2~f"} if plot_px < 220 else {}),
        ),
    )
    if n_rows * dim <= 200 and dim <= style.max_cell_text_columns:
        trace.update(texttemplate="%{z:.2f}", textfont=dict(size=style.cell_text_size))
    return trace


def _padding_trace(pad: np.ndarray, rows: _RowAxis, *, dim: int, gaps: int, style: FigureStyle) -> dict[str, Any]:
    """Grey bricks over the padding rows, each one cell spanning every dimension."""
    n_rows = len(pad)
    return dict(
        type="heatmap",
        z=np.where(pad, 1.0, np.nan)[:, None],  # (T, 1)
        x=[-0.5, dim - 0.5],  # cell edges, so the single column covers every dimension
        y=rows.y,
        name="padding",
        colorscale=[[0.0, style.pad_color], [1.0, style.pad_color]],
        zmin=0.0,
        zmax=1.0,
        showscale=False,
        ygap=gaps,
        hoverongaps=False,
        hovertemplate=(f"{rows.header}<extra></extra>" if rows.categorical
                       else f"position %{{y}}<br>{_PADDING_HOVER}<extra></extra>"),
        text=np.where(pad & (n_rows * style.row_px <= style.max_plot_px), "padding", "")[:, None],
        texttemplate="%{text}",
        textfont=dict(size=style.cell_text_size, color=style.text_color),
    )


def _heatmap_layout(rows: _RowAxis, *, n_rows: int, dim: int, title: str, padded: bool, plot_px: int,
                    style: FigureStyle) -> dict[str, Any]:
    """Title, dimensions along the top, rows down the side (labels thinned so they never collide)."""
    layout = _top_axis_layout(style, title, "grey rows are padding: not real data" if padded else None, plot_px)
    # a short title leaves less room above the plot than the toolbar takes: the colour bar would start under it
    below_toolbar = _MODEBAR_TALL_PX - layout["margin"]["t"]
    if below_toolbar > 0:
        layout["margin"] = {**layout["margin"], "t": _MODEBAR_TALL_PX}
        layout["height"] += below_toolbar
    layout["xaxis"] = dict(
        title=dict(text="dimension", font=dict(size=style.font_size)),
        side="top",
        showgrid=False,
        zeroline=False,
        tickfont=dict(size=style.tick_size),
        automargin=True,
        range=[-0.5, dim - 0.5],
        **({"dtick": 1} if dim <= 16 else {}),
    )
    yaxis = dict(autorange="reversed", showgrid=False, zeroline=False, automargin=True,
                 tickfont=dict(size=style.tick_size))
    if rows.categorical:
        stride = max(1, math.ceil(n_rows * style.row_px / plot_px))
        yaxis.update(tickmode="array", tickvals=list(rows.y)[::stride], ticktext=rows.ticktext[::stride],
                     type="category")
    else:
        yaxis.update(title=dict(text="position", font=dict(size=style.font_size)))
    layout["yaxis"] = yaxis
    return layout


def similarity_heatmap(
    matrix: np.ndarray,
    *,
    title: str,
    style: FigureStyle,
) -> go.Figure:
    """Cosine similarity between positions (P, P) on a fixed -1..1 diverging scale, first row on top."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"A similarity matrix must be square and non-empty, got shape {m.shape}.")
    plot_px = 560 if style.presentation else 420
    axis_values = np.arange(m.shape[0])
    trace = dict(
        type="heatmap",
        z=m.astype(np.float32),
        x=axis_values,
        y=axis_values,
        name="cosine similarity",
        colorscale=[list(stop) for stop in style.diverging],
        zmin=-1.0,
        zmax=1.0,
        zmid=0.0,
        hoverongaps=False,
        hovertemplate="position %{y} vs position %{x}<br>cosine similarity %{z:.3f}<extra></extra>",
        colorbar=dict(
            title=dict(text="cosine", font=dict(size=style.font_size),
                       **({"side": "right"} if style.presentation else {})),
            tickfont=dict(size=style.tick_size),
            tickvals=[-1, -0.5, 0, 0.5, 1],
            thickness=22 if style.presentation else 16,
            # presentation: under the map, so the map keeps the width of a narrow column
            **(dict(orientation="h", x=0, xanchor="left", y=-0.03, yanchor="top", len=1.0)
               if style.presentation else {}),
        ),
    )
    layout = _top_axis_layout(style, title, None, plot_px)
    if style.presentation:
        below = 22 + style.tick_size + 40  # the colour bar and its tick labels
        layout["height"] += below
        layout["margin"]["b"] = below
    axis = dict(showgrid=False, zeroline=False, automargin=True, tickfont=dict(size=style.tick_size),
                constrain="domain")
    layout["xaxis"] = dict(**axis, title=dict(text="position", font=dict(size=style.font_size)), side="top")
    layout["yaxis"] = dict(**axis, title=dict(text="position", font=dict(size=style.font_size)),
                           autorange="reversed", scaleanchor="x", scaleratio=1)
    return _figure([trace], layout)


def loss_curve(
    history: Sequence[LossRecord],
    *,
    style: FigureStyle,
    title: str = "Loss during training",
    baseline: float | None = None,
) -> go.Figure:
    """Train loss and held-out loss (only where measured) against the training step, with a subtitle
    saying how each is measured (the two are not measured alike) and why step 0 is above the baseline.

    history: training.LossPoint records, or the training.Progress reports of a run still going.
    baseline: a reference loss drawn dotted, e.g. ln(vocabulary size) = guessing uniformly.
    """
    steps = [int(h.step) for h in history]
    train = [float(h.train_loss) for h in history]
    held = [(int(h.step), float(h.held_out_loss)) for h in history if h.held_out_loss is not None]
    fig = go.Figure()
    if steps:
        fig.add_trace(
            go.Scatter(
                x=steps, y=train, name="train",
                mode="lines+markers" if len(steps) <= 30 else "lines",
                line=dict(color=style.palette[0], width=style.line_width),
                marker=dict(size=style.marker_size),
                customdata=_train_batches(steps),
                hovertemplate="step %{x}<br>train loss %{y:.4f}<br>%{customdata}<extra></extra>",
            )
        )
    if held:
        fig.add_trace(
            go.Scatter(
                x=[s for s, _ in held], y=[v for _, v in held], name="held-out",
                mode="lines+markers",
                line=dict(color=style.palette[1], width=style.line_width, dash="dash"),
                marker=dict(size=style.marker_size + 2, symbol="diamond"),
                hovertemplate="step %{x}<br>held-out loss %{y:.4f}<extra></extra>",
            )
        )
    if baseline is not None:
        fig.add_hline(
            y=baseline, line=dict(color=style.muted_color, width=2, dash="dot"),
            annotation=dict(text="guessing uniformly", font=dict(size=style.font_size,
                                                                  color=style.muted_color)),
            annotation_position="top right",
        )
    if not steps:
        _empty_note(fig, "No training steps yet.", style)
        return _loss_axes(fig, style, title, legend_y=0.8)
    return _loss_axes(fig, style, title, legend_y=0.8,  # legend clear of the baseline label
                      subtitle=_loss_note(steps, train, held, baseline))


# How training.py measures the two curves: a train point is the mean of the batch losses summed since the
# previous point, each computed just before that batch's update (so it trails the model plotted at that
# step); a held-out point is one evaluation after the point's step, on the corpus's end, never trained on.
_TRAIN_NOTE = "train: mean of the batches since the previous point, each scored before its update"
_HELD_NOTE = "held-out: unseen text, scored at the point's step"
_LAGS_NOTE = "so early on train sits above it"
_ABOVE_BASELINE_NOTE = "step 0 is above guessing uniformly: an untrained model's random guesses score worse " \
                       "on average"


def _train_batches(steps: list[int]) -> list[str]:
    """Hover text per train point: which batches its loss is the mean of."""
    spans = []
    for previous, step in zip([0, *steps], steps):
        if step == 0:
            spans.append("the first batch, before any update")
        elif step - previous == 1:
            spans.append(f"the batch of step {step}")
        else:
            spans.append(f"mean of the {step - previous} batches of steps {previous + 1}–{step}")
    return spans


def _loss_note(steps: list[int], train: list[float], held: list[tuple[int, float]],
               baseline: float | None) -> str:
    """The subtitle of a loss curve: only what holds for these numbers."""
    parts = [_TRAIN_NOTE]
    if held:
        parts.append(_HELD_NOTE)
        after_start = [(s, h) for s, h in held if s > 0]
        if after_start and after_start[0][1] < train[steps.index(after_start[0][0])]:
            parts[-1] += ", " + _LAGS_NOTE
    if baseline is not None and steps[0] == 0 and train[0] > baseline:
        parts.append(_ABOVE_BASELINE_NOTE)
    return " · ".join(parts)


def loss_comparison(
    runs: Mapping[str, Sequence[LossRecord]],
    *,
    style: FigureStyle,
    title: str = "Held-out loss: learned vs sinusoidal positions",
) -> go.Figure:
    """Held-out loss (train loss where none was measured) of several runs on one chart."""
    fig = go.Figure()
    for k, (name, history) in enumerate(runs.items()):
        points = [(int(h.step), float(h.train_loss if h.held_out_loss is None else h.held_out_loss))
                  for h in history]
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in points], y=[p[1] for p in points], name=_esc(name),
                mode="lines+markers" if len(points) <= 30 else "lines",
                line=dict(color=style.palette[k % len(style.palette)], width=style.line_width,
                          dash=("solid", "dash", "dot")[k % 3]),
                marker=dict(size=style.marker_size),
                hovertemplate=f"{_esc(name)}<br>step %{{x}}<br>loss %{{y:.4f}}<extra></extra>",
            )
        )
    if not runs:
        _empty_note(fig, "No training runs to compare yet.", style)
    return _loss_axes(fig, style, title, legend_y=1.0)


def _loss_axes(fig: go.Figure, style: FigureStyle, title: str, *, legend_y: float,
               subtitle: str | None = None) -> go.Figure:
    layout = _layout(style, title, subtitle=subtitle)
    subtitle_px = layout["margin"]["t"] - _layout(style, title)["margin"]["t"]
    fig.update_layout(layout, height=style.line_height + subtitle_px)  # the subtitle does not take from the plot
    fig.update_layout(legend=dict(x=1, xanchor="right", y=legend_y, yanchor="top",
                                  bgcolor="rgba(255,255,255,0.8)"))
    fig.update_xaxes(title=dict(text="training step", font=dict(size=style.font_size)),
                     tickfont=dict(size=style.tick_size), automargin=True, rangemode="tozero")
    fig.update_yaxes(title=dict(text="loss (cross-entropy)", font=dict(size=style.font_size)),
                     tickfont=dict(size=style.tick_size), automargin=True, type="linear")
    return fig


def agreement_curve(
    steps: Sequence[int],
    values: Sequence[float],
    *,
    chance: float | None,
    style: FigureStyle,
    title: str = "Do neighbours share a class?",
) -> go.Figure:
    """kNN class agreement (0..1) at each training snapshot, with the chance level dashed."""
    if len(steps) != len(values):
        raise ValueError(f"Got {len(steps)} steps but {len(values)} agreement values.")
    fig = go.Figure()
    if len(steps):
        fig.add_trace(
            go.Scatter(
                x=[int(s) for s in steps], y=[float(v) for v in values], name="agreement",
                mode="lines+markers", cliponaxis=False,
                line=dict(color=style.palette[0], width=style.line_width),
                marker=dict(size=style.marker_size + 2),
                hovertemplate="step %{x}<br>agreement %{y:.1%}<extra></extra>",
            )
        )
    else:
        _empty_note(fig, "No snapshots yet.", style)
    if chance is not None:
        fig.add_hline(
            y=chance, line=dict(color=style.muted_color, width=2, dash="dash"),
            annotation=dict(text="chance", font=dict(size=style.font_size, color=style.muted_color)),
            annotation_position="bottom right",
        )
    fig.update_layout(_layout(style, title), height=style.line_height, showlegend=False)
    fig.update_xaxes(title=dict(text="training step", font=dict(size=style.font_size)),
                     tickfont=dict(size=style.tick_size), automargin=True)
    fig.update_yaxes(title=dict(text="neighbours in the same class", font=dict(size=style.font_size)),
                     tickfont=dict(size=style.tick_size), automargin=True, range=[0, 1],
                     tickformat=".0%")
    return fig


def class_colors(classes: Sequence[str], *, style: FigureStyle) -> dict[str, str]:
    """Colour per class in sorted order (stable across figures and modes); "other" and "<unk>" are grey.
    Each class also gets its own marker shape (see class_symbols), so no two share a colour-shape pair."""
    colours: dict[str, str] = {}
    k = 0
    for cls in sorted(set(classes)):
        if cls in NEUTRAL_CLASSES:
            colours[cls] = style.neutral_color
        else:
            colours[cls] = style.palette[k % len(style.palette)]
            k += 1
    return colours


def embedding_scatter(
    xy: np.ndarray,
    *,
    tokens: Sequence[str],
    ids: Sequence[int | None],
    rows: Sequence[int],
    frequencies: Sequence[int],
    classes: Sequence[str],
    class_colors: Mapping[str, str],
    highlight: Sequence[int] = (),
    title: str,
    style: FigureStyle,
    note: str | None = None,
) -> go.Figure:
    """A 2-D map of token embeddings, one trace per class; `highlight` points are enlarged and labelled."""
    pts = _points(xy)
    n = pts.shape[0]
    for name, seq in (("tokens", tokens), ("ids", ids), ("rows", rows),
                      ("frequencies", frequencies), ("classes", classes)):
        if len(seq) != n:
            raise ValueError(f"Got {len(seq)} {name} for {n} points.")
    _check_classes(classes, class_colors)
    marked = list(dict.fromkeys(int(i) for i in highlight))
    if any(not 0 <= i < n for i in marked):
        raise ValueError(f"Highlighted point indices must be between 0 and {n - 1}.")

    custom = np.empty((n, 5), dtype=object)
    custom[:, 0] = [_esc(t) for t in tokens]
    custom[:, 1] = [_EMPTY if i is None else str(int(i)) for i in ids]
    custom[:, 2] = [str(int(r)) for r in rows]
    custom[:, 3] = [f"{int(f):,}" for f in frequencies]
    custom[:, 4] = [_esc(c) for c in classes]
    hover = ("token <b>%{customdata[0]}</b><br>id %{customdata[1]}<br>row %{customdata[2]}"
             "<br>corpus frequency %{customdata[3]}<br>class %{customdata[4]}<extra></extra>")
    symbols = class_symbols(class_colors)
    cls_arr = np.asarray(classes, dtype=object)
    fig = go.Figure()
    for rank, cls in _trace_order(class_colors, set(classes)):
        members = np.flatnonzero(cls_arr == cls)
        fig.add_trace(
            go.Scatter(
                x=pts[members, 0], y=pts[members, 1], mode="markers", name=_esc(cls),
                legendrank=rank, customdata=custom[members], hovertemplate=hover,
                marker=dict(color=class_colors[cls], symbol=symbols[cls], size=style.marker_size,
                            opacity=0.75, line=dict(width=0.5, color="white")),
            )
        )
    finite = pts[np.all(np.isfinite(pts), axis=1)]
    x_range, y_range = _square_ranges(finite if finite.size else np.zeros((1, 2)))
    if marked:
        idx = np.array(marked)
        fig.add_trace(
            go.Scatter(
                x=pts[idx, 0], y=pts[idx, 1], name="your text", showlegend=False, mode="markers",
                customdata=custom[idx], hovertemplate=hover,
                marker=dict(color=[class_colors[classes[i]] for i in marked],
                            symbol=[symbols[classes[i]] for i in marked], size=style.highlight_size,
                            line=dict(width=3 if style.presentation else 2.5,
                                      color=style.outline_color)),
            )
        )
        labels = [_short(tokens[i]) for i in marked[: style.max_point_labels]]
        placed = place_labels(pts[idx[: len(labels)]], labels, x_range=x_range, y_range=y_range,
                              plot_px=style.scatter_min_px, font_px=style.font_size,
                              marker_px=style.highlight_size)
        for (x, y), label, centre in zip(pts[idx], labels, placed):
            if centre is not None:
                fig.add_annotation(_label_annotation(x, y, label, centre, style))
        shown = sum(c is not None for c in placed)
        extra = "outlined: your text" + ("" if shown == len(marked) else f" ({shown} of {len(marked)} labelled)")
        note = f"{note} · {extra}" if note else extra
    layout = _layout(style, title, subtitle=note)
    # the legend is below the map, so the toolbar goes above it (over the title's right end, which a
    # map's short title leaves free) and the map takes the column's full width
    layout["margin"] = {**layout["margin"], "r": layout["margin"]["l"]}
    layout["modebar"] = dict(orientation="h")
    fig.update_layout(layout, height=style.scatter_height)
    fig.update_layout(_bottom_legend(style))
    _blank_axes(fig)
    fig.update_xaxes(range=x_range, autorange=False)
    fig.update_yaxes(range=y_range, autorange=False)
    return fig


def place_labels(
    points: np.ndarray,
    labels: Sequence[str],
    *,
    x_range: Sequence[float],
    y_range: Sequence[float],
    plot_px: int,
    font_px: int,
    marker_px: int,
) -> list[tuple[float, float] | None]:
    """Centres (data units) for the label of each point, so that no two labels overlap, no label
    covers a labelled point and every label stays inside the plot; None where no such place is left.

    Deterministic and greedy: each label takes the first free candidate on rings around its point,
    nearest first. Boxes are estimated for a square plot of `plot_px` pixels over x_range x y_range;
    on a larger plot every box shrinks about its centre, so labels that were apart stay apart.
    """
    pts = _points(points)
    if len(labels) != pts.shape[0]:
        raise ValueError(f"Got {len(labels)} labels for {pts.shape[0]} points.")
    (x0, x1), (y0, y1) = x_range, y_range
    if not (x1 > x0 and y1 > y0 and plot_px > 0):
        raise ValueError("Label placement needs increasing axis ranges and a positive plot size.")
    px_x, px_y = plot_px / (x1 - x0), plot_px / (y1 - y0)  # pixels per data unit
    gap = 3.0  # px between two labels, and between a label and a marker
    radius = marker_px / 2 + gap
    placed: list[tuple[float, float, float, float]] = []  # (left, bottom, right, top) in px
    at = [((x - x0) * px_x, (y - y0) * px_y) for x, y in pts]  # points in px from the plot's corner
    out: list[tuple[float, float] | None] = []
    for (px, py), label in zip(at, labels):
        half_w, half_h = _label_box_px(label, font_px)
        found = None
        for cx, cy in _label_candidates(px, py, half_w, half_h, radius):
            box = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
            inside = box[0] >= 0 and box[1] >= 0 and box[2] <= plot_px and box[3] <= plot_px
            if (inside and not any(_boxes_meet(box, b, gap) for b in placed)
                    and not any(_box_near_point(box, q, radius) for q in at)):
                found = box
                out.append((x0 + cx / px_x, y0 + cy / px_y))
                break
        if found is None:
            out.append(None)
        else:
            placed.append(found)
    return out


def _label_box_px(label: str, font_px: int) -> tuple[float, float]:
    """Half width and half height of a label's box: a generous estimate (0.62 em per character), plus
    the annotation's border padding."""
    return (0.62 * font_px * max(1, len(label)) + 8) / 2, (1.3 * font_px + 8) / 2


def _label_candidates(px: float, py: float, half_w: float, half_h: float,
                      radius: float) -> list[tuple[float, float]]:
    """Centres on growing rings around (px, py), 16 directions a ring: straight above first, then
    turning both ways towards straight below."""
    out = []
    for ring in range(7):
        step = ring * 2 * half_h
        for a in _LABEL_DIRECTIONS:
            out.append((px + math.cos(a) * (half_w + radius + step), py + math.sin(a) * (half_h + radius + step)))
    return out


_LABEL_DIRECTIONS = tuple(math.radians(90 + sign * 22.5 * j) for j in range(9) for sign in (1, -1)
                          if not (sign == -1 and j in (0, 8)))


def _boxes_meet(a: tuple[float, float, float, float], b: tuple[float, float, float, float], gap: float) -> bool:
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def _box_near_point(box: tuple[float, float, float, float], point: tuple[float, float], radius: float) -> bool:
    nearest_x = min(max(point[0], box[0]), box[2])
    nearest_y = min(max(point[1], box[1]), box[3])
    return (nearest_x - point[0]) ** 2 + (nearest_y - point[1]) ** 2 < radius ** 2


def _label_annotation(x: float, y: float, label: str, centre: tuple[float, float], style: FigureStyle) -> dict:
    """A token's label in a white box at `centre`, with a line to its point (data coordinates)."""
    return dict(
        x=float(x), y=float(y), ax=float(centre[0]), ay=float(centre[1]), xref="x", yref="y", axref="x",
        ayref="y", text=_esc(label), showarrow=True, arrowhead=0, arrowwidth=1.5, arrowcolor=style.text_color,
        standoff=style.highlight_size / 2, font=dict(size=style.font_size, color=style.text_color),
        bgcolor="rgba(255,255,255,0.9)", bordercolor=style.text_color, borderwidth=1, borderpad=2,
        name="label",
    )


def evolution_scatter(
    frames: Sequence[tuple[int, np.ndarray]],
    *,
    tokens: Sequence[str],
    classes: Sequence[str],
    class_colors: Mapping[str, str],
    style: FigureStyle,
    title: str,
) -> go.Figure:
    """Animated map of token embeddings over training snapshots (play/pause and a step slider).

    Each point keeps its identity (trace order and `ids`) so Plotly moves it smoothly between frames;
    the axes cover every frame, so nothing jumps out of view. Align the snapshots before calling.
    """
    if not frames:
        raise ValueError("There are no training snapshots to animate yet.")
    snaps = [(int(step), _points(xy)) for step, xy in frames]
    n = snaps[0][1].shape[0]
    if any(p.shape[0] != n for _, p in snaps):
        raise ValueError("Every snapshot must have the same points in the same order.")
    if len(tokens) != n or len(classes) != n:
        raise ValueError(f"Got {len(tokens)} tokens and {len(classes)} classes for {n} points.")
    _check_classes(classes, class_colors)

    everything = np.concatenate([p for _, p in snaps])
    finite = everything[np.all(np.isfinite(everything), axis=1)]
    if finite.size == 0:
        raise ValueError("The snapshots have no finite coordinates to draw.")
    x_range, y_range = _square_ranges(finite)

    cls_arr = np.asarray(classes, dtype=object)
    symbols = class_symbols(class_colors)
    order = [(rank, cls, np.flatnonzero(cls_arr == cls))
             for rank, cls in _trace_order(class_colors, set(classes))]
    labels = np.array([_esc(t) for t in tokens], dtype=object)
    hover = "token <b>%{customdata[0]}</b><br>class %{customdata[1]}<extra></extra>"

    def traces(pts: np.ndarray) -> list[go.Scatter]:
        return [
            go.Scatter(x=pts[m, 0], y=pts[m, 1], ids=[str(i) for i in m]) for _, _, m in order
        ]

    fig = go.Figure()
    for (rank, cls, members), trace in zip(order, traces(snaps[0][1])):
        trace.update(
            mode="markers", name=_esc(cls), legendrank=rank, hovertemplate=hover,
            customdata=np.stack([labels[members], np.full(len(members), _esc(cls), dtype=object)],
                                axis=1),
            marker=dict(color=class_colors[cls], symbol=symbols[cls], size=style.marker_size,
                        opacity=0.8, line=dict(width=0.5, color="white")),
        )
        fig.add_trace(trace)
    names = [f"frame {k}" for k in range(len(snaps))]
    fig.frames = [
        go.Frame(data=traces(pts), traces=list(range(len(order))), name=name)
        for name, (_, pts) in zip(names, snaps)
    ]
    layout = _layout(style, title, subtitle=f"training step {snaps[0][0]:,}" if len(snaps) == 1
                     else None)
    if len(snaps) > 1:
        layout.update(_animation_controls(names, [s for s, _ in snaps], style))
    fig.update_layout(layout, height=style.scatter_height + 90)
    fig.update_layout(_bottom_legend(style, y=-0.2))
    _blank_axes(fig)
    fig.update_xaxes(range=x_range, autorange=False)
    fig.update_yaxes(range=y_range, autorange=False)
    return fig


def _animation_controls(names: list[str], steps: list[int], style: FigureStyle) -> dict:
    play = dict(frame=dict(duration=700, redraw=False), transition=dict(duration=500, easing="cubic-in-out"),
                fromcurrent=True, mode="immediate")
    jump = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=300), mode="immediate")
    return dict(
        updatemenus=[dict(
            type="buttons", direction="left", showactive=False, x=0, xanchor="left", y=-0.02,
            yanchor="top", pad=dict(t=10, r=10), font=dict(size=style.font_size),
            buttons=[
                dict(label="▶ play", method="animate", args=[None, play]),
                dict(label="❚❚ pause", method="animate",
                     args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate",
                                        transition=dict(duration=0))]),
            ],
        )],
        sliders=[dict(
            active=0, x=0.3, len=0.7, y=-0.02, yanchor="top", pad=dict(t=10),
            font=dict(size=style.tick_size),
            # label at the right end: at the left it ran under the play/pause buttons
            currentvalue=dict(prefix="training step ", xanchor="right", font=dict(size=style.font_size)),
            steps=[dict(method="animate", label=f"{step:,}", args=[[name], jump])
                   for name, step in zip(names, steps)],
        )],
    )


def _layout(style: FigureStyle, title: str, *, subtitle: str | None = None, above_plot_px: int = 0) -> dict:
    """Shared layout. The title sits at the top of the figure and the top margin is computed here:
    Plotly's title automargin ignores top x axes and equal-aspect plots that shrink their domain."""
    title_lines = wrap(title, limit=style.title_chars)
    title_spec: dict = dict(text="<br>".join(_esc(line) for line in title_lines), x=0, xanchor="left",
                            xref="container", yref="container", y=1, yanchor="top",
                            # Plotly puts the last line of a wrapped title at the top: push the first one down
                            pad=dict(t=8 + round((len(title_lines) - 1) * style.title_size * 1.3), l=12),
                            font=dict(size=style.title_size, color=style.text_color))
    sub_lines = wrap(subtitle, limit=style.subtitle_chars) if subtitle else []
    if sub_lines:
        title_spec["subtitle"] = dict(text="<br>".join(_esc(line) for line in sub_lines),
                                      font=dict(size=style.font_size, color=style.muted_color))
    return dict(
        template="plotly_white",
        title=title_spec,
        font=dict(family=style.font_family, size=style.font_size, color=style.text_color),
        # the right margin keeps Plotly's vertical toolbar off colour bars and legends
        margin=dict(l=10, r=_MODEBAR_PX, t=_title_px(style, len(title_lines), len(sub_lines)) + above_plot_px,
                    b=10),
        hoverlabel=dict(font=dict(size=style.hover_size, family=style.font_family),
                        bgcolor="white", bordercolor=style.text_color),
        legend=dict(font=dict(size=style.font_size)),
        modebar=dict(orientation="v"),  # down the right edge, off the titles that carry the shapes
    )


def _title_px(style: FigureStyle, title_lines: int, subtitle_lines: int) -> int:
    extra_title = round((title_lines - 1) * style.title_size * 1.3)
    subtitle = style.font_size + 24 + round((subtitle_lines - 1) * style.font_size * 1.3) if subtitle_lines else 0
    return style.title_size + 22 + extra_title + subtitle


def _bracketed_words(text: str) -> list[str]:
    """Words split at spaces, except spaces inside (...) or [...]."""
    words: list[str] = []
    depth = 0
    for word in text.split():
        if depth > 0:
            words[-1] += " " + word
        else:
            words.append(word)
        depth += word.count("(") + word.count("[") - word.count(")") - word.count("]")
    return words


def wrap(text: str, *, limit: int) -> list[str]:
    """Lines of at most `limit` characters (a longer word stays whole): Plotly never wraps a title,
    it cuts it at the chart's edge. Breaks between " · "-separated parts first, then between words,
    never inside brackets ("torch.Size([1, 12, 32])" stays whole)."""
    if limit < 1:
        raise ValueError(f"A line must hold at least one character, got limit={limit}.")
    lines: list[str] = []
    for part in (p.strip() for p in re.split(r"\s·\s", str(text))):  # not "q·k"
        if not part:
            continue
        if lines and len(lines[-1]) + 3 + len(part) <= limit:
            lines[-1] += " · " + part
            continue
        line = ""
        for word in _bracketed_words(part):
            if line and len(line) + 1 + len(word) > limit:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return lines or [""]


def _bottom_legend(style: FigureStyle, *, y: float = -0.02) -> dict:
    return dict(legend=dict(orientation="h", x=0, xanchor="left", y=y, yanchor="top",
                            itemsizing="constant", font=dict(size=style.font_size)))


def _blank_axes(fig: go.Figure) -> None:
    """2-D projections have no units: no ticks or grid, equal aspect so distances are honest."""
    common = dict(showticklabels=False, showgrid=False, zeroline=False, title=None, showline=True,
                  mirror=True, linecolor="#d0d0d0", ticks="")
    fig.update_xaxes(**common, constrain="domain")
    fig.update_yaxes(**common, scaleanchor="x", scaleratio=1, constrain="domain")


def _top_axis_layout(style: FigureStyle, title: str, subtitle: str | None, plot_px: int) -> dict[str, Any]:
    """Title, then the x axis (ticks above the plot), then a plot area of plot_px pixels."""
    axis_px = style.tick_size + style.font_size + 26
    layout = _layout(style, title, subtitle=subtitle, above_plot_px=axis_px)
    return {**layout, "height": plot_px + layout["margin"]["t"] + layout["margin"]["b"]}


def _row_header(label: str, hover: Mapping | None, position: int, pad: bool) -> str:
    """The hover text for one heatmap row; also its category name on the y axis. `label` is escaped."""
    if pad:
        return f"position {position}<br>{_PADDING_HOVER}"
    if hover is None:
        return f"<b>{label}</b>"
    token_id, row = hover.get("id"), hover.get("row")
    return (f"token <b>{_esc(hover.get('token', ''))}</b><br>"
            f"id {_EMPTY if token_id is None else int(token_id)} · "
            f"row {_EMPTY if row is None else int(row)}<br>position {position}")


def _unique(names: Sequence[str]) -> list[str]:
    """Category names must be unique or Plotly merges the rows: pad repeats with zero-width spaces."""
    seen: set[str] = set()
    out = []
    for name in names:
        while name in seen:
            name += "\u200b"
        seen.add(name)
        out.append(name)
    return out


def _esc(text: object) -> str:
    """Plain text -> text Plotly shows literally (its labels understand a subset of HTML, and $..$ TeX)."""
    return html.escape(str(text), quote=True).replace("$", "&#36;")


def _short(text: str, limit: int = 18) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _points(xy: np.ndarray) -> np.ndarray:
    pts = np.asarray(xy, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"Points must be an (N, 2) array, got shape {pts.shape}.")
    return pts


def _check_classes(classes: Sequence[str], colours: Mapping[str, str]) -> None:
    missing = sorted(set(classes) - set(colours))
    if missing:
        raise ValueError(f"No colour for classes {missing}; build class_colors() from every class shown.")


def class_symbols(colours: Mapping[str, str]) -> dict[str, str]:
    """Marker shape per class of a class_colors() mapping: its own shape for each coloured class, in the
    same order as the colours, so every class has a colour-shape pair of its own in every mode."""
    symbols = {}
    k = 0
    for cls in colours:
        if cls in NEUTRAL_CLASSES:
            symbols[cls] = _NEUTRAL_SYMBOLS[cls]
        else:
            symbols[cls] = _SYMBOLS[k % len(_SYMBOLS)]
            k += 1
    return symbols


def _trace_order(colours: Mapping[str, str], present: set[str]) -> list[tuple[int, str]]:
    """(legend rank, class): neutral classes first so coloured points are drawn over them, listed last."""
    ranked = [(k + 1, cls) for k, cls in enumerate(colours) if cls in present]
    neutral = [(1000 + r, c) for r, c in ranked if c in NEUTRAL_CLASSES]
    return neutral + [(r, c) for r, c in ranked if c not in NEUTRAL_CLASSES]


def _square_ranges(pts: np.ndarray) -> tuple[list[float], list[float]]:
    """Equal-span x and y ranges covering all points with a margin, for a fixed animated view."""
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2
    half = (float((hi - lo).max()) / 2 or 1.0) * 1.08  # a single point: a unit square around it
    return ([float(centre[0] - half), float(centre[0] + half)],
            [float(centre[1] - half), float(centre[1] + half)])


def _empty_note(fig: go.Figure, text: str, style: FigureStyle) -> None:
    fig.add_annotation(text=_esc(text), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=style.font_size, color=style.muted_color))

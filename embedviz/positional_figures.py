"""Plotly figures of the positional schemes: RoPE's rotations, frequencies and decay, ALiBi's biases and
slopes, the causal mask alone, and each scheme's loss by position past P. Arrays in (computed by
embedviz.positional and embedviz.evaluation), `go.Figure` out; the look, fonts and colour-blind-safe
colours are figures.py's.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from embedviz.figures import FigureStyle, _esc, _layout

if TYPE_CHECKING:  # only the type: this module draws arrays and must not need torch
    from embedviz.evaluation import LengthEvaluation

# Viridis: sequential and colour-blind safe; ALiBi biases are all <= 0, so no diverging scale is needed.
_SEQUENTIAL = "Viridis"


def shape_text(shape: Sequence[int]) -> str:
    """A shape as torch prints it, e.g. torch.Size([16, 32]), without importing torch."""
    return f"torch.Size([{', '.join(str(int(n)) for n in shape)}])"


def rope_rotation(points: np.ndarray, *, pair: int, theta: float, angles_shape: Sequence[int],
                  style: FigureStyle) -> go.Figure:
    """Where RoPE takes the unit vector of one 2-D pair at positions 0..T-1: points (T, 2) on a circle.

    theta: the pair's angle per position (radians); angles_shape: shape of the full angle table (T, hs/2).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise ValueError(f"Points must be a (positions, 2) array, got shape {pts.shape}.")
    T = len(pts)
    circle = np.linspace(0, 2 * np.pi, 181)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.cos(circle), y=np.sin(circle), mode="lines", name="unit circle",
                             line=dict(color=style.neutral_color, width=1), hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(
        x=pts[:, 0], y=pts[:, 1], mode="lines+markers+text" if T <= 16 else "lines+markers",
        name=f"pair {pair}", text=[str(m) for m in range(T)], textposition="top right",
        textfont=dict(size=style.tick_size),
        line=dict(color=style.palette[0], width=style.line_width),
        marker=dict(size=style.marker_size, color=np.arange(T), colorscale=_SEQUENTIAL,
                    colorbar=dict(title=dict(text="position m"))),
        customdata=np.degrees(np.arange(T) * theta) % 360,
        hovertemplate="position %{text}<br>angle %{customdata:.1f}°<br>(%{x:.3f}, %{y:.3f})<extra></extra>",
    ))
    title = (f"RoPE turns pair {pair} (dims {2 * pair}, {2 * pair + 1}) by θ = {theta:.4g} rad per position; "
             f"angles {shape_text(angles_shape)}")
    fig.update_layout(_layout(style, title), height=style.scatter_height, showlegend=False)
    fig.update_xaxes(range=[-1.25, 1.25], title=dict(text=f"dimension {2 * pair}"), zeroline=True)
    fig.update_yaxes(range=[-1.25, 1.25], title=dict(text=f"dimension {2 * pair + 1}"), zeroline=True,
                     scaleanchor="x", scaleratio=1)
    return fig


def rope_frequency_schedule(theta: np.ndarray, *, base: float, style: FigureStyle) -> go.Figure:
    """θ_i = base^(-2i/hs) against pair i (log scale), with each pair's wavelength 2π/θ_i in the hover."""
    th = np.asarray(theta, dtype=np.float64)
    if th.ndim != 1 or len(th) == 0 or not np.all(th > 0):
        raise ValueError("theta must be a non-empty 1-D array of positive angles per position.")
    hs = 2 * len(th)
    fig = go.Figure(go.Scatter(
        x=np.arange(len(th)), y=th, mode="lines+markers", name="θ_i",
        line=dict(color=style.palette[0], width=style.line_width), marker=dict(size=style.marker_size),
        customdata=2 * np.pi / th,
        hovertemplate="pair %{x}<br>θ %{y:.3g} rad per position<br>one turn every %{customdata:.1f} "
                      "positions<extra></extra>",
    ))
    title = f"RoPE frequencies θ_i = {base:,.0f}^(−2i/{hs}); θ {shape_text(th.shape)}"
    fig.update_layout(_layout(style, title), height=style.line_height, showlegend=False)
    fig.update_xaxes(title=dict(text="pair i"), dtick=1 if len(th) <= 16 else None)
    fig.update_yaxes(title=dict(text="θ_i (radians per position)"), type="log")
    return fig


def rope_decay(scores: np.ndarray, *, head_dim: int, base: float, trained_positions: int | None = None,
               style: FigureStyle) -> go.Figure:
    """q·k after RoPE for q = k = all ones against the distance m − n = 0..D (scores (D+1,))."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1 or len(s) == 0:
        raise ValueError("scores must be a non-empty 1-D array, one per distance 0, 1, 2, ...")
    fig = go.Figure(go.Scatter(
        x=np.arange(len(s)), y=s, mode="lines+markers" if len(s) <= 64 else "lines", name="q·k",
        line=dict(color=style.palette[0], width=style.line_width), marker=dict(size=style.marker_size),
        hovertemplate="distance %{x}<br>q·k %{y:.3f}<extra></extra>",
    ))
    if trained_positions is not None and trained_positions < len(s):
        fig.add_vline(x=trained_positions - 1, line=dict(color=style.muted_color, width=2, dash="dot"),
                      annotation=dict(text="longest distance in training",
                                      font=dict(size=style.font_size, color=style.muted_color)))
    title = (f"RoPE: q·k against distance for q = k = all ones (hs = {head_dim}, base {base:,.0f}); "
             f"{shape_text(s.shape)}")
    fig.update_layout(_layout(style, title), height=style.line_height, showlegend=False)
    fig.update_xaxes(title=dict(text="relative distance m − n"), rangemode="tozero")
    fig.update_yaxes(title=dict(text="q·k (the attention logit before 1/√hs)"))
    return fig


def alibi_bias_heatmaps(bias: np.ndarray, *, heads: Sequence[int], slopes: np.ndarray,
                        style: FigureStyle) -> go.Figure:
    """The ALiBi bias (nh, T, T) of a few heads side by side, one shared colour scale; masked cells blank."""
    b = np.asarray(bias, dtype=np.float64)
    if b.ndim != 3 or b.shape[1] != b.shape[2]:
        raise ValueError(f"The bias must be an (heads, T, T) array, got shape {b.shape}.")
    if not heads or any(not 0 <= h < b.shape[0] for h in heads):
        raise ValueError(f"Pick heads between 0 and {b.shape[0] - 1}.")
    shown = np.where(np.isfinite(b[list(heads)]), b[list(heads)], np.nan)  # (k, T, T): -inf -> blank
    zmin = float(np.nanmin(shown)) if np.isfinite(shown).any() else -1.0
    T = b.shape[1]
    fig = make_subplots(rows=1, cols=len(heads), horizontal_spacing=0.04,
                        subplot_titles=[f"head {h + 1}: m = {_slope_text(float(slopes[h]))}" for h in heads])
    for c, z in enumerate(shown, start=1):
        fig.add_trace(go.Heatmap(
            z=z, x=np.arange(T), y=np.arange(T), coloraxis="coloraxis", hoverongaps=False,
            name=f"head {heads[c - 1] + 1}",
            hovertemplate="query %{y}, key %{x}<br>bias %{z:.3f}<extra></extra>",
        ), row=1, col=c)
        fig.update_yaxes(autorange="reversed", row=1, col=c, showticklabels=c == 1,
                         title=dict(text="query position i") if c == 1 else None)
        fig.update_xaxes(row=1, col=c, title=dict(text="key position j"), constrain="domain")
    # short enough for one line: a wrapped title ran into the subplot titles (the formula is in the page text)
    title = f"ALiBi bias · {shape_text(b.shape)}"
    fig.update_layout(_layout(style, title), height=style.line_height + 60,
                      coloraxis=dict(colorscale=_SEQUENTIAL, cmin=zmin, cmax=0.0,
                                     colorbar=dict(title=dict(text="bias"))))
    fig.update_annotations(font=dict(size=style.font_size))
    return fig


def alibi_slope_chart(slopes: np.ndarray, *, style: FigureStyle) -> go.Figure:
    """One bar per head: its slope m (log scale), labelled 1/2, 1/4, ... where that is exact."""
    m = np.asarray(slopes, dtype=np.float64)
    if m.ndim != 1 or len(m) == 0 or not np.all(m > 0):
        raise ValueError("slopes must be a non-empty 1-D array of positive numbers.")
    labels = [_slope_text(v) for v in m]
    fig = go.Figure(go.Bar(
        x=[f"head {h + 1}" for h in range(len(m))], y=m, text=labels, textposition="outside",
        marker=dict(color=style.palette[0]), name="slope",
        hovertemplate="%{x}<br>slope m = %{text} (%{y:.5f})<extra></extra>",
    ))
    title = f"ALiBi slopes m · {shape_text(m.shape)}"
    fig.update_layout(_layout(style, title), height=style.line_height, showlegend=False)
    fig.update_yaxes(type="log", title=dict(text="slope m (bias per token of distance)"))
    return fig


def causal_mask_heatmap(mask: np.ndarray, *, style: FigureStyle) -> go.Figure:
    """The (T, T) causal mask, True where query i may attend to key j: all "none" (NoPE) has."""
    allowed = np.asarray(mask, dtype=bool)
    if allowed.ndim != 2 or allowed.shape[0] != allowed.shape[1] or allowed.size == 0:
        raise ValueError(f"The mask must be a square (T, T) array, got shape {allowed.shape}.")
    T = allowed.shape[0]
    fig = go.Figure(go.Heatmap(
        z=allowed.astype(np.float32), x=np.arange(T), y=np.arange(T), zmin=0.0, zmax=1.0,
        colorscale=[[0.0, "#ffffff"], [0.5, "#ffffff"], [0.5, style.palette[0]], [1.0, style.palette[0]]],
        showscale=False, xgap=1 if T <= 64 else 0, ygap=1 if T <= 64 else 0, name="causal mask",
        customdata=np.where(allowed, "may attend", "masked"),
        hovertemplate="query %{y}, key %{x}: %{customdata}<extra></extra>",
    ))
    title = (f"No positions: the causal mask alone (query i sees keys j ≤ i, i+1 of them); "
             f"mask {shape_text(allowed.shape)}")
    fig.update_layout(_layout(style, title), height=style.line_height + 60)
    fig.update_xaxes(title=dict(text="key position j"), side="top", constrain="domain")
    fig.update_yaxes(title=dict(text="query position i"), autorange="reversed", scaleanchor="x")
    return fig


def loss_by_position(evaluations: Sequence[LengthEvaluation], *, style: FigureStyle) -> go.Figure:
    """Held-out loss at each position of the longest windows, one line per scheme, a line at P.

    Positions with no number (a learned table past P) are left out, not drawn as gaps filled by
    guesses; the chart says so in an annotation where that scheme's line stops.
    """
    if not evaluations:
        raise ValueError("There are no evaluations to draw; evaluate at least one model.")
    P = evaluations[0].trained_positions
    if any(e.trained_positions != P for e in evaluations):
        raise ValueError("Draw models trained on the same context P together.")
    L = max(e.lengths[-1] for e in evaluations)
    fig = go.Figure()
    for k, e in enumerate(evaluations):
        loss = e.loss_by_position[e.lengths[-1]]  # (length,), NaN where nothing was computed
        known = np.flatnonzero(np.isfinite(loss))
        fig.add_trace(go.Scatter(
            x=known, y=loss[known], name=_esc(e.positional), mode="lines",
            line=dict(color=style.palette[k % len(style.palette)], width=style.line_width,
                      dash=("solid", "dash", "dot", "dashdot", "longdash")[k % 5]),
            hovertemplate=f"{_esc(e.positional)}<br>position %{{x}}<br>loss %{{y:.3f}}<extra></extra>",
        ))
        if known.size < loss.size:
            fig.add_annotation(x=known[-1] if known.size else 0, y=float(loss[known[-1]]) if known.size else 0,
                               text=f"{_esc(e.positional)}: no rows past P", showarrow=True, arrowhead=2,
                               ax=60, ay=-36, xanchor="left",
                               font=dict(size=style.font_size, color=style.palette[k % len(style.palette)]))
    fig.add_vline(x=P - 0.5, line=dict(color=style.muted_color, width=2, dash="dot"),
                  annotation=dict(text=f"P = {P}: trained up to here", yanchor="bottom",
                                  font=dict(size=style.font_size, color=style.muted_color)))
    title = f"Held-out loss by position, trained on P = {P}; {shape_text((L,))} per scheme"
    fig.update_layout(_layout(style, title), height=style.line_height + 60)
    fig.update_layout(legend=dict(x=1, xanchor="right", y=1, yanchor="top", bgcolor="rgba(255,255,255,0.8)"))
    fig.update_xaxes(title=dict(text=f"position in a {L}-token window (0 = first token)"), range=[-0.5, L - 0.5])
    fig.update_yaxes(title=dict(text="next-token loss (cross-entropy)"))
    return fig


def _slope_text(m: float) -> str:
    inverse = 1.0 / m
    return f"1/{round(inverse)}" if math.isclose(inverse, round(inverse), rel_tol=1e-6) else f"{m:.4g}"

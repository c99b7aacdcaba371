"""Figures built from plain dicts skip Plotly's validation at run time (figures._figure): here Plotly
validates each kind, in every style, and must find nothing to change."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from embedviz import figures

RNG = np.random.default_rng(0)
PADDED = RNG.standard_normal((6, 8))
PADDED[4:] = np.nan


def builds(style: figures.FigureStyle) -> dict[str, go.Figure]:
    hover = [dict(token=f"w{i}", id=i if i % 2 else None, row=i, position=i, pad=i >= 4) for i in range(6)]
    return {
        "tokens": figures.embedding_heatmap(RNG.standard_normal((12, 32)), row_labels=[f"<t{i}>$" for i in range(12)],
                                            title="tok = wte(ids) · tok.shape = torch.Size([1, 12, 32])", zmax=4,
                                            style=style),
        "padded, with hover": figures.embedding_heatmap(PADDED, row_labels=[f"w{i}" for i in range(6)], hover=hover,
                                                        title="x = tok + pos", zmax=3, style=style),
        "positions, numbers in cells": figures.embedding_heatmap(RNG.standard_normal((4, 5)), title="pos", zmax=2,
                                                                 style=style),
        "large": figures.embedding_heatmap(RNG.standard_normal((120, 100)), row_labels=[str(i) for i in range(120)],
                                           title="big", zmax=5, style=style),
        "similarity": figures.similarity_heatmap(RNG.uniform(-1, 1, (10, 10)), title="cosine · (10, 10)",
                                                 style=style),
    }


@pytest.mark.parametrize("presentation", [False, True])
def test_plotly_validates_every_dict_built_figure_without_changing_it(presentation):
    for name, fig in builds(figures.style(presentation=presentation)).items():
        spec = fig.to_dict()
        validated = go.Figure(spec)  # raises ValueError on any property Plotly does not know or accept
        assert json.loads(pio.to_json(validated, validate=False)) == json.loads(pio.to_json(fig, validate=False)), name


def test_an_invalid_property_would_be_caught():
    fig = figures.embedding_heatmap(np.ones((2, 2)), title="t", zmax=1, style=figures.style())
    spec = fig.to_dict()
    spec["data"][0]["colour"] = "red"  # British spelling: not a Plotly property
    with pytest.raises(ValueError, match="colour"):
        go.Figure(spec)

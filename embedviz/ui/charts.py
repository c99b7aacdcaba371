"""Every Plotly chart of the page is drawn through show(): one toolbar everywhere, whose camera button
saves the chart for a slide (1920 x 1080) as PNG or SVG, drawn by the browser from the live chart."""
from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from embedviz.figures import FigureStyle
from embedviz.ui import loaders

FORMATS = ("png", "svg")
FORMAT_KEY = "chart_format"  # session state: the format the camera button saves in
SLIDE_PX = (1920, 1080)  # a full-HD slide
# Selection tools do nothing on these charts; fewer buttons keep the vertical toolbar short.
_REMOVED_BUTTONS = ("select2d", "lasso2d", "autoScale2d", "zoomIn2d", "zoomOut2d")


def config(*, image_format: str, filename: str) -> dict[str, Any]:
    """Plotly's config for one chart: its download is `filename`.<image_format> at slide size."""
    if image_format not in FORMATS:
        raise ValueError(f"Charts can be saved as {' or '.join(FORMATS)}, not {image_format!r}.")
    width, height = SLIDE_PX
    return {
        "displaylogo": False,
        "modeBarButtonsToRemove": list(_REMOVED_BUTTONS),
        "toImageButtonOptions": {"format": image_format, "filename": filename, "width": width,
                                 "height": height, "scale": 1},
    }


def show(fig: go.Figure, *, key: str, where: Any = None) -> None:
    """Draw `fig` in `where` (a column or container; the page by default) with the shared toolbar."""
    image_format = st.session_state.get(FORMAT_KEY, FORMATS[0])
    (where or st).plotly_chart(fig, key=key, theme=None,
                               config=config(image_format=image_format, filename=f"embedviz-{key}"))


def format_control() -> str:
    """The choice of PNG (slides, documents) or SVG (sharp at any size, editable) for chart downloads."""
    return st.radio("Save charts (camera button) as", FORMATS, key=FORMAT_KEY, horizontal=True,
                    format_func=str.upper,
                    help="Each chart's toolbar has a camera button: it saves the chart at 1920 × 1080, "
                         "the size of a full-HD slide.")


def show_built(builder: Callable[..., go.Figure], /, *args: Any, key: str, where: Any = None, **kwargs: Any) -> None:
    """show(builder(*args, **kwargs)), the figure built once per distinct arguments and shared by every
    session: a rerun that changes something else (the typed text, a slider) does not rebuild it."""
    show(_built(builder, args, kwargs), key=key, where=where)


# a builder is known by its name: figures' functions are module-level and pure; a style by its own hash
# (a frozen dataclass: Streamlit's field-by-field walk of it took ~0.7 ms per chart and rerun)
_HASH = {**loaders.HASH, types.FunctionType: lambda f: f"{f.__module__}.{f.__qualname__}", FigureStyle: hash}


@st.cache_resource(show_spinner=False, max_entries=256, hash_funcs=_HASH)
def _built(builder: Callable[..., go.Figure], args: tuple, kwargs: dict[str, Any]) -> go.Figure:
    # never changed once built: plotly_chart sends a copy (fig.to_dict())
    return builder(*args, **kwargs)

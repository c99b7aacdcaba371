"""The whole page, in order: settings, the two tabs, the share link, then the server's warm-up."""
from __future__ import annotations

# Plotly and Streamlit use pandas if sys.modules has it, without importing it; imported lazily by a
# warm-up thread or another session, a half-initialised pandas broke a chart (seen with 10 visitors
# on a fresh server). Importing it before any chart is drawn closes that window.
import pandas  # noqa: F401
import streamlit as st

from embedviz import figures
from embedviz.config import limits
from embedviz.ui import explorer_tab, loaders, sidebar, state, text, training_tab


TABS = ("1 · Embeddings", "2 · Training")


def main() -> None:
    st.set_page_config(page_title="embedviz: how GPT turns text into vectors", page_icon="🔢",
                       layout="wide")
    lim = limits()
    state.init(lim)
    sel = sidebar.controls(lim)
    style = figures.style(presentation=st.session_state["presentation"])
    st.markdown(text.CHIP_CSS + (text.PRESENTATION_CSS if style.presentation else ""), unsafe_allow_html=True)
    st.title(text.TITLE)
    st.caption(text.SUBTITLE)
    # only the open tab runs (a tab change reruns the page): a change in one does not redraw the other
    tab_embed, tab_train = st.tabs(TABS, key="tab", on_change="rerun")
    if tab_embed.open:
        with tab_embed:
            batch = explorer_tab.render(sel, lim, style)
    else:
        batch = explorer_tab.batch_of(sel, lim)
    if tab_train.open:
        with tab_train:
            training_tab.render(sel, batch, lim, style)
    else:
        training_tab.background(sel, lim)
    state.share_link()
    loaders.warm_up()  # after the first page is drawn, so the first visitor does not wait for it

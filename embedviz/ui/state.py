"""Session state: the defaults, the two presets, the settings a link carries in and the link out."""
from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from embedviz import corpus as corpora
from embedviz import share
from embedviz.config import POSITIONAL_KINDS, EmbeddingConfig, Limits, ModelConfig, TrainConfig
from embedviz.ui import text

TEXTBOOK = {"mode": "Token ids", "ids": "[[5, 20, 33, 2]]", "vocab_size": 100, "dim": 16,
            "positions": 10, "seed": 0}
CLASSROOM = {"mode": "Sentences", "text": corpora.CLASSROOM_SENTENCE, "vocab_size": EmbeddingConfig.vocab_size,
             "dim": EmbeddingConfig.dim, "positions": EmbeddingConfig.positions, "seed": 0}
DEFAULTS = {"encoding": "cl100k_base", "corpus": "toy", "ids": TEXTBOOK["ids"], "presentation": False,
            "show_wpe": False, "steps": TrainConfig.steps, "batch_size": TrainConfig.batch_size,
            "learning_rate": TrainConfig.learning_rate, "n_layer": ModelConfig.n_layer,
            "n_head": ModelConfig.n_head, "positional": ModelConfig.positional, "trained": False,
            "rope_base": ModelConfig.rope_base, "compare_kinds": list(POSITIONAL_KINDS), "scheme_pictures": "",
            "trained_sentence": False, "cos_a": 0, "cos_b": 1, **CLASSROOM}


# Widgets of a tab that is not drawn (tabs run lazily) would lose their values at the end of the run:
# Streamlit drops the state of widgets a run did not draw, unless the script wrote it.
KEPT = (*DEFAULTS, "show_code", "sentence", "neighbour_token", "show_evolution")


def init(lim: Limits) -> None:
    """Defaults, then (once per session) the settings carried by the link that opened the page."""
    first = "_started" not in st.session_state
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    for key in KEPT:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    if first:
        st.session_state["_started"] = True
        shared, ignored = share.from_query(st.query_params.to_dict(), lim)
        st.session_state["_autotrain"] = shared.pop("trained", False)
        st.session_state.update(shared)
        if ignored:  # the values are the link's, shown as typed: a link cannot format the page
            st.toast("Ignored link settings that are not valid here: " + text.literal(", ".join(ignored)))


def apply_preset(preset: dict) -> None:
    st.session_state.update(preset)


def share_link() -> None:
    """Keep the address bar in step with the settings and offer the link to copy."""
    params, left_out = share.to_query(st.session_state, DEFAULTS)
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)
    base = (st.context.url or "http://localhost:8501/").split("?")[0]
    box = st.sidebar.container(key="share")
    box.markdown("### Share this view")
    box.code(base + ("?" + urlencode(params) if params else ""), language=None, wrap_lines=True)
    trained = " and the same trained model" if params.get(share.FIELDS["trained"].param) == "1" else ""
    box.caption(f"Copy the link (button at its right): it opens this exact view, the same numbers{trained}."
                + (" Not included: " + "; ".join(left_out) if left_out else ""))

"""Tab 1's last part: the typed sentence inside the trained model. wte(ids), the position rows and x
before and after training on one colour scale, the cosine similarity of its token vectors, and the code
that prints the same numbers from the downloaded safetensors file."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from embedviz import explorer, export, figures, jobs, neighbours, snippet, training
from embedviz.figures import FigureStyle
from embedviz.positional_figures import shape_text
from embedviz.ui import charts, runs
from embedviz.ui.sidebar import Selection

MODEL_FILE = "embedviz-model.safetensors"


@dataclass(frozen=True)
class SentenceValues:
    """One sentence (no padding) in the model before and after training; pos is None for schemes
    that add nothing to x (then x is tok)."""

    rows: np.ndarray  # (T,) table rows
    labels: tuple[str, ...]
    hover: tuple[dict, ...]
    tok: tuple[np.ndarray, np.ndarray]  # (T, d) before, after
    pos: tuple[np.ndarray, np.ndarray] | None  # (T, d) before, after
    x: tuple[np.ndarray, np.ndarray]  # (T, d) before, after


def sentence_values(result: training.TrainResult, batch: explorer.Batch, b: int) -> SentenceValues:
    """Sentence `b` of the batch looked up in the first and the last snapshot of a training run."""
    sentence = batch.sentences[b]
    rows = batch.rows[b, batch.mask[b]]  # (T,)
    T = len(rows)
    first, last = result.snapshots[0], result.snapshots[-1]
    tok = (first.wte[rows], last.wte[rows])  # (T, d) each
    pos = None if last.wpe is None else (first.wpe[:T], last.wpe[:T])  # (T, d) each
    x = tok if pos is None else (tok[0] + pos[0], tok[1] + pos[1])  # (T, d) each
    hover = tuple({"token": t.label, "id": t.token_id, "row": t.row, "position": p, "pad": False}
                  for p, t in enumerate(sentence))
    return SentenceValues(rows, tuple(t.label for t in sentence), hover, tok, pos, x)


def render(sel: Selection, batch: explorer.Batch | None, style: FigureStyle) -> None:
    """Shown once a model with the current table shapes and training settings has been trained."""
    if batch is None:
        return
    model_cfg, train_cfg = runs.training_configs(sel.cfg)
    try:
        model_cfg.validate()
        train_cfg.validate()
    except ValueError:
        return  # the training tab says what to change
    job = runs.find(model_cfg, train_cfg, sel)
    if job is None or job.state not in (jobs.DONE, jobs.STOPPED):
        st.caption("Train the model in tab 2 with these settings to see your sentence inside the trained model.")
        return
    if not st.toggle("Your sentence inside the trained model", key="trained_sentence",
                     help="The same vectors before and after training, from the model trained in tab 2."):
        return
    result: training.TrainResult = job.result
    b = st.session_state.get("sentence", 0)
    b = b if b in range(batch.shape[0]) else 0
    values = sentence_values(result, batch, b)
    scheme = model_cfg.positional
    st.markdown(f"Sentence {b} in the model trained for {result.steps_done} steps with **{scheme}** positions. "
                "Left: before training (the tables above); right: after. One colour scale for all.")
    panels = [("tok = wte(ids)", values.tok, "tok")]
    if values.pos is not None:
        panels += [(f"pos = {'wpe' if scheme == 'learned' else 'sinusoid'}(arange(T))", values.pos, "pos"),
                   ("x = tok + pos", values.x, "x")]
    else:
        st.caption(f"{scheme} adds nothing to the token vectors, so x = wte(ids): positions act inside attention.")
    zmax = figures.shared_zmax(*(a for _, pair, _ in panels for a in pair))
    for title, (before, after), key in panels:
        for col, when, z in zip(st.columns(2), ("before", "after"), (before, after)):
            charts.show(figures.embedding_heatmap(
                z, row_labels=list(values.labels), hover=list(values.hover), style=style, zmax=zmax,
                title=f"{title}, {when} training · {shape_text(z.shape)}"), key=f"mine_{key}_{when}", where=col)
    similarities(values, style)
    with st.expander("Show the code: these numbers from the downloaded model"):
        st.code(snippet.trained_sentence_code(model_cfg, rows=values.rows.tolist(), labels=values.labels,
                                              filename=MODEL_FILE), language="python")
        st.download_button("Model (.safetensors)", lambda: export.model_safetensors(
            result.model, metadata={"settings": runs.run_key(model_cfg, train_cfg, sel)[:2000]}),
            MODEL_FILE, "application/octet-stream", key="download_trained_model", on_click="ignore")


def similarities(values: SentenceValues, style: FigureStyle) -> None:
    """T x T cosine similarity of the sentence's token vectors, and one pair of tokens as numbers."""
    T = len(values.rows)
    ticks = [f"{p} · {figures._esc(label)}" for p, label in enumerate(values.labels)]
    before, after = (neighbours.cosine_matrix(t) for t in values.tok)  # (T, T) each
    for col, when, m in zip(st.columns(2), ("before", "after"), (before, after)):
        fig = figures.similarity_heatmap(m, style=style,
                                         title=f"cosine of wte(ids) rows, {when} training · {shape_text((T, T))}")
        fig.update_xaxes(tickvals=list(range(T)), ticktext=ticks)
        fig.update_yaxes(tickvals=list(range(T)), ticktext=ticks)
        charts.show(fig, key=f"mine_cos_{when}", where=col)
    if T < 2:
        return
    st.markdown("**Compare two tokens** (cosine similarity of their `wte` rows)")
    for key, default in (("cos_a", 0), ("cos_b", 1)):
        if st.session_state.get(key) not in range(T):
            st.session_state[key] = default
    c1, c2, c3, c4 = st.columns(4)
    a = c1.selectbox("Token", range(T), key="cos_a", format_func=lambda p: f"{p} · {values.labels[p]}")
    b = c2.selectbox("and token", range(T), key="cos_b", format_func=lambda p: f"{p} · {values.labels[p]}")
    c3.metric("cosine before training", f"{before[a, b]:.3f}")
    c4.metric("after training", f"{after[a, b]:.3f}", delta=f"{after[a, b] - before[a, b]:+.3f}")

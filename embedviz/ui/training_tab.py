"""Tab 2: train the tiny GPT (in the background, shared by visitors with the same settings) and show
what training did to the token embeddings: loss, before/after maps, neighbours, evolution, downloads."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from embedviz import explorer, export, figures, jobs, neighbours, share, space, training
from embedviz.config import HEAD_COUNTS, POSITIONAL_KINDS, EmbeddingConfig, Limits, ModelConfig, ProjectionConfig, TrainConfig
from embedviz.figures import FigureStyle
from embedviz.ui import charts, loaders, positions, runs, text
from embedviz.ui.sidebar import Selection
from embedviz.vocab import Vocab


def background(sel: Selection, lim: Limits) -> None:
    """While this tab is closed: start the training a link asks for, and keep "trained" (which the link
    carries) in step with the settings, as render() does."""
    model_cfg, train_cfg = runs.training_configs(sel.cfg)
    try:
        model_cfg.validate(lim)
        train_cfg.validate(lim)
    except ValueError:
        return  # the tab says why when it is opened
    job, _ = _for_link(model_cfg, train_cfg, sel, lim, runs.find(model_cfg, train_cfg, sel))
    st.session_state["trained"] = job is not None and job.state == jobs.DONE


def _for_link(model_cfg: ModelConfig, train_cfg: TrainConfig, sel: Selection, lim: Limits,
              job: jobs.Job | None) -> tuple[jobs.Job | None, bool]:
    """The job, started here if the link that opened the page asks for a trained model and none runs for
    these settings; and whether the link asked for one too large to start by itself (the request is
    kept then, for the training tab to say "press Train")."""
    if job is not None or not st.session_state.get("_autotrain"):
        return job, False
    if training.logits_computed(model_cfg, train_cfg) > lim.max_link_training_work:
        return None, True
    st.session_state.pop("_autotrain")
    return runs.start(model_cfg, train_cfg, sel), False


def render(sel: Selection, batch: explorer.Batch | None, lim: Limits, style: FigureStyle) -> None:
    st.markdown(text.EXPLAIN_TRAINING)
    model_cfg, train_cfg = controls(sel.cfg, lim)
    try:
        model_cfg.validate(lim)
        train_cfg.validate(lim)
    except ValueError as exc:
        st.error(str(exc))
        return
    job = runs.find(model_cfg, train_cfg, sel)
    pressed = st.button("Train", key="train", type="primary", disabled=job is not None and not job.finished,
                        help="Trained models are shared: the same settings on another screen reuse this run.")
    job, too_large = _for_link(model_cfg, train_cfg, sel, lim, job)
    st.session_state.pop("_autotrain", None)  # the open tab has answered the link
    if too_large:
        st.info("The link asks for a trained model; these settings take a while to train, so press **Train** "
                "to start.")
    if pressed:
        job = runs.start(model_cfg, train_cfg, sel)
    st.session_state["trained"] = job is not None and job.state == jobs.DONE
    if job is None:
        st.info("Press **Train**: the default settings take a few seconds on a laptop CPU.")
        positions.render(None, model_cfg, train_cfg, sel, style)  # the schemes' pictures need no training
        return
    if runs.result_of(job, lambda j: live_progress(j, style), noun="training", again="Train") is None:
        return
    vocab = loaders.vocab(sel.enc, sel.cfg.vocab_size, sel.corpus)
    results(job, sel, vocab, batch, style)
    positions.render(job.result, model_cfg, train_cfg, sel, style)


def controls(cfg: EmbeddingConfig, lim: Limits) -> tuple[ModelConfig, TrainConfig]:
    box = st.expander("Training settings") if st.session_state["presentation"] else st.container()
    c1, c2, c3, c4, c5, c6 = box.columns([3, 2, 2, 2, 2, 2])
    c1.slider("Steps", 10, lim.max_train_steps, key="steps", step=10)
    c2.select_slider("Batch size", TrainConfig.BATCH_SIZES, key="batch_size")
    c3.select_slider("Learning rate", TrainConfig.LEARNING_RATES, key="learning_rate", format_func=lambda v: f"{v:g}")
    c4.slider("Layers", 1, lim.max_train_layers, key="n_layer")
    c5.select_slider("Heads", HEAD_COUNTS, key="n_head")
    positional = c6.selectbox("Positions", POSITIONAL_KINDS, key="positional",
                              help="learned: GPT-2's trained wpe. sinusoidal: the fixed waves of "
                                   "'Attention Is All You Need'. rope: queries and keys rotated by position "
                                   "(Llama). alibi: a distance penalty on attention (BLOOM). none: causal "
                                   "attention alone.")
    if positional == "rope":
        # its own widget key: a widget's state is dropped while it is hidden, and the comparison's
        # RoPE run (and the link) need the base whichever scheme is chosen here
        st.session_state["rope_base_input"] = st.session_state["rope_base"]
        box.number_input("RoPE base (pair i turns by base^(−2i/head width) radians per position)", min_value=1.0,
                         max_value=share.MAX_ROPE_BASE, step=1000.0, format="%g", key="rope_base_input",
                         on_change=lambda: st.session_state.update(rope_base=st.session_state["rope_base_input"]),
                         help="10,000 in RoFormer and Llama 2; 500,000 in Llama 3. A larger base turns the "
                              "slow pairs more slowly, so they still tell apart positions further apart.")
    return runs.training_configs(cfg)


@st.fragment(run_every=0.5)
def live_progress(job: jobs.Job, style: FigureStyle) -> None:
    """Redrawn twice a second while the job runs; reruns the page once it is finished."""
    if not runs.no_progress_yet(job):
        p = job.progress
        eta = "" if p.eta_s is None else f" · about {p.eta_s:.0f} s left"
        st.progress(min(1.0, p.step / p.steps),
                    text=f"step {p.step}/{p.steps} · loss {p.train_loss:.3f} · "
                         f"{p.tokens_per_s:,.0f} tokens/s{eta}")
        charts.show(figures.loss_curve(job.history, style=style), key="loss_live")
    runs.stop_button(job)


def results(job: jobs.Job, sel: Selection, vocab: Vocab, batch: explorer.Batch | None, style: FigureStyle) -> None:
    result: training.TrainResult = job.result
    if job.state == jobs.STOPPED:
        st.warning(f"Training stopped at step {result.steps_done}; the model reached so far is shown.")
    st.success(f"Trained in {result.seconds:.1f} s at {result.tokens_per_s:,.0f} tokens/s.")
    charts.show_built(loss_chart, result, baseline=float(np.log(vocab.size)), style=style, key="loss_final")

    view = space.select(vocab, sel.corpus, sel.enc, max_points=ProjectionConfig.max_points)
    if view.rows.size == 0:
        st.info("No token of the corpus has a row of its own: raise the vocabulary size.")
        return
    with st.spinner("Projecting the embedding space (UMAP)…"):
        _, _, (agree0, agree1) = loaders.before_after(result, view)

    if view.scoreable:
        m1, m2, m3 = st.columns(3)
        m1.metric("Neighbours sharing a class, before", f"{agree0:.2f}")
        m2.metric("… after training", f"{agree1:.2f}", delta=f"{agree1 - agree0:+.2f}")
        m3.metric("Chance level", f"{view.chance():.2f}")
        st.caption(f"Scored: the {view.n_scored:,} drawn tokens that have a class in {text.literal(sel.corpus.title)} "
                   f"(of {view.rows.size:,} drawn), each by the share of its 5 nearest neighbours among those "
                   f"{view.n_scored:,} (cosine, in all d dimensions, not in the 2-D picture) with the same class.")
    elif sel.corpus.word_classes:
        st.info(f"Too few of the drawn tokens have a class to score how well classes cluster ({view.n_scored:,} "
                f"of {view.rows.size:,}): raise the vocabulary size"
                + (", or give more of the corpus's words a class." if sel.corpus.key != sel.corpus.text_key else "."))
    else:
        st.info("This corpus does not know its words' classes, so no class score is shown (colours are token "
                "kinds: word, number, punctuation).")

    typed = view.indices_of(t.row for s in batch.sentences for t in s) if batch is not None else []
    left, right = st.columns(2)  # equal halves; each map is square (fixed axis ranges, equal aspect)
    for where, trained in ((left, False), (right, True)):
        charts.show_built(map_chart, result, view, trained=trained, highlight=tuple(typed), style=style,
                          key="scatter_after" if trained else "scatter_before", where=where)
    st.caption(text.MAP_LIMITS)
    if view.note:
        st.caption(view.note)

    nearest_neighbours(view, result, typed)
    if not style.presentation:
        downloads(job, view, vocab, sel, batch)
    if st.toggle("Watch the space organise, step by step", key="show_evolution",
                 help="One UMAP per snapshot taken during training, each started from the one before."):
        evolution(result, view, style)


def nearest_neighbours(view: space.Space, result: training.TrainResult, typed: list[int]) -> None:
    st.markdown("#### Nearest neighbours of a token")
    index = {int(r): i for i, r in enumerate(view.rows)}
    if st.session_state.get("neighbour_token") not in index:
        st.session_state["neighbour_token"] = int(view.rows[typed[0] if typed else 0])
    row = st.selectbox("Token", list(index), key="neighbour_token", format_func=lambda r: view.tokens[index[r]])
    i = index[row]
    cols = st.columns(2)
    for col, snap, name in ((cols[0], result.snapshots[0], "before"), (cols[1], result.snapshots[-1], "after")):
        found = neighbours.cosine_neighbours(snap.wte[view.rows], i, k=10)
        col.markdown(f"**{name} training**")
        col.dataframe(
            {"token": [view.tokens[j] for j, _ in found],
             "class": [view.classes[j] for j, _ in found],
             "cosine": [round(float(sim), 3) for _, sim in found]},
            hide_index=True)


def downloads(job: jobs.Job, view: space.Space, vocab: Vocab, sel: Selection, batch: explorer.Batch | None) -> None:
    """Files are built only when a button is pressed."""
    result = job.result

    def files() -> dict[str, bytes]:
        return export.training_files(
            snapshots=result.snapshots, row_labels=vocab.labels(), drawn_rows=view.rows,
            classes=view.classes, frequencies=view.frequencies, model=result.model,
            batch_rows=None if batch is None else batch.rows,
            metadata={"settings": str(job.key)[:2000], "corpus": sel.corpus.key})

    with st.expander("Download the trained space and model"):
        st.markdown(text.DOWNLOADS)
        c1, c2, c3 = st.columns(3)
        c1.download_button("Everything (.zip)", lambda: export.zip_bundle(files()), "embedviz-trained.zip",
                           "application/zip", key="download_all", on_click="ignore")
        c2.download_button("Projector pair (.zip)", lambda: export.zip_bundle(export.projector_pair(files())),
                           "embedviz-projector.zip", "application/zip", key="download_projector", on_click="ignore")
        c3.download_button("Model (.safetensors)", lambda: files()["model.safetensors"], "embedviz-model.safetensors",
                           "application/octet-stream", key="download_model", on_click="ignore")


def evolution(result: training.TrainResult, view: space.Space, style: FigureStyle) -> None:
    with st.spinner(f"Projecting {len(result.snapshots)} snapshots…"):
        frames, agreement = loaders.evolution_frames(result, view)
    left, right = st.columns([3, 2])
    charts.show_built(evolution_chart, result, view, style=style, key="evolution", where=left)
    if view.scoreable:
        charts.show_built(figures.agreement_curve, [f[0] for f in frames], agreement, chance=view.chance(),
                          style=style, key="agreement_curve", where=right)


# The training charts, built from what they show (a result is hashed by its weights, a drawn space by
# its key: charts.show_built builds each once, not on every rerun of the page).

def loss_chart(result: training.TrainResult, *, baseline: float, style: FigureStyle) -> go.Figure:
    return figures.loss_curve(result.history, style=style, baseline=baseline)


def map_chart(result: training.TrainResult, view: space.Space, *, trained: bool, highlight: tuple[int, ...],
              style: FigureStyle) -> go.Figure:
    """The map of wte before or after training, the typed sentence's tokens outlined."""
    before, after, _ = loaders.before_after(result, view)
    shown = after if trained else before
    return figures.embedding_scatter(
        shown.xy, title=f"wte after {result.steps_done} steps" if trained else "wte at start (random)",
        note=shown.note, tokens=view.tokens, ids=view.ids, rows=view.rows.tolist(),
        frequencies=view.frequencies.tolist(), classes=view.classes,
        class_colors=figures.class_colors(view.classes, style=style), highlight=list(highlight), style=style)


def evolution_chart(result: training.TrainResult, view: space.Space, *, style: FigureStyle) -> go.Figure:
    frames, _ = loaders.evolution_frames(result, view)
    return figures.evolution_scatter(frames, tokens=view.tokens, classes=view.classes,
                                     class_colors=figures.class_colors(view.classes, style=style), style=style,
                                     title="wte during training (press play)")

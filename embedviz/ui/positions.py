"""The positions section of the training tab: pictures of each positional scheme, the five schemes
trained side by side (one background job), and their held-out loss past the trained length P."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from embedviz import comparison, evaluation, explorer, figures, jobs, neighbours, training
from embedviz import positional as pos
from embedviz import positional_figures as pf
from embedviz.config import POSITIONAL_KINDS, Limits, ModelConfig, TrainConfig, limits
from embedviz.figures import FigureStyle
from embedviz.ui import charts, loaders, runs
from embedviz.ui.sidebar import Selection

TITLE = "How the model knows the order of words"
MAX_PICTURE_POSITIONS = 32  # masks and bias matrices past this many positions stop being readable
SCHEME_TEXT = {
    "learned": (
        "**learned** (GPT-2): a table `wpe` with one row per position, added to the token vectors: "
        "`x = wte(ids) + wpe(arange(T))`. Its rows start as random numbers and training moves them like any "
        "other weight. It has rows for positions 0 to P − 1 only, so the model cannot read a longer input."
    ),
    "sinusoidal": (
        "**sinusoidal** (Vaswani et al., 2017): a fixed table added to the token vectors, `x = wte(ids) + PE`. "
        "Column 2i holds sin(pos · 10000^(−2i/d)) and column 2i + 1 the cosine of the same angle: waves from "
        "fast to slow. Nothing in it is trained, and it can be computed for any position, past P too."
    ),
    "rope": (
        "**RoPE** (Su et al., 2021; Llama): nothing is added to `x`. In every attention layer, each head's "
        "query and key are cut into pairs of dimensions and pair i is rotated by the angle m·θᵢ at position m, "
        "with θᵢ = base^(−2i/hs) (hs: the head width). The values are not rotated. The score of a query at m "
        "on a key at n then depends on their contents and on the distance m − n only."
    ),
    "alibi": (
        "**ALiBi** (Press et al., 2022; BLOOM): nothing is added to `x` and nothing is rotated. Each head adds "
        "−m·(i − j) to the attention score of query i on key j (after the 1/√hs scaling): the further back a "
        "key, the lower its score. The slope m is fixed, a different one per head; none of it is trained."
    ),
    "none": (
        "**none** (NoPE): nothing is added to `x` and the attention scores get no positional term. Order still "
        "reaches the model through the causal mask: the token at position i attends to the i + 1 tokens up to "
        "itself, so it can tell how many precede it (attending evenly gives each one weight 1/(i + 1)). "
        "What the first layer cannot see is their order: its output at i is the same if tokens 0 … i − 1 are "
        "shuffled; later layers receive vectors that already differ by position."
    ),
}
SINUSOID_EVEN = ("With an even d, the cosine similarity of two rows depends only on how far apart they are: "
                 "the similarity matrix is constant along each diagonal.")


def render(result: training.TrainResult | None, model_cfg: ModelConfig, train_cfg: TrainConfig, sel: Selection,
           style: FigureStyle) -> None:
    """The section under a trained model (`result`), or before any training (`result` None)."""
    st.markdown(f"#### {TITLE}")
    pictures(result, model_cfg, style)
    side_by_side(model_cfg, train_cfg, sel, limits(), style)


def pictures(result: training.TrainResult | None, model_cfg: ModelConfig, style: FigureStyle) -> None:
    """The chosen scheme's pictures (the trained model's by default); any other without training."""
    own = model_cfg.positional
    if st.session_state.get("scheme_pictures") not in ("", *POSITIONAL_KINDS):
        st.session_state["scheme_pictures"] = ""
    choice = st.selectbox("Pictures of the scheme", ("", *POSITIONAL_KINDS), key="scheme_pictures",
                          format_func=lambda k: f"{own} (this model's)" if k == "" else k,
                          help="Look at any scheme's pictures; none of them needs training.")
    kind = choice or own
    trained = result if result is not None and result.model.cfg.positional == kind else None
    st.markdown(SCHEME_TEXT[kind])
    e = model_cfg.embedding
    if kind in ("learned", "sinusoidal"):
        tables(kind, trained, e.vocab_size, e.dim, e.positions, e.seed, style)
    elif kind == "rope":
        rope_pictures(e.dim, model_cfg.n_head, e.positions, model_cfg.rope_base, style)
    elif kind == "alibi":
        alibi_pictures(model_cfg.n_head, e.positions, style)
    else:
        n = min(e.positions, MAX_PICTURE_POSITIONS)
        charts.show_built(pf.causal_mask_heatmap, pos.causal_mask(n).numpy(), style=style, key="pic_mask")
        _first(n, e.positions)


def tables(kind: str, trained: training.TrainResult | None, V: int, d: int, P: int, seed: int,
           style: FigureStyle) -> None:
    """Position tables and their P x P cosine similarity, every table on one colour scale."""
    sinusoid = pos.sinusoidal_positions(P, d).numpy()  # (P, d)
    if kind == "sinusoidal":
        shown = [("sinusoidal (fixed)", sinusoid, "pos_sinusoid")]
    elif trained is not None:
        (_, start), (_, end), _ = training.position_tables(trained)
        shown = [("learned, start", start, "pos_before"), (f"learned, step {trained.steps_done}", end,
                                                            "pos_after"), ("sinusoidal", sinusoid, "pos_sinusoid")]
    else:
        wte_state = loaders.token_table(V, d, seed)[1]
        start = explorer.position_table(P, d, wte_state).numpy()  # (P, d): wpe as created, before training
        shown = [("learned, start (untrained)", start, "pos_before"), ("sinusoidal", sinusoid, "pos_sinusoid")]
    zmax = figures.shared_zmax(*(table for _, table, _ in shown))
    st.caption(f"Top: cosine similarity of every position with every other, ({P}, {P}). Bottom: the tables, "
               f"({P}, {d}), on one colour scale (|value| up to {zmax:.2f}) so they can be compared."
               + (" " + SINUSOID_EVEN if d % 2 == 0 and kind == "sinusoidal" else ""))
    # presentation: one table under the other, so each keeps its title and a readable P x P map
    places = [st.container() for _ in shown] if style.presentation else st.columns(len(shown))
    style = figures.in_columns(style, len(shown))
    for col, (title, table, key) in zip(places, shown):  # built once per table (by content) and style
        charts.show_built(cosine_chart, table, title=f"cosine, {title} · {pf.shape_text((P, P))}", style=style,
                          key=key, where=col)
        charts.show_built(figures.embedding_heatmap, table, title=f"{title} · {pf.shape_text(table.shape)}",
                          zmax=zmax, style=style, key=key + "_table", where=col)


def cosine_chart(table: np.ndarray, *, title: str, style: FigureStyle) -> go.Figure:
    """The cosine similarity of every row of `table` (P, d) with every other, (P, P)."""
    return figures.similarity_heatmap(neighbours.cosine_matrix(table), title=title, style=style)


def rope_pictures(d: int, n_head: int, P: int, base: float, style: FigureStyle) -> None:
    hs = d // n_head
    try:
        theta = pos.rope_frequencies(head_dim=hs, base=base).numpy()  # (hs/2,)
    except ValueError as exc:
        st.info(f"{exc} (d = {d} over {n_head} heads). Change the dimension or the heads to see RoPE.")
        return
    # the fastest pair that turns less than once over P positions: its points do not overlap
    slow_enough = np.flatnonzero(theta * max(P - 1, 1) < 2 * math.pi)
    pair = int(slow_enough[0]) if slow_enough.size else len(theta) - 1
    points = pos.rope_pair_path(length=P, head_dim=hs, pair=pair, base=base).numpy()  # (P, 2)
    left, right = st.columns(2)
    charts.show_built(pf.rope_rotation, points, pair=pair, theta=float(theta[pair]), angles_shape=(P, hs // 2),
                      style=style, key="pic_rope_rotation", where=left)
    charts.show_built(pf.rope_frequency_schedule, theta, base=base, style=style, key="pic_rope_frequencies",
                      where=right)
    scores = pos.rope_relative_scores(max_distance=4 * P - 1, head_dim=hs, base=base).numpy()  # (4P,)
    charts.show_built(pf.rope_decay, scores, head_dim=hs, base=base, trained_positions=P, style=style,
                      key="pic_rope_decay")
    st.caption(f"Pair {pair} is the fastest pair that turns less than once over the {P} positions. Pairs "
               "before it wrap around; pairs after it turn more slowly.")


def alibi_pictures(n_head: int, P: int, style: FigureStyle) -> None:
    n = min(P, MAX_PICTURE_POSITIONS)
    heads = sorted({0, 1, n_head // 2, n_head - 1} & set(range(n_head)))
    slopes = pos.alibi_slopes(n_head).numpy()  # (nh,)
    bias = pos.alibi_bias(n_head=n_head, length=n).numpy()  # (nh, n, n)
    charts.show_built(pf.alibi_bias_heatmaps, bias, heads=heads, slopes=slopes, style=style,
                      key="pic_alibi_bias")
    charts.show_built(pf.alibi_slope_chart, slopes, style=style, key="pic_alibi_slopes")
    _first(n, P)


def _first(n: int, P: int) -> None:
    if n < P:
        st.caption(f"The first {n} of the {P} positions; the pattern continues the same way.")


def side_by_side(model_cfg: ModelConfig, train_cfg: TrainConfig, sel: Selection, lim: Limits,
                 style: FigureStyle) -> None:
    """One job trains the chosen schemes in turn; their losses, and their loss past P, on one chart each."""
    st.markdown("##### The schemes trained side by side")
    chosen = st.multiselect("Schemes to compare", POSITIONAL_KINDS, key="compare_kinds")
    kinds = tuple(k for k in POSITIONAL_KINDS if k in chosen)
    if not kinds:
        st.info("Choose at least one scheme to compare.")
        return
    try:
        for kind in kinds:
            comparison.scheme_config(model_cfg, kind).validate(lim)
        cfg = comparison.budget(model_cfg, train_cfg, n_schemes=len(kinds), max_seconds=lim.max_train_seconds)
    except ValueError as exc:
        st.error(str(exc))
        return
    e = model_cfg.embedding
    capped = (f" (your setting is {train_cfg.steps:,}: capped so that {len(kinds)} schemes fit in the "
              f"{lim.max_train_seconds:.0f} s a training may take here)" if cfg.steps < train_cfg.steps else "")
    st.caption(f"Each scheme: a fresh model with seed {e.seed}, trained for {cfg.steps:,} steps{capped} of "
               f"{cfg.batch_size} windows of {e.positions} tokens on the same corpus; the same layers, heads and "
               "learning rate. One scheme at a time, in one background job.")
    job = runs.find_comparison(model_cfg, cfg, sel, kinds)
    pressed = st.button("Compare the schemes", key="compare", disabled=job is not None and not job.finished,
                        help="Comparisons are shared: the same settings on another screen reuse this one.")
    if pressed:
        job = runs.start_comparison(model_cfg, cfg, sel, kinds)
    if job is None:
        return
    result = runs.result_of(job, lambda j: comparison_progress(j, style), noun="comparison",
                            again="Compare the schemes")
    if result is not None:
        outcome(result, style)


@st.fragment(run_every=0.5)
def comparison_progress(job: jobs.Job, style: FigureStyle) -> None:
    """Redrawn twice a second while the comparison runs; reruns the page once it has finished."""
    if not runs.no_progress_yet(job):
        p: comparison.SchemeProgress = job.progress
        st.progress(min(1.0, (p.index + p.step / p.steps) / p.count),
                    text=f"scheme {p.index + 1} of {p.count}: {p.kind} · step {p.step}/{p.steps} · "
                         f"loss {p.train_loss:.3f}")
        so_far: dict[str, list] = {}
        for report in job.history:
            so_far.setdefault(report.kind, []).append(report)
        charts.show(figures.loss_comparison(so_far, style=style, title="Held-out loss so far, per scheme"),
                    key="scheme_losses_live")
    runs.stop_button(job, key="stop_compare")


def outcome(result: comparison.Comparison, style: FigureStyle) -> None:
    done = list(result.runs)
    if result.stopped_early:
        missing = [k for k in result.kinds if k not in result.runs]
        st.warning(f"The comparison stopped before {', '.join(missing)} finished; "
                   f"{'the finished schemes are' if done else 'no scheme finished, so nothing is'} shown.")
    if not done:
        return
    charts.show_built(figures.loss_comparison, {k: r.history for k, r in result.runs.items()}, style=style,
                      title="Held-out loss of each positional scheme", key="scheme_losses")
    st.markdown(comparison.describe(result))
    st.caption(f"{len(done)} scheme(s) trained in {result.seconds:.1f} s. Held-out: the corpus's last "
               f"{result.held_out_tokens:,} tokens, never trained on.")
    st.markdown("##### Longer than trained")
    if result.lengths_error is not None:
        st.info(result.lengths_error)
        return
    evaluations = [r.lengths for r in result.runs.values()]
    charts.show_built(pf.loss_by_position, evaluations, style=style, key="scheme_lengths")
    st.markdown(evaluation.describe_lengths(evaluations))
    first = evaluations[0]
    lengths = ", ".join(str(L) for L in first.lengths)
    st.caption(f"Each model saw windows of P = {first.trained_positions} tokens in training; here it reads "
               f"{lengths}-token windows of the held-out text ({first.windows[first.lengths[-1]]} of the longest). "
               "The loss at position t is the loss of predicting token t + 1.")

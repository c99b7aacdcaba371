"""embedviz: the Streamlit page. Widgets -> settings -> cached calls -> charts.

All logic lives in the `embedviz` package; this file only lays out the page, keeps session
state and caches what every visitor shares.
"""
from __future__ import annotations

import hashlib
import html
from urllib.parse import urlencode

import numpy as np
import streamlit as st

from embedviz import corpus as corpora
from embedviz import explorer, figures, jobs, neighbours, projection, share, snippet, space, tokens, training
from embedviz.config import EmbeddingConfig, Limits, ModelConfig, ProjectionConfig, TrainConfig, hosted, limits
from embedviz.vocab import Vocab

TEXTBOOK = {"mode": "Token ids", "ids": "[[5, 20, 33, 2]]", "vocab_size": 100, "dim": 16,
            "positions": 10, "seed": 0}
CLASSROOM = {"mode": "Sentences", "text": corpora.CLASSROOM_SENTENCE, "vocab_size": EmbeddingConfig.vocab_size,
             "dim": EmbeddingConfig.dim, "positions": EmbeddingConfig.positions, "seed": 0}
DEFAULTS = {"encoding": "cl100k_base", "corpus": "toy", "ids": TEXTBOOK["ids"], "presentation": False,
            "show_wpe": False, "steps": TrainConfig.steps, "batch_size": TrainConfig.batch_size,
            "learning_rate": TrainConfig.learning_rate, "n_layer": ModelConfig.n_layer,
            "n_head": ModelConfig.n_head, "positional": ModelConfig.positional, "trained": False, **CLASSROOM}
VOCAB_STOPS = (2, 3, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 200, 256, 300, 400, 500, 512, 1000,
               1024, 2000, 2048, 4096, 5000, 8192, 10000, 16384, 20000, 32768, 50257, 65536)
CORPORA = {"toy": "Toy world (generated)", "pydocs": "Python documentation", "upload": "Your own (.txt)"}


# ---------------------------------------------------------------- cached, shared by every visitor

@st.cache_resource(show_spinner=False)
def load_encoding(name: str):
    return tokens.load_encoding(name)


@st.cache_resource(show_spinner="Preparing the corpus…", max_entries=8)
def load_corpus(kind: str, encoding: str, _upload: bytes | None = None, upload_key: str = ""):
    """The active corpus and its tiktoken ids; uploads are keyed by their hash."""
    enc = load_encoding(encoding)
    if kind == "toy":
        c = corpora.toy_world(enc)
    elif kind == "pydocs":
        c = corpora.python_docs()
    else:
        c = corpora.from_upload(_upload or b"", filename="upload.txt", max_bytes=limits().max_upload_bytes)
    ids = np.asarray(enc.encode(c.text, disallowed_special=()), dtype=np.int64)
    return c, ids


@st.cache_resource(show_spinner=False, max_entries=8)
def build_vocab(encoding: str, vocab_size: int, corpus_key: str, _ids: np.ndarray) -> Vocab:
    return Vocab.build(load_encoding(encoding), vocab_size, reference_ids=_ids)


@st.cache_resource(show_spinner="Creating the embedding table…", max_entries=2)
def token_table(vocab_size: int, dim: int, seed: int):
    """wte is the only large tensor; two entries make moving a slider back and forth instant."""
    return explorer.token_table(vocab_size, dim, seed)


# ---------------------------------------------------------------- controls

def init_state(lim: Limits) -> None:
    """Defaults, then (once per session) the settings carried by the link that opened the page."""
    first = "_started" not in st.session_state
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    if first:
        st.session_state["_started"] = True
        shared, ignored = share.from_query(st.query_params.to_dict(), lim)
        st.session_state["_autotrain"] = shared.pop("trained", False)
        st.session_state.update(shared)
        if ignored:
            st.toast("Ignored link settings that are not valid here: " + ", ".join(ignored))


def apply_preset(preset: dict) -> None:
    st.session_state.update(preset)


def sidebar_controls(lim: Limits):
    """Tokenizer, corpus and the table shapes; returns (encoding name, enc, corpus, ids, cfg)."""
    sb = st.sidebar
    sb.markdown("### Presets")
    c1, c2 = sb.columns(2)
    c1.button("Classroom", key="preset_classroom", on_click=apply_preset, args=(CLASSROOM,),
              help="A real sentence with the default table shapes.", width="stretch")
    c2.button("Textbook", key="preset_textbook", on_click=apply_preset, args=(TEXTBOOK,),
              help="vocab 100, dim 16, positions 10, ids [[5, 20, 33, 2]]", width="stretch")

    sb.markdown("### Tokenizer and corpus")
    name = sb.selectbox("Tokenizer (tiktoken)", tokens.OFFERED, key="encoding",
                        format_func=lambda n: f"{n} · {tokens.DESCRIPTIONS[n]}")
    try:
        enc = load_encoding(name)
    except tokens.EncodingUnavailable as exc:
        sb.error(f"{exc} Using cl100k_base instead.")
        name, enc = "cl100k_base", load_encoding("cl100k_base")

    kind = sb.selectbox("Corpus", list(CORPORA), key="corpus", format_func=CORPORA.get,
                        help="The text the model trains on; its most frequent tokens get the table's rows.")
    corpus, corpus_ids = corpus_controls(sb, kind, name, lim)

    sb.markdown("### Table shapes")
    stops = sorted({*VOCAB_STOPS, enc.n_vocab, st.session_state["vocab_size"]})
    vocab_size = sb.select_slider("Vocabulary size V (rows of wte)", options=stops, key="vocab_size",
                                  help=f"{name} has {enc.n_vocab:,} token ids. With V below that, rows go "
                                       "to the corpus's most frequent tokens and the rest share <unk>.")
    dim = sb.slider("Embedding dimension d", 1, lim.max_dim, key="dim")
    positions = sb.slider("Positions P (rows of wpe = context length)", 1, lim.max_positions,
                          key="positions")
    seed = sb.number_input("Seed", min_value=0, max_value=2**32 - 1, step=1, key="seed",
                           help="torch.manual_seed(seed) before wte, then wpe, are created.")
    sb.toggle("Presentation mode", key="presentation", help="Larger fonts for a projector.")
    if hosted():
        sb.caption("Public instance: sizes are capped to share the server fairly.")
    return name, enc, corpus, corpus_ids, EmbeddingConfig(int(vocab_size), int(dim), int(positions), int(seed))


def corpus_controls(sb, kind: str, encoding: str, lim: Limits):
    if kind == "upload":
        upload = sb.file_uploader("A UTF-8 .txt file", type=["txt"], key="upload",
                                  help=f"At most {lim.max_upload_bytes // 1000:,} kB.")
        if upload is None:
            sb.info("Choose a .txt file; until then the toy world is used.")
        else:
            data = upload.getvalue()
            try:
                return load_corpus("upload", encoding, data, upload_key=hashlib.sha256(data).hexdigest())
            except ValueError as exc:
                sb.error(str(exc))
                sb.info("Using the toy world instead.")
        kind = "toy"
    return load_corpus(kind, encoding)


# ---------------------------------------------------------------- the explorer

EXPLAIN_TOK = (
    "**Token embeddings** `wte(ids)`: each token id picks one row of the table. The same token "
    "gets the same vector wherever it stands: a *static* meaning, before any context. These are "
    "random numbers now; training moves them so that tokens used alike end up alike."
)
EXPLAIN_POS = (
    "**Positional embeddings** `wpe(arange(T))`: attention itself ignores order, so the model adds "
    "a vector per position. GPT-2 *learns* these P rows like any other weights (the original "
    "Transformer used fixed sine waves). They do not depend on the tokens."
)
EXPLAIN_SUM = (
    "**Their sum** `x = wte(ids) + wpe(pos)` is what the first Transformer block receives. "
    "Only later layers mix information between positions and give each token a *contextual* meaning."
)


def chips_html(sentence, cut: int) -> str:
    """Token chips; every user-derived string is HTML-escaped."""
    parts = []
    for t in sentence:
        cls = "ev-chip ev-unk" if t.unk else "ev-chip"
        tid = "–" if t.token_id is None else f"{t.token_id:,}"
        parts.append(
            f'<span class="{cls}"><span class="ev-tok">{html.escape(t.label)}</span>'
            f'<span class="ev-meta">id {tid} · row {t.row:,}{" · &lt;unk&gt;" if t.unk else ""}</span></span>'
        )
    if cut:
        parts.append(f'<span class="ev-chip ev-cut">+{cut} cut</span>')
    return '<div class="ev-chips">' + "".join(parts) + "</div>"


CHIP_CSS = """
<style>
.ev-chips {display:flex; flex-wrap:wrap; gap:6px; margin:4px 0 10px 0;}
.ev-chip {display:inline-flex; flex-direction:column; align-items:center; padding:3px 9px;
  border-radius:8px; background:#e8f0fe; border:1px solid #9db7e8; font-size:1.05rem;}
.ev-chip.ev-unk {background:#fde7e7; border-color:#d98c8c;}
.ev-chip.ev-cut {background:#eee; border-style:dashed; color:#555; justify-content:center;}
.ev-tok {font-family:ui-monospace, monospace; font-weight:600; white-space:pre;}
.ev-meta {font-size:0.75rem; color:#444;}
</style>
"""


def batch_from_input(enc, vocab: Vocab, cfg: EmbeddingConfig, lim: Limits) -> explorer.Batch:
    mode = st.radio("Input", ["Sentences", "Token ids"], key="mode", horizontal=True,
                    help="Sentences are tokenised by tiktoken; token ids are rows of the table, "
                         "as in the textbook example.")
    if mode == "Sentences":
        text = st.text_area("One sentence per line (each line is one row of the batch)", key="text",
                            height=110, max_chars=lim.max_text_chars)
        return explorer.from_text(text, enc=enc, vocab=vocab, positions=cfg.positions, lim=lim)
    ids = st.text_input("Token ids, one inner list per sentence", key="ids", max_chars=lim.max_text_chars)
    return explorer.from_ids(ids, vocab=vocab, positions=cfg.positions, lim=lim)


def explorer_section(enc, corpus, corpus_ids, cfg: EmbeddingConfig, lim: Limits, style):
    """Chips, shapes, the three heatmaps and the code; returns the batch (None on bad input)."""
    try:
        cfg.validate(lim)
    except ValueError as exc:
        st.error(str(exc))
        return None
    vocab = build_vocab(enc.name, cfg.vocab_size, corpus.key, corpus_ids)
    try:
        batch = batch_from_input(enc, vocab, cfg, lim)
    except ValueError as exc:
        st.error(str(exc))
        return None

    st.markdown(CHIP_CSS, unsafe_allow_html=True)
    for b, sentence in enumerate(batch.sentences):
        st.markdown(chips_html(sentence, batch.cut[b]), unsafe_allow_html=True)
    notes(batch, vocab, cfg, corpus)

    wte, state = token_table(cfg.vocab_size, cfg.dim, cfg.seed)
    wpe = explorer.position_table(cfg.positions, cfg.dim, state)
    out = explorer.embed(batch, wte, wpe)

    B, T = batch.shape
    b = 0
    if B > 1:
        if st.session_state.get("sentence") not in range(B):
            st.session_state["sentence"] = 0
        b = st.selectbox("Sentence shown below", range(B), key="sentence",
                         format_func=lambda i: f"{i}: " + "".join(t.label for t in batch.sentences[i])[:80])
    st.markdown(
        f"`ids.shape` = `{explorer.shape_text(batch.shape)}` · "
        f"`wte.weight.shape` = `torch.Size([{cfg.vocab_size}, {cfg.dim}])` · "
        f"`wpe.weight.shape` = `torch.Size([{cfg.positions}, {cfg.dim}])`"
    )
    mask = batch.mask[b]
    tok = out.tok[b].detach().numpy().copy()
    pos = np.broadcast_to(out.pos.detach().numpy(), tok.shape).copy()
    x = out.x[b].detach().numpy().copy()
    for a in (tok, pos, x):
        a[~mask] = np.nan
    zmax = figures.shared_zmax(tok, pos, x)
    sentence = batch.sentences[b]
    labels, hover = [], []
    for p in range(T):
        if mask[p]:
            t = sentence[p]
            labels.append(t.label)
            hover.append({"token": t.label, "id": t.token_id, "row": t.row, "position": p, "pad": False})
        else:
            labels.append("pad")
            hover.append({"token": "pad", "id": None, "row": None, "position": p, "pad": True})
    panels = [
        ("Token embeddings  wte(ids)", f"tok.shape = {explorer.shape_text(out.tok)}", tok, EXPLAIN_TOK),
        ("Positional embeddings  wpe(pos)", f"pos.shape = {explorer.shape_text(out.pos)}", pos, EXPLAIN_POS),
        ("Sum  x = tok + pos", f"x.shape = {explorer.shape_text(out.x)}", x, EXPLAIN_SUM),
    ]
    for i, (title, shape, values, text) in enumerate(panels):
        left, right = st.columns([3, 1])
        left.markdown(f"**{title}** — `{shape}`")
        left.plotly_chart(
            figures.embedding_heatmap(values, row_labels=labels, hover=hover, title=title, zmax=zmax,
                                      style=style),
            key=f"heatmap_{i}", theme=None)
        right.markdown(text)
    if st.toggle("Show the whole positional table wpe", key="show_wpe"):
        full = wpe.numpy()
        st.plotly_chart(
            figures.embedding_heatmap(full, row_labels=None, hover=None, title="wpe.weight",
                                      zmax=float(np.abs(full).max()), style=style),
            key="heatmap_wpe", theme=None)
        st.caption(f"wpe.weight.shape = torch.Size([{cfg.positions}, {cfg.dim}])")
    with st.expander("Show the code: these exact numbers in PyTorch"):
        st.code(snippet.embedding_code(cfg, batch), language="python")
    return batch


def notes(batch: explorer.Batch, vocab: Vocab, cfg: EmbeddingConfig, corpus) -> None:
    for b, n in enumerate(batch.cut):
        if n:
            st.warning(f"Sentence {b} has {n + cfg.positions} tokens but the model has only "
                       f"{cfg.positions} learned positions (P): the last {n} were cut.")
    if batch.n_unk:
        st.info(f"{batch.n_unk} token(s) have no row of their own in a {cfg.vocab_size:,}-row table and "
                f"share the <unk> row (rows go to the most frequent tokens of {corpus.title}).")
    if not batch.mask.all():
        st.caption("Shorter sentences are padded to the longest; padding is grey and is not real data.")


# ---------------------------------------------------------------- training

@st.cache_resource
def trainer() -> jobs.Trainer:
    """One registry per server: trainings are shared between visitors and bounded in number."""
    lim = limits()
    return jobs.Trainer(max_running=lim.max_concurrent_trainings, max_kept=lim.max_kept_models,
                        max_seconds=lim.max_train_seconds)


@st.cache_data(show_spinner=False, max_entries=32)
def project_pair(job_key: str, _before: np.ndarray, _after: np.ndarray):
    """UMAP of the rows before and after training; the after-layout starts from and is aligned
    to the before-layout so the eye can follow each point."""
    cfg = ProjectionConfig()
    before = projection.project(_before, cfg=cfg)
    after = projection.project(_after, cfg=cfg, init=before.xy)
    return before, after, projection.align(before.xy, after.xy)


def training_controls(cfg: EmbeddingConfig, lim: Limits) -> tuple[ModelConfig, TrainConfig]:
    c1, c2, c3, c4, c5, c6 = st.columns([3, 2, 2, 2, 2, 2])
    steps = c1.slider("Steps", 10, lim.max_train_steps, key="steps", step=10)
    batch_size = c2.select_slider("Batch size", [1, 4, 8, 16, 32, 64, 128, 256], key="batch_size")
    lr = c3.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 1e-1], key="learning_rate",
                          format_func=lambda v: f"{v:g}")
    n_layer = c4.slider("Layers", 1, lim.max_train_layers, key="n_layer")
    n_head = c5.select_slider("Heads", [1, 2, 4, 8], key="n_head")
    positional = c6.radio("Positions", ["learned", "sinusoidal"], key="positional",
                          help="learned: GPT-2's trained wpe. sinusoidal: the fixed waves of "
                               "'Attention Is All You Need'; train both to compare their losses.")
    return (ModelConfig(cfg, n_layer=int(n_layer), n_head=int(n_head), positional=positional),
            TrainConfig(steps=int(steps), batch_size=int(batch_size), learning_rate=float(lr)))


def training_section(enc, corpus, corpus_ids, cfg: EmbeddingConfig, batch, lim: Limits, style) -> None:
    st.markdown(
        "A tiny GPT learns to predict the next token of the corpus. Its `wte` and `wpe` start as the "
        "exact tables above; watch what training does to them."
    )
    model_cfg, train_cfg = training_controls(cfg, lim)
    try:
        model_cfg.validate(lim)
        train_cfg.validate(lim)
    except ValueError as exc:
        st.error(str(exc))
        return
    vocab = build_vocab(enc.name, cfg.vocab_size, corpus.key, corpus_ids)
    key = repr((model_cfg, train_cfg, corpus.key, enc.name))
    job = trainer().get(key)
    pressed = st.button("Train", key="train", type="primary", disabled=job is not None and not job.finished,
                        help="Trained models are shared: the same settings on another screen reuse this run.")
    if pressed or (st.session_state.pop("_autotrain", False) and job is None):
        rows = vocab.rows(corpus_ids)
        job = trainer().submit(key, lambda **kw: training.train(model_cfg, train_cfg, rows, **kw))
    st.session_state["trained"] = job is not None and job.state == jobs.DONE
    if job is None:
        st.info("Press **Train**: the default settings take a few seconds on a laptop CPU.")
        return
    if not job.finished:
        live_progress(job, style)
        return
    if job.state == jobs.FAILED:
        st.error(f"Training failed: {job.error}")
        return
    training_results(job, enc, corpus, vocab, batch, lim, style)


@st.fragment(run_every=0.5)
def live_progress(job: jobs.Job, style) -> None:
    """Redrawn twice a second while the job runs; reruns the page once it is finished."""
    if job.finished:
        st.rerun()
    p = job.progress
    if job.state == jobs.QUEUED:
        ahead = trainer().waiting_ahead(job)
        st.info(f"Waiting for a free trainer: {trainer().running()} training(s) running, {ahead} queued "
                "before this one. It starts by itself.")
    elif p is None:
        st.progress(0.0, text="Starting…")
    else:
        eta = "" if p.eta_s is None else f" · about {p.eta_s:.0f} s left"
        st.progress(min(1.0, p.step / p.steps),
                    text=f"step {p.step}/{p.steps} · loss {p.train_loss:.3f} · "
                         f"{p.tokens_per_s:,.0f} tokens/s{eta}")
        st.plotly_chart(figures.loss_curve(history_of(job), style=style), key="loss_live",
                        theme=None)
    st.button("Stop", key="stop", on_click=job.stop, help="Stops after the current step and keeps the model.")


def history_of(job: jobs.Job) -> list[tuple[int, float, float | None]]:
    return [(p.step, p.train_loss, p.held_out_loss) for p in job.history]


def training_results(job: jobs.Job, enc, corpus, vocab, batch, lim: Limits, style) -> None:
    result = job.result
    if job.state == jobs.STOPPED:
        st.warning(f"Training stopped at step {result.history[-1][0] if result.history else 0}; "
                   "the model reached so far is shown.")
    st.success(f"Trained in {result.seconds:.1f} s at {result.tokens_per_s:,.0f} tokens/s.")
    st.plotly_chart(figures.loss_curve(result.history, style=style, baseline=float(np.log(vocab.size))),
                    key="loss_final", theme=None)

    view = space.select(vocab, corpus, enc, max_points=ProjectionConfig.max_points)
    if view.rows.size == 0:
        st.info("No token of the corpus has a row of its own: raise the vocabulary size.")
        return
    (_, wte0, wpe0), (_, wte1, wpe1) = result.snapshots[0], result.snapshots[-1]
    before_m, after_m = wte0[view.rows], wte1[view.rows]
    agree0 = neighbours.knn_agreement(before_m, view.scored, k=5)
    agree1 = neighbours.knn_agreement(after_m, view.scored, k=5)
    chance = neighbours.chance_agreement(view.scored)
    with st.spinner("Projecting the embedding space (UMAP)…"):
        before, after, after_xy = project_pair(job.key, before_m, after_m)

    m1, m2, m3 = st.columns(3)
    m1.metric("Neighbours sharing a class, before", f"{agree0:.2f}")
    m2.metric("… after training", f"{agree1:.2f}", delta=f"{agree1 - agree0:+.2f}")
    m3.metric("Chance level", f"{chance:.2f}")
    st.caption("For each token, the share of its 5 nearest neighbours (cosine, in all d dimensions, not "
               "in the 2D picture) that have the same class.")

    highlight = highlighted_points(view, batch)
    colours = figures.class_colors(view.classes, style=style)
    common = dict(tokens=view.tokens, ids=view.ids, rows=view.rows.tolist(),
                  frequencies=view.frequencies.tolist(), classes=view.classes, class_colors=colours,
                  highlight=highlight, style=style)
    left, right = st.columns(2)
    left.plotly_chart(figures.embedding_scatter(before.xy, title="wte at initialisation (random)",
                                                note=before.note, **common),
                      key="scatter_before", theme=None)
    right.plotly_chart(figures.embedding_scatter(after_xy, title=f"wte after {result.history[-1][0]} steps",
                                                 note=after.note, **common),
                       key="scatter_after", theme=None)
    if view.note:
        st.caption(view.note)

    st.markdown("#### Positions: how similar is each position's vector to every other?")
    p1, p2 = st.columns(2)
    p1.plotly_chart(figures.similarity_heatmap(cosine_matrix(wpe0), title="wpe before", style=style),
                    key="pos_before", theme=None)
    p2.plotly_chart(figures.similarity_heatmap(cosine_matrix(wpe1), title="wpe after", style=style),
                    key="pos_after", theme=None)

    nearest_neighbours(view, wte0, wte1, batch)


def cosine_matrix(m: np.ndarray) -> np.ndarray:
    unit = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    return unit @ unit.T


def highlighted_points(view: space.Space, batch) -> list[int]:
    """Indices (into the drawn rows) of the typed sentence's tokens."""
    if batch is None:
        return []
    where = {int(r): i for i, r in enumerate(view.rows)}
    typed = {t.row for s in batch.sentences for t in s}
    return sorted(where[r] for r in typed if r in where)


def nearest_neighbours(view: space.Space, wte0: np.ndarray, wte1: np.ndarray, batch) -> None:
    st.markdown("#### Nearest neighbours of a token")
    index = {int(r): i for i, r in enumerate(view.rows)}
    typed = highlighted_points(view, batch)
    if st.session_state.get("neighbour_token") not in index:
        st.session_state["neighbour_token"] = int(view.rows[typed[0] if typed else 0])
    row = st.selectbox("Token", list(index), key="neighbour_token", format_func=lambda r: view.tokens[index[r]])
    i = index[row]
    cols = st.columns(2)
    for col, table, name in ((cols[0], wte0, "before"), (cols[1], wte1, "after")):
        found = neighbours.cosine_neighbours(table[view.rows], i, k=10)
        col.markdown(f"**{name} training**")
        col.dataframe(
            {"token": [view.tokens[j] for j, _ in found],
             "class": [view.classes[j] for j, _ in found],
             "cosine": [round(float(sim), 3) for _, sim in found]},
            hide_index=True)


# ---------------------------------------------------------------- page

def main() -> None:
    st.set_page_config(page_title="embedviz: how GPT turns text into vectors", page_icon="🔢",
                       layout="wide")
    lim = limits()
    init_state(lim)
    name, enc, corpus, corpus_ids, cfg = sidebar_controls(lim)
    style = figures.style(presentation=st.session_state["presentation"])
    st.title("How a GPT turns text into vectors")
    st.caption("tiktoken splits text into tokens; `nn.Embedding` tables turn them into vectors.")
    tab_embed, tab_train = st.tabs(["1 · Embeddings", "2 · Training"])
    with tab_embed:
        batch = explorer_section(enc, corpus, corpus_ids, cfg, lim, style)
    with tab_train:
        training_section(enc, corpus, corpus_ids, cfg, batch, lim, style)
    share_link()


def share_link() -> None:
    """Keep the address bar in step with the settings and offer the link to copy."""
    params, left_out = share.to_query(st.session_state, DEFAULTS)
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)
    base = (st.context.url or "http://localhost:8501/").split("?")[0]
    st.sidebar.markdown("### Share this view")
    st.sidebar.code(base + ("?" + urlencode(params) if params else ""), language=None, wrap_lines=True)
    st.sidebar.caption("Copy the link (button at its right): it opens this exact view, the same numbers"
                       " and the same trained model." + (" Not included: " + "; ".join(left_out) if left_out else ""))


main()

"""embedviz: the Streamlit page. Widgets -> settings -> cached calls -> charts.

All logic lives in the `embedviz` package; this file only lays out the page, keeps session
state and caches what every visitor shares.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import html
import threading
from urllib.parse import urlencode

import numpy as np
# Plotly and Streamlit use pandas if sys.modules has it, without importing it; imported lazily by a
# warm-up thread or another session, a half-initialised pandas broke a chart (seen with 10 visitors
# on a fresh server). Importing it before any chart is drawn closes that window.
import pandas  # noqa: F401
import streamlit as st

from embedviz import corpus as corpora
from embedviz import bpe, explorer, export, figures, jobs, model, neighbours, projection, share, snippet, space, tokens, training
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
BPE = "bpe"
# what a training process re-imports with this file: loaded once by the fork server instead
PRELOAD = ("streamlit", "embedviz.training", "embedviz.figures", "embedviz.bpe", "embedviz.export")
BPE_DESCRIPTION = "your own, from the corpus"


# ---------------------------------------------------------------- cached, shared by every visitor

@st.cache_resource(show_spinner=False)
def load_encoding(name: str):
    return tokens.load_encoding(name)


@st.cache_resource(show_spinner="Preparing the corpus…", max_entries=8)
def load_corpus(kind: str, encoding: str, _upload: bytes | None = None, upload_key: str = "",
                filename: str = ""):
    """The active corpus (the toy world's words are picked to be single tokens of `encoding`);
    uploads are keyed by their hash."""
    if kind == "toy":
        return corpora.toy_world(load_encoding(encoding))
    if kind == "pydocs":
        return corpora.python_docs()
    return corpora.from_upload(_upload or b"", filename=filename, max_bytes=limits().max_upload_bytes)


@st.cache_resource(show_spinner="Tokenising the corpus…", max_entries=8)
def corpus_ids(encoding: str, corpus_key: str, _enc, _corpus) -> np.ndarray:
    return np.asarray(_enc.encode(_corpus.text, disallowed_special=()), dtype=np.int64)


@st.cache_resource(show_spinner=False, max_entries=8)
def build_vocab(encoding: str, vocab_size: int, corpus_key: str, _enc, _ids: np.ndarray) -> Vocab:
    return Vocab.build(_enc, vocab_size, reference_ids=_ids)


@st.cache_resource(show_spinner=False, max_entries=8)
def bpe_largest(corpus_key: str, _corpus) -> int:
    return min(bpe.largest_vocab_size(_corpus.text), bpe.MAX_VOCAB_SIZE)


@st.cache_resource(show_spinner="Training a BPE tokenizer on the corpus…", max_entries=4)
def bpe_full(corpus_key: str, _corpus) -> bpe.BPE:
    """One tokenizer per corpus at its largest size; smaller sizes are exact prefixes of its merges."""
    return bpe.train_bpe(_corpus.text, vocab_size=bpe_largest(corpus_key, _corpus))


@st.cache_resource(show_spinner=False, max_entries=8)
def bpe_tokenizer(corpus_key: str, vocab_size: int, _corpus) -> bpe.BPE:
    return bpe_full(corpus_key, _corpus).truncate(vocab_size)


@st.cache_data(show_spinner=False, max_entries=64)
def bpe_splits(corpus_key: str, sentence: str, sizes: tuple[int, ...], _corpus) -> list[tuple[int, list[str]]]:
    """How one sentence splits under the corpus's tokenizer cut to each size."""
    out = []
    for size in sizes:
        enc = bpe_tokenizer(corpus_key, size, _corpus).encoding
        out.append((size, [tokens.token_label(enc, i) for i in enc.encode(sentence, disallowed_special=())]))
    return out


@st.cache_resource(show_spinner="Creating the embedding table…", max_entries=2)
def token_table(vocab_size: int, dim: int, seed: int):
    """wte is the only large tensor; two entries make moving a slider back and forth instant."""
    return explorer.token_table(vocab_size, dim, seed)


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Once per server, in the background: start the training fork server (torch loaded once) and
    load umap's compiled code, before anyone presses Train."""
    def work() -> None:
        jobs.warm_up(PRELOAD)
        projection.warm_up()

    thread = threading.Thread(target=work, name="embedviz-warm-up", daemon=True)
    thread.start()
    return thread


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
    """Tokenizer, corpus and table shapes: (encoding, own BPE or None, corpus, its token ids, cfg)."""
    sb = st.sidebar
    sb.markdown("### Presets")
    c1, c2 = sb.columns(2)
    c1.button("Classroom", key="preset_classroom", on_click=apply_preset, args=(CLASSROOM,),
              help="A real sentence with the default table shapes.", width="stretch")
    c2.button("Textbook", key="preset_textbook", on_click=apply_preset, args=(TEXTBOOK,),
              help="vocab 100, dim 16, positions 10, ids [[5, 20, 33, 2]]", width="stretch")

    sb.markdown("### Tokenizer and corpus")
    name = sb.selectbox("Tokenizer", (*tokens.OFFERED, BPE), key="encoding",
                        help="tiktoken encodings; cl100k_base works offline. gpt2 and o200k_base are "
                             "downloaded on first use. bpe trains a tokenizer on the corpus.",
                        format_func=lambda n: f"{n} · {tokens.DESCRIPTIONS.get(n, BPE_DESCRIPTION)}")
    base = "cl100k_base" if name == BPE else name
    try:
        enc = load_encoding(base)
    except tokens.EncodingUnavailable as exc:
        sb.error(f"{exc} Using cl100k_base instead.")
        name = base = "cl100k_base"
        enc = load_encoding(base)

    kind = sb.selectbox("Corpus", list(CORPORA), key="corpus", format_func=CORPORA.get,
                        help="The text the model trains on; its most frequent tokens get the table's rows.")
    corpus = corpus_controls(sb, kind, base, lim)

    sb.markdown("### Table shapes")
    if name == BPE:
        largest = bpe_largest(corpus.key, corpus)
        stops = sorted({*(s for s in VOCAB_STOPS if 256 < s < largest), 256, largest})
        if st.session_state["vocab_size"] not in stops:
            st.session_state["vocab_size"] = min(stops, key=lambda s: abs(s - st.session_state["vocab_size"]))
        help_v = (f"The tokenizer's real size: 256 bytes + merges learned on the corpus (at most "
                  f"{largest:,} for this corpus).")
    else:
        stops = sorted({*VOCAB_STOPS, enc.n_vocab, st.session_state["vocab_size"]})
        help_v = (f"{name} has {enc.n_vocab:,} token ids. With V below that, rows go to the corpus's most "
                  "frequent tokens and the rest share <unk>.")
    vocab_size = sb.select_slider("Vocabulary size V (rows of wte)", options=stops, key="vocab_size",
                                  help=help_v)
    tokenizer = None
    if name == BPE:
        tokenizer = bpe_tokenizer(corpus.key, int(vocab_size), corpus)
        enc = tokenizer.encoding
    dim = sb.slider("Embedding dimension d", 1, lim.max_dim, key="dim")
    positions = sb.slider("Positions P (rows of wpe = context length)", 1, lim.max_positions,
                          key="positions")
    seed = sb.number_input("Seed", min_value=0, max_value=2**32 - 1, step=1, key="seed",
                           help="torch.manual_seed(seed) before wte, then wpe, are created.")
    sb.toggle("Presentation mode", key="presentation",
              help="For a projector: larger fonts, a high-contrast colour-blind-safe palette, fewer controls. "
                   "Also opens from a link with ?present=1.")
    if hosted():
        sb.caption("Public instance: sizes are capped to share the server fairly.")
    ids = corpus_ids(enc.name, corpus.key, enc, corpus)
    return enc, tokenizer, corpus, ids, EmbeddingConfig(int(vocab_size), int(dim), int(positions), int(seed))


def corpus_controls(sb, kind: str, encoding: str, lim: Limits):
    if kind == "upload":
        upload = sb.file_uploader("A UTF-8 .txt file", type=["txt"], key="upload",
                                  help=f"At most {lim.max_upload_bytes // 1000:,} kB.")
        if upload is None:
            sb.info("Choose a .txt file; until then the toy world is used.")
        else:
            data = upload.getvalue()
            try:
                return load_corpus("upload", encoding, data, upload_key=hashlib.sha256(data).hexdigest(),
                                   filename=upload.name)
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


def chips_html(sentence, cut: int, *, meta: bool = True) -> str:
    """Token chips; every user-derived string is HTML-escaped."""
    parts = []
    for t in sentence:
        cls = "ev-chip ev-unk" if t.unk else "ev-chip"
        tid = "–" if t.token_id is None else f"{t.token_id:,}"
        info = f"id {tid} · row {t.row:,}{' · &lt;unk&gt;' if t.unk else ''}"
        parts.append(
            f'<span class="{cls}"><span class="ev-tok">{html.escape(t.label)}</span>'
            + (f'<span class="ev-meta">{info}</span>' if meta else "") + "</span>"
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
# Presentation mode: read from the back of a classroom; page furniture a teacher does not need is hidden.
PRESENTATION_CSS = """
<style>
html, .stApp {font-size: 21px;}
.stMarkdown p, .stMarkdown li {font-size: 1.15rem; line-height: 1.5;}
.ev-chip {font-size: 1.5rem; padding: 6px 14px; border-width: 2px;}
.ev-meta {font-size: 0.95rem; color: #000;}
[data-testid="stDownloadButton"], .st-key-share {display: none;}
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
    vocab = build_vocab(enc.name, cfg.vocab_size, corpus.key, enc, corpus_ids)
    try:
        batch = batch_from_input(enc, vocab, cfg, lim)
    except ValueError as exc:
        st.error(str(exc))
        return None

    for b, sentence in enumerate(batch.sentences):
        st.markdown(chips_html(sentence, batch.cut[b]), unsafe_allow_html=True)
    notes(batch, vocab, cfg, corpus)

    wte, state = token_table(cfg.vocab_size, cfg.dim, cfg.seed)
    wpe = explorer.position_table(cfg.positions, cfg.dim, state)
    out = explorer.embed(batch, wte, wpe)

    B = batch.shape[0]
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
    view = explorer.sentence_view(batch, out, b)
    tok, pos, x, labels, hover = view.tok, view.pos, view.x, list(view.labels), list(view.hover)
    zmax = figures.shared_zmax(tok, pos, x)
    panels = [
        ("tok = wte(ids)", f"tok.shape = {explorer.shape_text(out.tok)}", tok, EXPLAIN_TOK),
        ("pos = wpe(arange(T))", f"pos.shape = {explorer.shape_text(out.pos)}", pos, EXPLAIN_POS),
        ("x = tok + pos", f"x.shape = {explorer.shape_text(out.x)}", x, EXPLAIN_SUM),
    ]
    for i, (title, shape, values, text) in enumerate(panels):
        # presentation mode: the chart takes the full width (its larger title needs it), text below
        left, right = (st.container(), st.container()) if style.presentation else st.columns([3, 1])
        left.plotly_chart(
            figures.embedding_heatmap(values, row_labels=labels, hover=hover, title=f"{title}  ·  {shape}",
                                      zmax=zmax, style=style),
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
    explorer_downloads(out, labels, b)
    return batch


def explorer_downloads(out: explorer.Embedded, labels: list[str], b: int) -> None:
    def files() -> dict[str, bytes]:
        named = {"tok": out.tok, "pos": out.pos.expand_as(out.tok), "x": out.x}
        data = {f"{k}.npy": export.to_npy(v) for k, v in named.items()}
        data |= {f"{k}_sentence{b}.csv": export.to_csv(v[b], row_labels=labels) for k, v in named.items()}
        return data

    st.download_button("Download these tensors (CSV + .npy)", lambda: export.zip_bundle(files()),
                       "embedviz-embeddings.zip", "application/zip", key="download_tensors", on_click="ignore")


def notes(batch: explorer.Batch, vocab: Vocab, cfg: EmbeddingConfig, corpus) -> None:
    for b, n in enumerate(batch.cut):
        if n:
            st.warning(f"Sentence {b} has {n + cfg.positions} tokens but the model has only "
                       f"{cfg.positions} learned position{'s' if cfg.positions > 1 else ''} (P): "
                       f"the last {n} {'were' if n > 1 else 'was'} cut.")
    if batch.n_unk:
        st.info(f"{batch.n_unk} token(s) have no row of their own in a {cfg.vocab_size:,}-row table and "
                f"share the <unk> row (rows go to the most frequent tokens of {corpus.title}).")
    if not batch.mask.all():
        st.caption("Shorter sentences are padded to the longest; padding is grey and is not real data.")


def tokenizer_view(tokenizer: bpe.BPE, corpus) -> None:
    """The merges our own BPE learned, and the typed sentence under several vocabulary sizes."""
    with st.expander(f"Your tokenizer: {tokenizer.vocab_size:,} tokens learned on {corpus.title}", expanded=True):
        st.caption(f"256 single bytes + {len(tokenizer.merges):,} merges, learned from the first "
                   f"{tokenizer.trained_chars:,} characters. Each merge joins the most frequent adjacent pair.")
        first = tokenizer.merges[:24]
        st.dataframe({"#": list(range(1, len(first) + 1)),
                      "merge": [f"{tokens.visible(a.decode('utf-8', 'backslashreplace'))} + "
                                f"{tokens.visible(b.decode('utf-8', 'backslashreplace'))}" for a, b in first]},
                     hide_index=True, height=240)
        sentence = (tokens.split_lines(st.session_state.get("text", "")) or [corpora.CLASSROOM_SENTENCE])[0]
        largest = bpe_largest(corpus.key, corpus)
        sizes = tuple(sorted({s for s in (256, 300, 500, 1000, 2000, 5000, tokenizer.vocab_size) if s <= largest}))
        for size, pieces in bpe_splits(corpus.key, sentence[:500], sizes, corpus):
            st.markdown(f"**V = {size:,}** · {len(pieces)} tokens")
            st.markdown(chips_html([explorer.Token(p, None, i) for i, p in enumerate(pieces)], 0, meta=False),
                        unsafe_allow_html=True)


# ---------------------------------------------------------------- training

@st.cache_resource
def trainer() -> jobs.Trainer:
    """One registry per server: trainings are shared between visitors and bounded in number."""
    lim = limits()
    return jobs.Trainer(max_running=lim.max_concurrent_trainings, max_kept=lim.max_kept_models,
                        max_seconds=lim.max_train_seconds, isolated=True, preload=PRELOAD)


@st.cache_data(show_spinner=False, max_entries=32)
def before_after(job_key: str, _wte0: np.ndarray, _wte1: np.ndarray, _view: space.Space):
    """UMAP of the drawn rows before and after training (the after-layout starts from, and comes
    back aligned to, the before-layout so the eye can follow each point), and their kNN agreement."""
    before = projection.project(_wte0[_view.rows])
    after = projection.project(_wte1[_view.rows], init=before.xy)
    return before, after, (_view.agreement(_wte0), _view.agreement(_wte1))


def training_controls(cfg: EmbeddingConfig, lim: Limits) -> tuple[ModelConfig, TrainConfig]:
    box = st.expander("Training settings") if st.session_state["presentation"] else st.container()
    c1, c2, c3, c4, c5, c6 = box.columns([3, 2, 2, 2, 2, 2])
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
    vocab = build_vocab(enc.name, cfg.vocab_size, corpus.key, enc, corpus_ids)
    rows = vocab.rows(corpus_ids)
    job = trainer().get(job_key(model_cfg, train_cfg, corpus, enc))
    pressed = st.button("Train", key="train", type="primary", disabled=job is not None and not job.finished,
                        help="Trained models are shared: the same settings on another screen reuse this run.")
    if pressed or (st.session_state.pop("_autotrain", False) and job is None):
        job = start_training(model_cfg, train_cfg, corpus, enc, rows)
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
    training_results(job, enc, corpus, vocab, batch, style)
    positions_section(job, model_cfg, train_cfg, corpus, enc, rows, style)


def job_key(model_cfg: ModelConfig, train_cfg: TrainConfig, corpus, enc) -> str:
    """Everything that determines a training run's result (training is deterministic)."""
    return repr((model_cfg, train_cfg, corpus.key, enc.name))


def start_training(model_cfg: ModelConfig, train_cfg: TrainConfig, corpus, enc, rows: np.ndarray) -> jobs.Job:
    return trainer().submit(job_key(model_cfg, train_cfg, corpus, enc),
                            functools.partial(training.train, model_cfg, train_cfg, rows))


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


@st.fragment(run_every=1.0)
def wait_for(job: jobs.Job, text: str) -> None:
    if job.finished:
        st.rerun()
    st.info(text)


def history_of(job: jobs.Job) -> list[tuple[int, float, float | None]]:
    return [(p.step, p.train_loss, p.held_out_loss) for p in job.history]


def training_results(job: jobs.Job, enc, corpus, vocab, batch, style) -> None:
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
    (_, wte0, _), (_, wte1, _) = result.snapshots[0], result.snapshots[-1]
    with st.spinner("Projecting the embedding space (UMAP)…"):
        before, after, (agree0, agree1) = before_after(job.key, wte0, wte1, view)

    if view.scoreable:
        m1, m2, m3 = st.columns(3)
        m1.metric("Neighbours sharing a class, before", f"{agree0:.2f}")
        m2.metric("… after training", f"{agree1:.2f}", delta=f"{agree1 - agree0:+.2f}")
        m3.metric("Chance level", f"{view.chance():.2f}")
        st.caption("For each token, the share of its 5 nearest neighbours (cosine, in all d dimensions, "
                   "not in the 2D picture) that have the same class.")
    else:
        st.info("Too few of the drawn tokens have a class to score how well classes cluster: "
                "raise the vocabulary size.")

    highlight = highlighted_points(view, batch)
    colours = figures.class_colors(view.classes, style=style)
    common = dict(tokens=view.tokens, ids=view.ids, rows=view.rows.tolist(),
                  frequencies=view.frequencies.tolist(), classes=view.classes, class_colors=colours,
                  highlight=highlight, style=style)
    left, right = st.columns(2)
    left.plotly_chart(figures.embedding_scatter(before.xy, title="wte at initialisation (random)",
                                                note=before.note, **common),
                      key="scatter_before", theme=None)
    right.plotly_chart(figures.embedding_scatter(after.xy, title=f"wte after {result.history[-1][0]} steps",
                                                 note=after.note, **common),
                       key="scatter_after", theme=None)
    if view.note:
        st.caption(view.note)

    nearest_neighbours(view, wte0, wte1, batch)
    if not style.presentation:
        training_downloads(job, view, vocab, corpus, batch)
    if st.toggle("Watch the space organise, step by step", key="show_evolution",
                 help="One UMAP per snapshot taken during training, each started from the one before."):
        evolution_view(job, view, style)


def training_downloads(job: jobs.Job, view: space.Space, vocab: Vocab, corpus, batch) -> None:
    """Files are built only when a button is pressed."""
    result = job.result

    def files() -> dict[str, bytes]:
        return export.training_files(
            snapshots=result.snapshots, row_labels=vocab.labels(), drawn_rows=view.rows,
            classes=view.classes, frequencies=view.frequencies, model=result.model,
            batch_rows=None if batch is None else batch.rows,
            metadata={"settings": job.key[:2000], "corpus": corpus.key})

    with st.expander("Download the trained space and model"):
        st.markdown("`wte`/`wpe` before and after training (CSV and `.npy`), the sum `x` for your text "
                    "before and after (`.npy`, shape (B, T, d)), the TensorFlow Embedding "
                    "Projector pair (load `vectors.tsv` and `metadata.tsv` at projector.tensorflow.org) "
                    "and the model as safetensors.")
        c1, c2, c3 = st.columns(3)
        c1.download_button("Everything (.zip)", lambda: export.zip_bundle(files()), "embedviz-trained.zip",
                           "application/zip", key="download_all", on_click="ignore")
        c2.download_button("Projector pair (.zip)", lambda: export.zip_bundle(
            {k.split("/")[-1]: v for k, v in files().items() if k.startswith("projector/")}),
            "embedviz-projector.zip", "application/zip", key="download_projector", on_click="ignore")
        c3.download_button("Model (.safetensors)", lambda: files()["model.safetensors"], "embedviz-model.safetensors",
                           "application/octet-stream", key="download_model", on_click="ignore")


@st.cache_data(show_spinner=False, max_entries=8)
def evolution_frames(job_key: str, _snapshots: list, _view: space.Space) -> tuple[list, list]:
    return space.evolution(_snapshots, _view)


def evolution_view(job: jobs.Job, view: space.Space, style) -> None:
    snaps = job.result.snapshots
    with st.spinner(f"Projecting {len(snaps)} snapshots…"):
        frames, agreement = evolution_frames(job.key, snaps, view)
    colours = figures.class_colors(view.classes, style=style)
    left, right = st.columns([3, 2])
    left.plotly_chart(
        figures.evolution_scatter(frames, tokens=view.tokens, classes=view.classes, class_colors=colours,
                                  style=style, title="wte during training (press play)"),
        key="evolution", theme=None)
    if view.scoreable:
        right.plotly_chart(
            figures.agreement_curve([f[0] for f in frames], agreement, chance=view.chance(), style=style),
            key="agreement_curve", theme=None)


EXPLAIN_POSITIONS = (
    "GPT-2 **learns** its positional table: it starts as random noise (every position unlike every "
    "other) and training shapes it so that nearby positions get similar vectors — a band along the "
    "diagonal. The original Transformer used **sinusoidal** positions instead: fixed sine and cosine "
    "waves of many wavelengths, the same for every model, similar for nearby positions by construction "
    "and defined for any length. The learned table can only cover the P positions it was trained on."
)


def positions_section(job: jobs.Job, model_cfg: ModelConfig, train_cfg: TrainConfig, corpus, enc,
                      rows: np.ndarray, style) -> None:
    st.markdown("#### Positions: learned vs sinusoidal")
    st.markdown(EXPLAIN_POSITIONS)
    (_, _, wpe0), (_, _, wpe1) = job.result.snapshots[0], job.result.snapshots[-1]
    emb = model_cfg.embedding
    sinusoid = model.sinusoidal_positions(emb.positions, emb.dim).numpy()
    learned = model_cfg.positional == "learned"
    tables = [("learned, start", wpe0, "pos_before")] if learned else []
    tables += [("learned, trained" if learned else "sinusoidal (this run)", wpe1, "pos_after")]
    if learned:
        tables.append(("sinusoidal", sinusoid, "pos_sinusoid"))
    st.caption("Top: cosine similarity of every position with every other. Bottom: the tables themselves.")
    for col, (title, table, key) in zip(st.columns(len(tables)), tables):
        col.plotly_chart(figures.similarity_heatmap(neighbours.cosine_matrix(table), title=title,
                                                    style=style), key=key, theme=None)
        col.plotly_chart(figures.embedding_heatmap(table, title=title, zmax=figures.shared_zmax(table),
                                                   style=style), key=key + "_table", theme=None)

    other = dataclasses.replace(model_cfg, positional="sinusoidal" if learned else "learned")
    other_job = trainer().get(job_key(other, train_cfg, corpus, enc))
    if other_job is None or other_job.state == jobs.FAILED:
        if st.button(f"Also train with {other.positional} positions to compare the losses",
                     key="train_other"):
            start_training(other, train_cfg, corpus, enc, rows)
            st.rerun()
    elif not other_job.finished:
        wait_for(other_job, f"Training with {other.positional} positions to compare…")
    elif other_job.result is not None:
        runs = {model_cfg.positional: job.result.history, other.positional: other_job.result.history}
        st.plotly_chart(figures.loss_comparison(runs, style=style), key="loss_comparison", theme=None)


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
    enc, tokenizer, corpus, corpus_ids, cfg = sidebar_controls(lim)
    style = figures.style(presentation=st.session_state["presentation"])
    st.markdown(CHIP_CSS + (PRESENTATION_CSS if style.presentation else ""), unsafe_allow_html=True)
    st.title("How a GPT turns text into vectors")
    st.caption("tiktoken splits text into tokens; `nn.Embedding` tables turn them into vectors.")
    tab_embed, tab_train = st.tabs(["1 · Embeddings", "2 · Training"])
    with tab_embed:
        batch = explorer_section(enc, corpus, corpus_ids, cfg, lim, style)
        if tokenizer is not None:
            tokenizer_view(tokenizer, corpus)
    with tab_train:
        training_section(enc, corpus, corpus_ids, cfg, batch, lim, style)
    share_link()
    warm_up()  # after the first page is drawn, so the first visitor does not wait for it


def share_link() -> None:
    """Keep the address bar in step with the settings and offer the link to copy."""
    params, left_out = share.to_query(st.session_state, DEFAULTS)
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)
    base = (st.context.url or "http://localhost:8501/").split("?")[0]
    box = st.sidebar.container(key="share")
    box.markdown("### Share this view")
    box.code(base + ("?" + urlencode(params) if params else ""), language=None, wrap_lines=True)
    box.caption("Copy the link (button at its right): it opens this exact view, the same numbers"
                       " and the same trained model." + (" Not included: " + "; ".join(left_out) if left_out else ""))


# Training processes re-import this file as "__mp_main__" (multiprocessing's rule for the main
# module); the guard keeps them from drawing the page. Streamlit runs it as "__main__".
if __name__ == "__main__":
    main()

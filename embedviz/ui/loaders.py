"""Everything the page caches, shared by every visitor of one server: read-only once returned.

Each cache is keyed by what its arguments *are*: a corpus by its key, an encoding by its name, a
training result by the fingerprint of its weights, a drawn space by what it was drawn from.
"""
from __future__ import annotations

import threading

import numpy as np
import streamlit as st
import tiktoken

from embedviz import bpe, corpus as corpora, explorer, jobs, projection, space, tokens
from embedviz.config import limits
from embedviz.corpus import Corpus
from embedviz.space import Space
from embedviz.training import TrainResult
from embedviz.vocab import Vocab

HASH = {
    Corpus: lambda c: c.key,
    tiktoken.Encoding: lambda e: e.name,  # our own BPE's names carry the corpus hash and size
    TrainResult: lambda r: r.fingerprint,
    Space: lambda s: s.key,
}


@st.cache_resource(show_spinner=False)
def encoding(name: str) -> tiktoken.Encoding:
    return tokens.load_encoding(name)


@st.cache_resource(show_spinner="Preparing the corpus…", max_entries=8)
def built_in_corpus(kind: str, encoding_name: str) -> Corpus:
    """A built-in corpus (the toy world's words are picked to be single tokens of the encoding)."""
    if kind == "toy":
        return corpora.toy_world(encoding(encoding_name))
    if kind == "order":
        return corpora.order_world(encoding(encoding_name))
    return corpora.python_docs()


@st.cache_resource(show_spinner="Reading the file…", max_entries=4)
def uploaded_corpus(data: bytes, filename: str) -> Corpus:
    """An upload, keyed by its bytes and name (Streamlit hashes the bytes)."""
    return corpora.from_upload(data, filename=filename, max_bytes=limits().max_upload_bytes)


@st.cache_resource(show_spinner="Reading the word classes…", max_entries=4, hash_funcs=HASH)
def classed_corpus(corpus: Corpus, data: bytes, filename: str) -> tuple[Corpus, corpora.ClassCoverage]:
    """The corpus with an uploaded word,class file's classes (keyed by the corpus and the file's bytes and
    name), and how many of its words they cover."""
    classes = corpora.word_classes_from_upload(data, filename=filename, max_bytes=limits().max_upload_bytes)
    classed = corpora.with_word_classes(corpus, word_classes=classes)
    return classed, corpora.class_coverage(classed)


@st.cache_resource(show_spinner="Tokenising the corpus…", max_entries=8, hash_funcs=HASH)
def corpus_ids(enc: tiktoken.Encoding, corpus: Corpus) -> np.ndarray:
    """(N,) token ids of the whole corpus."""
    return np.asarray(tokens.encode(enc, corpus.text), dtype=np.int64)


@st.cache_resource(show_spinner=False, max_entries=8, hash_funcs=HASH)
def vocab(enc: tiktoken.Encoding, vocab_size: int, corpus: Corpus) -> Vocab:
    """The table's rows: the corpus's most frequent tokens when V is below the encoding's size."""
    return Vocab.build(enc, vocab_size, reference_ids=corpus_ids(enc, corpus))


@st.cache_resource(show_spinner=False, max_entries=8, hash_funcs=HASH)
def corpus_rows(enc: tiktoken.Encoding, vocab_size: int, corpus: Corpus) -> np.ndarray:
    """(N,) table rows of the corpus: what the tiny GPT trains on."""
    return vocab(enc, vocab_size, corpus).rows(corpus_ids(enc, corpus))


@st.cache_resource(show_spinner="Training a BPE tokenizer on the corpus…", max_entries=4, hash_funcs=HASH)
def bpe_full(corpus: Corpus) -> bpe.BPE:
    """One tokenizer per corpus at its largest size; smaller sizes are exact prefixes of its merges."""
    return bpe.train_largest(corpus.text)


@st.cache_resource(show_spinner=False, max_entries=8, hash_funcs=HASH)
def bpe_tokenizer(corpus: Corpus, vocab_size: int) -> bpe.BPE:
    return bpe_full(corpus).truncate(vocab_size)


@st.cache_resource(show_spinner="Creating the embedding table…", max_entries=2)
def token_table(vocab_size: int, dim: int, seed: int):
    """wte is the only large tensor; two entries make moving a slider back and forth instant."""
    return explorer.token_table(vocab_size, dim, seed)


@st.cache_data(show_spinner=False, max_entries=32, hash_funcs=HASH)
def before_after(result: TrainResult, view: Space):
    """UMAP of the drawn rows before and after training (the after-layout starts from, and comes
    back aligned to, the before-layout so the eye can follow each point), and their kNN agreement."""
    wte0, wte1 = result.snapshots[0].wte, result.snapshots[-1].wte
    before = projection.project(wte0[view.rows])
    after = projection.project(wte1[view.rows], init=before.xy)
    return before, after, (view.agreement(wte0), view.agreement(wte1))


@st.cache_data(show_spinner=False, max_entries=8, hash_funcs=HASH)
def evolution_frames(result: TrainResult, view: Space) -> tuple[list, list]:
    return space.evolution(result.snapshots, view)


@st.cache_resource
def registry() -> jobs.JobRegistry:
    """One registry per server: trainings are shared between visitors and bounded in number."""
    lim = limits()
    return jobs.JobRegistry(max_running=lim.max_concurrent_trainings, max_queued=lim.max_queued_trainings,
                            max_kept=lim.max_kept_models, max_seconds=lim.max_train_seconds,
                            abandon_after_s=lim.abandon_after_s)


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """Once per server, in the background: start the training fork server (torch loaded once) and
    load umap's compiled code, before anyone presses Train."""
    def work() -> None:
        jobs.warm_up()
        projection.warm_up()

    thread = threading.Thread(target=work, name="embedviz-warm-up", daemon=True)
    thread.start()
    return thread

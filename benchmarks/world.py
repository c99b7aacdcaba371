"""The toy world as the app sets it up (encoding, corpus, table rows, the drawn rows), shared by the
benchmark's sections, and the kNN agreement that tells when its space has organised."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedviz.config import EmbeddingConfig, ProjectionConfig

AGREEMENT = 0.8  # the kNN agreement that counts as "the space has organised"


@dataclass(frozen=True)
class ToyWorld:
    enc: Any  # tiktoken.Encoding
    corpus: Any  # embedviz.corpus.Corpus
    ids: np.ndarray  # (N,) tiktoken ids of the corpus
    vocab: Any  # embedviz.vocab.Vocab with the default V
    rows: np.ndarray  # (N,) table rows of the corpus: what training sees
    view: Any  # embedviz.space.Space: the rows drawn and scored, as the app selects them


@functools.lru_cache(maxsize=1)
def toy_world() -> ToyWorld:
    from embedviz import corpus, space, tokens
    from embedviz.vocab import Vocab

    enc = tokens.load_encoding("cl100k_base")
    world = corpus.toy_world(enc)
    ids = np.asarray(enc.encode(world.text, disallowed_special=()), dtype=np.int64)
    vocab = Vocab.build(enc, EmbeddingConfig.vocab_size, reference_ids=ids)
    view = space.select(vocab, world, enc, max_points=ProjectionConfig.max_points)
    return ToyWorld(enc, world, ids, vocab, vocab.rows(ids), view)


def agreement(wte: np.ndarray, view: Any) -> float:
    """5-NN class agreement of the drawn rows, exactly as the training tab computes it."""
    from embedviz.neighbours import knn_agreement

    return knn_agreement(np.asarray(wte)[view.rows], view.scored, k=5)


def sentence_of(enc: Any, n_tokens: int, *, skip: int = 0) -> str:
    """One line of toy-world text that encodes to exactly n_tokens tokens (skip: tokens passed over)."""
    flat = " ".join(toy_world().corpus.text.split())
    ids = enc.encode(flat)
    for k in range(n_tokens, n_tokens + 8):
        text = enc.decode(ids[skip:skip + k]).strip()
        if len(enc.encode(text)) == n_tokens:
            return text
    raise AssertionError(f"no cut of the toy world has exactly {n_tokens} tokens")


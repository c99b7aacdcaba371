"""The embedding table's rows: which tiktoken id each row holds, <unk>, corpus frequencies.

With a vocabulary at least as large as the encoding's, row == tiktoken id (GPT-2 style).
With a smaller one, rows 0..V-2 are the V-1 most frequent tokens of a reference text and
row V-1 is <unk>, which every other token falls into.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tiktoken

from embedviz.tokens import token_label

UNK = "<unk>"
# Stops of the vocabulary-size slider: round sizes and the sizes of real tokenizers (GPT-2's 50,257).
SIZE_STOPS = (2, 3, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 200, 256, 300, 400, 500, 512, 1000,
              1024, 2000, 2048, 4096, 5000, 8192, 10000, 16384, 20000, 32768, 50257, 65536)


def size_stops(*, n_vocab: int, current: int) -> tuple[int, ...]:
    """Slider stops for a tiktoken encoding: the round sizes, the encoding's own size and `current`
    (a value that arrived in a link stays selectable)."""
    return tuple(sorted({*SIZE_STOPS, n_vocab, current}))


def bpe_size_stops(*, smallest: int, largest: int) -> tuple[int, ...]:
    """Slider stops for a tokenizer trained to exactly V tokens: sizes it can be cut to, ends included."""
    return tuple(sorted({*(s for s in SIZE_STOPS if smallest < s < largest), smallest, largest}))


def nearest(stops: Sequence[int], value: int) -> int:
    """The stop closest to value (the smaller one on a tie)."""
    return min(stops, key=lambda s: (abs(s - value), s))


class Vocab:
    """Maps tiktoken ids to table rows and back. Immutable after construction."""

    def __init__(self, *, size: int, row_ids: np.ndarray, frequency: np.ndarray,
                 enc: tiktoken.Encoding) -> None:
        assert row_ids.shape == frequency.shape == (size,)
        self.size = size
        self._enc = enc
        # row -> tiktoken id; -1 for <unk> and for rows past the encoding's ids
        self.row_ids = row_ids
        self.row_ids.setflags(write=False)
        self.frequency = frequency
        self.frequency.setflags(write=False)
        self.identity = size >= enc.n_vocab
        self.unk_row: int | None = None if self.identity else size - 1
        if not self.identity:
            lookup = np.full(enc.n_vocab, size - 1, dtype=np.int64)
            known = row_ids >= 0
            lookup[row_ids[known]] = np.flatnonzero(known)
            self._lookup = lookup

    @classmethod
    def build(cls, enc: tiktoken.Encoding, vocab_size: int, *,
              reference_ids: Sequence[int] | np.ndarray) -> "Vocab":
        """Rows for a table of `vocab_size` rows, chosen by frequency in `reference_ids`."""
        assert vocab_size >= 2, "EmbeddingConfig.validate() refuses smaller vocabularies"
        ref = np.asarray(reference_ids, dtype=np.int64).reshape(-1)
        counts = np.bincount(ref, minlength=enc.n_vocab) if ref.size else np.zeros(enc.n_vocab, np.int64)
        if vocab_size >= enc.n_vocab:
            row_ids = np.arange(vocab_size, dtype=np.int64)
            row_ids[enc.n_vocab:] = -1
            frequency = np.zeros(vocab_size, dtype=np.int64)
            frequency[: enc.n_vocab] = counts[: enc.n_vocab]
            return cls(size=vocab_size, row_ids=row_ids, frequency=frequency, enc=enc)
        # most frequent first; ties and never-seen ids by ascending id (a stable sort keeps id order)
        order = np.argsort(-counts, kind="stable")
        order = _first_defined(enc, order, vocab_size - 1)
        seen = counts[order]
        # an encoding with gaps in its ids may not fill every row: the rest stay unused (-1)
        unused = vocab_size - 1 - order.size
        row_ids = np.concatenate([order, np.full(unused + 1, -1)]).astype(np.int64)
        frequency = np.concatenate([seen, np.zeros(unused), [ref.size - seen.sum()]]).astype(np.int64)
        return cls(size=vocab_size, row_ids=row_ids, frequency=frequency, enc=enc)

    def rows(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Table rows of tiktoken ids (<unk> row where the vocabulary has none)."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.identity:
            return ids.copy()
        return self._lookup[ids]

    def token_id(self, row: int) -> int | None:
        """The tiktoken id a row holds; None for <unk> and unused rows."""
        tid = int(self.row_ids[row])
        return None if tid < 0 else tid

    def label(self, row: int) -> str:
        tid = self.token_id(row)
        if tid is None:
            return UNK if row == self.unk_row else f"<unused {row}>"
        return token_label(self._enc, tid)

    def labels(self) -> list[str]:
        return [self.label(r) for r in range(self.size)]


def _defined(enc: tiktoken.Encoding, token_id: int) -> bool:
    try:
        enc.decode_single_token_bytes(token_id)
        return True
    except KeyError:
        return False


def _first_defined(enc: tiktoken.Encoding, order: np.ndarray, n: int) -> np.ndarray:
    """The first n ids of `order` that the encoding defines (cl100k_base has gaps in its id range)."""
    picked: list[int] = []
    for tid in order:
        if _defined(enc, int(tid)):
            picked.append(int(tid))
            if len(picked) == n:
                break
    return np.asarray(picked, dtype=np.int64)

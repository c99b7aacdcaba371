"""Which rows of a trained table to draw and score, with their labels and classes.

Rows that never occur in the corpus (and <unk>) are left out of the pictures: they carry no
meaning to organise. Above `max_points` rows only the most frequent are kept, with a note.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import tiktoken

from embedviz import neighbours, projection
from embedviz.corpus import Corpus, token_class
from embedviz.tokens import token_bytes
from embedviz.vocab import Vocab

if TYPE_CHECKING:  # training imports torch, which drawing and scoring rows do not need
    from embedviz.training import Snapshot


@dataclass(frozen=True)
class Space:
    rows: np.ndarray  # (N,) table rows drawn, most frequent first
    tokens: tuple[str, ...]  # readable label per row
    ids: tuple[int | None, ...]  # tiktoken id per row
    frequencies: np.ndarray  # (N,) occurrences in the corpus
    classes: tuple[str, ...]  # colour class per row
    scored: tuple[str | None, ...]  # class used for kNN agreement; None = not scored
    note: str | None  # said under the plots when rows were left out
    key: str = ""  # what the selection was made from (corpus, encoding, vocabulary size): for caches

    @property
    def n_scored(self) -> int:
        return sum(c is not None for c in self.scored)

    @property
    def scoreable(self) -> bool:
        """kNN agreement needs at least two rows with a class (a tiny vocabulary may have none)."""
        return self.n_scored >= 2

    def agreement(self, table: np.ndarray) -> float | None:
        """5-NN class agreement of the drawn rows of `table` (V, d), or None when not scoreable."""
        return neighbours.knn_agreement(table[self.rows], self.scored, k=5) if self.scoreable else None

    def chance(self) -> float | None:
        return neighbours.chance_agreement(self.scored) if self.scoreable else None

    def indices_of(self, rows: Iterable[int]) -> list[int]:
        """Indices (into the drawn rows, ascending) of those table rows that are drawn."""
        where = {int(r): i for i, r in enumerate(self.rows)}
        return sorted({where[int(r)] for r in rows if int(r) in where})


def select(vocab: Vocab, corpus: Corpus, enc: tiktoken.Encoding, *, max_points: int) -> Space:
    """The rows worth drawing: tokens that occur in the corpus, most frequent first."""
    seen = np.flatnonzero((vocab.frequency > 0) & (vocab.row_ids >= 0))
    seen = seen[np.argsort(-vocab.frequency[seen], kind="stable")]
    note = None
    if seen.size > max_points:
        note = (f"The {max_points:,} most frequent of {seen.size:,} tokens that occur in the corpus "
                "are drawn.")
        seen = seen[:max_points]
    ids = tuple(vocab.token_id(int(r)) for r in seen)
    texts = [(token_bytes(enc, i) or b"").decode("utf-8", errors="replace") for i in ids]
    classes = tuple(token_class(t, corpus.word_classes) for t in texts)
    # Only a corpus that knows its words' classes is scored (function words are not). Scoring token
    # kinds instead (word / number / punctuation) measured little but chance: Python docs 0.63 before
    # and after training, chance 0.63.
    known = set(corpus.word_classes.values()) if corpus.word_classes else set()
    scored = tuple(c if c in known else None for c in classes)
    return Space(
        rows=seen,
        tokens=tuple(vocab.label(int(r)) for r in seen),
        ids=ids,
        frequencies=vocab.frequency[seen],
        classes=classes,
        scored=scored,
        note=note,
        key=f"{corpus.key}|{enc.name}|{vocab.size}|{max_points}",
    )


def evolution(snapshots: Sequence[Snapshot], space: Space
              ) -> tuple[list[tuple[int, np.ndarray]], list[float | None]]:
    """A 2D layout per training snapshot, each started from (and aligned to) the one before so
    points move smoothly, and the kNN class agreement per snapshot in all d dimensions."""
    frames: list[tuple[int, np.ndarray]] = []
    agreement: list[float | None] = []
    previous = None
    spread = None
    for snap in snapshots:
        xy = projection.project(snap.wte[space.rows], init=previous).xy  # (N, 2)
        # each map is aligned to the one before with a fitted scale, which shrinks a little each
        # time the maps differ: without this the last frame was a dot 3 % of the first's size
        xy = xy - xy.mean(axis=0)
        size = float(np.sqrt((xy**2).sum(axis=1).mean())) or 1.0
        spread = spread or size
        previous = (xy * (spread / size)).astype(np.float32)
        frames.append((snap.step, previous))
        agreement.append(space.agreement(snap.wte))
    return frames, agreement

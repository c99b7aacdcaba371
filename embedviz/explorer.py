"""From typed sentences (or raw table rows) to the tensors of a GPT's first layer.

`tables` makes wte and wpe exactly as `torch.manual_seed(seed); nn.Embedding(V, d);
nn.Embedding(P, d)` would, but from a private generator, so concurrent sessions of a server
cannot disturb each other's numbers. `embed` computes wte(ids) + wpe(arange(T)).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import tiktoken
import torch

from embedviz.config import EmbeddingConfig, Limits, limits
from embedviz.tokens import encode, split_lines, token_label
from embedviz.vocab import Vocab

PAD_ROW = 0  # the row padded positions are looked up in; they are masked everywhere they are shown


@dataclass(frozen=True)
class Token:
    label: str  # readable text of the token (whitespace made visible)
    token_id: int | None  # tiktoken id; None for raw rows that hold no token
    row: int  # row of the embedding table
    unk: bool = False  # the vocabulary has no row for this token: it uses <unk>


@dataclass(frozen=True)
class Batch:
    """B sentences as table rows, padded to the longest (after cutting to P positions)."""

    sentences: tuple[tuple[Token, ...], ...]
    rows: np.ndarray  # (B, T) int64; padding holds PAD_ROW
    mask: np.ndarray  # (B, T) bool; True where a real token is
    cut: tuple[int, ...]  # tokens cut from each sentence because it was longer than P
    mode: str  # "text" or "ids"

    @property
    def n_unk(self) -> int:
        return sum(t.unk for s in self.sentences for t in s)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows.shape


def _check_text(text: str, lim: Limits) -> None:
    if len(text) > lim.max_text_chars:
        raise ValueError(
            f"The text has {len(text):,} characters; the limit is {lim.max_text_chars:,}. "
            "Paste a shorter passage."
        )


def _pad(sentences: list[list[Token]], *, positions: int, dim: int, mode: str, lim: Limits) -> Batch:
    if not sentences:
        raise ValueError("There is nothing to embed: type at least one sentence.")
    cut = tuple(max(0, len(s) - positions) for s in sentences)
    sentences = [s[:positions] for s in sentences]
    B, T = len(sentences), max(len(s) for s in sentences)
    # tok and x are (B, T, d) each, and the page copies and downloads them: bounded before any is made
    if B * T * dim > lim.max_batch_floats:
        raise ValueError(
            f"{B} sentence{'s' if B > 1 else ''} of up to {T:,} tokens at dimension d = {dim:,} make tensors of "
            f"{B:,} x {T:,} x {dim:,} = {B * T * dim:,} numbers; the limit here is {lim.max_batch_floats:,}. "
            "Use fewer or shorter sentences, fewer positions P or a smaller dimension d."
        )
    rows = np.full((B, T), PAD_ROW, dtype=np.int64)  # (B, T)
    mask = np.zeros((B, T), dtype=bool)  # (B, T)
    for b, s in enumerate(sentences):
        rows[b, : len(s)] = [t.row for t in s]
        mask[b, : len(s)] = True
    return Batch(tuple(tuple(s) for s in sentences), rows, mask, cut, mode)


def from_text(text: str, *, enc: tiktoken.Encoding, vocab: Vocab, positions: int, dim: int = 1,
              lim: Limits | None = None) -> Batch:
    """Each non-blank line is one sentence, tokenised by tiktoken and mapped to table rows.

    `dim` is the width the batch will be embedded at: B x T x dim numbers must stay within
    `lim.max_batch_floats`. A lone surrogate in `text` is read as U+FFFD (see `well_formed`).
    """
    lim = lim or limits()
    _check_text(text, lim)
    lines = split_lines(well_formed(text))
    if len(lines) > lim.max_sentences:
        raise ValueError(f"{len(lines)} sentences is too many; the limit is {lim.max_sentences}.")
    sentences = []
    for line in lines:
        ids = encode(enc, line)
        rows = vocab.rows(ids) if ids else []
        sentences.append([
            Token(token_label(enc, i), i, int(r), unk=int(r) == vocab.unk_row)
            for i, r in zip(ids, rows)
        ])
    sentences = [s for s in sentences if s]
    return _pad(sentences, positions=positions, dim=dim, mode="text", lim=lim)


def parse_ids(text: str, *, lim: Limits | None = None) -> list[list[int]]:
    """Parse `[[5, 20, 33, 2]]`, `[5, 20, 33, 2]` or `5 20 33 2` into rows of integers."""
    lim = lim or limits()
    _check_text(text, lim)
    stripped = text.strip()
    if not stripped:
        raise ValueError("Type some token ids, for example [[5, 20, 33, 2]].")
    if stripped[0] != "[":
        stripped = "[" + ",".join(stripped.replace(",", " ").split()) + "]"
    try:
        value = json.loads(stripped, parse_int=_parse_id)
    except (json.JSONDecodeError, RecursionError):
        raise ValueError(
            "Token ids must be whole numbers in brackets, for example [[5, 20, 33, 2]] "
            "(one inner list per sentence)."
        ) from None
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        value = [value]
    if not (isinstance(value, list) and value and all(isinstance(r, list) for r in value)):
        raise ValueError("Token ids must be a list of lists of whole numbers, like [[5, 20, 33, 2]].")
    for row in value:
        if not row:
            raise ValueError("Every sentence needs at least one id; remove the empty [ ].")
        for v in row:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{json.dumps(v)[:40]} is not a whole number; ids are integers like 5.")
    if len(value) > lim.max_sentences:
        raise ValueError(f"{len(value)} sentences is too many; the limit is {lim.max_sentences}.")
    return value


_MAX_ID_DIGITS = 30  # far above any vocabulary; Python refuses to convert more than 4,300 digits anyway


def _parse_id(digits: str) -> int:
    """json's integer parser, refusing numbers too long to be any id before Python converts them."""
    count = len(digits.lstrip("-"))
    if count > _MAX_ID_DIGITS:
        raise ValueError(
            f"Id {digits[:8]}…({count:,} digits) is too large; ids are row numbers such as 5 or 33."
        )
    return int(digits)


def from_ids(text: str, *, vocab: Vocab, positions: int, dim: int = 1, lim: Limits | None = None) -> Batch:
    """Raw rows typed as in the textbook: each id must be a row of the table (0 <= id < V); `dim` as
    in `from_text`."""
    lim = lim or limits()
    rows = parse_ids(text, lim=lim)
    for row in rows:
        for v in row:
            if not 0 <= v < vocab.size:
                raise ValueError(
                    f"Id {v} is outside the vocabulary: with {vocab.size:,} rows, ids go from 0 to "
                    f"{vocab.size - 1:,}. Raise the vocabulary size or use a smaller id."
                )
    # in the textbook an id *is* a row: no tokenizer is involved, so no token text and no <unk>
    sentences = [[Token(str(v), None, v) for v in r] for r in rows]
    return _pad(sentences, positions=positions, dim=dim, mode="ids", lim=lim)


def well_formed(text: str) -> str:
    """`text` with each lone UTF-16 surrogate (half of an emoji, U+D800-U+DFFF) replaced by U+FFFD.

    Python strings can hold them but UTF-8 cannot: Streamlit could not send such text back to the
    browser (streamlit/streamlit#5916), and a browser that sends one has its message dropped by the
    server ("DecodeError: String field had bad UTF-8"), so that tab waits for a rerun that never comes.
    """
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def tables(cfg: EmbeddingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(wte (V, d), wpe (P, d)) equal to nn.Embedding(V, d), nn.Embedding(P, d) after manual_seed."""
    wte, state = token_table(cfg.vocab_size, cfg.dim, cfg.seed)
    return wte, position_table(cfg.positions, cfg.dim, state)


def token_table(vocab_size: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """wte and the generator state after it, from which wpe continues (see position_table).

    Split in two so a cache can keep the large wte while P changes.
    """
    g = torch.Generator().manual_seed(seed)
    wte = torch.empty(vocab_size, dim).normal_(generator=g)  # (V, d), nn.Embedding's N(0, 1) init
    return wte, g.get_state()


def position_table(positions: int, dim: int, state: torch.Tensor) -> torch.Tensor:
    g = torch.Generator()
    g.set_state(state)
    return torch.empty(positions, dim).normal_(generator=g)  # (P, d)


@dataclass(frozen=True)
class Embedded:
    tok: torch.Tensor  # (B, T, d) wte(ids)
    pos: torch.Tensor  # (T, d)    wpe(arange(T))
    x: torch.Tensor  # (B, T, d) tok + pos, what the first block receives


def embed(batch: Batch, wte: torch.Tensor, wpe: torch.Tensor) -> Embedded:
    """The first layer of GPT-2: token embedding plus learned positional embedding."""
    T = batch.rows.shape[1]
    assert T <= wpe.shape[0], "sentences are cut to P positions before embedding"
    ids = torch.from_numpy(batch.rows)  # (B, T)
    tok = torch.nn.functional.embedding(ids, wte)  # (B, T, d)
    pos = torch.nn.functional.embedding(torch.arange(T), wpe)  # (T, d)
    return Embedded(tok, pos, tok + pos)  # (B, T, d) + (T, d) broadcasts over B


@dataclass(frozen=True)
class SentenceView:
    """One sentence of the batch as the page draws it: padded positions of tok and x are NaN, never
    data; pos keeps every row, since wpe(arange(T)) holds real rows at every position."""

    tok: np.ndarray  # (T, d)
    pos: np.ndarray  # (T, d) wpe(arange(T)), the same for every sentence
    x: np.ndarray  # (T, d)
    labels: tuple[str, ...]  # token text per position ("pad" for padding)
    hover: tuple[dict, ...]  # token, id, row, position, pad per position


def sentence_view(batch: Batch, out: Embedded, b: int) -> SentenceView:
    mask = batch.mask[b]  # (T,)
    tok = out.tok[b].detach().numpy().copy()  # (T, d)
    pos = np.broadcast_to(out.pos.detach().numpy(), tok.shape).copy()  # (T, d)
    x = out.x[b].detach().numpy().copy()  # (T, d)
    for a in (tok, x):  # wpe(arange(T)) are real rows at every position; only tok and x are padding
        a[~mask] = np.nan
    labels, hover = [], []
    for p, real in enumerate(mask):
        t = batch.sentences[b][p] if real else None
        labels.append(t.label if t else "pad")
        hover.append({"token": t.label if t else "pad", "id": t.token_id if t else None,
                      "row": t.row if t else None, "position": p, "pad": not real})
    return SentenceView(tok, pos, x, tuple(labels), tuple(hover))


def shape_text(shape: torch.Tensor | tuple[int, ...]) -> str:
    """A shape as torch prints it, e.g. torch.Size([1, 4, 16])."""
    return str(shape.shape if isinstance(shape, torch.Tensor) else torch.Size(shape))

"""Your own tokenizer: a byte-level BPE learned from a corpus, returned as a real tiktoken.Encoding.

HF `tokenizers` learns the merges (GPT-2's pre-tokenisation, no normaliser, no special tokens); they become
tiktoken ranks: the 256 single bytes as ids 0..255, then one id per merge in the order it was learned, so
n_vocab is exactly the size asked for. Special tokens, saving to disk and non-UTF-8 input are not handled.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import tiktoken
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from embedviz.tokens import token_label

MIN_VOCAB_SIZE = 256  # the single bytes alone: every text still encodes
MAX_VOCAB_SIZE = 50_000  # about GPT-2's 50,257; HF trains it in well under a second on 500k characters
DEFAULT_MAX_CHARS = 500_000  # ~0.3 s of training on 2 cores; longer corpora are learned from their start

# GPT-2's pattern as tiktoken writes it (r50k_base). HF's ByteLevel pre-tokenizer uses GPT-2's original
# spelling ('s|'t|...|\s+(?!\S)|\s+), which splits every text identically (tests/test_bpe.py checks it).
R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

# Where the training text may be cut into independent pieces: after a printable ASCII character that is
# followed by a space or newline. No pre-token ever runs from a non-space into a space, and the pattern
# has no look-behind, so pre-tokenising the pieces gives exactly the pre-tokens of the whole text.
_PIECE_END = re.compile(r"[!-~](?=[ \n])")
_PIECE_CHARS = 8_192  # pieces let HF count words on both cores


class VocabTooLarge(ValueError):
    """The corpus runs out of pairs to merge before the requested size; `largest` is what it supports."""

    def __init__(self, message: str, *, largest: int) -> None:
        super().__init__(message)
        self.largest = largest


@dataclass(frozen=True)
class BPE:
    encoding: tiktoken.Encoding  # n_vocab == vocab_size; ids 0..255 are the bytes 0..255
    merges: tuple[tuple[bytes, bytes], ...]  # learned order; merge i made token id 256 + i
    vocab_size: int
    trained_chars: int  # characters the merges were learned from (the text's first max_chars)
    text_hash: str  # first 10 hex digits of the SHA-256 of those characters (UTF-8)

    def truncate(self, vocab_size: int) -> BPE:
        """The tokenizer that training the same text to `vocab_size` gives: the first merges only.

        Exact because BPE training is greedy: the first k merges never depend on how many follow.
        """
        _check_size(vocab_size)
        if vocab_size > self.vocab_size:
            raise ValueError(
                f"This tokenizer has {self.vocab_size:,} tokens; it cannot be cut to {vocab_size:,}."
            )
        merges = self.merges[: vocab_size - MIN_VOCAB_SIZE]
        return BPE(
            encoding=_encoding(merges, name=f"bpe-{vocab_size}-{self.text_hash}"),
            merges=merges,
            vocab_size=vocab_size,
            trained_chars=self.trained_chars,
            text_hash=self.text_hash,
        )


def train_bpe(text: str, *, vocab_size: int, max_chars: int = DEFAULT_MAX_CHARS) -> BPE:
    """Learn vocab_size - 256 merges from text[:max_chars]; raise VocabTooLarge if the text has too few."""
    _check_size(vocab_size)
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1.")
    sample = text[:max_chars]
    try:
        data = sample.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"The text is not valid Unicode (a lone surrogate at character {exc.start}); "
            "decode the file as UTF-8 first."
        ) from None
    text_hash = hashlib.sha256(data).hexdigest()[:10]
    merges = _learn_merges(sample, vocab_size) if vocab_size > MIN_VOCAB_SIZE else ()
    if MIN_VOCAB_SIZE + len(merges) < vocab_size:
        largest = MIN_VOCAB_SIZE + len(merges)
        raise VocabTooLarge(
            f"This corpus supports at most {largest:,} tokens (256 bytes + {len(merges):,} merges "
            f"before every word is a single token); choose a vocabulary size of at most {largest:,} "
            "or use a longer corpus.",
            largest=largest,
        )
    return BPE(
        encoding=_encoding(merges, name=f"bpe-{vocab_size}-{text_hash}"),
        merges=merges,
        vocab_size=vocab_size,
        trained_chars=len(sample),
        text_hash=text_hash,
    )


def largest_vocab_size(text: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> int:
    """The largest vocab_size train_bpe accepts for this text (capped at MAX_VOCAB_SIZE)."""
    try:
        return train_bpe(text, vocab_size=MAX_VOCAB_SIZE, max_chars=max_chars).vocab_size
    except VocabTooLarge as exc:
        return exc.largest


def split_examples(
    text: str, sentence: str, *, sizes: Sequence[int], max_chars: int = DEFAULT_MAX_CHARS
) -> list[tuple[int, list[str]]]:
    """How `sentence` splits under tokenizers trained on `text` at each size (readable token labels).

    Trains once, at the largest size, and cuts the merge list for the others (see BPE.truncate).
    """
    if not sizes:
        raise ValueError("Give at least one vocabulary size.")
    for size in sizes:
        _check_size(size)
    full = train_bpe(text, vocab_size=max(sizes), max_chars=max_chars)
    out = []
    for size in sizes:
        enc = full.truncate(size).encoding
        out.append((size, [token_label(enc, t) for t in enc.encode(sentence, disallowed_special=())]))
    return out


def _check_size(vocab_size: int) -> None:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise ValueError(f"Vocabulary size must be a whole number, not {vocab_size!r}.")
    if not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise ValueError(
            f"Vocabulary size must be between {MIN_VOCAB_SIZE} (the single bytes) and "
            f"{MAX_VOCAB_SIZE:,}; got {vocab_size:,}."
        )


def _pieces(text: str) -> Iterator[str]:
    start = 0
    while start < len(text):
        cut = _PIECE_END.search(text, start + _PIECE_CHARS)
        end = cut.end() if cut else len(text)
        yield text[start:end]
        start = end


def _learn_merges(text: str, vocab_size: int) -> tuple[tuple[bytes, bytes], ...]:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=0,  # merge down to pairs seen once, so small corpora still reach their size
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not
    )
    tokenizer.train_from_iterator(_pieces(text), trainer=trainer, length=None)
    model = json.loads(tokenizer.to_str())["model"]  # {"vocab": {str: id}, "merges": [[a, b], ...]}
    decode = _byte_decoder()
    # HF numbers the bytes by the code point of their stand-in characters, then each new token
    # 256, 257, ... in learned order: exactly tiktoken's ranks. A merge that re-creates a token that
    # already exists gets no id of its own in HF, and tiktoken has no way to express it; it is
    # dropped (HF's trainer was not seen to make one in thousands of fuzzed corpora).
    merges: list[tuple[bytes, bytes]] = []
    made = {bytes([b]) for b in range(256)}
    for a, b in model["merges"]:
        left, right = _to_bytes(a, decode), _to_bytes(b, decode)
        if left + right not in made:
            made.add(left + right)
            merges.append((left, right))
    assert len(model["vocab"]) == MIN_VOCAB_SIZE + len(merges), (len(model["vocab"]), len(merges))
    for token, hf_id in model["vocab"].items():
        if hf_id >= MIN_VOCAB_SIZE:
            left, right = merges[hf_id - MIN_VOCAB_SIZE]
            assert _to_bytes(token, decode) == left + right, (token, hf_id)
    return tuple(merges)


def _encoding(merges: tuple[tuple[bytes, bytes], ...], *, name: str) -> tiktoken.Encoding:
    ranks = {bytes([b]): b for b in range(256)}
    for left, right in merges:
        ranks[left + right] = len(ranks)
    return tiktoken.Encoding(name=name, pat_str=R50K_PATTERN, mergeable_ranks=ranks, special_tokens={})


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte, inverted (what ByteLevel writes in its vocab)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    stand_in = {b: chr(b) for b in printable} | {b: chr(256 + i) for i, b in enumerate(others)}
    assert set(stand_in.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    return {ch: b for b, ch in stand_in.items()}


def _to_bytes(token: str, decode: dict[str, int]) -> bytes:
    return bytes(decode[ch] for ch in token)

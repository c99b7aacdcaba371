"""Your own tokenizer: a byte-level BPE learned from a corpus, returned as a real tiktoken.Encoding.

HF `tokenizers` learns the merges (GPT-2's pre-tokenisation, no normaliser, no special tokens); they become
tiktoken ranks: the 256 single bytes as ids 0..255, then one id per merge in the order it was learned, so
n_vocab is exactly the size asked for. Runs of over MAX_WORD_CHARS characters are cut into words of that
length, and text past MAX_DISTINCT_BYTES of distinct words is left out (BPE.note says what was cut). Special
tokens, saving to disk and non-UTF-8 input are not handled.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import tiktoken
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

# HF's trainer runs on every core through rayon unless this says no; it reads the variable at each call.
# Its parallel merges cost more than they save on these small corpora: on 2 busy cores (load 10), the
# Python docs trained in 7 s wall / 2.0 s CPU on one thread against 16 s / 2.6 s on two, and random CJK
# text in 12 s / 3.6 s against 31 s / 10.8 s. One thread also leaves the other core to other visitors.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from embedviz.tokens import encode, token_label

MIN_VOCAB_SIZE = 256  # the single bytes alone: every text still encodes
MAX_VOCAB_SIZE = 50_000  # about GPT-2's 50,257; HF trains it in well under a second on 500k characters
DEFAULT_MAX_CHARS = 500_000  # ~0.3 s of training on 2 cores; longer corpora are learned from their start
# HF's trainer takes time quadratic in a word's length (200k letters "a": 40 s); longer runs of
# non-space or of space characters are cut into words of this many characters for training.
MAX_WORD_CHARS = 256
# HF's trainer merges down to pairs seen once, so its time grows with the distinct words it is given, not
# with the text's length: prose holds 78-97k bytes of distinct words in 500k characters (Python docs, Vim's
# manuals; trained in ~0.3-1 s), while random text is all distinct words, e.g. 300k random CJK characters
# (900 kB, ~50,000 merges) took 27 s of CPU. Training stops reading the text before the word that would take
# its distinct words (runs of non-space or of space characters, cut as above) past this many UTF-8 bytes:
# then 300k random CJK characters train on their first 33,280 in 3.6-4.6 s of CPU on one thread, 300k
# random printable ASCII on 99,840 in ~2 s, one repeated character or 999,999 spaces + "x" in < 0.4 s
# (measured 2026-11-30 on 2 cores at load 10; wall time was ~3x that).
MAX_DISTINCT_BYTES = 100_000

# GPT-2's pattern as tiktoken writes it (r50k_base). HF's ByteLevel pre-tokenizer uses GPT-2's original
# spelling ('s|'t|...|\s+(?!\S)|\s+), which splits every text identically (tests/test_bpe.py checks it).
R50K_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

# Where the training text may be cut into independent pieces: after a printable ASCII character that is
# followed by a space or newline. No pre-token ever runs from a non-space into a space, and the pattern
# has no look-behind, so pre-tokenising the pieces gives exactly the pre-tokens of the whole text.
_PIECE_END = re.compile(r"[!-~](?=[ \n])")
_PIECE_CHARS = 8_192  # pieces let HF count words in parallel when TOKENIZERS_PARALLELISM allows it
_LONG_WORD = re.compile(r"\S{%d,}|\s{%d,}" % (MAX_WORD_CHARS + 1, MAX_WORD_CHARS + 1))
_WORD = re.compile(r"\S{1,%d}|\s{1,%d}" % (MAX_WORD_CHARS, MAX_WORD_CHARS))  # the words of the budget


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
    trained_chars: int  # characters the merges were learned from (a prefix: max_chars, or fewer; see note)
    text_hash: str  # first 10 hex digits of the SHA-256 of those characters (UTF-8)
    note: str | None = None  # what training left out or cut, in words the page can show; None if nothing

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
            note=self.note,
        )


def train_bpe(text: str, *, vocab_size: int, max_chars: int = DEFAULT_MAX_CHARS,
              max_distinct_bytes: int = MAX_DISTINCT_BYTES) -> BPE:
    """Learn vocab_size - 256 merges from text[:max_chars] (less if its distinct words pass
    max_distinct_bytes; see MAX_DISTINCT_BYTES); raise VocabTooLarge if the text has too few."""
    _check_size(vocab_size)
    return _train(text, vocab_size=vocab_size, max_chars=max_chars, max_distinct_bytes=max_distinct_bytes,
                  exact=True)


def train_largest(text: str, *, max_chars: int = DEFAULT_MAX_CHARS,
                  max_distinct_bytes: int = MAX_DISTINCT_BYTES) -> BPE:
    """The tokenizer with every merge the text allows (at most MAX_VOCAB_SIZE tokens), from ONE training.

    Its vocab_size is the largest size train_bpe accepts for this text, and .truncate(n) gives the
    tokenizer train_bpe(text, vocab_size=n) would, for every smaller n, without training again.
    """
    return _train(text, vocab_size=MAX_VOCAB_SIZE, max_chars=max_chars, max_distinct_bytes=max_distinct_bytes,
                  exact=False)


def distinct_words_end(text: str, *, max_distinct_bytes: int) -> int:
    """How many of text's first characters training reads: all of them, or up to the start of the word
    that would take the distinct words' UTF-8 bytes past max_distinct_bytes (words as in _WORD)."""
    seen: set[str] = set()
    total = 0
    for word in _WORD.finditer(text):
        if word.group() not in seen:
            seen.add(word.group())
            total += len(word.group().encode("utf-8", "surrogatepass"))
            if total > max_distinct_bytes:
                return word.start()
    return len(text)


def _train(text: str, *, vocab_size: int, max_chars: int, max_distinct_bytes: int, exact: bool) -> BPE:
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1.")
    if max_distinct_bytes < 1:
        raise ValueError("max_distinct_bytes must be at least 1.")
    sample = text[:max_chars]
    varied_end = distinct_words_end(sample, max_distinct_bytes=max_distinct_bytes)
    sample = sample[:varied_end]
    try:
        data = sample.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"The text is not valid Unicode (a lone surrogate at character {exc.start}); "
            "decode the file as UTF-8 first."
        ) from None
    text_hash = hashlib.sha256(data).hexdigest()[:10]
    pieces, cut_words = _training_pieces(sample)
    merges = _learn_merges(pieces, vocab_size) if vocab_size > MIN_VOCAB_SIZE else ()
    notes = []
    if varied_end < min(len(text), max_chars):
        notes.append(
            f"Learned from the first {len(sample):,} of the text's {len(text):,} characters: training is given "
            f"at most {max_distinct_bytes:,} bytes of distinct words, and this text's words are so varied that "
            "they reach that limit there."
        )
    elif len(sample) < len(text):
        notes.append(f"Learned from the first {len(sample):,} of the text's {len(text):,} characters.")
    if cut_words:
        notes.append(
            f"{cut_words:,} run{'s' if cut_words > 1 else ''} of more than {MAX_WORD_CHARS} characters without "
            f"a break {'were' if cut_words > 1 else 'was'} cut into words of {MAX_WORD_CHARS} for training, "
            "so no token is longer than that."
        )
    if not exact:
        vocab_size = MIN_VOCAB_SIZE + len(merges)
    elif MIN_VOCAB_SIZE + len(merges) < vocab_size:
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
        note=" ".join(notes) or None,
    )


def largest_vocab_size(text: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> int:
    """The largest vocab_size train_bpe accepts for this text (capped at MAX_VOCAB_SIZE).

    Trains once; when the tokenizer is needed too, call train_largest and read its vocab_size.
    """
    return train_largest(text, max_chars=max_chars).vocab_size


def split_examples(tokenizer: BPE, sentence: str, *, sizes: Sequence[int]) -> list[tuple[int, list[str]]]:
    """How `sentence` splits under `tokenizer` cut to each size (readable token labels).

    Smaller sizes are exact prefixes of the merges (see BPE.truncate), so one trained tokenizer serves all.
    """
    if not sizes:
        raise ValueError("Give at least one vocabulary size.")
    out = []
    for size in sizes:
        enc = tokenizer.truncate(size).encoding
        out.append((size, [token_label(enc, t) for t in encode(enc, sentence)]))
    return out


def _check_size(vocab_size: int) -> None:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise ValueError(f"Vocabulary size must be a whole number, not {vocab_size!r}.")
    if not MIN_VOCAB_SIZE <= vocab_size <= MAX_VOCAB_SIZE:
        raise ValueError(
            f"Vocabulary size must be between {MIN_VOCAB_SIZE} (the single bytes) and "
            f"{MAX_VOCAB_SIZE:,}; got {vocab_size:,}."
        )


def _training_pieces(text: str) -> tuple[list[str], int]:
    """The text as HF's trainer gets it, and how many runs over MAX_WORD_CHARS were cut into words."""
    pieces: list[str] = []
    start = cut = 0
    for long in _LONG_WORD.finditer(text):
        pieces += _pieces(text[start:long.start()])
        pieces += [text[i:i + MAX_WORD_CHARS] for i in range(long.start(), long.end(), MAX_WORD_CHARS)]
        start = long.end()
        cut += 1
    return pieces + list(_pieces(text[start:])), cut


def _pieces(text: str) -> Iterator[str]:
    start = 0
    while start < len(text):
        found = _PIECE_END.search(text, start + _PIECE_CHARS)
        end = found.end() if found else len(text)
        yield text[start:end]
        start = end


def _learn_merges(pieces: list[str], vocab_size: int) -> tuple[tuple[bytes, bytes], ...]:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=0,  # merge down to pairs seen once, so small corpora still reach their size
        show_progress=False,
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not
    )
    tokenizer.train_from_iterator(pieces, trainer=trainer, length=None)
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

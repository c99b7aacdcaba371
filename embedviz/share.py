"""Every setting of the page as URL query parameters, and back, so a link reproduces a view.

Parsing is strict: a value that is missing, malformed or out of bounds is ignored (the page's
default stays) and reported, never raised. Uploads cannot travel in a link.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from embedviz.config import ENCODINGS, HEAD_COUNTS, POSITIONAL_KINDS, SHAREABLE_CORPORA, Limits, TrainConfig

MAX_URL_TEXT = 2_000  # characters of typed text carried in a link; browsers cap URLs near 32k
MAX_ROPE_BASE = 1e9  # RoPE bases in use run from 1e4 (RoFormer) to 5e5-1e7 (Llama 3, long-context models)


@dataclass(frozen=True)
class Field:
    param: str  # short name in the URL
    kind: type  # str, int, float, bool or list (of str, comma-separated in the URL)
    check: Callable[[Any, Limits], bool] = lambda v, lim: True


def _choice(*allowed: str) -> Callable[[Any, Limits], bool]:
    return lambda v, lim: v in allowed


FIELDS: dict[str, Field] = {
    "mode": Field("mode", str, _choice("Sentences", "Token ids")),
    "text": Field("text", str, lambda v, lim: len(v) <= MAX_URL_TEXT),
    "ids": Field("ids", str, lambda v, lim: len(v) <= MAX_URL_TEXT),
    "encoding": Field("enc", str, _choice(*ENCODINGS)),
    "corpus": Field("corpus", str, _choice(*SHAREABLE_CORPORA)),
    "vocab_size": Field("V", int, lambda v, lim: 2 <= v <= 1_000_000),
    "dim": Field("d", int, lambda v, lim: 1 <= v <= lim.max_dim),
    "positions": Field("P", int, lambda v, lim: 1 <= v <= lim.max_positions),
    "seed": Field("seed", int, lambda v, lim: 0 <= v < 2**32),
    "sentence": Field("row", int, lambda v, lim: 0 <= v < lim.max_sentences),
    "steps": Field("steps", int, lambda v, lim: 10 <= v <= lim.max_train_steps),
    "batch_size": Field("batch", int, lambda v, lim: v in TrainConfig.BATCH_SIZES and v <= lim.max_batch_size),
    "learning_rate": Field("lr", float, lambda v, lim: v in TrainConfig.LEARNING_RATES),
    "n_layer": Field("layers", int, lambda v, lim: 1 <= v <= lim.max_train_layers),
    "n_head": Field("heads", int, lambda v, lim: v in HEAD_COUNTS),
    "positional": Field("pos", str, _choice(*POSITIONAL_KINDS)),
    "rope_base": Field("rope_base", float, lambda v, lim: 1 < v <= MAX_ROPE_BASE),
    "compare_kinds": Field("compare", list, lambda v, lim: _schemes(v)),
    "scheme_pictures": Field("pictures", str, _choice(*POSITIONAL_KINDS)),
    "trained_sentence": Field("mine", bool),
    "cos_a": Field("cos_a", int, lambda v, lim: 0 <= v < lim.max_positions),
    "cos_b": Field("cos_b", int, lambda v, lim: 0 <= v < lim.max_positions),
    "neighbour_token": Field("nn", int, lambda v, lim: v >= 0),
    "presentation": Field("present", bool),
    "trained": Field("trained", bool),
}


def _schemes(kinds: list[str]) -> bool:
    """Distinct positional schemes, at least one (what "Compare the schemes" trains)."""
    return bool(kinds) and set(kinds) <= set(POSITIONAL_KINDS) and len(set(kinds)) == len(kinds)


def to_query(state: Mapping[str, Any], defaults: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Query parameters for the settings that differ from the defaults, and what could not be shared."""
    params: dict[str, str] = {}
    left_out: list[str] = []
    # the box the page does not show is not part of the view: a stale one must not travel
    hidden = "text" if state.get("mode") == "Token ids" else "ids"
    for key, field in FIELDS.items():
        if key == hidden or key not in state or state[key] is None or state[key] == defaults.get(key):
            continue
        value = state[key]
        if key in ("text", "ids") and len(str(value)) > MAX_URL_TEXT:
            left_out.append(f"the {key} (over {MAX_URL_TEXT:,} characters)")
            continue
        if key == "corpus" and value not in SHAREABLE_CORPORA:
            left_out.append("the uploaded corpus (upload it again after opening the link)")
            continue
        if field.kind is bool:
            params[field.param] = "1" if value else "0"
        elif field.kind is float:
            params[field.param] = repr(float(value))
        elif field.kind is list:
            params[field.param] = ",".join(str(v) for v in value)
        else:
            params[field.param] = str(value)
    return params, left_out


def from_query(params: Mapping[str, str], lim: Limits) -> tuple[dict[str, Any], list[str]]:
    """Settings read from query parameters, and a message per parameter that was ignored."""
    state: dict[str, Any] = {}
    ignored: list[str] = []
    for key, field in FIELDS.items():
        raw = params.get(field.param)
        if raw is None:
            continue
        try:
            value = _parse(raw, field.kind)
            ok = field.check(value, lim)
        except (ValueError, OverflowError):
            ok = False
        if ok:
            state[key] = value
        else:
            ignored.append(f"{field.param}={raw[:40]!r}")
    return state, ignored


def _parse(raw: str, kind: type) -> Any:
    if kind is bool:
        if raw not in ("0", "1", "true", "false"):
            raise ValueError(raw)
        return raw in ("1", "true")
    if kind is int:
        if len(raw) > 12:
            raise ValueError(raw)
        return int(raw)
    if kind is float:
        return float(raw)
    if kind is list:
        return raw.split(",")
    return raw

"""Reference implementations the tests check embedviz against: the textbook embedding code, strict
readers of the files embedviz exports, and awkward strings to feed everything.

Test code only: nothing in embedviz/ imports it. Import it as `from tests.oracles import ...`.
"""
from __future__ import annotations

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from torch import nn

from embedviz.config import EmbeddingConfig, ModelConfig
from embedviz.model import TinyGPT

AWKWARD = [
    "",
    " ",
    "a",
    "The cat sat on the mat.",
    "héllo wörld",
    "🐱🐶 emoji 👩‍👩‍👧",
    "猫が座った。",
    "مرحبا بالعالم",
    "e\u0301\u0301 combining",
    "tab\tand\rcarriage\x00nul\x07bell",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<|endoftext|>",
    "x" * 5000,
]

_PROJECTOR_HEADER = ("token", "class", "frequency")
_TIED = {"lm_head.weight": "wte.weight"}  # stored once, as wte.weight


def textbook(seed: int) -> torch.Tensor:
    """x = wte(ids) + wpe(positions) of the textbook's example (a 100-token vocabulary, 16 dimensions,
    10 positions, one sentence of 4 ids), written as the textbook writes it; the global RNG is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        token_embedding = nn.Embedding(100, 16)
        position_embedding = nn.Embedding(10, 16)
        ids = torch.tensor([[5, 20, 33, 2]])  # (1, 4)
        return (token_embedding(ids) + position_embedding(torch.arange(4))).detach()  # (1, 4, 16)


def make_tables(cfg: EmbeddingConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """wte (V, d) and wpe (P, d) of `torch.manual_seed(seed); nn.Embedding(V, d); nn.Embedding(P, d)`;
    the global RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        wte = nn.Embedding(cfg.vocab_size, cfg.dim)  # (V, d), N(0, 1)
        wpe = nn.Embedding(cfg.positions, cfg.dim)  # (P, d), N(0, 1)
    return wte.weight.detach(), wpe.weight.detach()


def read_projector_tsv(vectors: bytes, metadata: bytes) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Parse what export.projector_tsv writes, strictly: (N, d) float32 and N {token, class, frequency}
    dicts. Raises ValueError for anything projector.tensorflow.org would misread."""
    rows = [line.split("\t") for line in _strict_lines(vectors, "vectors.tsv")]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("vectors.tsv must have at least one line and the same number of values on each.")
    try:
        values = np.array([[float(x) for x in r] for r in rows], dtype=np.float32)  # (N, d)
    except ValueError as exc:
        raise ValueError(f"vectors.tsv holds something that is not a number: {exc}") from None
    meta_lines = _strict_lines(metadata, "metadata.tsv")
    if tuple(meta_lines[0].split("\t")) != _PROJECTOR_HEADER:
        raise ValueError("metadata.tsv must start with the header token<TAB>class<TAB>frequency.")
    records = []
    for number, line in enumerate(meta_lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != len(_PROJECTOR_HEADER):
            raise ValueError(f"metadata.tsv line {number} has {len(cells)} fields, not 3.")
        records.append(dict(zip(_PROJECTOR_HEADER, cells)))
    if len(records) != len(values):
        raise ValueError(f"metadata.tsv describes {len(records)} rows; vectors.tsv has {len(values)}.")
    return values, records


def load_model_safetensors(data: bytes, cfg: ModelConfig, *, max_bytes: int) -> TinyGPT:
    """A TinyGPT(cfg) in eval mode holding the weights export.model_safetensors wrote, head tied again.

    Refuses (ValueError) a file over max_bytes, one that is not safetensors, and one whose tensor names,
    shapes or dtypes differ from TinyGPT(cfg)'s. Never unpickles anything.
    """
    if len(data) > max_bytes:
        raise ValueError(f"The model file is {len(data):,} bytes; the limit is {max_bytes:,}.")
    cfg.validate()
    try:
        tensors = load_safetensors(bytes(data))
    except (SafetensorError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise ValueError(f"This is not a readable safetensors file ({type(exc).__name__}: {exc}).") from None
    model = TinyGPT(cfg)
    expected = {k: v for k, v in model.state_dict().items() if k not in _TIED}
    missing = sorted(expected.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(
            f"The file does not hold this model's weights (missing {', '.join(missing) or 'none'}; "
            f"unexpected {', '.join(unexpected) or 'none'}). Choose the settings the model was trained with."
        )
    for name, want in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            raise ValueError(
                f"{name} is {got.dtype} {tuple(got.shape)} in the file but {want.dtype} "
                f"{tuple(want.shape)} for these settings. Choose the settings the model was trained with."
            )
    model.load_state_dict(tensors, strict=False)  # copies in place: lm_head.weight still is wte.weight
    assert model.lm_head.weight is model.wte.weight
    return model.eval()


def _strict_lines(data: bytes, name: str) -> list[str]:
    """The lines of a file that must be UTF-8, end every line in one "\\n", and have no empty line."""
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8.") from None
    if not text.endswith("\n") or "\r" in text:
        raise ValueError(f"{name} must be lines ending in a single newline each.")
    lines = text[:-1].split("\n")
    if any(line == "" for line in lines):
        raise ValueError(f"{name} has an empty line.")
    return lines

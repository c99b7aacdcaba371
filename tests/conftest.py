"""Shared fixtures: the offline encoding, small configurations."""
from __future__ import annotations

import os

import pytest

# the same cache as `make setup` fills (numba's compiled UMAP, tiktoken's files): the checkout's .cache
os.environ.setdefault("EMBEDVIZ_CACHE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".cache")))

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


@pytest.fixture(scope="session")
def enc():
    from embedviz.tokens import load_encoding

    return load_encoding("cl100k_base")

"""Shared fixtures: the offline encoding, small configurations."""
from __future__ import annotations

import os

import pytest

# the same cache as `make setup` fills (numba's compiled UMAP, tiktoken's files): the checkout's .cache
os.environ.setdefault("EMBEDVIZ_CACHE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".cache")))



@pytest.fixture(scope="session")
def enc():
    from embedviz.tokens import load_encoding

    return load_encoding("cl100k_base")

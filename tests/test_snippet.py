"""The code the page shows must print the very numbers the page shows."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from embedviz import explorer, snippet
from embedviz.config import EmbeddingConfig
from embedviz.vocab import Vocab


def run_snippet(code: str) -> np.ndarray:
    """Run the snippet in a fresh interpreter and return its x."""
    probe = code + "\nimport numpy, sys\nnumpy.save(sys.stdout.buffer, x.detach().numpy())\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True, timeout=120)
    import io

    return np.load(io.BytesIO(out.stdout[out.stdout.index(b"\x93NUMPY"):]))


@pytest.mark.parametrize("mode, text, cfg", [
    ("ids", "[[5, 20, 33, 2]]", EmbeddingConfig(100, 16, 10, 0)),
    ("ids", "[[5, 20, 33, 2], [7]]", EmbeddingConfig(100, 16, 10, 9)),
    ("text", "The cat sat on the mat.\nA dog.\n<script>alert(1)</script> 🐱", EmbeddingConfig(300, 8, 6, 3)),
])
def test_snippet_reproduces_the_page(enc, mode, text, cfg):
    vocab = Vocab.build(enc, cfg.vocab_size, reference_ids=enc.encode(" the cat sat on the mat"))
    if mode == "ids":
        batch = explorer.from_ids(text, vocab=vocab, positions=cfg.positions)
    else:
        batch = explorer.from_text(text, enc=enc, vocab=vocab, positions=cfg.positions)
    code = snippet.embedding_code(cfg, batch)
    compile(code, "<snippet>", "exec")
    page = explorer.embed(batch, *explorer.tables(cfg)).x.detach().numpy()
    assert np.array_equal(run_snippet(code), page)


def test_snippet_reads_like_the_textbook(enc):
    vocab = Vocab.build(enc, 100, reference_ids=[])
    batch = explorer.from_ids("[[5, 20, 33, 2]]", vocab=vocab, positions=10)
    code = snippet.embedding_code(EmbeddingConfig(100, 16, 10, 5), batch)
    assert "torch.manual_seed(5)" in code
    assert "nn.Embedding(vocab_size, d_model)" in code
    assert "[5, 20, 33, 2]" in code
    assert code.index("token_embedding =") < code.index("position_embedding =")


def test_snippet_prints_shapes(enc):
    vocab = Vocab.build(enc, 100, reference_ids=[])
    batch = explorer.from_ids("[[5, 20, 33, 2]]", vocab=vocab, positions=10)
    code = snippet.embedding_code(EmbeddingConfig(100, 16, 10, 0), batch)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert "torch.Size([1, 4, 16]) torch.Size([4, 16]) torch.Size([1, 4, 16])" in out.stdout
    torch.manual_seed(0)

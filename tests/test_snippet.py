"""The code the page shows must print the very numbers the page shows. Snippets run with exec() in a
namespace of their own (each seeds torch itself); one test runs a snippet as a program of its own."""
import contextlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from embedviz import explorer, snippet
from embedviz.config import EmbeddingConfig
from embedviz.vocab import Vocab


def run_snippet(code: str) -> dict:
    """Run the snippet as a script would (its own globals, its printing captured); return its globals."""
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "<snippet>", "exec"), namespace)
    return namespace


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
    assert np.array_equal(run_snippet(code)["x"].detach().numpy(), page)


def test_snippet_reads_like_the_textbook(enc):
    vocab = Vocab.build(enc, 100, reference_ids=[])
    batch = explorer.from_ids("[[5, 20, 33, 2]]", vocab=vocab, positions=10)
    code = snippet.embedding_code(EmbeddingConfig(100, 16, 10, 5), batch)
    assert "torch.manual_seed(5)" in code
    assert "nn.Embedding(vocab_size, d_model)" in code
    assert "[5, 20, 33, 2]" in code
    assert code.index("token_embedding =") < code.index("position_embedding =")


def test_snippet_is_a_program_of_its_own_that_prints_shapes(enc):
    vocab = Vocab.build(enc, 100, reference_ids=[])
    batch = explorer.from_ids("[[5, 20, 33, 2]]", vocab=vocab, positions=10)
    code = snippet.embedding_code(EmbeddingConfig(100, 16, 10, 0), batch)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert "torch.Size([1, 4, 16]) torch.Size([4, 16]) torch.Size([1, 4, 16])" in out.stdout


TRAINED_NAMES = ("tok_before", "tok_after", "pos_before", "pos_after", "x_before", "x_after")


def run_trained_snippet(code: str, model_file: bytes, folder) -> dict[str, np.ndarray]:
    """Run the trained-sentence snippet beside the downloaded model file; return its tensors."""
    (folder / "embedviz-model.safetensors").write_bytes(model_file)
    here = os.getcwd()
    os.chdir(folder)  # the snippet opens the file by its download name
    try:
        ran = run_snippet(code)
    finally:
        os.chdir(here)
    return {n: ran[n].detach().numpy() for n in TRAINED_NAMES}


@pytest.mark.parametrize("kind", ["learned", "sinusoidal", "rope"])
def test_trained_snippet_prints_the_numbers_shown_from_the_real_file(enc, tmp_path, kind):
    from embedviz import export, training
    from embedviz.config import ModelConfig, TrainConfig
    from embedviz.ui.trained_sentence import sentence_values

    text = "the cat sat on the mat and the dog sat on the cat " * 20
    vocab = Vocab.build(enc, 40, reference_ids=enc.encode(text))
    model_cfg = ModelConfig(EmbeddingConfig(40, 8, 6, 5), n_head=2, positional=kind)
    result = training.train(model_cfg, TrainConfig(steps=10, batch_size=4), vocab.rows(enc.encode(text)))
    batch = explorer.from_text("The cat sat on\nthe mat", enc=enc, vocab=vocab, positions=6)
    shown = sentence_values(result, batch, 1)  # what the page's heatmaps draw: sentence 1, no padding
    code = snippet.trained_sentence_code(model_cfg, rows=shown.rows.tolist(), labels=shown.labels)
    ran = run_trained_snippet(code, export.model_safetensors(result.model, metadata={}), tmp_path)
    pairs = {"tok": shown.tok, "x": shown.x, "pos": shown.pos}
    for name, shown_pair in pairs.items():
        if shown_pair is None:
            continue
        before, after = shown_pair
        np.testing.assert_allclose(ran[f"{name}_before"], before, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ran[f"{name}_after"], after, rtol=0, atol=1e-6)
    assert not np.allclose(shown.tok[0], shown.tok[1])  # training moved the rows: "after" is not "before"
    assert (shown.pos is None) == (kind == "rope")
    if kind == "rope":
        np.testing.assert_array_equal(ran["x_after"], ran["tok_after"])  # nothing added to x


def test_trained_snippet_refuses_a_mismatched_sentence():
    from embedviz.config import ModelConfig

    with pytest.raises(ValueError, match="one label per row"):
        snippet.trained_sentence_code(ModelConfig(), rows=[1, 2], labels=["a"])

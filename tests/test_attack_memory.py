"""Attack surface: memory. The explorer's (B, T, d) tensors and every download are bounded in both
modes, each refusal says the numbers and what to lower, and GPT-2 small's table (50,257 x 768) still
works with a normal sentence."""
from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from embedviz import explorer, export
from embedviz.config import HOSTED_LIMITS, LOCAL_LIMITS, EmbeddingConfig, Limits, ModelConfig
from embedviz.corpus import CLASSROOM_SENTENCE
from embedviz.model import TinyGPT
from embedviz.training import Snapshot
from embedviz.vocab import Vocab
from tests.test_app import fresh

EMOJI_LINES = "\n".join(["🙂🐱🎉" * 173 + "🙂"] * 64)  # 64 lines of 520 emoji: the issue's attack


def plain(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


@pytest.fixture(scope="module")
def vocab(enc) -> Vocab:
    return Vocab.build(enc, 100_000, reference_ids=enc.encode(CLASSROOM_SENTENCE))


def test_the_issue_batch_is_refused_before_any_tensor_is_made(enc, vocab):
    with pytest.raises(ValueError) as refused:
        explorer.from_text(EMOJI_LINES, enc=enc, vocab=vocab, positions=1024, dim=1024, lim=LOCAL_LIMITS)
    assert str(refused.value) == (
        "64 sentences of up to 1,024 tokens at dimension d = 1,024 make tensors of 64 x 1,024 x 1,024 = "
        "67,108,864 numbers; the limit here is 4,194,304. Use fewer or shorter sentences, fewer positions P "
        "or a smaller dimension d.")


@pytest.mark.parametrize("lim", [LOCAL_LIMITS, HOSTED_LIMITS], ids=["local", "hosted"])
def test_the_largest_allowed_batch_downloads_whole_within_the_budget(lim):
    # the largest download: the longest, widest sentence (its CSVs), as many of them as allowed (the .npy)
    T, d = lim.max_positions, lim.max_dim
    B = min(lim.max_sentences, lim.max_batch_floats // (T * d))
    assert B >= 1 and B * T * d <= lim.max_batch_floats
    tok = torch.zeros(B, T, d)  # (B, T, d)
    pos = torch.zeros(T, d)  # (T, d)
    files = export.embedding_files(explorer.Embedded(tok, pos, tok + pos), labels=["t"] * T, sentence=0, lim=lim)
    assert export.LEFT_OUT not in files and len(files) == 6
    assert sum(map(len, files.values())) <= lim.max_export_bytes


def test_files_past_the_download_budget_are_left_out_and_named():
    tok = torch.randn(2, 8, 16)  # (B, T, d): each .npy 1,152 bytes
    out = explorer.Embedded(tok, torch.randn(8, 16), tok)
    files = export.embedding_files(out, labels=[f"t{i}" for i in range(8)], sentence=1,
                                   lim=Limits(max_export_bytes=2_500))
    assert set(files) == {"tok.npy", "pos.npy", export.LEFT_OUT}
    note = files[export.LEFT_OUT].decode()
    assert note.startswith("Downloads are limited to 0 MB here, so these files were left out: x.npy (up to 0.0 MB), "
                           "tok_sentence1.csv")
    assert note.rstrip().endswith("Lower the vocabulary size, the dimension d, the positions P or the number of "
                                  "sentences to get them.")
    export.zip_bundle(files)  # and the zip is still made


def test_a_trained_model_past_the_budget_leaves_out_the_large_files_first():
    cfg = ModelConfig(EmbeddingConfig(vocab_size=64, dim=8, positions=4))
    rng = np.random.default_rng(0)
    snaps = [Snapshot(step=s, wte=rng.standard_normal((64, 8)).astype(np.float32),
                      wpe=rng.standard_normal((4, 8)).astype(np.float32)) for s in (0, 10)]
    kwargs = dict(snapshots=snaps, row_labels=[f"t{i}" for i in range(64)], drawn_rows=[0, 1], classes=["a", None],
                  frequencies=[3, 1], model=TinyGPT(cfg), metadata={}, batch_rows=np.array([[1, 2, 3]]))
    whole = export.training_files(**kwargs, lim=LOCAL_LIMITS)
    assert export.LEFT_OUT not in whole
    budget = sum(len(v) for k, v in whole.items() if k != "model.safetensors") + 1_000
    cut = export.training_files(**kwargs, lim=Limits(max_export_bytes=budget))
    assert "model.safetensors" not in cut and "model.safetensors" in cut[export.LEFT_OUT].decode()
    assert all(cut[k] == whole[k] for k in cut if k != export.LEFT_OUT)


@pytest.fixture(scope="module")
def page() -> AppTest:
    return fresh(timeout=120)


def test_the_issue_batch_on_the_page_ends_in_the_message(page):
    page.sidebar.slider(key="dim").set_value(1024).run()
    page.sidebar.slider(key="positions").set_value(1024).run()
    page.text_area(key="text").set_value(EMOJI_LINES).run()
    assert not page.exception
    [error] = [e.value for e in page.error if "limit here" in e.value]  # (the training tab has its own)
    assert "= 67,108,864 numbers; the limit here is 4,194,304. Use fewer or shorter sentences" in plain(error)
    assert not page.get("plotly_chart")  # nothing was drawn, and no tensor was made
    page.text_area(key="text").set_value(CLASSROOM_SENTENCE).run()
    assert not [e for e in page.error if "limit here" in e.value] and len(page.get("plotly_chart")) >= 3


def test_gpt2_small_table_with_a_normal_sentence_works(page):
    page.sidebar.select_slider(key="vocab_size").set_value(50_257).run()
    page.sidebar.slider(key="dim").set_value(768).run()
    page.text_area(key="text").set_value(CLASSROOM_SENTENCE).run()
    assert not page.exception and not [e.value for e in page.error if "Training" not in e.value]
    shapes = " ".join(m.value for m in page.markdown)
    assert "`wte.weight.shape` = `torch.Size([50257, 768])`" in shapes
    with zipfile.ZipFile(io.BytesIO(export.zip_bundle({"a.txt": b"x"}))) as z:  # the zip path is unchanged
        assert z.namelist() == ["a.txt"]


def saved_for_backward_bytes(positional: str, *, B: int = 2, T: int = 64) -> int:
    """Bytes of the distinct storages one training forward pass of a 2-layer, 8-head model keeps for
    backward (what a training step holds at its peak, beside parameters and optimizer state)."""
    model = TinyGPT(ModelConfig(EmbeddingConfig(64, 32, T, 0), n_layer=2, n_head=8, positional=positional))
    kept: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        kept[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    idx = torch.zeros(B, T, dtype=torch.long)  # (B, T)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(idx, idx)
    return sum(kept.values())


def test_alibi_training_keeps_no_attention_weights_for_backward():
    # a 3-D mask sent SDPA down its math path, which keeps (B, nh, T, T) weights per layer: the largest
    # hosted training peaked at 891 MiB with ALiBi against 652 with learned positions
    mask_bytes = 8 * 64 * 64 * 4  # (1, nh, T, T) float32, one tensor shared by the layers
    assert saved_for_backward_bytes("alibi") - saved_for_backward_bytes("none") <= mask_bytes


def test_hosted_training_positions_are_bounded_with_a_message():
    from embedviz.config import HOSTED_LIMITS, EmbeddingConfig, ModelConfig

    ModelConfig(EmbeddingConfig(256, 32, HOSTED_LIMITS.max_train_positions, 0)).validate(HOSTED_LIMITS)
    longer = ModelConfig(EmbeddingConfig(256, 32, HOSTED_LIMITS.max_train_positions + 1, 0))
    with pytest.raises(ValueError, match="Training is limited to 128 positions; lower the positions P to train."):
        longer.validate(HOSTED_LIMITS)

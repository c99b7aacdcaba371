from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from embedviz.config import EmbeddingConfig, ModelConfig
from embedviz.model import TinyGPT, make_tables, sinusoidal_positions


def textbook(seed: int, V: int, d: int, P: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    wte = nn.Embedding(V, d)
    wpe = nn.Embedding(P, d)
    return wte.weight.detach(), wpe.weight.detach()


SHAPES = [EmbeddingConfig(vocab_size=50, dim=8, positions=6, seed=0),
          EmbeddingConfig(vocab_size=300, dim=20, positions=16, seed=1234)]


@pytest.mark.parametrize("cfg", SHAPES)
def test_make_tables_equals_textbook_code(cfg):
    wte, wpe = make_tables(cfg)
    ref_wte, ref_wpe = textbook(cfg.seed, cfg.vocab_size, cfg.dim, cfg.positions)
    assert torch.equal(wte, ref_wte) and torch.equal(wpe, ref_wpe)
    assert wte.shape == (cfg.vocab_size, cfg.dim) and wpe.shape == (cfg.positions, cfg.dim)


def test_make_tables_leaves_the_global_rng_alone():
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    make_tables(SHAPES[0])
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("cfg", SHAPES)
@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_model_tables_equal_make_tables(cfg, positional):
    model = TinyGPT(ModelConfig(embedding=cfg, n_layer=2, n_head=2, positional=positional))
    wte, wpe = make_tables(cfg)
    assert torch.equal(model.wte.weight.detach(), wte)
    assert torch.equal(model.wpe.weight.detach(), wpe)


def test_forward_shapes_and_initial_loss():
    cfg = ModelConfig(embedding=EmbeddingConfig(vocab_size=64, dim=16, positions=8), n_layer=2, n_head=4)
    model = TinyGPT(cfg)
    idx = torch.randint(0, 64, (3, 8))  # (B, T)
    logits, loss = model(idx)
    assert logits.shape == (3, 8, 64) and loss is None
    logits, loss = model(idx[:, :5], idx[:, 1:6])  # shorter than P is fine
    assert logits.shape == (3, 5, 64) and loss.shape == ()
    # the scaled tied head starts near a uniform guess, not confidently wrong
    assert abs(loss.item() - math.log(64)) < 1.5


def test_head_is_tied_to_wte():
    model = TinyGPT(ModelConfig(embedding=EmbeddingConfig(vocab_size=40, dim=8, positions=4)))
    assert model.lm_head.weight is model.wte.weight
    assert "lm_head.weight" not in dict(model.named_parameters())  # one tensor, trained once
    idx = torch.tensor([[1, 2, 3]])
    _, loss = model(idx, torch.tensor([[2, 3, 4]]))
    loss.backward()
    assert model.wte.weight.grad[4].abs().sum() > 0  # only ever a target: reached through the head


def test_attention_is_causal():
    model = TinyGPT(ModelConfig(embedding=EmbeddingConfig(vocab_size=30, dim=8, positions=6)))
    a = torch.tensor([[1, 2, 3, 4, 5, 6]])
    b = torch.tensor([[1, 2, 3, 9, 9, 9]])
    with torch.no_grad():
        la, lb = model(a)[0], model(b)[0]
    assert torch.allclose(la[:, :3], lb[:, :3]) and not torch.allclose(la[:, 3:], lb[:, 3:])


def test_too_long_input_is_refused():
    model = TinyGPT(ModelConfig(embedding=EmbeddingConfig(vocab_size=30, dim=8, positions=4)))
    with pytest.raises(ValueError, match="longer than the model's 4 positions"):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_sinusoidal_positions_values():
    table = sinusoidal_positions(10, 6)
    assert table.shape == (10, 6)
    assert torch.equal(table[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    p = torch.arange(10.0)
    assert torch.allclose(table[:, 0], torch.sin(p)) and torch.allclose(table[:, 1], torch.cos(p))
    assert torch.allclose(table[:, 4], torch.sin(p / 10000 ** (4 / 6)))
    assert sinusoidal_positions(3, 5).shape == (3, 5)  # odd widths work


def test_sinusoidal_model_ignores_wpe():
    cfg = ModelConfig(embedding=EmbeddingConfig(vocab_size=30, dim=8, positions=6), positional="sinusoidal")
    model = TinyGPT(cfg)
    assert torch.equal(model.position_table(), sinusoidal_positions(6, 8))
    idx = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        before = model(idx)[0]
        model.wpe.weight.add_(5.0)
        assert torch.equal(model(idx)[0], before)
    assert "sinusoid" not in dict(model.named_parameters())


def test_learned_positions_matter():
    model = TinyGPT(ModelConfig(embedding=EmbeddingConfig(vocab_size=30, dim=8, positions=6)))
    assert model.position_table() is model.wpe.weight
    idx = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        before = model(idx)[0]
        model.wpe.weight.add_(5.0)
        assert not torch.equal(model(idx)[0], before)

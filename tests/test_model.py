from __future__ import annotations

import math

import pytest
import torch

from embedviz.config import POSITIONAL_KINDS, EmbeddingConfig, ModelConfig
from embedviz.model import InAttention, TinyGPT
from embedviz.positional import (alibi_bias, alibi_slopes, apply_rope, rope_cos_sin, rope_frequencies,
                                 sinusoidal_positions)
from tests.oracles import make_tables


SHAPES = [EmbeddingConfig(vocab_size=50, dim=8, positions=6, seed=0),
          EmbeddingConfig(vocab_size=300, dim=20, positions=16, seed=1234)]


@pytest.mark.parametrize("cfg", SHAPES)
@pytest.mark.parametrize("positional", POSITIONAL_KINDS)
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


def small(positional: str, *, n_layer: int = 1, n_head: int = 2, P: int = 6, rope_base: float = 10_000.0) -> TinyGPT:
    cfg = ModelConfig(embedding=EmbeddingConfig(vocab_size=30, dim=16, positions=P), n_layer=n_layer,
                      n_head=n_head, positional=positional, rope_base=rope_base)
    cfg.validate()
    return TinyGPT(cfg).eval()


@pytest.mark.parametrize("positional", ["rope", "alibi", "none"])
def test_schemes_that_add_nothing_to_x_have_no_position_table_and_ignore_wpe(positional):
    model = small(positional)
    assert model.position_table() is None
    idx = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        before = model(idx)[0]
        model.wpe.weight.add_(5.0)
        assert torch.equal(model(idx)[0], before)


def test_every_scheme_has_the_same_weights():
    # TrainResult pickles a state_dict and loads it into TinyGPT(cfg): the keys must not depend on the scheme
    keys = {k: tuple(small(k).state_dict()) for k in POSITIONAL_KINDS}
    assert len(set(keys.values())) == 1


def test_schemes_give_different_logits():
    idx = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        logits = {k: small(k)(idx)[0] for k in POSITIONAL_KINDS}
    for a in POSITIONAL_KINDS:
        for b in POSITIONAL_KINDS:
            if a < b:
                assert not torch.allclose(logits[a], logits[b]), (a, b)


# --- RoPE ---------------------------------------------------------------------------------------------

def rope_by_complex_numbers(x: torch.Tensor, base: float) -> torch.Tensor:
    """RoFormer section 3.4.2: pair (x_2i, x_2i+1) as a complex number, times e^(i m theta_i)."""
    *_, T, hs = x.shape
    theta = torch.tensor([base ** (-2 * i / hs) for i in range(hs // 2)], dtype=torch.float64)  # (hs/2,)
    m = torch.arange(T, dtype=torch.float64)[:, None]  # (T, 1)
    rotation = torch.polar(torch.ones(T, hs // 2, dtype=torch.float64), m * theta)  # (T, hs/2) complex
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], hs // 2, 2).contiguous())  # (..., T, hs/2)
    return torch.view_as_real(z * rotation).reshape(x.shape).float()  # (..., T, hs)


@pytest.mark.parametrize("base", [10_000.0, 500_000.0, 10.0])
def test_rope_equals_complex_multiplication(base):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 40, 8)  # (B, nh, T, hs)
    cos, sin = rope_cos_sin(length=40, head_dim=8, base=base)
    assert cos.shape == (40, 4)
    assert torch.allclose(apply_rope(x, cos, sin), rope_by_complex_numbers(x, base), atol=1e-5)


def test_rope_frequencies_follow_the_formula():
    theta = rope_frequencies(head_dim=8, base=10_000.0)
    assert torch.allclose(theta, torch.tensor([1.0, 0.1, 0.01, 0.001]))  # 10000^(-2i/8)
    assert rope_frequencies(head_dim=4, base=100.0).tolist() == pytest.approx([1.0, 0.1])


def test_rope_dot_product_depends_only_on_relative_position():
    torch.manual_seed(1)
    q, k = torch.randn(16), torch.randn(16)  # (hs,)
    cos, sin = rope_cos_sin(length=30, head_dim=16)
    rq = apply_rope(q.expand(30, 16), cos, sin)  # (T, hs): q placed at every position
    rk = apply_rope(k.expand(30, 16), cos, sin)  # (T, hs)
    dots = rq @ rk.T  # (T, T): q at m . k at n
    for delta in (0, 1, 5, -3):
        diag = torch.diagonal(dots, offset=-delta)  # all (m, n) with m - n = delta
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-4), delta
    assert not math.isclose(dots[5, 5].item(), dots[5, 0].item(), abs_tol=1e-3)  # distance does matter
    assert torch.allclose(rq.norm(dim=1), q.norm().expand(30))  # a rotation keeps lengths


def attention_by_hand(attn, x: torch.Tensor, *, rope_base: float | None = None,
                      slopes: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax attention written out: rope as complex rotation, alibi as -m*(i-j), causal by masking."""
    B, T, C = x.shape
    nh = attn.n_head
    q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in attn.c_attn(x).split(C, dim=2))
    if rope_base is not None:
        q, k = rope_by_complex_numbers(q, rope_base), rope_by_complex_numbers(k, rope_base)
    scores = q @ k.transpose(-1, -2) / math.sqrt(C // nh)  # (B, nh, T, T)
    if slopes is not None:
        i, j = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
        scores = scores - slopes[:, None, None] * (i - j)
    scores = scores.masked_fill(torch.ones(T, T).triu(1).bool(), float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v  # (B, nh, T, hs)
    return attn.c_proj(y.transpose(1, 2).reshape(B, T, C))


@pytest.mark.parametrize(("positional", "n_head"), [("rope", 2), ("alibi", 4), ("none", 2), ("learned", 2)])
def test_attention_equals_attention_by_hand(positional, n_head):
    model = small(positional, n_head=n_head, rope_base=300.0)
    torch.manual_seed(2)
    for p in model.blocks[0].attn.parameters():
        p.data.normal_(0, 0.5)  # large enough that positions change the attention pattern visibly
    x = torch.randn(2, 6, 16)  # (B, T, C)
    slopes = torch.tensor([2.0 ** (-8 * h / n_head) for h in range(1, n_head + 1)])
    expected = attention_by_hand(model.blocks[0].attn, x, rope_base=300.0 if positional == "rope" else None,
                                 slopes=slopes if positional == "alibi" else None)
    rope = (model.rope_cos[:6], model.rope_sin[:6]) if positional == "rope" else None
    mask = model.alibi[None, :, :6, :6] if positional == "alibi" else None  # (1, nh, T, T)
    with torch.no_grad():
        got = model.blocks[0].attn(x, InAttention(rope, mask))
        plain = model.blocks[0].attn(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert (positional in ("none", "learned")) == torch.allclose(got, plain)  # the scheme acts inside


def test_rope_tables_are_cached_not_recomputed():
    model = small("rope", P=8)
    cos = model.rope_cos
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3]]))
        model(torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]]))
    assert model.rope_cos is cos  # the same tensor: nothing computed per step
    with torch.no_grad():
        model(torch.zeros(1, 20, dtype=torch.long))  # longer than P: grown once, for that length
    assert model.rope_cos.shape == (20, 4) and torch.equal(model.rope_cos[:8], cos)


# --- ALiBi --------------------------------------------------------------------------------------------

def alibi_reference_slopes(n: int) -> list[float]:
    """get_slopes from the ALiBi authors' code (ofirpress/attention_with_linear_biases)."""
    def get_slopes_power_of_2(n):
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        ratio = start
        return [start * ratio**i for i in range(n)]

    if math.log2(n).is_integer():
        return get_slopes_power_of_2(n)
    closest_power_of_2 = 2 ** math.floor(math.log2(n))
    return (get_slopes_power_of_2(closest_power_of_2)
            + alibi_reference_slopes(2 * closest_power_of_2)[0::2][: n - closest_power_of_2])


def test_alibi_slopes_of_8_heads_are_a_half_to_1_over_256():
    assert alibi_slopes(8).tolist() == [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 12, 16])
def test_alibi_slopes_match_the_reference_code(n):
    assert alibi_slopes(n).tolist() == pytest.approx(alibi_reference_slopes(n), rel=1e-6)


def test_alibi_bias_depends_only_on_distance():
    bias = alibi_bias(n_head=4, length=9)  # (nh, T, T)
    slopes = alibi_slopes(4)
    for h in range(4):
        for i in range(9):
            for j in range(9):
                if j <= i:
                    assert bias[h, i, j].item() == pytest.approx(-slopes[h].item() * (i - j))
                else:
                    assert bias[h, i, j].item() == float("-inf")
    # a shift along the diagonal changes nothing: only i - j counts
    assert torch.equal(bias[:, 1:, 1:], bias[:, :-1, :-1])
    assert torch.equal(alibi_bias(n_head=4, length=20)[:, :9, :9], bias)  # any length, same prefix


# --- NoPE and longer inputs ---------------------------------------------------------------------------

def scrambled(model: TinyGPT) -> TinyGPT:
    """Large random block weights, like a trained model's: freshly initialised blocks barely act."""
    torch.manual_seed(3)
    for p in model.blocks.parameters():
        p.data.normal_(0, 0.3)
    return model


def test_attention_ignores_order_is_false_for_a_causal_gpt_without_positions():
    # "none": no position anywhere, yet the causal mask lets each position average over a different
    # number of tokens, so the same token reads differently depending on what and how much precedes it
    model = scrambled(small("none", n_layer=2))
    with torch.no_grad():
        logits = model(torch.tensor([[7, 3, 3]]))[0][0]  # (T, V)
        assert not torch.allclose(logits[1], logits[2], atol=1e-4)  # token 3 after 1 vs 2 tokens
        swapped = model(torch.tensor([[3, 7, 3]]))[0][0]
        assert not torch.allclose(logits[2], swapped[2], atol=1e-4)  # same tokens, other order


def test_without_positions_a_run_of_one_token_looks_the_same_everywhere():
    # the flip side: with nothing but copies of one token before it, averaging cannot count them
    model = scrambled(small("none", n_layer=2))
    with torch.no_grad():
        logits = model(torch.tensor([[5, 5, 5, 5]]))[0][0]  # (T, V)
    assert torch.allclose(logits, logits[0].expand_as(logits), atol=1e-5)


@pytest.mark.parametrize("positional", ["sinusoidal", "rope", "alibi", "none"])
def test_schemes_without_a_learned_table_accept_longer_inputs(positional):
    model = small(positional, P=6)
    idx = torch.randint(0, 30, (2, 24), generator=torch.Generator().manual_seed(0))  # (B, 4P)
    with torch.no_grad():
        long_logits = model(idx)[0]
        short_logits = model(idx[:, :6])[0]
    assert long_logits.shape == (2, 24, 30) and torch.isfinite(long_logits).all()
    assert torch.allclose(long_logits[:, :6], short_logits, atol=1e-5)  # causal: the prefix is unchanged
    if positional == "sinusoidal":
        assert model.position_table().shape == (6, 16)  # still the trained P rows


def test_learned_positions_refuse_longer_inputs():
    with pytest.raises(ValueError, match="no rows past them"):
        small("learned", P=6)(torch.zeros(1, 7, dtype=torch.long))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(positional="relative"), 'one of "learned", "sinusoidal", "rope", "alibi", "none"'),
        (dict(positional="rope", n_head=16), r"width \(dimension 16 / 16 heads = 1\) must be even"),
        (dict(rope_base=1.0), "greater than 1"),
        (dict(rope_base=float("inf")), "finite"),
    ],
)
def test_model_config_rejects(changes, match):
    cfg = ModelConfig(embedding=EmbeddingConfig(vocab_size=30, dim=16, positions=6), **changes)
    with pytest.raises(ValueError, match=match):
        cfg.validate()

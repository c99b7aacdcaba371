"""The math of the positional schemes, shared by the model and the figures: one implementation.

Sinusoidal tables (Vaswani et al. 2017), RoPE rotations (Su et al., arXiv 2104.09864) and ALiBi slopes
and biases (Press et al., arXiv 2108.12409), each for any length. Learned tables and NoPE need no math.
"""
from __future__ import annotations

import math

import torch


def sinusoidal_positions(positions: int, dim: int) -> torch.Tensor:
    """(P, d) table of Vaswani et al. (2017): sin on even columns, cos on odd, wavelengths up to 10000*2pi."""
    if positions < 1 or dim < 1:
        raise ValueError("Sinusoidal positions need at least one position and one dimension.")
    pos = torch.arange(positions, dtype=torch.float32)[:, None]  # (P, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))  # (ceil(d/2),)
    table = torch.zeros(positions, dim)  # (P, d)
    table[:, 0::2] = torch.sin(pos * freq)  # (P, ceil(d/2))
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])  # (P, floor(d/2))
    return table


def rope_frequencies(*, head_dim: int, base: float = 10_000.0) -> torch.Tensor:
    """(hs/2,) angle per position of each 2-D pair: theta_i = base^(-2i/hs), pair i = dims (2i, 2i+1)."""
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"RoPE rotates pairs of dimensions: the head width must be even, got {head_dim}.")
    if not base > 1:
        raise ValueError(f"The RoPE base must be greater than 1, got {base}.")
    i = torch.arange(head_dim // 2, dtype=torch.float64)  # (hs/2,)
    return (base ** (-2.0 * i / head_dim)).float()  # (hs/2,)


def rope_angles(*, length: int, head_dim: int, base: float = 10_000.0) -> torch.Tensor:
    """(T, hs/2) rotation angle m * theta_i of pair i at position m = 0..T-1 (radians)."""
    if length < 1:
        raise ValueError("RoPE angles need at least one position.")
    m = torch.arange(length, dtype=torch.float64)[:, None]  # (T, 1)
    return (m * rope_frequencies(head_dim=head_dim, base=base).double()[None, :]).float()  # (T, hs/2)


def rope_cos_sin(*, length: int, head_dim: int, base: float = 10_000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of `rope_angles`, each (T, hs/2): what the model caches once per length."""
    angles = rope_angles(length=length, head_dim=head_dim, base=base)  # (T, hs/2)
    return torch.cos(angles), torch.sin(angles)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x[..., 2i], x[..., 2i+1]) of x (..., T, hs) by the angle of its position.

    cos, sin: (T, hs/2) from `rope_cos_sin`. The dot product of a rotated query at m and a rotated key
    at n then depends on m - n only (RoFormer eq. 16).
    """
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (..., T, hs/2) each: the two coordinates of every pair
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)  # (..., T, hs/2, 2)
    return out.flatten(-2)  # (..., T, hs)


def alibi_slopes(n_head: int) -> torch.Tensor:
    """(nh,) ALiBi head slopes: 2^(-8k/n) for k = 1..n when n is a power of 2 (1/2 ... 1/256 for 8 heads).

    Otherwise the reference code's rule: the slopes of the closest smaller power of 2, then every
    other slope of twice that power, until there are n.
    """
    if n_head < 1:
        raise ValueError(f"ALiBi needs at least one head, got {n_head}.")

    def power_of_2(n: int) -> list[float]:
        return [2.0 ** (-8.0 * k / n) for k in range(1, n + 1)]

    closest = 2 ** math.floor(math.log2(n_head))
    slopes = power_of_2(closest)
    if closest != n_head:
        slopes += alibi_slopes(2 * closest).tolist()[0::2][: n_head - closest]
    return torch.tensor(slopes, dtype=torch.float32)  # (nh,)


def causal_mask(length: int) -> torch.Tensor:
    """(T, T) bool, True where query i may attend to key j (j <= i): all a causal model has without positions."""
    if length < 1:
        raise ValueError("A causal mask needs at least one position.")
    return torch.ones(length, length, dtype=torch.bool).tril()  # (T, T)


def alibi_bias(*, n_head: int, length: int) -> torch.Tensor:
    """(nh, T, T) float attention mask: -m_h * (i - j) where key j <= query i, -inf above the diagonal.

    Added to the attention logits q.k / sqrt(hs); it depends on the distance i - j only.
    """
    i = torch.arange(length)[:, None]  # (T, 1) query positions
    j = torch.arange(length)[None, :]  # (1, T) key positions
    distance = (i - j).float()  # (T, T)
    bias = -alibi_slopes(n_head)[:, None, None] * distance  # (nh, 1, 1) * (T, T) -> (nh, T, T)
    return bias.masked_fill(~causal_mask(length), float("-inf"))  # (nh, T, T)


def rope_pair_path(*, length: int, head_dim: int, pair: int, base: float = 10_000.0) -> torch.Tensor:
    """(T, 2) where `apply_rope` takes the unit vector (1, 0) of pair `pair` at positions 0..T-1."""
    if not 0 <= pair < head_dim // 2:
        raise ValueError(f"A head of width {head_dim} has pairs 0 to {head_dim // 2 - 1}; got pair {pair}.")
    x = torch.zeros(length, head_dim)  # (T, hs)
    x[:, 2 * pair] = 1.0
    cos, sin = rope_cos_sin(length=length, head_dim=head_dim, base=base)  # (T, hs/2) each
    return apply_rope(x, cos, sin)[:, 2 * pair : 2 * pair + 2]  # (T, 2)


def rope_relative_scores(*, max_distance: int, head_dim: int, base: float = 10_000.0) -> torch.Tensor:
    """(max_distance+1,) q.k after RoPE for q = k = all ones, with the query at distance m - n = 0..max.

    The sum of cos((m-n) theta_i) over pairs (times 2): RoPE's long-range decay for aligned q and k.
    """
    if max_distance < 0:
        raise ValueError(f"The largest distance must be at least 0, got {max_distance}.")
    cos, sin = rope_cos_sin(length=max_distance + 1, head_dim=head_dim, base=base)  # (D+1, hs/2) each
    ones = torch.ones(max_distance + 1, head_dim)  # (D+1, hs)
    q = apply_rope(ones, cos, sin)  # (D+1, hs): the query at positions m = 0..D
    k = apply_rope(ones[:1], cos[:1], sin[:1])  # (1, hs): the key at n = 0
    return q @ k[0]  # (D+1,)

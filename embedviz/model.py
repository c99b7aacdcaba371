"""Token + position embedding tables and a tiny nanoGPT-style language model built on them, with five
positional schemes: learned, sinusoidal, RoPE, ALiBi and none (their math is in embedviz.positional).

The tables are exactly those of `torch.manual_seed(seed); nn.Embedding(V, d); nn.Embedding(P, d)`, so
the explorer and the trained model start from the same numbers. No dropout, no generation, no loading.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from embedviz.config import ModelConfig
from embedviz.positional import alibi_bias, apply_rope, rope_cos_sin, sinusoidal_positions


class InAttention(NamedTuple):
    """What a positional scheme puts inside attention rather than adding to x."""

    rope: tuple[torch.Tensor, torch.Tensor] | None = None  # (cos, sin), each (T, hs/2): rotates q and k
    # (1, nh, T, T) float added to the scores, causal -inf included. 4-D on purpose: SDPA on CPU takes a
    # 4-D mask into its flash kernel, a 3-D one into the math path, which keeps (B, nh, T, T) weights per
    # layer for backward (the largest hosted ALiBi training: 891 MiB instead of 652).
    attn_mask: torch.Tensor | None = None


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, n_head: int) -> None:
        super().__init__()
        assert dim % n_head == 0, (dim, n_head)
        self.n_head = n_head
        self.c_attn = nn.Linear(dim, 3 * dim)  # q, k, v in one matmul
        self.c_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, where: InAttention = InAttention()) -> torch.Tensor:
        B, T, C = x.shape  # (B, T, C)
        rope, attn_mask = where
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)  # (B, nh, T, hs), rotated by position
        if attn_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        else:
            assert attn_mask.dim() == 4, attn_mask.shape  # (1, nh, T, T): see InAttention
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.c_proj(y)  # (B, T, C)


class MLP(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(dim, 4 * dim)
        self.c_proj = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))  # (B, T, C) -> (B, T, 4C) -> (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm transformer block, as in GPT-2."""

    def __init__(self, dim: int, n_head: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, n_head)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim)

    def forward(self, x: torch.Tensor, where: InAttention = InAttention()) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), where)  # (B, T, C)
        return x + self.mlp(self.ln_2(x))  # (B, T, C)


class TinyGPT(nn.Module):
    """wte (+ positions) -> n_layer blocks -> ln_f -> logits against wte itself (tied head).

    Positions by `cfg.positional`: "learned" adds wpe and "sinusoidal" a fixed table to x; "rope" rotates
    queries and keys; "alibi" biases the attention logits by distance; "none" has the causal mask alone.
    wpe is created for every scheme (same RNG order, so the same numbers as `torch.manual_seed(seed); nn.Embedding(V, d); nn.Embedding(P, d)`) but only "learned" uses it.

    wte and wpe keep PyTorch's N(0, 1) init (they must equal the explorer's tables), unlike GPT-2's N(0, 0.02).
    Hidden states leave ln_f with unit-scale coordinates, so `h @ wte.T` would have logits of standard
    deviation sqrt(d): a confidently wrong start. The head therefore divides by sqrt(d) (as attention
    does), which starts the loss near ln(V). On the toy world (default settings) that took the initial
    loss from 22 to 6.1 and the 5-NN class agreement after 300 steps from 0.3-0.65 to >= 0.99.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        e = cfg.embedding
        self.cfg = cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(e.seed)
            self.wte = nn.Embedding(e.vocab_size, e.dim)  # (V, d): created first, default init
            self.wpe = nn.Embedding(e.positions, e.dim)  # (P, d): second, as in the textbook code
            self.blocks = nn.ModuleList(Block(e.dim, cfg.n_head) for _ in range(cfg.n_layer))
            self.ln_f = nn.LayerNorm(e.dim)
            self.lm_head = nn.Linear(e.dim, e.vocab_size, bias=False)
            self.lm_head.weight = self.wte.weight  # tied: the output "unembedding" is wte itself
            for name, p in self.blocks.named_parameters():
                if name.endswith("c_proj.weight"):  # GPT-2: residual projections scaled by depth
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))
                elif name.endswith(("c_attn.weight", "c_fc.weight")):
                    nn.init.normal_(p, mean=0.0, std=0.02)
                elif name.endswith(("c_attn.bias", "c_fc.bias", "c_proj.bias")):
                    nn.init.zeros_(p)
        self.head_scale = 1.0 / math.sqrt(e.dim)
        # Position tensors are computed once per length and kept as buffers (not parameters: fixed, and
        # left out of state_dict so every scheme loads the same weights); a longer input grows them.
        self.register_buffer("sinusoid", None, persistent=False)  # (L, d) for "sinusoidal"
        self.register_buffer("rope_cos", None, persistent=False)  # (L, hs/2) for "rope"
        self.register_buffer("rope_sin", None, persistent=False)  # (L, hs/2) for "rope"
        self.register_buffer("alibi", None, persistent=False)  # (nh, L, L) for "alibi", causal included
        self._cache_positions(e.positions)

    def _cache_positions(self, length: int) -> None:
        """Fill the buffers of this model's scheme for `length` positions, on the model's device."""
        e, kind = self.cfg.embedding, self.cfg.positional
        device = self.wte.weight.device
        if kind == "sinusoidal":
            self.sinusoid = sinusoidal_positions(length, e.dim).to(device)
        elif kind == "rope":
            cos, sin = rope_cos_sin(length=length, head_dim=e.dim // self.cfg.n_head, base=self.cfg.rope_base)
            self.rope_cos, self.rope_sin = cos.to(device), sin.to(device)
        elif kind == "alibi":
            self.alibi = alibi_bias(n_head=self.cfg.n_head, length=length).to(device)

    def _cached_length(self) -> float:
        """Positions the buffers cover; infinite for learned/none, which have nothing to grow."""
        cached = {"sinusoidal": self.sinusoid, "rope": self.rope_cos, "alibi": self.alibi}.get(self.cfg.positional)
        return math.inf if cached is None else cached.shape[-2]

    def position_table(self) -> torch.Tensor | None:
        """(P, d) positions the model adds to the tokens (learned wpe or the fixed sinusoid); None for
        rope, alibi and none, which add nothing to x."""
        if self.cfg.positional == "learned":
            return self.wpe.weight
        if self.cfg.positional == "sinusoidal":
            return self.sinusoid[: self.cfg.embedding.positions]
        return None

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V) and the mean loss against targets (B, T) if given.

        Only learned positions stop at P (wpe has no more rows); the other schemes take any T.
        """
        B, T = idx.shape  # (B, T) table rows
        kind = self.cfg.positional
        if kind == "learned" and T > self.cfg.embedding.positions:
            raise ValueError(
                f"A sequence of {T} tokens is longer than the model's {self.cfg.embedding.positions} positions: "
                "a learned position table has no rows past them. Use a shorter sequence."
            )
        if T > self._cached_length():
            self._cache_positions(T)
        x = self.wte(idx)  # (B, T, C)
        if kind == "learned":
            x = x + self.wpe.weight[:T]  # (B, T, C) + (T, C) -> (B, T, C)
        elif kind == "sinusoidal":
            x = x + self.sinusoid[:T]  # (B, T, C) + (T, C) -> (B, T, C)
        where = InAttention(
            rope=(self.rope_cos[:T], self.rope_sin[:T]) if kind == "rope" else None,  # 2 x (T, hs/2)
            attn_mask=self.alibi[None, :, :T, :T] if kind == "alibi" else None,  # (1, nh, T, T)
        )
        for block in self.blocks:
            x = block(x, where)  # (B, T, C)
        x = self.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x) * self.head_scale  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))  # (B*T, V) vs (B*T,)
        return logits, loss

"""Frozen settings for every stage: embedding tables, tiny GPT, training, projection.

Each dataclass is hashable so Streamlit can key caches on it, and each has a
`validate()` that raises ValueError with a message a user can act on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may allocate or compute."""

    max_table_floats: int = 40_000_000  # V*d: GPT-2 small's wte (50257x768) still fits, ~160 MB
    max_dim: int = 1024  # GPT-2 medium's width; wider heatmaps stop being readable anyway
    max_positions: int = 1024  # GPT-2's context length
    max_text_chars: int = 100_000  # typed text; longer input is refused, not cut silently
    max_sentences: int = 64  # rows of the batch
    # B x T x d of the explorer's tensors: tok and x are (B, T, d) and the page copies and downloads
    # them. 2^22 float32 = 16 MB each, e.g. 4 sentences x 1,024 tokens x d 1,024; unbounded, 64 lines
    # of emoji at P = d = 1,024 took the server from 1.36 to 1.94 GB and its download peaked at 3.94 GB
    max_batch_floats: int = 4_194_304
    max_export_bytes: int = 160_000_000  # one download's files, before zipping; larger ones are left out
    max_upload_bytes: int = 2_000_000  # an uploaded corpus
    max_train_steps: int = 5_000
    max_train_vocab: int = 8_192  # the LM head over V dominates training cost
    max_train_dim: int = 256
    max_train_positions: int = 1_024  # activations kept for backward grow with P (attention's with P^2)
    max_train_layers: int = 4
    max_batch_size: int = 256
    max_concurrent_trainings: int = 2  # trainings at once in one server process (2 cores)
    max_train_seconds: float = 300.0  # a training is stopped (model kept) after this long
    max_kept_models: int = 8  # trained models kept for other visitors with the same settings
    max_queued_trainings: int = 8  # trainings waiting for a free trainer; more are refused with a message
    abandon_after_s: float = 15.0  # a training nobody's page has polled for this long is cancelled
    # A link can ask for a trained model; it trains without a press only up to this much work
    # (steps x batch x positions x vocabulary: logits computed), 4x the default training.
    max_link_training_work: int = 4 * 300 * 32 * 16 * 256


LOCAL_LIMITS = Limits()

# The choices offered on the page and accepted in a link, defined once.
ENCODINGS = ("cl100k_base", "gpt2", "o200k_base", "bpe")  # tiktoken encodings, then our own BPE
BPE = "bpe"  # the encoding name of "train a tokenizer on the corpus"
CORPORA = {"toy": "Toy world (generated)", "order": "Word order (generated)", "pydocs": "Python documentation",
           "upload": "Your own (.txt)"}
SHAREABLE_CORPORA = ("toy", "order", "pydocs")  # an upload cannot travel in a link
HEAD_COUNTS = (1, 2, 4, 8)

# Streamlit Community Cloud: ~1-2.7 GB of memory and a shared CPU for many visitors.
# What the server and the largest training HOSTED_LIMITS allow may hold together (issue 13.2). At V 1,024,
# P 256 the largest training (rope, the heaviest scheme) took the tree to 1,227 MiB summed PSS; with the
# bounds below (V 512, P 128, d 128, 2 layers, batch 32) it peaked at 1,022 MiB: server after 100
# settings 545, fork server 138, training 331 (2026-11-30,
# `EMBEDVIZ_HOSTED=1 python -m benchmarks.memory --server 100 --positional rope`; every scheme's training
# alone: `python -m benchmarks --only memory`). Memory does not depend on load.
HOSTED_MEMORY_BUDGET_MIB = 1_200
HOSTED_LIMITS = Limits(
    max_table_floats=10_000_000,
    max_dim=768,
    max_positions=256,
    max_text_chars=20_000,
    max_sentences=16,
    max_batch_floats=1_048_576,  # 4 MB per tensor: 16 sentences x 256 tokens x d 256
    max_export_bytes=32_000_000,
    max_upload_bytes=1_000_000,
    max_train_steps=1_500,
    # A training's memory is mostly its activations, (batch, P, V) logits and (batch, P, 4d) MLP floats
    # kept for backward: at V 2,048, batch 64, P 256, d 128, 2 layers, 8 heads the training process
    # peaked above 1.17 GB (VmHWM, 20 steps); see HOSTED_MEMORY_BUDGET_MIB for the bounds that fit.
    max_train_vocab=512, max_train_dim=128, max_train_positions=128, max_train_layers=2, max_batch_size=32,
    # one training at a time, the others queued; a few trained models kept for the links that ask again
    max_concurrent_trainings=1, max_train_seconds=60.0, max_kept_models=4, max_queued_trainings=4,
)


def hosted() -> bool:
    """True when EMBEDVIZ_HOSTED is set to 1/true/yes (set it on a public instance)."""
    return os.environ.get("EMBEDVIZ_HOSTED", "").strip().lower() in {"1", "true", "yes"}


def limits() -> Limits:
    return HOSTED_LIMITS if hosted() else LOCAL_LIMITS


@dataclass(frozen=True)
class EmbeddingConfig:
    """The shapes of `nn.Embedding(vocab_size, dim)` and `nn.Embedding(positions, dim)`."""

    vocab_size: int = 256  # V: rows of wte; the toy world has 216 distinct tokens, so few rows stay unused
    dim: int = 32  # d: wide enough to separate ~10 word classes, narrow enough to read
    positions: int = 16  # P: learned positions = the model's context length
    seed: int = 0  # torch.manual_seed before wte, then wpe, are created

    def validate(self, lim: Limits | None = None) -> None:
        lim = lim or limits()
        if self.vocab_size < 2:
            raise ValueError("Vocabulary size must be at least 2 (one token and <unk>).")
        if not 1 <= self.dim <= lim.max_dim:
            raise ValueError(f"Embedding dimension must be between 1 and {lim.max_dim}.")
        if not 1 <= self.positions <= lim.max_positions:
            raise ValueError(f"Number of positions must be between 1 and {lim.max_positions}.")
        if self.vocab_size * self.dim > lim.max_table_floats:
            raise ValueError(
                f"A {self.vocab_size:,} x {self.dim} table has {self.vocab_size * self.dim:,} "
                f"numbers; the limit is {lim.max_table_floats:,}. Lower the vocabulary size "
                "or the embedding dimension."
            )
        if not 0 <= self.seed < 2**32:
            raise ValueError("Seed must be between 0 and 4294967295.")


# How a model knows positions: "learned" (GPT-2's wpe added to wte), "sinusoidal" (fixed table added,
# Vaswani et al.), "rope" (queries and keys rotated, RoFormer), "alibi" (distance bias on the attention
# logits, Press et al.), "none" (NoPE: the causal mask alone).
POSITIONAL_KINDS = ("learned", "sinusoidal", "rope", "alibi", "none")


@dataclass(frozen=True)
class ModelConfig:
    """A nanoGPT-style model whose embedding tables are exactly the explorer's."""

    embedding: EmbeddingConfig = EmbeddingConfig()
    n_layer: int = 1  # one block already organises the toy world's embeddings
    n_head: int = 2  # must divide embedding.dim
    positional: str = "learned"  # one of POSITIONAL_KINDS
    rope_base: float = 10_000.0  # RoPE: theta_i = base^(-2i/head width), RoFormer's (and Llama 2's) base

    def validate(self, lim: Limits | None = None) -> None:
        lim = lim or limits()
        self.embedding.validate(lim)
        if self.embedding.vocab_size > lim.max_train_vocab:
            raise ValueError(
                f"Training is limited to a vocabulary of {lim.max_train_vocab:,} rows; "
                "lower the vocabulary size to train."
            )
        if self.embedding.dim > lim.max_train_dim:
            raise ValueError(
                f"Training is limited to {lim.max_train_dim} dimensions; lower the embedding dimension."
            )
        if self.embedding.positions > lim.max_train_positions:
            raise ValueError(
                f"Training is limited to {lim.max_train_positions} positions; lower the positions P to train."
            )
        if not 1 <= self.n_layer <= lim.max_train_layers:
            raise ValueError(f"Layers must be between 1 and {lim.max_train_layers}.")
        if self.n_head < 1 or self.embedding.dim % self.n_head:
            raise ValueError(
                f"The number of heads ({self.n_head}) must divide the embedding dimension "
                f"({self.embedding.dim})."
            )
        if self.positional not in POSITIONAL_KINDS:
            raise ValueError(
                "positional must be one of " + ", ".join(f'"{k}"' for k in POSITIONAL_KINDS) + "."
            )
        if not 1 < self.rope_base < float("inf"):
            raise ValueError(f"The RoPE base must be a finite number greater than 1, got {self.rope_base}.")
        head_dim = self.embedding.dim // self.n_head
        if self.positional == "rope" and head_dim % 2:
            raise ValueError(
                f"RoPE rotates pairs of dimensions, so each head's width (dimension {self.embedding.dim} / "
                f"{self.n_head} heads = {head_dim}) must be even; change the dimension or the heads."
            )


@dataclass(frozen=True)
class TrainConfig:
    """How the tiny GPT is trained; the seed comes from the EmbeddingConfig."""

    BATCH_SIZES: ClassVar[tuple[int, ...]] = (1, 4, 8, 16, 32, 64, 128, 256)  # offered on the page
    LEARNING_RATES: ClassVar[tuple[float, ...]] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 1e-1)

    steps: int = 300  # toy world: 5-NN class agreement ~0.08 -> >=0.99 (seeds 0-2), ~1.5 s on 2 cores
    batch_size: int = 32  # windows of P+1 tokens per step
    # AdamW. wte starts at N(0, 1) and Adam moves a weight by about lr per step, so 3e-3 x 300 steps
    # barely dents the random start (agreement 0.3); 2e-2 reaches 0.8 by step ~100 and stays stable
    learning_rate: float = 2e-2
    weight_decay: float = 0.0  # decay would shrink rare tokens' rows towards 0
    held_out: float = 0.1  # fraction of the corpus (its end) kept for the held-out loss
    eval_every: int = 25  # steps between held-out evaluations and progress reports
    snapshot_every: int = 25  # steps between copies of wte/wpe kept for the evolution view

    def validate(self, lim: Limits | None = None) -> None:
        lim = lim or limits()
        if not 1 <= self.steps <= lim.max_train_steps:
            raise ValueError(f"Training steps must be between 1 and {lim.max_train_steps:,}.")
        if not 1 <= self.batch_size <= lim.max_batch_size:
            raise ValueError(f"Batch size must be between 1 and {lim.max_batch_size}.")
        if not 0 < self.learning_rate <= 1:
            raise ValueError("Learning rate must be in (0, 1].")
        if not 0 <= self.held_out < 0.5:
            raise ValueError("The held-out fraction must be in [0, 0.5).")
        if self.eval_every < 1 or self.snapshot_every < 1:
            raise ValueError("eval_every and snapshot_every must be at least 1.")


@dataclass(frozen=True)
class ProjectionConfig:
    """2D projection of embedding rows (UMAP, or PCA when there are too few rows)."""

    n_neighbors: int = 15  # umap-learn's default: local vs global balance
    min_dist: float = 0.1  # umap-learn's default
    n_epochs: int = 200  # umap-learn uses 200 above 10k points; plenty for <= 3000
    metric: str = "cosine"  # the similarity the model's dot products care about
    max_points: int = 3000  # above this, only the most frequent rows are drawn
    seed: int = 0
    # umap-learn's default is 1.0; starting from PCA (or from the previous map) a gentler rate keeps
    # more neighbourhoods: 200 epochs then match or beat plain UMAP's 500 in trustworthiness (200-3000 rows)
    learning_rate: float = 0.35

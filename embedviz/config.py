"""Frozen settings for every stage: embedding tables, tiny GPT, training, projection.

Each dataclass is hashable so Streamlit can key caches on it, and each has a
`validate()` that raises ValueError with a message a user can act on.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may allocate or compute."""

    max_table_floats: int = 40_000_000  # V*d: GPT-2 small's wte (50257x768) still fits, ~160 MB
    max_dim: int = 1024  # GPT-2 medium's width; wider heatmaps stop being readable anyway
    max_positions: int = 1024  # GPT-2's context length
    max_text_chars: int = 100_000  # typed text; longer input is refused, not cut silently
    max_sentences: int = 64  # rows of the batch
    max_upload_bytes: int = 2_000_000  # an uploaded corpus
    max_train_steps: int = 5_000
    max_train_vocab: int = 8_192  # the LM head over V dominates training cost
    max_train_dim: int = 256
    max_train_layers: int = 4
    max_batch_size: int = 256
    max_concurrent_trainings: int = 2  # trainings at once in one server process (2 cores)
    max_train_seconds: float = 300.0  # a training is stopped (model kept) after this long
    max_kept_models: int = 8  # trained models kept for other visitors with the same settings


LOCAL_LIMITS = Limits()

# Streamlit Community Cloud: ~1-2.7 GB of memory and a shared CPU for many visitors.
HOSTED_LIMITS = Limits(
    max_table_floats=10_000_000,
    max_dim=768,
    max_positions=256,
    max_text_chars=20_000,
    max_sentences=16,
    max_upload_bytes=1_000_000,
    max_train_steps=1_500,
    max_train_vocab=2_048,
    max_train_dim=128,
    max_train_layers=2,
    max_batch_size=64,
    max_concurrent_trainings=1,
    max_train_seconds=60.0,
    max_kept_models=4,
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


@dataclass(frozen=True)
class ModelConfig:
    """A nanoGPT-style model whose embedding tables are exactly the explorer's."""

    embedding: EmbeddingConfig = EmbeddingConfig()
    n_layer: int = 1  # one block already organises the toy world's embeddings
    n_head: int = 2  # must divide embedding.dim
    positional: str = "learned"  # "learned" (GPT-2's wpe) or "sinusoidal" (fixed, Vaswani et al.)

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
        if not 1 <= self.n_layer <= lim.max_train_layers:
            raise ValueError(f"Layers must be between 1 and {lim.max_train_layers}.")
        if self.n_head < 1 or self.embedding.dim % self.n_head:
            raise ValueError(
                f"The number of heads ({self.n_head}) must divide the embedding dimension "
                f"({self.embedding.dim})."
            )
        if self.positional not in ("learned", "sinusoidal"):
            raise ValueError('positional must be "learned" or "sinusoidal".')


@dataclass(frozen=True)
class TrainConfig:
    """How the tiny GPT is trained; the seed comes from the EmbeddingConfig."""

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


def replace(cfg, **changes):
    """dataclasses.replace, re-exported so callers need not import dataclasses."""
    return dataclasses.replace(cfg, **changes)

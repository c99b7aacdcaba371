"""Held-out loss of a trained TinyGPT at 1x, 2x and 4x its training context P, position by position.

A learned position table has no rows past P, so those positions get NaN (never invented numbers) and the
result says so; the other schemes are run at the longer lengths. `describe_lengths` turns the numbers
of several schemes into one sentence.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from embedviz.model import TinyGPT

MAX_WINDOWS = 128  # held-out windows per length: enough for a smooth per-position curve, one quick pass
MAX_FLOATS_PER_CHUNK = 4_000_000  # logits (b, L, V) plus attention (b, nh, L, L) at once: ~16 MB
# A loss that rises by at most this much past P "holds": well above seed-to-seed noise on the order
# world (about 0.01-0.02 nats) and well below what losing track of positions costs (tenths of a nat)
HOLD_TOLERANCE = 0.05


@dataclass(frozen=True)
class LengthEvaluation:
    """Held-out loss of one model by position, at several multiples of its training context P."""

    positional: str  # the model's scheme, e.g. "rope"
    trained_positions: int  # P
    lengths: tuple[int, ...]  # window lengths evaluated, e.g. (16, 32, 64)
    loss_by_position: dict[int, np.ndarray]  # length -> (length,) mean loss at each position; NaN: not run
    windows: dict[int, int]  # length -> held-out windows averaged
    # None, or why some positions are NaN: a learned table has no rows past P, so nothing is computed there
    unavailable: str | None

    def mean_loss(self, length: int) -> float:
        """Mean loss over all positions of windows of `length` tokens; NaN where any position is missing."""
        return float(np.mean(self.loss_by_position[length]))

    def loss_past_trained(self, length: int) -> float:
        """Mean loss over positions P..length-1, which training never saw; NaN when length <= P or missing."""
        past = self.loss_by_position[length][self.trained_positions :]
        return float(np.mean(past)) if past.size else math.nan


def evaluate_lengths(
    model: TinyGPT, *, held_out_rows: np.ndarray, multiples: Sequence[int] = (1, 2, 4), max_windows: int = MAX_WINDOWS
) -> LengthEvaluation:
    """Next-token loss at each position of windows of P * m tokens (m in `multiples`) from `held_out_rows`.

    held_out_rows: (N,) table rows the model did not train on (the corpus's held-out end). Windows are
    spread over them without overlapping when there is room. Learned positions are only run on the first
    P tokens of each window; their later positions are NaN and `unavailable` says why.
    """
    P = model.cfg.embedding.positions
    V = model.cfg.embedding.vocab_size
    rows = np.asarray(held_out_rows)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError("The held-out rows must be a 1-D array of integer table rows.")
    if not multiples or any(int(m) < 1 for m in multiples):
        raise ValueError(f"Multiples of the context must be whole numbers of at least 1, got {list(multiples)}.")
    if max_windows < 1:
        raise ValueError("max_windows must be at least 1.")
    lengths = tuple(sorted({P * int(m) for m in multiples}))
    if len(rows) < lengths[-1] + 1:
        raise ValueError(
            f"The held-out part has {len(rows)} tokens; windows of {lengths[-1]} positions need at least "
            f"{lengths[-1] + 1}. Use a longer corpus, a larger held-out fraction or smaller multiples."
        )
    if rows.min() < 0 or rows.max() >= V:
        raise ValueError(f"Held-out rows must be in [0, {V}) for a vocabulary of {V} rows.")

    learned = model.cfg.positional == "learned"
    data = torch.from_numpy(rows.astype(np.int64, copy=False))  # (N,)
    device = model.wte.weight.device
    was_training = model.training
    model.eval()
    losses: dict[int, np.ndarray] = {}
    windows: dict[int, int] = {}
    try:
        for L in lengths:
            n = min((len(data) - 1) // L, max_windows)
            starts = torch.linspace(0, len(data) - 1 - L, n).long()  # (n,) spread over the held-out part
            chunk = data[starts[:, None] + torch.arange(L + 1)]  # (n, L+1)
            run = min(L, P) if learned else L  # a learned table stops at P
            per_position = _loss_by_position(model, chunk[:, : run + 1].to(device))  # (run,)
            losses[L] = np.concatenate([per_position, np.full(L - run, np.nan)])  # (L,)
            windows[L] = n
    finally:
        model.train(was_training)
    unavailable = None
    if learned and lengths[-1] > P:
        unavailable = (
            f"A learned position table has rows for positions 0-{P - 1} only: positions {P} and later "
            "cannot be computed, so they are NaN."
        )
    return LengthEvaluation(
        positional=model.cfg.positional,
        trained_positions=P,
        lengths=lengths,
        loss_by_position=losses,
        windows=windows,
        unavailable=unavailable,
    )


def _loss_by_position(model: TinyGPT, chunk: torch.Tensor) -> np.ndarray:
    """(T,) mean next-token loss at each position of chunk (n, T+1), in pieces that bound memory."""
    n, T = chunk.shape[0], chunk.shape[1] - 1
    per_window = T * model.cfg.embedding.vocab_size + model.cfg.n_head * T * T  # logits + attention
    per_piece = max(1, MAX_FLOATS_PER_CHUNK // per_window)
    total = torch.zeros(T, dtype=torch.float64)  # (T,)
    with torch.no_grad():
        for i in range(0, n, per_piece):
            piece = chunk[i : i + per_piece]  # (b, T+1)
            logits, _ = model(piece[:, :-1])  # (b, T, V)
            loss = F.cross_entropy(logits.transpose(1, 2), piece[:, 1:], reduction="none")  # (b, T)
            total += loss.sum(dim=0).double().cpu()
    return (total / n).numpy()


def describe_lengths(evaluations: Sequence[LengthEvaluation], *, tolerance: float = HOLD_TOLERANCE) -> str:
    """One sentence saying, from the numbers, which schemes hold their loss past P and which degrade.

    Compares each scheme's mean loss over windows of P tokens with its mean loss at the positions past P
    of the longer windows.
    """
    if not evaluations:
        raise ValueError("There are no evaluations to describe; evaluate at least one model.")
    P = evaluations[0].trained_positions
    longer = sorted({L for e in evaluations for L in e.lengths if L > P})
    if any(e.trained_positions != P for e in evaluations) or any(P not in e.lengths for e in evaluations):
        raise ValueError("Describe models trained on the same context P, each evaluated at 1x P.")
    if not longer:
        raise ValueError("Evaluate at a multiple above 1 (e.g. 2 and 4) to say what happens past P.")
    held: list[str] = []
    degraded: list[str] = []
    missing: list[str] = []
    for e in evaluations:
        base = e.mean_loss(P)
        past = [(L, e.loss_past_trained(L)) for L in longer if L in e.lengths]
        if any(math.isnan(v) for _, v in past):
            missing.append(e.positional)
        elif all(v - base <= tolerance for _, v in past):
            worst = max(v for _, v in past)
            held.append(f"{e.positional} ({base:.2f} at 1x, at most {worst:.2f} past P)")
        else:
            rises = ", ".join(f"{v - base:+.2f} at {L // P}x" for L, v in past)
            degraded.append(f"{e.positional} rises from {base:.2f} ({rises})")
    clauses = []
    if held:
        clauses.append(f"{_join(held)} {'holds its' if len(held) == 1 else 'hold their'} held-out loss "
                       f"within {tolerance:.2f} nats")
    clauses += degraded
    if missing:
        clauses.append(f"{_join(missing)} {'has' if len(missing) == 1 else 'have'} no loss to show "
                       "there (a learned table has no rows past P)")
    return f"Past the {P} trained positions, " + _join(clauses, last="; and ", sep="; ") + "."


def _join(items: Sequence[str], *, sep: str = ", ", last: str = " and ") -> str:
    return items[0] if len(items) == 1 else sep.join(items[:-1]) + last + items[-1]

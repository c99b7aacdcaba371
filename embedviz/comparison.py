"""Several positional schemes trained side by side: same corpus, seed and steps, one scheme at a time.

One call is one background job (progress says which scheme and step; a stop keeps the schemes already
finished). Each finished scheme is also evaluated at 1x, 2x and 4x its context P on the held-out rows.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from embedviz.config import POSITIONAL_KINDS, ModelConfig, TrainConfig
from embedviz.evaluation import LengthEvaluation, evaluate_lengths
from embedviz.training import LossPoint, Progress, train

# Planning rate for the per-scheme budget, in logits (batch x positions x vocabulary per step) per
# second. A quiet 2-core machine trains the default model at ~15 M/s; with five other processes busy
# it fell to 0.6-2 M/s (measured 2026-11-30, load 7-11). 4 M/s leaves room for a shared hosted CPU.
PLANNED_LOGITS_PER_S = 4_000_000
STEP_ROUNDING = 10  # capped step counts are multiples of the Steps slider's step
MULTIPLES = (1, 2, 4)  # context lengths evaluated, in multiples of P


class SchemeProgress(NamedTuple):
    """One progress report: the scheme being trained and the training loop's own report."""

    kind: str
    index: int  # 0-based position of the scheme in the comparison
    count: int  # schemes in the comparison
    step: int
    steps: int
    train_loss: float
    held_out_loss: float | None
    seconds: float  # since this scheme started


@dataclass(frozen=True)
class SchemeRun:
    """One finished scheme: its loss curve and its loss at longer contexts."""

    kind: str
    history: list[LossPoint]
    seconds: float
    lengths: LengthEvaluation | None  # None when the held-out part is too short (see Comparison)

    @property
    def final_loss(self) -> float:
        """Held-out loss at the last step (training loss when nothing was held out)."""
        last = self.history[-1]
        return last.train_loss if last.held_out_loss is None else last.held_out_loss


@dataclass
class Comparison:
    runs: dict[str, SchemeRun]  # finished schemes, in the order trained
    kinds: tuple[str, ...]  # the schemes asked for
    steps: int  # optimisation steps of each scheme
    stopped_early: bool  # stopped before every scheme finished; the finished ones are kept
    seconds: float
    held_out_tokens: int
    lengths_error: str | None  # why no scheme was evaluated past P, when the held-out part is too short


def budget(model_cfg: ModelConfig, train_cfg: TrainConfig, *, n_schemes: int, max_seconds: float) -> TrainConfig:
    """`train_cfg` with its steps capped so `n_schemes` runs fit in `max_seconds` at PLANNED_LOGITS_PER_S.

    The cap is a step count, not a clock, so the same settings always give the same numbers.
    """
    if n_schemes < 1:
        raise ValueError("Choose at least one positional scheme to compare.")
    if not max_seconds > 0:
        raise ValueError(f"The time for a job must be positive, got {max_seconds}.")
    e = model_cfg.embedding
    per_step = train_cfg.batch_size * e.positions * e.vocab_size  # logits of one step
    cap = int(max_seconds * PLANNED_LOGITS_PER_S / n_schemes / per_step) // STEP_ROUNDING * STEP_ROUNDING
    return dataclasses.replace(train_cfg, steps=max(STEP_ROUNDING, min(train_cfg.steps, cap)))


def scheme_config(model_cfg: ModelConfig, kind: str) -> ModelConfig:
    """The model of one scheme: everything but `positional` as in `model_cfg`."""
    return dataclasses.replace(model_cfg, positional=kind)


def train_schemes(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    rows: np.ndarray,
    *,
    kinds: Sequence[str],
    on_progress: Callable[[SchemeProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Comparison:
    """Train one TinyGPT per scheme in `kinds` (model_cfg's own `positional` is ignored), in order.

    A stop (`should_stop()` true) ends the scheme in progress and drops it: a half-trained scheme
    would not be comparable. Schemes already finished are kept.
    """
    kinds = tuple(kinds)
    if not kinds:
        raise ValueError("Choose at least one positional scheme to compare.")
    unknown = [k for k in kinds if k not in POSITIONAL_KINDS]
    if unknown or len(set(kinds)) != len(kinds):
        raise ValueError("Choose each scheme once, from " + ", ".join(POSITIONAL_KINDS) + f"; got {list(kinds)}.")
    for kind in kinds:
        scheme_config(model_cfg, kind).validate()
    start = time.perf_counter()
    runs: dict[str, SchemeRun] = {}
    held_out_tokens = 0
    lengths_error = None
    stopped = False
    for index, kind in enumerate(kinds):
        if should_stop is not None and should_stop():
            stopped = True
            break

        def report(p: Progress, kind: str = kind, index: int = index) -> None:
            if on_progress is not None:
                on_progress(SchemeProgress(kind, index, len(kinds), p.step, p.steps, p.train_loss,
                                           p.held_out_loss, p.seconds))

        result = train(scheme_config(model_cfg, kind), train_cfg, rows, on_progress=report,
                       should_stop=should_stop)
        if result.stopped_early:
            stopped = True
            break
        held_out_tokens = result.held_out_tokens
        lengths = None
        try:
            lengths = evaluate_lengths(result.model, held_out_rows=np.asarray(rows)[len(rows) - held_out_tokens :],
                                       multiples=MULTIPLES)
        except ValueError as exc:
            lengths_error = str(exc)
        runs[kind] = SchemeRun(kind, result.history, result.seconds, lengths)
    return Comparison(runs, kinds, train_cfg.steps, stopped, time.perf_counter() - start, held_out_tokens,
                      lengths_error)


def describe(comparison: Comparison, *, tie: float = 0.01) -> str:
    """One sentence, from the numbers: the final held-out loss of each scheme, lowest first, and the gap.

    Losses closer than `tie` nats are called level rather than ranked.
    """
    runs = sorted(comparison.runs.values(), key=lambda r: r.final_loss)
    if not runs:
        raise ValueError("No scheme finished training, so there is nothing to compare; train again.")
    measured = "held-out" if all(r.history[-1].held_out_loss is not None for r in runs) else "training"
    listed = ", ".join(f"{r.kind} {r.final_loss:.3f}" for r in runs)
    head = f"After {comparison.steps} steps each, the final {measured} loss is {listed}"
    if len(runs) == 1:
        return head + "."
    best, worst = runs[0], runs[-1]
    gap = worst.final_loss - best.final_loss
    if gap < tie:
        return head + f": all within {tie:.2f} nats of each other, so none is clearly better here."
    level = [r.kind for r in runs[1:] if r.final_loss - best.final_loss < tie]
    lowest = best.kind if not level else f"{best.kind} (level with {', '.join(level)})"
    return (head + f": {lowest} lowest, {worst.kind} highest, {gap:.3f} nats "
            f"({_percent(gap, best.final_loss)}) above the lowest.")


def _percent(gap: float, of: float) -> str:
    return f"{100 * gap / of:.0f} %" if of > 0 and math.isfinite(of) else "n/a"

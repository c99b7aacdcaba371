"""Next-token training of TinyGPT on a corpus already turned into embedding-table rows.

Seeded (same configs + same rows -> same numbers), CPU or CUDA, progress through a callback and
stoppable between steps. Tokenising, the vocabulary and any UI live elsewhere.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from embedviz.config import ModelConfig, TrainConfig
from embedviz.model import TinyGPT
from embedviz.positional import sinusoidal_positions

# Snapshots of wte/wpe are kept in memory for the evolution view; past this many bytes the interval
# between them grows (in multiples of snapshot_every) instead of the memory.
MAX_SNAPSHOT_BYTES = 256 * 2**20
MAX_HELD_OUT_WINDOWS = 256  # held-out loss over at most this many windows: one cheap batch
# Logits of one step are (B, T, V) floats, kept with their gradient and softmax: 3 x 4 bytes each.
# 50 M of them is ~600 MB, which a hosted instance can still hold; the held-out batch gets a tenth.
MAX_LOGITS_PER_STEP = 50_000_000

# CPU_THREADS_NOTE: measured on 2 cores with other processes busy (a Streamlit server, a browser,
# UMAP), torch's 2 OpenMP threads made a step of the default model 40-385 ms instead of 4-5 ms with
# 1 thread; on an idle machine 2 threads gained 1.15x (default model) to 1.7x (V 2048, d 64, 2 layers).
# So training defaults to one thread.


class LossPoint(NamedTuple):
    """One point of a loss curve."""

    step: int  # optimisation steps done
    train_loss: float  # mean training loss over the steps since the previous point
    held_out_loss: float | None  # None when the corpus is too short to hold any out


class Snapshot(NamedTuple):
    """Copies of the embedding tables at one step."""

    step: int
    wte: np.ndarray  # (V, d)
    wpe: np.ndarray | None  # (P, d) the table added to the tokens; None for schemes that add none


@dataclass
class Progress:
    """What the loop reports while it runs; has the fields of a LossPoint, so a loss curve takes either."""

    step: int  # optimisation steps done
    steps: int  # steps planned
    train_loss: float  # mean training loss since the previous report
    held_out_loss: float | None  # None when the corpus is too short to hold any out
    tokens_per_s: float
    seconds: float  # since training started
    eta_s: float | None  # seconds left at the current speed; None before the first step


@dataclass
class TrainResult:
    model: TinyGPT  # eval mode, on the CPU
    history: list[LossPoint]  # at step 0, every eval_every steps and at the last step
    snapshots: list[Snapshot]  # at step 0, every snapshot interval and at the last step
    stopped_early: bool
    seconds: float
    tokens_per_s: float
    held_out_tokens: int = 0  # size of the corpus's end kept out of training
    # sha256 of the final weights: what the result *is*, for caches keyed on it
    fingerprint: str = ""

    @property
    def steps_done(self) -> int:
        return self.history[-1].step if self.history else 0

    def __getstate__(self) -> dict:
        """Pickled by value (config + numpy weights), so a result can leave a training process."""
        state = self.__dict__.copy()
        weights = {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        state["model"] = (self.model.cfg, weights)
        return state

    def __setstate__(self, state: dict) -> None:
        cfg, weights = state["model"]
        model = TinyGPT(cfg)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        state["model"] = model.eval()
        self.__dict__.update(state)


def run_key(model_cfg: ModelConfig, train_cfg: TrainConfig, *, data_key: str) -> str:
    """Everything that determines a training run's result (training is deterministic): the configs
    and the identity of the rows it trains on (e.g. corpus key and encoding name)."""
    return repr((model_cfg, train_cfg, data_key))


def logits_computed(model_cfg: ModelConfig, train_cfg: TrainConfig) -> int:
    """The work of a training run in logits (steps x batch x positions x vocabulary): the LM head
    dominates the cost of these small models."""
    e = model_cfg.embedding
    return train_cfg.steps * train_cfg.batch_size * e.positions * e.vocab_size


def position_tables(result: TrainResult) -> list[tuple[str, np.ndarray]]:
    """The (P, d) position tables worth comparing after a run, titled: a learned table at its start
    and trained, beside the fixed sinusoid; a sinusoidal run's own table; none for schemes that add
    nothing to the tokens."""
    first, last = result.snapshots[0], result.snapshots[-1]
    kind = result.model.cfg.positional
    if kind == "learned":
        emb = result.model.cfg.embedding
        return [("learned, start", first.wpe), ("learned, trained", last.wpe),
                ("sinusoidal", sinusoidal_positions(emb.positions, emb.dim).numpy())]
    if kind == "sinusoidal":
        return [("sinusoidal (this run)", last.wpe)]
    return []


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    rows: np.ndarray,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str | None = None,
    cpu_threads: int | None = 1,
) -> TrainResult:
    """Train a fresh TinyGPT(model_cfg) to predict each next row of `rows` (N,) int64.

    Random windows of P+1 tokens come from the start of the corpus; its last `held_out` fraction is
    only used for the held-out loss. Progress is reported at step 0, every `eval_every` steps and at
    the last step; `should_stop()` is asked before every step and stopping keeps the model so far.
    `device` defaults to CUDA when available. On the CPU, torch runs with `cpu_threads` threads
    during training (None: leave torch's setting); see CPU_THREADS_NOTE.
    """
    model_cfg.validate()
    train_cfg.validate()
    rows = np.asarray(rows)
    V, P = model_cfg.embedding.vocab_size, model_cfg.embedding.positions
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError("The corpus must be a 1-D array of integer table rows.")
    if len(rows) < P + 2:
        raise ValueError(
            f"The corpus has {len(rows)} tokens; training on windows of {P} positions needs at least "
            f"{P + 2}. Use a longer text or fewer positions."
        )
    if rows.min() < 0 or rows.max() >= V:
        raise ValueError(f"Corpus rows must be in [0, {V}) for a vocabulary of {V} rows.")
    logits = train_cfg.batch_size * P * V
    if logits > MAX_LOGITS_PER_STEP:
        raise ValueError(
            f"One training step would compute {logits:,} logits (batch {train_cfg.batch_size} x "
            f"{P} positions x {V} rows); the limit is {MAX_LOGITS_PER_STEP:,}. Lower the batch size, "
            "the number of positions or the vocabulary size."
        )

    if cpu_threads is not None and cpu_threads < 1:
        raise ValueError("cpu_threads must be at least 1 (or None to keep torch's setting).")
    device = device or default_device()
    previous_threads = torch.get_num_threads()
    if cpu_threads is not None and device == "cpu":
        torch.set_num_threads(cpu_threads)
    try:
        return _train(model_cfg, train_cfg, rows, on_progress, should_stop, device)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    rows: np.ndarray,
    on_progress: Callable[[Progress], None] | None,
    should_stop: Callable[[], bool] | None,
    device: str,
) -> TrainResult:
    loop = _Loop(model_cfg, train_cfg, rows, on_progress, device)
    loop.snapshot()
    loss = loop.batch_loss()
    loop.report(loss.item())  # the untrained model's loss on the first batch
    stopped_early = False
    while loop.done < train_cfg.steps:
        if should_stop is not None and should_stop():
            stopped_early = True
            break
        if loop.done > 0:
            loss = loop.batch_loss()
        loop.step(loss)
    if stopped_early and loop.done > 0:
        loop.finish_partial()
    return loop.result(stopped_early=stopped_early)


class _Loop:
    """The state of one training run and its named steps: batches, optimisation, reports, snapshots."""

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, rows: np.ndarray,
                 on_progress: Callable[[Progress], None] | None, device: str) -> None:
        V, P = model_cfg.embedding.vocab_size, model_cfg.embedding.positions
        self.cfg = train_cfg
        self.on_progress = on_progress
        self.device = device
        # batches come from a CPU generator so every device sees the same ones
        self.gen = torch.Generator().manual_seed(model_cfg.embedding.seed)
        data = torch.from_numpy(rows.astype(np.int64, copy=False))  # (N,)
        self.n_held = min(int(len(data) * train_cfg.held_out), len(data) - (P + 1))
        self.train_data = data[: len(data) - self.n_held]  # (N - n_held,)
        self.held_x, self.held_y = _held_out_windows(data[len(data) - self.n_held :], P, V, device)
        self.model = TinyGPT(model_cfg).to(device)
        self.opt = torch.optim.AdamW(
            self.model.parameters(),
            lr=train_cfg.learning_rate,
            weight_decay=train_cfg.weight_decay,
            betas=(0.9, 0.99),  # nanoGPT's choice for small models and few steps
            # one kernel for every parameter instead of a loop of small ops: ~9 % of a default run on a CPU
            # (the same update; the numbers differ from the loop's by float rounding, ~1e-7)
            fused=True,
        )
        self.B, self.T = train_cfg.batch_size, P
        self.offsets = torch.arange(P + 1)  # (T+1,)
        self.snapshot_every = _snapshot_interval(train_cfg, V, P, model_cfg.embedding.dim)
        self.history: list[LossPoint] = []
        self.snapshots: list[Snapshot] = []
        self.loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
        self.n_summed = 0
        self.done = 0  # optimisation steps done
        self.start = time.perf_counter()
        self.model.train()

    def batch_loss(self) -> torch.Tensor:
        ix = torch.randint(0, len(self.train_data) - self.T, (self.B,), generator=self.gen)  # (B,) starts
        chunk = self.train_data[ix[:, None] + self.offsets].to(self.device)  # (B, T+1)
        _, loss = self.model(chunk[:, :-1], chunk[:, 1:])  # (B, T) inputs, (B, T) next-token targets
        return loss

    def step(self, loss: torch.Tensor) -> None:
        """One optimisation step on `loss`, then the snapshot and report that fall due."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.done += 1
        self.loss_sum += loss.detach()
        self.n_summed += 1
        last = self.done == self.cfg.steps
        if self.done % self.snapshot_every == 0 or last:
            self.snapshot()
        if self.done % self.cfg.eval_every == 0 or last:
            self.report_mean()

    def report_mean(self) -> None:
        self.report((self.loss_sum / self.n_summed).item())
        self.loss_sum.zero_()
        self.n_summed = 0

    def held_out_loss(self) -> float | None:
        if self.held_x is None:
            return None
        self.model.eval()
        with torch.no_grad():
            _, loss = self.model(self.held_x, self.held_y)
        self.model.train()
        return loss.item()

    def report(self, train_loss: float) -> None:
        seconds = time.perf_counter() - self.start
        held = self.held_out_loss()
        self.history.append(LossPoint(self.done, train_loss, held))
        if self.on_progress is not None:
            steps = self.cfg.steps
            eta = (steps - self.done) * seconds / self.done if self.done else None
            self.on_progress(Progress(self.done, steps, train_loss, held, self.tokens_per_s(seconds),
                                      seconds, eta))

    def tokens_per_s(self, seconds: float) -> float:
        return self.done * self.B * self.T / seconds if seconds > 0 else 0.0

    def snapshot(self) -> None:
        wpe = self.model.position_table()
        self.snapshots.append(Snapshot(self.done, _numpy(self.model.wte.weight),
                                       None if wpe is None else _numpy(wpe)))

    def finish_partial(self) -> None:
        """After a stop: the last snapshot and loss point are of the model as it stands."""
        if self.snapshots[-1].step != self.done:
            self.snapshot()
        if self.history[-1].step != self.done:
            self.report_mean()

    def result(self, *, stopped_early: bool) -> TrainResult:
        seconds = time.perf_counter() - self.start
        model = self.model.eval().cpu()
        return TrainResult(
            model=model,
            history=self.history,
            snapshots=self.snapshots,
            stopped_early=stopped_early,
            seconds=seconds,
            tokens_per_s=self.tokens_per_s(seconds),
            held_out_tokens=self.n_held,
            fingerprint=_fingerprint(model, self.done),
        )


def _fingerprint(model: torch.nn.Module, steps: int) -> str:
    digest = hashlib.sha256(str(steps).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


def _held_out_windows(
    held: torch.Tensor, P: int, V: int, device: str
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(n, T) input/target windows spread over the held-out tokens; (None, None) if under 2 tokens."""
    if len(held) < 2:
        return None, None
    T = min(P, len(held) - 1)
    n = min((len(held) - 1) // T, MAX_HELD_OUT_WINDOWS, max(1, MAX_LOGITS_PER_STEP // 10 // (T * V)))
    starts = torch.linspace(0, len(held) - 1 - T, n).long()  # (n,) spread over the whole held-out part
    idx = starts[:, None] + torch.arange(T + 1)  # (n, T+1)
    windows = held[idx].to(device)  # (n, T+1)
    return windows[:, :-1], windows[:, 1:]


def _snapshot_interval(cfg: TrainConfig, V: int, P: int, d: int) -> int:
    per_snapshot = (V + P) * d * 4  # float32 bytes of one (wte, wpe) pair
    every = cfg.snapshot_every
    while (cfg.steps // every + 2) * per_snapshot > MAX_SNAPSHOT_BYTES and every < cfg.steps:
        every += cfg.snapshot_every
    return every


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", copy=True).numpy()

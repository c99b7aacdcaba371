"""Next-token training of TinyGPT on a corpus already turned into embedding-table rows.

Seeded (same configs + same rows -> same numbers), CPU or CUDA, progress through a callback and
stoppable between steps. Tokenising, the vocabulary and any UI live elsewhere.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from embedviz.config import ModelConfig, TrainConfig
from embedviz.model import TinyGPT

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


@dataclass
class Progress:
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
    history: list[tuple[int, float, float | None]]  # (step, train loss, held-out loss)
    snapshots: list[tuple[int, np.ndarray, np.ndarray]]  # (step, wte (V, d), wpe (P, d)), step 0 and last
    stopped_early: bool
    seconds: float
    tokens_per_s: float
    held_out_tokens: int = 0  # size of the corpus's end kept out of training

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
    V, P = model_cfg.embedding.vocab_size, model_cfg.embedding.positions
    seed = model_cfg.embedding.seed
    gen = torch.Generator().manual_seed(seed)  # batches come from the CPU so every device sees the same
    data = torch.from_numpy(rows.astype(np.int64, copy=False))  # (N,)
    n_held = min(int(len(data) * train_cfg.held_out), len(data) - (P + 1))
    train_data, held_data = data[: len(data) - n_held], data[len(data) - n_held :]
    held_x, held_y = _held_out_windows(held_data, P, V, device)

    model = TinyGPT(model_cfg).to(device)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=train_cfg.learning_rate,
        weight_decay=train_cfg.weight_decay,
        betas=(0.9, 0.99),  # nanoGPT's choice for small models and few steps
    )

    B, T, steps = train_cfg.batch_size, P, train_cfg.steps
    offsets = torch.arange(T + 1)  # (T+1,)
    snapshot_every = _snapshot_interval(train_cfg, V, P, model_cfg.embedding.dim)
    history: list[tuple[int, float, float | None]] = []
    snapshots: list[tuple[int, np.ndarray, np.ndarray]] = []
    loss_sum = torch.zeros((), device=device)  # summed on the device: no sync per step
    n_summed = 0
    done = 0  # optimisation steps done
    start = time.perf_counter()

    def batch_loss() -> torch.Tensor:
        ix = torch.randint(0, len(train_data) - T, (B,), generator=gen)  # (B,) window starts
        chunk = train_data[ix[:, None] + offsets].to(device)  # (B, T+1)
        _, loss = model(chunk[:, :-1], chunk[:, 1:])  # (B, T) inputs, (B, T) next-token targets
        return loss

    def held_out_loss() -> float | None:
        if held_x is None:
            return None
        model.eval()
        with torch.no_grad():
            _, loss = model(held_x, held_y)
        model.train()
        return loss.item()

    def report(train_loss: float) -> None:
        seconds = time.perf_counter() - start
        tokens_per_s = done * B * T / seconds if seconds > 0 else 0.0
        eta = (steps - done) * seconds / done if done else None
        held = held_out_loss()
        history.append((done, train_loss, held))
        if on_progress is not None:
            on_progress(Progress(done, steps, train_loss, held, tokens_per_s, seconds, eta))

    def snapshot() -> None:
        snapshots.append((done, _numpy(model.wte.weight), _numpy(model.position_table())))

    model.train()
    snapshot()
    loss = batch_loss()
    report(loss.item())  # the untrained model's loss on the first batch
    stopped_early = False
    while done < steps:
        if should_stop is not None and should_stop():
            stopped_early = True
            break
        if done > 0:
            loss = batch_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += 1
        loss_sum += loss.detach()
        n_summed += 1
        if done % snapshot_every == 0 or done == steps:
            snapshot()
        if done % train_cfg.eval_every == 0 or done == steps:
            report((loss_sum / n_summed).item())
            loss_sum.zero_()
            n_summed = 0

    if stopped_early and done > 0:
        if snapshots[-1][0] != done:
            snapshot()
        if history[-1][0] != done:
            report((loss_sum / n_summed).item())
    seconds = time.perf_counter() - start
    model.eval().cpu()
    return TrainResult(
        model=model,
        history=history,
        snapshots=snapshots,
        stopped_early=stopped_early,
        seconds=seconds,
        tokens_per_s=done * B * T / seconds if seconds > 0 else 0.0,
        held_out_tokens=n_held,
    )


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

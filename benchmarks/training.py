"""Training: embedviz.training.train beside a nanoGPT-style loop over the same TinyGPT, timed to the
kNN agreement that counts as an organised space, and in tokens/s."""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from embedviz.config import ModelConfig, TrainConfig

from .report import Row, log, median
from .world import AGREEMENT, ToyWorld, agreement, toy_world

def ours_training(model_cfg: ModelConfig, train_cfg: TrainConfig, world: ToyWorld) -> dict:
    """embedviz.training.train; agreement is computed afterwards from its snapshots (every 25 steps),
    stamped with the time the loop reported that step: nothing is added to its clock."""
    from embedviz.training import train

    stamps: dict[int, float] = {}
    start = time.perf_counter()
    result = train(model_cfg, train_cfg, world.rows,
                   on_progress=lambda p: stamps.setdefault(p.step, time.perf_counter() - start))
    wall = time.perf_counter() - start
    curve = [(step, stamps[step], agreement(wte, world.view)) for step, wte, _ in result.snapshots]
    steps = result.history[-1][0]
    return {"wall_s": wall, "tokens_per_s": steps * train_cfg.batch_size * model_cfg.embedding.positions / wall,
            "curve": curve, "final_loss": result.history[-1][1]}


def plain_training(model_cfg: ModelConfig, train_cfg: TrainConfig, world: ToyWorld, *,
                   check_every: int = 25) -> dict:
    """A nanoGPT-style loop over the same TinyGPT: Python-list batching, default AdamW, loss.item()
    every step, torch's default threads. Agreement every `check_every` steps with the clock paused."""
    import torch

    from embedviz.model import TinyGPT

    P, B = model_cfg.embedding.positions, train_cfg.batch_size
    paused = 0.0
    curve: list[tuple[int, float, float]] = []
    start = time.perf_counter()
    n_held = int(len(world.rows) * train_cfg.held_out)  # the same 90 % as ours trains on
    data = torch.from_numpy(world.rows[: len(world.rows) - n_held].astype(np.int64))  # (N,)
    torch.manual_seed(model_cfg.embedding.seed)
    model = TinyGPT(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.learning_rate)

    def check(step: int) -> None:
        nonlocal paused
        t = time.perf_counter()
        curve.append((step, t - start - paused, agreement(model.wte.weight.detach().numpy(), world.view)))
        paused += time.perf_counter() - t

    check(0)
    losses = []
    for step in range(1, train_cfg.steps + 1):
        ix = torch.randint(len(data) - P, (B,))
        x = torch.stack([data[i:i + P] for i in ix])  # (B, T)
        y = torch.stack([data[i + 1:i + 1 + P] for i in ix])  # (B, T)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % check_every == 0 or step == train_cfg.steps:
            check(step)
    wall = time.perf_counter() - start - paused
    return {"wall_s": wall, "tokens_per_s": train_cfg.steps * B * P / wall, "curve": curve,
            "final_loss": float(np.mean(losses[-check_every:])), "model": model}


def time_to(curve: Sequence[tuple[int, float, float]], threshold: float = AGREEMENT) -> float | None:
    """Seconds at the first checkpoint whose agreement reaches the threshold; None if none does."""
    return next((seconds for _, seconds, a in curve if a >= threshold), None)


def training_section(*, quick: bool, env: dict[str, str]) -> tuple[list[Row], dict]:
    import torch

    world = toy_world()
    model_cfg, train_cfg = ModelConfig(), TrainConfig()
    runs: dict[str, list[dict]] = {"ours": [], "plain": []}
    for i in range(1 if quick else 3):
        log(f"training: run {i + 1}, ours then plain ({train_cfg.steps} steps each)")
        runs["ours"].append(ours_training(model_cfg, train_cfg, world))
        runs["plain"].append({k: v for k, v in plain_training(model_cfg, train_cfg, world).items() if k != "model"})
    summary = {}
    for who, rs in runs.items():
        reached = [time_to(r["curve"]) for r in rs]
        summary[who] = {
            "time_to_agreement_s": median(reached),
            "reached": sum(t is not None for t in reached),
            "runs": len(rs),
            "tokens_per_s": median([r["tokens_per_s"] for r in rs]),
            "wall_s": median([r["wall_s"] for r in rs]),
            "final_agreement": median([r["curve"][-1][2] for r in rs]),
        }
    o, p = summary["ours"], summary["plain"]

    def reached_note(s: dict) -> str:
        return "" if s["reached"] == s["runs"] else f"reached {AGREEMENT} in {s['reached']}/{s['runs']} runs"

    note = "; ".join(f"{who}: {reached_note(summary[who])}" for who in summary if reached_note(summary[who]))
    rows = [
        Row("training", f"default model to kNN agreement >= {AGREEMENT}", o["time_to_agreement_s"],
            p["time_to_agreement_s"] or f"> {p['wall_s']:.1f} s", target="time_to_agreement", note=note),
        Row("training", f"tokens/s ({train_cfg.steps} steps, batch {train_cfg.batch_size} x "
            f"{model_cfg.embedding.positions})", o["tokens_per_s"], p["tokens_per_s"], unit="tok/s",
            better="higher", target="tokens_per_s"),
        Row("training", f"wall time, {train_cfg.steps} steps", o["wall_s"], p["wall_s"]),
        Row("training", f"kNN agreement after {train_cfg.steps} steps", o["final_agreement"],
            p["final_agreement"], unit="", better="higher"),
    ]
    details = {"summary": summary, "runs": runs, "torch_default_threads": torch.get_num_threads(),
               "ours_threads": 1, "model": repr(model_cfg), "train": repr(train_cfg)}
    return rows, details



def plain_page_training() -> tuple[np.ndarray, np.ndarray]:
    """For benchmarks/plain_page.py: wte rows (the drawn rows of the toy world) before and after the
    plain loop, default settings."""
    from embedviz.model import TinyGPT

    world = toy_world()
    model_cfg = ModelConfig()
    before = TinyGPT(model_cfg).wte.weight.detach().numpy()[world.view.rows]
    model = plain_training(model_cfg, TrainConfig(), world)["model"]
    return before, model.wte.weight.detach().numpy()[world.view.rows]

"""The runnable PyTorch code behind what the page shows, in the textbook's style.

Running the snippet prints `x`, the same numbers as the summed heatmap (padded positions
hold row 0 and are masked on the page).
"""
from __future__ import annotations

from embedviz.config import EmbeddingConfig
from embedviz.explorer import PAD_ROW, Batch


def embedding_code(cfg: EmbeddingConfig, batch: Batch) -> str:
    """Python source that rebuilds wte, wpe and x = wte(ids) + wpe(pos) for this batch."""
    ids = ",\n    ".join(repr([int(v) for v in row]) for row in batch.rows)
    lines = [
        "import torch",
        "import torch.nn as nn",
        "",
        f"torch.manual_seed({cfg.seed})",
        f"vocab_size, d_model, max_positions = {cfg.vocab_size}, {cfg.dim}, {cfg.positions}",
        "token_embedding = nn.Embedding(vocab_size, d_model)         # wte",
        "position_embedding = nn.Embedding(max_positions, d_model)   # wpe",
        "",
    ]
    if batch.mode == "text":
        for b, s in enumerate(batch.sentences):
            lines.append(f"# sentence {b}: {[t.label for t in s]!r}"[:2000])
    lines.append(f"ids = torch.tensor([\n    {ids},\n])  # (B, T) rows of the table")
    if not batch.mask.all():
        lines.append(f"# shorter sentences are padded with row {PAD_ROW}; the page masks those positions")
    lines += [
        "B, T = ids.shape",
        "tok = token_embedding(ids)                   # (B, T, d)",
        "pos = position_embedding(torch.arange(T))    # (T, d)",
        "x = tok + pos                                # (B, T, d), pos broadcast over the batch",
        "",
        "torch.set_printoptions(precision=4, sci_mode=False)",
        "print(tok.shape, pos.shape, x.shape)",
        "print(x)",
    ]
    return "\n".join(lines) + "\n"

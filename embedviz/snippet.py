"""The runnable PyTorch code behind what the page shows, in the textbook's style.

Running the snippet prints `x`, the same numbers as the summed heatmap (padded positions
hold row 0 and are masked on the page); the trained one reads the downloaded safetensors file.
"""
from __future__ import annotations

from collections.abc import Sequence

from embedviz.config import EmbeddingConfig, ModelConfig
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


def trained_sentence_code(model_cfg: ModelConfig, *, rows: Sequence[int], labels: Sequence[str],
                          filename: str = "embedviz-model.safetensors") -> str:
    """Python source that prints tok, pos and x of one sentence before training (the seeded tables)
    and after (the tables read from the downloaded safetensors file), as the trained-sentence view shows.

    rows: (T,) table rows of the sentence, no padding; labels: its tokens, for a comment.
    """
    if len(rows) != len(labels) or not rows:
        raise ValueError("Give one label per row, for a sentence of at least one token.")
    e, kind = model_cfg.embedding, model_cfg.positional
    lines = [
        "import math",
        "",
        "import torch",
        "import torch.nn as nn",
        "from safetensors.torch import load_file",
        "",
        "# before training: the tables exactly as created",
        f"torch.manual_seed({e.seed})",
        f"vocab_size, d_model, max_positions = {e.vocab_size}, {e.dim}, {e.positions}",
        "wte_before = nn.Embedding(vocab_size, d_model).weight.detach()       # (V, d)",
        "wpe_before = nn.Embedding(max_positions, d_model).weight.detach()    # (P, d)",
        "",
        "# after training: the model downloaded from the page",
        f"state = load_file({filename!r})",
        'wte_after = state["wte.weight"]                                      # (V, d)',
        "",
        f"# {list(labels)!r}"[:2000],
        f"ids = torch.tensor({[int(r) for r in rows]!r})  # (T,) rows of the table",
        "T = len(ids)",
        "tok_before, tok_after = wte_before[ids], wte_after[ids]               # (T, d) each",
    ]
    if kind == "learned":
        lines += [
            'wpe_after = state["wpe.weight"]                                      # (P, d)',
            "pos_before, pos_after = wpe_before[:T], wpe_after[:T]                 # (T, d) each",
        ]
    elif kind == "sinusoidal":
        lines += [
            "# sinusoidal: a fixed table (not in the file, never trained), the same before and after",
            "angle_pos = torch.arange(max_positions, dtype=torch.float32)[:, None]                # (P, 1)",
            "freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))",
            "table = torch.zeros(max_positions, d_model)                                         # (P, d)",
            "table[:, 0::2] = torch.sin(angle_pos * freq)",
            "table[:, 1::2] = torch.cos(angle_pos * freq[: d_model // 2])",
            "pos_before = pos_after = table[:T]                                    # (T, d)",
        ]
    else:
        lines += [
            f"# {kind}: nothing is added to the token vectors, so x is wte(ids) itself",
            "pos_before = pos_after = torch.zeros(T, d_model)                      # (T, d)",
        ]
    lines += [
        "x_before, x_after = tok_before + pos_before, tok_after + pos_after     # (T, d) each",
        "",
        "torch.set_printoptions(precision=4, sci_mode=False)",
        "print(x_before.shape, x_after.shape)",
        "print(x_before)",
        "print(x_after)",
    ]
    return "\n".join(lines) + "\n"

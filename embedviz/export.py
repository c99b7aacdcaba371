"""Downloads: embedding tables as CSV / .npy / Embedding Projector TSV, the tiny GPT as safetensors, a zip.

Everything is built in memory and returned as bytes; nothing is pickled, written to disk or read from a path.
Floats get 9 significant digits (17 for float64): the fewest that always read back to the same value.
"""
from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from embedviz.config import ModelConfig
from embedviz.model import TinyGPT

# OWASP CSV injection: a cell starting with one of these may run as a formula in a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The Embedding Projector splits its files on newlines and tabs (and would keep a "\r" in the value).
_PROJECTOR_UNSAFE = str.maketrans({"\t": "⇥", "\n": "↵", "\r": "␍"})
_PROJECTOR_HEADER = ("token", "class", "frequency")
# The output head is wte itself; safetensors refuses tensors that share memory, so it is saved once.
TIED = {"lm_head.weight": "wte.weight"}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same files give the same zip bytes


def to_csv(matrix, *, row_labels: Sequence[str] | None = None) -> bytes:
    """UTF-8 CSV (with BOM, so Excel reads emoji and CJK): header `token,dim_0,...`, one row per table row.

    Labels are always quoted and, when they start like a formula (= + - @ tab CR), prefixed with an
    apostrophe, as OWASP advises; without labels the first column is the row number, headed `row`.
    """
    values = _matrix(matrix)
    n, d = values.shape
    if row_labels is None:
        first, labels = "row", [str(i) for i in range(n)]
    else:
        if len(row_labels) != n:
            raise ValueError(f"{len(row_labels)} row labels for a table of {n} rows.")
        first, labels = "token", [_quote(_defuse(str(label))) for label in row_labels]
    lines = [",".join([first, *(f"dim_{j}" for j in range(d))])]
    lines.extend(f"{label},{row}" for label, row in zip(labels, _rows(values, ",")))
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def to_npy(matrix) -> bytes:
    """A table, or a (B, T, d) batch, as a .npy file (dtype kept); np.load(..., allow_pickle=False)."""
    values = _matrix(matrix, ndims=(2, 3))
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=False)
    return buffer.getvalue()


def projector_tsv(
    matrix,
    *,
    tokens: Sequence[str],
    classes: Sequence[str | None],
    frequencies: Sequence[int | float] | np.ndarray,
) -> tuple[bytes, bytes]:
    """(vectors.tsv, metadata.tsv) for projector.tensorflow.org ("Load" -> choose both files).

    vectors.tsv: one float32 row per line, tab-separated, no header. metadata.tsv: a `token  class
    frequency` header, then one line per row; tabs, newlines and CRs in text become ⇥ ↵ ␍, and a
    missing class is left empty (the Projector shows it as missing).
    """
    values = _matrix(matrix).astype(np.float32)
    n, d = values.shape
    if n == 0 or d < 2:
        raise ValueError("The Embedding Projector needs at least one row of at least 2 dimensions.")
    if not np.isfinite(values).all():
        raise ValueError("The table contains NaN or infinite values, which the Projector cannot read.")
    if not len(tokens) == len(classes) == len(frequencies) == n:
        raise ValueError(
            f"A table of {n} rows needs {n} tokens, classes and frequencies "
            f"(got {len(tokens)}, {len(classes)}, {len(frequencies)})."
        )
    vector_lines = list(_rows(values, "\t"))
    meta_lines = ["\t".join(_PROJECTOR_HEADER)]
    for token, cls, freq in zip(tokens, classes, frequencies):
        cells = (_projector_text(token), "" if cls is None else _projector_text(cls), _number(freq))
        meta_lines.append("\t".join(cells))
    return _lines(vector_lines), _lines(meta_lines)


def read_projector_tsv(vectors: bytes, metadata: bytes) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Parse what projector_tsv writes, strictly: (N, d) float32 and N {token, class, frequency} dicts."""
    vector_lines = _strict_lines(vectors, "vectors.tsv")
    rows = [line.split("\t") for line in vector_lines]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("vectors.tsv must have at least one line and the same number of values on each.")
    try:
        values32 = np.array([[float(x) for x in r] for r in rows], dtype=np.float32)
    except ValueError as exc:
        raise ValueError(f"vectors.tsv holds something that is not a number: {exc}") from None
    meta_lines = _strict_lines(metadata, "metadata.tsv")
    if not meta_lines or tuple(meta_lines[0].split("\t")) != _PROJECTOR_HEADER:
        raise ValueError("metadata.tsv must start with the header token<TAB>class<TAB>frequency.")
    records = []
    for number, line in enumerate(meta_lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != len(_PROJECTOR_HEADER):
            raise ValueError(f"metadata.tsv line {number} has {len(cells)} fields, not 3.")
        records.append(dict(zip(_PROJECTOR_HEADER, cells)))
    if len(records) != len(values32):
        raise ValueError(f"metadata.tsv describes {len(records)} rows; vectors.tsv has {len(values32)}.")
    return values32, records


def model_safetensors(model: torch.nn.Module, *, metadata: Mapping[str, str]) -> bytes:
    """The model's state as safetensors bytes; lm_head.weight is wte.weight and is stored only as that.

    `metadata` (str -> str) goes into the file's header, plus format=pt and tied={"lm_head.weight": ...}.
    """
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("safetensors metadata must map strings to strings.")
    state = model.state_dict()
    for tied, source in TIED.items():
        assert tied in state and state[tied].data_ptr() == state[source].data_ptr(), tied
        del state[tied]
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state.items()}
    header = {**metadata, "format": "pt", "tied": json.dumps(TIED)}
    return save_safetensors(tensors, metadata=header)


def load_model_safetensors(data: bytes, cfg: ModelConfig, *, max_bytes: int) -> TinyGPT:
    """A TinyGPT(cfg) holding the weights in `data` (as model_safetensors writes them), in eval mode.

    Refuses, with a ValueError saying why, a file over max_bytes, one that is not safetensors, and one
    whose tensor names, shapes or dtypes differ from TinyGPT(cfg)'s. Never unpickles anything.
    """
    if len(data) > max_bytes:
        raise ValueError(
            f"The model file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB."
        )
    cfg.validate()
    try:
        tensors = load_safetensors(bytes(data))
    except (SafetensorError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise ValueError(f"This is not a readable safetensors file ({_short(exc)}).") from None
    model = TinyGPT(cfg)
    expected = {k: v for k, v in model.state_dict().items() if k not in TIED}
    missing = sorted(expected.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - expected.keys())
    if missing or unexpected:
        problems = [f"missing {_names(missing)}"] if missing else []
        problems += [f"unexpected {_names(unexpected)}"] if unexpected else []
        raise ValueError(
            f"The file does not hold this model's weights ({'; '.join(problems)}). "
            "Choose the settings the model was trained with."
        )
    for name, want in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            raise ValueError(
                f"{name} is {got.dtype} {tuple(got.shape)} in the file but {want.dtype} "
                f"{tuple(want.shape)} for these settings. Choose the settings the model was trained with."
            )
    model.load_state_dict(tensors, strict=False)  # copies in place: lm_head.weight still is wte.weight
    model.lm_head.weight = model.wte.weight
    return model.eval()


def zip_bundle(files: Mapping[str, bytes]) -> bytes:
    """One zip of name -> bytes, in the given order, with fixed timestamps (same input, same zip)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            parts = name.split("/")
            if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
                raise ValueError(f"{name!r} is not a safe file name inside a zip (use a/b.csv style).")
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            # level 1: text tables shrink to ~48 % (level 6: 43 %) in a third of the time;
            # float arrays barely shrink at any level
            archive.writestr(info, bytes(data), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    return buffer.getvalue()


def _matrix(matrix, *, ndims: tuple[int, ...] = (2,)) -> np.ndarray:
    if isinstance(matrix, torch.Tensor):
        matrix = matrix.detach().to("cpu").numpy()
    values = np.asarray(matrix)
    if values.ndim not in ndims:
        raise ValueError(f"Expected a table of shape (rows, dims); got shape {values.shape}.")
    if values.dtype.kind not in "fiu":
        raise ValueError(f"Expected a table of numbers; got dtype {values.dtype}.")
    return values


def _rows(values: np.ndarray, sep: str) -> Iterator[str]:
    """Each row as text; %-formatting a whole row at once is ~3x faster than numpy's shortest repr."""
    if values.dtype.kind in "iu":
        spec = "%d"
    else:
        spec = "%.17g" if values.dtype.itemsize > 4 else "%.9g"
    row_format = sep.join([spec] * values.shape[1])
    for row in values.tolist():
        yield row_format % tuple(row)


def _defuse(label: str) -> str:
    return "'" + label if label.startswith(_FORMULA_START) else label


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _projector_text(text: str) -> str:
    return str(text).translate(_PROJECTOR_UNSAFE)


def _number(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError("Frequencies must be numbers, not booleans.")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _lines(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def _strict_lines(data: bytes, name: str) -> list[str]:
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8.") from None
    if not text.endswith("\n") or "\r" in text:
        raise ValueError(f"{name} must be lines ending in a single newline each.")
    lines = text[:-1].split("\n")
    if any(line == "" for line in lines):
        raise ValueError(f"{name} has an empty line.")
    return lines


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160] or type(exc).__name__


def training_files(
    *,
    snapshots: Sequence[tuple[int, np.ndarray, np.ndarray]],
    row_labels: Sequence[str],
    drawn_rows: Sequence[int],
    classes: Sequence[str | None],
    frequencies: Sequence[int],
    model: torch.nn.Module,
    metadata: Mapping[str, str],
    batch_rows: np.ndarray | None = None,
) -> dict[str, bytes]:
    """Everything a trained run can be taken away as: tables before/after, the sum x = wte(ids) +
    wpe(pos) of a batch of rows (B, T) before/after, the Projector pair and the model."""
    (_, wte0, wpe0), (_, wte1, wpe1) = snapshots[0], snapshots[-1]
    drawn = np.asarray(drawn_rows, dtype=np.int64)
    files: dict[str, bytes] = {}
    for name, table, labels in (("wte_before", wte0, row_labels), ("wte_after", wte1, row_labels),
                                ("wpe_before", wpe0, None), ("wpe_after", wpe1, None)):
        files[f"{name}.csv"] = to_csv(table, row_labels=labels)
        files[f"{name}.npy"] = to_npy(table)
    if wte1.shape[1] >= 2 and drawn.size:
        vectors, meta = projector_tsv(wte1[drawn], tokens=[row_labels[r] for r in drawn],
                                      classes=classes, frequencies=frequencies)
        files["projector/vectors.tsv"], files["projector/metadata.tsv"] = vectors, meta
    if batch_rows is not None:
        T = batch_rows.shape[1]
        files["x_before.npy"] = to_npy(wte0[batch_rows] + wpe0[:T])  # (B, T, d)
        files["x_after.npy"] = to_npy(wte1[batch_rows] + wpe1[:T])  # (B, T, d)
    files["model.safetensors"] = model_safetensors(model, metadata=metadata)
    return files

"""Downloads: embedding tables as CSV / .npy / Embedding Projector TSV, the tiny GPT as safetensors, a zip.

Everything is built in memory and returned as bytes; nothing is pickled, written to disk or read from a path.
Floats get 9 significant digits (17 for float64): the fewest that always read back to the same value.
"""
from __future__ import annotations

import functools
import io
import json
import math
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from safetensors.torch import save as save_safetensors

from embedviz.config import Limits, limits
from embedviz.explorer import Embedded
from embedviz.training import Snapshot

# OWASP CSV injection: a cell starting with one of these may run as a formula in a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# The Embedding Projector splits its files on newlines and tabs (and would keep a "\r" in the value).
_PROJECTOR_UNSAFE = str.maketrans({"\t": "⇥", "\n": "↵", "\r": "␍"})
_PROJECTOR_HEADER = ("token", "class", "frequency")
# The output head is wte itself; safetensors refuses tensors that share memory, so it is saved once.
TIED = {"lm_head.weight": "wte.weight"}
PROJECTOR_VECTORS, PROJECTOR_METADATA = "projector/vectors.tsv", "projector/metadata.tsv"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same files give the same zip bytes
LEFT_OUT = "LEFT_OUT.txt"  # in a download that had to leave files out: which, and why
# Upper bounds used to size a file before it is built: a CSV cell of a float32 takes at most 16 characters
# and its separator ("-1.23456789e-05,"), a float64 one 25; a .npy header is 128 bytes.
_CSV_CELL = {4: 16, 8: 25}
_NPY_HEADER = 128


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


def training_files(
    *,
    snapshots: Sequence[Snapshot],
    row_labels: Sequence[str],
    drawn_rows: Sequence[int],
    classes: Sequence[str | None],
    frequencies: Sequence[int],
    model: torch.nn.Module,
    metadata: Mapping[str, str],
    batch_rows: np.ndarray | None = None,
    lim: Limits | None = None,
) -> dict[str, bytes]:
    """Everything a trained run can be taken away as: tables before/after, the sum x = wte(ids) +
    wpe(pos) of a batch of rows (B, T) before/after, the Projector pair and the model.

    With a positional scheme that adds nothing to the tokens (wpe None), there is no wpe file and x is
    wte(ids) alone: positions enter inside attention. Files that would take the whole past
    `lim.max_export_bytes` are left out, and LEFT_OUT.txt says which (see `_within`).
    """
    first, last = snapshots[0], snapshots[-1]
    drawn = np.asarray(drawn_rows, dtype=np.int64)
    plan: list[tuple[str, int, Callable[[], bytes]]] = []
    tables = [("wte_before", first.wte, row_labels), ("wte_after", last.wte, row_labels)]
    if first.wpe is not None:
        tables += [("wpe_before", first.wpe, None), ("wpe_after", last.wpe, None)]
    for name, table, labels in tables:
        plan.append((f"{name}.csv", _csv_size(table, labels), lambda t=table, lb=labels: to_csv(t, row_labels=lb)))
        plan.append((f"{name}.npy", _npy_size(table.shape, table.dtype.itemsize), lambda t=table: to_npy(t)))
    if last.wte.shape[1] >= 2 and drawn.size:
        tokens = [row_labels[r] for r in drawn]
        projector = functools.cache(lambda: projector_tsv(last.wte[drawn], tokens=tokens, classes=classes,
                                                          frequencies=frequencies))
        size = _csv_size(np.empty((drawn.size, last.wte.shape[1]), np.float32), None)
        plan.append((PROJECTOR_VECTORS, size, lambda: projector()[0]))
        meta_size = 4 * sum(len(str(t)) + len(str(c)) + 24 for t, c in zip(tokens, classes))
        plan.append((PROJECTOR_METADATA, meta_size, lambda: projector()[1]))
    if batch_rows is not None:
        T = batch_rows.shape[1]
        for name, snap in (("x_before", first), ("x_after", last)):
            def x_npy(snap: Snapshot = snap) -> bytes:
                x = snap.wte[batch_rows]  # (B, T, d)
                return to_npy(x if snap.wpe is None else x + snap.wpe[:T])  # (B, T, d)

            plan.append((f"{name}.npy", _npy_size((*batch_rows.shape, snap.wte.shape[1]), 4), x_npy))
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    plan.append(("model.safetensors", size, lambda: model_safetensors(model, metadata=metadata)))
    return _within(plan, lim or limits())


def projector_pair(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The two Projector files of `training_files`, under the names projector.tensorflow.org expects."""
    return {name.split("/")[-1]: data for name, data in files.items()
            if name in (PROJECTOR_VECTORS, PROJECTOR_METADATA)}


def embedding_files(out: Embedded, *, labels: Sequence[str], sentence: int,
                    lim: Limits | None = None) -> dict[str, bytes]:
    """The explorer's tensors: tok, pos (broadcast over the batch) and x as .npy (B, T, d), and one
    sentence of each as CSV with its token labels; within `lim.max_export_bytes` as in `training_files`."""
    named = {"tok": out.tok, "pos": out.pos.expand_as(out.tok), "x": out.x}
    plan: list[tuple[str, int, Callable[[], bytes]]] = [
        (f"{k}.npy", _npy_size(v.shape, v.element_size()), lambda v=v: to_npy(v)) for k, v in named.items()]
    plan += [(f"{k}_sentence{sentence}.csv", _csv_size(v[sentence], labels),
              lambda v=v: to_csv(v[sentence], row_labels=labels)) for k, v in named.items()]
    return _within(plan, lim or limits())


def _within(plan: Sequence[tuple[str, int, Callable[[], bytes]]], lim: Limits) -> dict[str, bytes]:
    """Build each (name, upper bound of its size, builder) in turn while the total stays within
    `lim.max_export_bytes`; a file that would pass it is never built, and LEFT_OUT.txt names it."""
    files: dict[str, bytes] = {}
    left_out: list[str] = []
    total = 0
    for name, size, build in plan:
        if total + size > lim.max_export_bytes:
            left_out.append(f"{name} (up to {size / 1e6:,.1f} MB)")
            continue
        files[name] = build()
        total += len(files[name])
    if left_out:
        files[LEFT_OUT] = (
            f"Downloads are limited to {lim.max_export_bytes / 1e6:,.0f} MB here, so these files were left out: "
            + ", ".join(left_out) + ". Lower the vocabulary size, the dimension d, the positions P or the "
            "number of sentences to get them.\n").encode("utf-8")
    return files


def _npy_size(shape: Sequence[int], itemsize: int) -> int:
    return math.prod(shape) * itemsize + _NPY_HEADER


def _csv_size(matrix, labels: Sequence[str] | None) -> int:
    """An upper bound of `to_csv(matrix, row_labels=labels)`'s length, without building it."""
    n, d = matrix.shape
    itemsize = matrix.element_size() if isinstance(matrix, torch.Tensor) else matrix.dtype.itemsize
    label_bytes = 4 * sum(len(str(label)) + 4 for label in labels) if labels is not None else 12 * n
    return 3 + (d + 1) * 12 + n * (d * _CSV_CELL.get(itemsize, 25) + 2) + label_bytes

"""The benchmark's table: rows of ours-beside-plain figures, the one table of targets, and the report
written to JSON with the machine it ran on. Figures are printed, never asserted."""
from __future__ import annotations

import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedviz.config import HOSTED_MEMORY_BUDGET_MIB


@dataclass(frozen=True)
class Target:
    """A goal for one figure: its text in the table, and whether (ours, plain) meets it."""

    text: str
    check: Callable[[Any, Any], bool]


def _at_most(limit: float) -> Callable[[Any, Any], bool]:
    return lambda ours, plain: isinstance(ours, (int, float)) and ours <= limit


def _not_below_plain(ours: Any, plain: Any) -> bool:
    """Quality tuples (before / after): ours at least plain's at every point, to 3 decimals."""
    return all(round(o, 3) >= round(p, 3) for o, p in zip(ours, plain))


def _within(ratio: float, limit: float) -> Callable[[Any, Any], bool]:
    """At most `ratio` x plain and at most `limit` seconds."""
    return lambda ours, plain: (isinstance(ours, (int, float)) and isinstance(plain, (int, float))
                                and ours <= ratio * plain and ours <= limit)


# The targets, all in one place (issues 7, 12 and 13); a row names its target by key.
TARGETS: dict[str, Target] = {
    "cold_first_map": Target("<= 3 s", _at_most(3)),
    "warm_map": Target("<= 0.6 s", _at_most(0.6)),
    "trustworthiness": Target(">= plain", _not_below_plain),
    "time_to_agreement": Target("<= 10 s", _at_most(10)),
    "tokens_per_s": Target(">= 2x plain", lambda ours, plain: ours / plain >= 2),
    "default_rerun": Target("<= 1.5x plain and <= 60 ms", _within(1.5, 0.06)),
    "trained_rerun": Target("<= 100 ms", _at_most(0.1)),
    "large_rerun": Target("<= 100 ms", _at_most(0.1)),
    "large_regenerated": Target("<= plain", lambda ours, plain: isinstance(ours, (int, float)) and ours <= plain),
    "navigation": Target("<= 1.2x plain", _within(1.2, float("inf"))),
    "train_to_maps": Target("<= 4 s", _at_most(4)),
    "train_to_maps_loaded": Target("<= 10 s", _at_most(10)),
    "server_memory": Target("<= 800 MiB", _at_most(800)),
    "tree_memory": Target("<= 700 MiB", _at_most(700)),
    "class_tree_memory": Target("<= 2,000 MiB", _at_most(2000)),
    "hosted_tree_memory": Target(f"<= {HOSTED_MEMORY_BUDGET_MIB:,} MiB", _at_most(HOSTED_MEMORY_BUDGET_MIB)),
}


@dataclass
class Row:
    """One line of the table. Values are in seconds, tokens/s, MiB or plain numbers (unit "")."""

    section: str
    figure: str
    ours: Any = None  # a number, a tuple of numbers (shown "a / b"), a string, or None
    plain: Any = None
    unit: str = "s"
    better: str = "lower"  # "lower" (times, memory) or "higher" (rates, quality)
    target: str = ""  # a key of TARGETS, or "" for none
    note: str = ""  # printed under the row

    def __post_init__(self) -> None:
        if self.target and self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; add it to TARGETS ({', '.join(TARGETS)})")

    @property
    def ratio(self) -> float | None:
        """plain cost / ours cost: > 1 means ours is faster (or smaller); for rates ours / plain."""
        a, b = self.ours, self.plain
        if self.unit == "":  # quality figures (agreement, trustworthiness) are compared, not divided
            return None
        if not all(isinstance(v, (int, float)) and v > 0 for v in (a, b)):
            return None
        return b / a if self.better == "lower" else a / b

    @property
    def met(self) -> bool | None:
        """None without a target; False when the figure is missing."""
        if not self.target:
            return None
        if self.ours is None:
            return False
        try:
            return bool(TARGETS[self.target].check(self.ours, self.plain))
        except (TypeError, ZeroDivisionError):  # plain missing where the target compares with it
            return False

    def to_dict(self) -> dict:
        return {"section": self.section, "figure": self.figure, "ours": self.ours, "plain": self.plain,
                "unit": self.unit, "better": self.better, "ratio": self.ratio,
                "target": TARGETS[self.target].text if self.target else "", "met": self.met, "note": self.note}


def format_value(value: Any, unit: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)):
        return " / ".join(format_value(v, unit) for v in value)
    if unit == "s":
        if value < 0.01:
            return f"{value * 1000:.1f} ms"
        if value < 1:
            return f"{value * 1000:.0f} ms"
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    if unit == "tok/s":
        return f"{value:,.0f} tok/s"
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:.3f}"


def format_table(rows: Sequence[Row]) -> str:
    """Rows grouped by section, columns aligned; notes on their own line under a row."""
    header = ("figure", "ours", "plain", "plain/ours", "target", "")
    cells = []
    for r in rows:
        status = "" if r.met is None else ("met" if r.met else "NOT MET")
        ratio = "–" if r.ratio is None else f"{r.ratio:.2f}x"
        target = TARGETS[r.target].text if r.target else ""
        cells.append((r.figure, format_value(r.ours, r.unit), format_value(r.plain, r.unit), ratio, target, status))
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(c: Sequence[str]) -> str:
        parts = [c[0].ljust(widths[0])] + [c[i].rjust(widths[i]) for i in (1, 2, 3)]
        parts += [c[4].ljust(widths[4]), c[5]]
        return "  ".join(parts).rstrip()

    out = [line(header), "-" * len(line(header))]
    section = None
    for r, c in zip(rows, cells):
        if r.section != section:
            section = r.section
            out.append(f"[{section}]")
        out.append(line(c))
        if r.note:
            out.append(" " * 4 + r.note)
    out.append("plain/ours: plain cost / our cost (for tokens/s: ours / plain); > 1 = ours faster or smaller.")
    return "\n".join(out)


def skipped(section: str, reason: str) -> list[Row]:
    return [Row(section, f"skipped: {reason}")]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def run_range(unit: str = "s", **runs: Sequence[float | None]) -> str:
    """The range of each side's runs, for the note under a median: "runs: ours 11–13 ms, plain 7.7–8.4 ms (3 each)"."""
    parts, counts = [], set()
    for who, values in runs.items():
        present = [v for v in values if v is not None]
        if present:
            parts.append(f"{who} {format_value(min(present), unit)}–{format_value(max(present), unit)}")
            counts.add(len(present))
    if not parts:
        return ""
    n = f"{counts.pop()} each" if len(counts) == 1 else "runs"
    return f"range of the runs: {', '.join(parts)} ({n})"


def timed(fn: Callable[[], Any], *, repeats: int) -> list[float]:
    """Seconds of `repeats` calls of fn (no warm-up call: the caller decides what is warm)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


# ---------------------------------------------------------------- the machine and the report

def machine_info() -> dict:
    import torch

    info = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "load_average_start": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "memory_gib": _meminfo_gib(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for name in ("torch", "umap", "numba", "sklearn", "streamlit", "plotly", "tiktoken", "playwright"):
        info[f"{name}_version"] = _version(name)
    return info


def _version(module: str) -> str | None:
    from importlib import metadata

    dist = {"umap": "umap-learn", "sklearn": "scikit-learn"}.get(module, module)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _meminfo_gib() -> float | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    m = re.search(r"MemTotal:\s+(\d+) kB", text)
    return round(int(m.group(1)) / 2**20, 1) if m else None


@dataclass
class Report:
    mode: str
    machine: dict
    rows: list[Row] = field(default_factory=list)
    sections: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"mode": self.mode, "machine": self.machine, "rows": [r.to_dict() for r in self.rows],
                           "sections": self.sections, "errors": self.errors}, indent=1, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)

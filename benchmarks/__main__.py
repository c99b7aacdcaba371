"""`python -m benchmarks [--quick] [--only SECTIONS] [--json PATH] [--class-seconds S]`: runs the
sections in order, prints one table (ours, plain, plain/ours, target) with the load average, and writes
every number, with the machine it ran on, to JSON. Figures are printed, never asserted; a section whose
tools are missing (Chromium, Playwright) is skipped with the reason."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .browser import browser_section
from .classroom import CLASS_S, classroom_section
from .explorer import explorer_section
from .harness import ARTIFACTS, ROOT
from .load import load_section
from .memory import memory_section
from .projection import projection_section
from .report import Report, Row, format_table, log, machine_info
from .training import training_section

DEFAULT_JSON = ARTIFACTS / "bench.json"
SECTIONS: dict[str, Callable[..., tuple[list[Row], dict]]] = {
    "projection": projection_section,
    "training": training_section,
    "explorer": explorer_section,
    "browser": browser_section,
    "load": load_section,
    "memory": memory_section,
    "classroom": classroom_section,
}
# CI runs --quick after both test tiers, inside a 10-minute budget: the 10-visitor load section and the
# memory and classroom sections (minutes each on 2 cores) run in the full benchmark and on request
# (--only load,memory,classroom)
QUICK_SECTIONS = ("projection", "training", "explorer", "browser")


def warm_numba_cache(env: dict[str, str]) -> float:
    """`python -m embedviz.projection --warm-up`, as `make setup` runs it; seconds taken."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "embedviz.projection", "--warm-up"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=600)
    return time.perf_counter() - start


def parse_sections(text: str) -> list[str]:
    """'a,b' -> ['a', 'b'], refusing names that are not sections."""
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=" ".join(__doc__.split()))
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a few minutes; for CI)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write (default {DEFAULT_JSON})")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated sections to run, from {', '.join(SECTIONS)} (default: all; "
                             f"with --quick: {', '.join(QUICK_SECTIONS)})")
    parser.add_argument("--class-seconds", type=float, default=CLASS_S,
                        help=f"how long the classroom section's sessions move sliders (default {CLASS_S:.0f})")
    args = parser.parse_args(argv)
    try:
        chosen = parse_sections(args.only or ",".join(QUICK_SECTIONS if args.quick else SECTIONS))
    except ValueError as exc:
        parser.error(str(exc))

    os.environ.setdefault("EMBEDVIZ_CACHE_DIR", str(ROOT / ".cache"))  # as the Makefile exports it
    env = dict(os.environ)  # taken before umap, in this process, sets NUMBA_CACHE_DIR
    report = Report(mode="quick" if args.quick else "full", machine=machine_info())
    m = report.machine
    load = ", ".join(f"{v:.2f}" for v in m["load_average_start"])
    print(f"embedviz bench ({report.mode}) · {m['cpu_count']} cores · torch {m['torch_threads']} threads · "
          f"load average {load} · {m['platform']}", flush=True)
    if m["load_average_start"][0] > (m["cpu_count"] or 1):
        print("note: the machine is busy (load average above the core count): times are inflated.", flush=True)
    m["numba_warm_up_s"] = warm_numba_cache(env)

    started = time.perf_counter()
    for name in chosen:
        log(f"section {name} (load average {os.getloadavg()[0]:.2f})")
        t0 = time.perf_counter()
        try:
            extra = {"class_s": args.class_seconds} if name == "classroom" else {}
            rows, details = SECTIONS[name](quick=args.quick, env=env, **extra)
        except Exception as exc:  # one broken section still leaves the others' figures
            traceback.print_exc()
            first_line = (str(exc).splitlines() or [""])[0][:120]
            rows, details = [Row(name, f"error: {type(exc).__name__}: {first_line}")], {}
            report.errors[name] = traceback.format_exc()
        details["section_s"] = time.perf_counter() - t0
        details["load_average_end"] = list(os.getloadavg())
        report.rows += rows
        report.sections[name] = details
    m["load_average_end"] = list(os.getloadavg())
    m["bench_s"] = time.perf_counter() - started

    print(format_table(report.rows))
    met = [r.met for r in report.rows if r.met is not None]
    print(f"targets met: {sum(met)}/{len(met)} · load average at the end "
          + ", ".join(f"{v:.2f}" for v in m["load_average_end"]) + f" · {m['bench_s']:.0f} s · sections: "
          + ", ".join(f"{k} {v['section_s']:.0f} s" for k, v in report.sections.items()))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(report.to_json())
    print(f"written to {args.json}")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())

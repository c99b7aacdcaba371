"""The benchmark's pure pieces, fast and without a browser: the table and its targets, the JSON, the
harness's /proc walk and server stop on real processes, the baseline pages run as files. No timing is
asserted: the figures depend on the machine and its load."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from benchmarks import harness
from benchmarks.__main__ import main, parse_sections
from benchmarks.browser import browser_section
from benchmarks.classroom import Sighting, class_plan, classroom_rows, cpu_seconds, percentile, spread
from benchmarks.explorer import PLAIN_EXPLORER, ours_bare, plain_bare
from benchmarks.projection import blob_pair
from benchmarks.report import TARGETS, Report, Row, format_table, format_value, median, run_range, skipped
from benchmarks.training import ours_training, plain_training, time_to
from benchmarks.world import sentence_of, toy_world
from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig


def test_ratio_is_plain_over_ours_for_costs_and_ours_over_plain_for_rates():
    assert Row("s", "time", 2.0, 6.0).ratio == pytest.approx(3.0)
    assert Row("s", "rate", 300.0, 100.0, unit="tok/s", better="higher").ratio == pytest.approx(3.0)
    assert Row("s", "quality", 0.9, 0.8, unit="", better="higher").ratio is None
    assert Row("s", "missing", 1.0, None).ratio is None
    assert Row("s", "text", 1.0, "> 17 s").ratio is None


@pytest.mark.parametrize("row, met", [
    (Row("b", "navigation", 2.2, 1.9, target="navigation"), True),  # within 1.2x plain
    (Row("b", "navigation", 2.4, 1.9, target="navigation"), False),
    (Row("b", "navigation", None, 1.9, target="navigation"), False),  # a missing figure is not a met target
    (Row("t", "tokens/s", 200.0, 100.0, unit="tok/s", better="higher", target="tokens_per_s"), True),
    (Row("t", "tokens/s", 150.0, 100.0, unit="tok/s", better="higher", target="tokens_per_s"), False),
    (Row("t", "tokens/s", 150.0, None, unit="tok/s", better="higher", target="tokens_per_s"), False),
    (Row("p", "trust", (0.70, 0.9751), (0.66, 0.9749), unit="", target="trustworthiness"), True),
    (Row("p", "trust", (0.70, 0.96), (0.66, 0.97), unit="", target="trustworthiness"), False),
    (Row("p", "no target", 99.0), None),
])
def test_rows_are_judged_by_the_one_table_of_targets(row, met):
    assert row.met is met


def test_a_row_naming_an_unknown_target_is_refused():
    with pytest.raises(ValueError, match="unknown target 'fast'"):
        Row("s", "figure", 1.0, target="fast")


@pytest.mark.parametrize("value, unit, text", [
    (0.0042, "s", "4.2 ms"),
    (0.25, "s", "250 ms"),
    (2.345, "s", "2.35 s"),
    (31.4, "s", "31.4 s"),
    (38785.2, "tok/s", "38,785 tok/s"),
    (704.4, "MiB", "704 MiB"),
    (3, "count", "3"),
    ((0.7051, 0.856), "", "0.705 / 0.856"),
    (None, "s", "–"),
    ("> 17.3 s", "s", "> 17.3 s"),
])
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text


def test_table_groups_sections_aligns_columns_and_marks_targets():
    rows = [
        Row("projection", "1000x64 warm: first map", 0.45, 1.7, target="warm_map"),
        Row("projection", "trustworthiness", (0.70, 0.97), (0.66, 0.97), unit="", better="higher"),
        Row("browser", "navigation", 7.3, 5.9, target="navigation", note="of which scripts 4 s"),
        *skipped("load", "/usr/bin/chromium is missing"),
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["figure", "ours", "plain", "plain/ours", "target"]
    assert "[projection]" in lines and "[browser]" in lines and "[load]" in lines
    first = next(line for line in lines if line.startswith("1000x64"))
    assert "450 ms" in first and "1.70 s" in first and "3.78x" in first and TARGETS["warm_map"].text in first
    assert first.endswith("met")
    assert next(line for line in lines if line.startswith("navigation")).endswith("NOT MET")
    assert "    of which scripts 4 s" in lines
    assert any(line.startswith("skipped: /usr/bin/chromium is missing  ") for line in lines)
    # the value columns line up: every "x" of the ratio column ends at the same place
    assert len({line.index("x ") for line in lines if line.startswith(("1000x64", "navigation"))}) == 1


def test_report_is_json_with_numpy_values_and_target_texts():
    report = Report(mode="quick", machine={"cpu_count": 2})
    report.rows.append(Row("training", "tokens/s", np.float64(3.0), 1.5, unit="tok/s", better="higher",
                           target="tokens_per_s"))
    report.sections["training"] = {"curve": np.arange(3), "threads": np.int64(2)}
    data = json.loads(report.to_json())
    assert data["rows"][0]["ratio"] == pytest.approx(2.0)
    assert data["rows"][0]["target"] == ">= 2x plain" and data["rows"][0]["met"] is True
    assert data["sections"]["training"] == {"curve": [0, 1, 2], "threads": 2}


def test_time_to_takes_the_first_checkpoint_reaching_the_threshold():
    curve = [(0, 0.0, 0.1), (25, 0.5, 0.79), (50, 1.0, 0.8), (75, 1.5, 0.95)]
    assert time_to(curve) == 1.0
    assert time_to(curve, threshold=0.99) is None


def test_run_range_gives_each_sides_lowest_and_highest_run():
    assert run_range(ours=[0.012, 0.011, 0.013], plain=[0.0081, 0.0077, None, 0.0084]) == (
        "range of the runs: ours 11 ms–13 ms, plain 7.7 ms–8.4 ms (3 each)")
    assert run_range(ours=[2.0, 2.5], plain=[1.0]) == "range of the runs: ours 2.00 s–2.50 s, plain 1.00 s–1.00 s (runs)"
    assert run_range(ours=[None]) == ""


def test_median_ignores_missing_values():
    assert median([3.0, None, 1.0, 2.0]) == 2.0
    assert median([None]) is None


def test_sections_are_chosen_by_name_and_unknown_ones_refused(capsys):
    assert parse_sections("training, load") == ["training", "load"]
    with pytest.raises(SystemExit):
        main(["--only", "nonsense"])
    assert "unknown section(s) nonsense" in capsys.readouterr().err


# ---------------------------------------------------------------- the harness, on real processes

def test_peak_memory_of_this_process_is_read_from_proc():
    assert harness.vm_hwm_mib() > 10
    assert harness.vm_hwm_mib(2**22 + 12345) is None  # no such process


def test_tree_memory_walks_a_real_process_tree():
    # a child that starts a grandchild, in a group of their own: both are found and sampled
    child = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                              "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
                              "time.sleep(30)"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not harness.descendants(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        [grandchild] = harness.descendants(child.pid)
        assert {child.pid, grandchild} <= set(harness.descendants(os.getpid()))
        tree = harness.TreeMemory(child.pid, every=0.05)
        tree.start()
        tree.stop()
        assert set(tree.peaks) == {child.pid, grandchild} and all(v > 1 for v in tree.peaks.values())
        assert tree.peak_sum_pss > 1 and set(tree.at_peak) == {"server", f"pid {grandchild}"}
    finally:
        os.killpg(child.pid, 9)
        child.wait()


def test_stop_server_ends_the_whole_process_group():
    """What a fork server and its trainings look like to stop_server: a grandchild in the group."""
    proc = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                             "time.sleep(60)"], start_new_session=True)
    server = harness.Server(proc, "http://127.0.0.1:9", harness.ARTIFACTS / "unused.log")
    deadline = time.monotonic() + 10
    while not harness.descendants(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    [grandchild] = harness.descendants(proc.pid)
    harness.stop_server(server, grace_s=5)
    assert proc.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
    assert not os.path.exists(f"/proc/{grandchild}") or "Z" in open(f"/proc/{grandchild}/stat").read().split()[2]


def test_browser_sections_are_skipped_with_the_reason_when_chromium_is_missing(monkeypatch):
    monkeypatch.setattr(harness, "CHROMIUM", "/nonexistent/chromium")
    rows, details = browser_section(quick=True, env={})
    assert [r.figure for r in rows] == ["skipped: /nonexistent/chromium is missing (make test-setup installs it)"]
    assert details == {}


# ---------------------------------------------------------------- the sections' pieces, tiny

def test_baseline_explorer_page_runs_as_a_file():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PLAIN_EXPLORER), default_timeout=60).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 3


def test_blob_pair_has_class_structure_that_grows():
    from embedviz.neighbours import knn_agreement

    before, after = blob_pair(120, dim=16, classes=4)
    assert before.shape == after.shape == (120, 16) and before.dtype == np.float32
    labels = [str(i % 4) for i in range(120)]
    assert knn_agreement(after, labels) > knn_agreement(before, labels) > 0.3


def test_sentence_of_has_exactly_the_asked_number_of_tokens(enc):
    for n, skip in ((12, 0), (64, 0), (64, 500)):
        text = sentence_of(enc, n, skip=skip)
        assert "\n" not in text and len(enc.encode(text)) == n


def test_tiny_training_side_by_side():
    """Both loops on the toy world for a few steps: the curves have a point per check, clocks run."""
    import torch

    # one thread: on a busy machine two spinning OpenMP threads make even 10 tiny steps take seconds
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    world = toy_world()
    model_cfg = ModelConfig(EmbeddingConfig(dim=16, positions=8), n_layer=1, n_head=2)
    train_cfg = TrainConfig(steps=10, batch_size=8, eval_every=5, snapshot_every=5)
    try:
        ours = ours_training(model_cfg, train_cfg, world)
        plain = plain_training(model_cfg, train_cfg, world, check_every=5)
    finally:
        torch.set_num_threads(previous)
    for run in (ours, plain):
        assert [step for step, _, _ in run["curve"]] == [0, 5, 10]
        assert run["wall_s"] > 0 and run["tokens_per_s"] > 0
        assert all(0.0 <= a <= 1.0 for _, _, a in run["curve"])
        seconds = [s for _, s, _ in run["curve"]]
        assert seconds == sorted(seconds)


def test_tiny_explorer_bare_costs_give_the_same_shapes(enc):
    from embedviz.vocab import Vocab

    cfg = EmbeddingConfig(vocab_size=64, dim=8, positions=6)
    text = "The cat sat on the mat."
    vocab = Vocab.build(enc, cfg.vocab_size, reference_ids=enc.encode(text))
    ours = ours_bare(text, cfg, enc, vocab)
    plain = plain_bare(text, cfg, enc)
    assert tuple(ours.x.shape) == tuple(plain.shape) == (1, 6, 8)


# ---------------------------------------------------------------- the classroom section's pure pieces

@pytest.mark.parametrize("values, q, expected", [
    (list(range(1, 31)), 95, 29),  # nearest rank: ceil(0.95 * 30) = 29th of 30
    (list(range(1, 31)), 100, 30),
    ([5.0, 1.0, 3.0], 50, 3.0),
    ([7.0], 95, 7.0),
    ([], 95, None),
])
def test_percentile_is_the_nearest_rank(values, q, expected):
    assert percentile(values, q=q) == expected


@pytest.mark.parametrize("q", [0, -5, 101])
def test_percentile_refuses_what_is_not_a_percentage(q):
    with pytest.raises(ValueError, match=rf"q={q} is not a percentage in \(0, 100\]"):
        percentile([1.0], q=q)


def test_spread_is_median_p95_and_max_of_the_values_present():
    assert spread([4.0, None, 1.0, 2.0, 3.0]) == (2.5, 4.0, 4.0)
    assert spread([None, None]) is None


def test_class_plan_is_twenty_default_trainers_five_seeds_and_five_explorers_spread_out():
    plan = class_plan(sessions=30, other_settings=5, explorers=5)
    assert plan.count(0) == 20 and plan.count(None) == 5 and sorted(p for p in plan if p) == [1, 2, 3, 4, 5]
    assert plan[0] == 0  # the first to arrive trains the defaults
    specials = [i for i, p in enumerate(plan) if p != 0]
    assert specials == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]
    assert [plan[i] for i in specials] == [1, None, 2, None, 3, None, 4, None, 5, None]


def test_class_plan_refuses_more_special_sessions_than_sessions():
    with pytest.raises(ValueError, match="6 sessions with other settings and 5 explorers do not fit in 10 sessions"):
        class_plan(sessions=10, other_settings=6, explorers=5)


def test_sighting_spans_the_first_to_the_last_time_seen():
    seen = Sighting()
    assert seen.span is None
    for t in (3.0, 3.5, 9.0):
        seen.see(t)
    assert (seen.first, seen.last, seen.span) == (3.0, 9.0, 6.0)


def _session(index: int, seed: int | None, **changes) -> dict:
    base = {"index": index, "seed": seed, "opens_at": 2.0 * index, "first_heatmap_s": 4.0 + index,
            "train_to_maps_s": None if seed is None else 10.0 + index, "pressed": int(seed is not None),
            "joined": False, "moves": [1.0, 2.0], "seen_s": {}, "exceptions": 0, "errors": [], "failure": None}
    return {**base, **changes}


def test_classroom_rows_report_what_the_sessions_saw():
    out = {"sessions": [_session(0, 0, seen_s={"queued": 5.0, "starting": 2.0}),
                        _session(1, 0, joined=True, pressed=0, seen_s={"starting": 1.0}),
                        _session(2, 1, seen_s={"queued": 12.5, "refused": 0.0}, pressed=2),
                        _session(3, None, failure="no heatmap 120 s after opening", first_heatmap_s=None),
                        _session(4, None, failure="no heatmap 120 s after opening", first_heatmap_s=None),
                        _session(5, None, errors=["TypeError: x is undefined"])],
           "tree_peak_pss_mib": 1500.0, "tree_pss_at_peak_mib": {"server": 900.0, "fork server": 600.0},
           "training_pids": [101, 102, 103], "server_up": True, "server_cpu_s": 30.0, "total_s": 120.0,
           "load_average_before": [1.0, 2.0, 3.0], "load_average_after": [4.0, 5.0, 6.0]}
    rows = {r.figure: r for r in classroom_rows(out)}
    first = rows["6 sessions, time to first heatmap (median / p95 / max)"]
    assert first.ours == (5.5, 9.0, 9.0) and first.note.startswith("4/6 drew one")
    assert "load average before 1.00, 2.00, 3.00 · after 4.00, 5.00, 6.00" in first.note
    defaults = rows["Train -> both maps, defaults, 2 sessions (median / p95 / max)"]
    assert defaults.ours == (10.5, 11.0, 11.0) and defaults.note == "2/2 drew both maps; 1 joined a run already going"
    failed = rows["failed or stuck sessions (target 0)"]
    assert failed.ours == 3 and failed.note == "2x no heatmap 120 s after opening; 1x TypeError: x is undefined"
    cpu = rows["server process: CPU used while the class ran"]
    assert cpu.ours == 30.0 and cpu.note.startswith("25% of its one core over 120 s")
    memory = rows["server + children: peak of summed PSS, sampled every second"]
    assert memory.met is True and memory.note == "PSS at the peak: server 900, fork server 600 MiB"
    queue = rows["sessions that saw: waiting for a trainer / Starting… / refused / stopped early"]
    assert queue.ours == "2 / 2 / 1 / 0"
    assert queue.note == "longest seen: waiting 12.5 s, Starting… 2.0 s; Train presses 3 by 3 sessions"
    assert rows["training processes started / distinct settings trained"].ours == "3 / 2"
    assert rows["slider moves every 10 s -> page idle again (median / p95 / max)"].ours == (1.5, 2.0, 2.0)


def test_cpu_seconds_of_a_process_are_read_from_proc():
    spent = cpu_seconds(os.getpid())
    sum(i * i for i in range(300_000))  # some CPU, so the clock moves
    assert 0 < spent <= cpu_seconds(os.getpid())
    assert cpu_seconds(2**22 + 12345) is None  # no such process


def test_classroom_is_a_section_outside_the_quick_run():
    from benchmarks.__main__ import QUICK_SECTIONS

    assert parse_sections("classroom") == ["classroom"] and "classroom" not in QUICK_SECTIONS

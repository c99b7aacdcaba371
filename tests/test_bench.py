"""Smoke tests of the benchmark's helpers: the table, the ratios, the JSON, and tiny measurements.
No timing is asserted: the figures depend on the machine and its load."""
from __future__ import annotations

import json

import numpy as np
import pytest

from embedviz import bench
from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig


def test_ratio_is_plain_over_ours_for_costs_and_ours_over_plain_for_rates():
    assert bench.Row("s", "time", 2.0, 6.0).ratio == pytest.approx(3.0)
    assert bench.Row("s", "rate", 300.0, 100.0, unit="tok/s", better="higher").ratio == pytest.approx(3.0)
    assert bench.Row("s", "quality", 0.9, 0.8, unit="", better="higher").ratio is None
    assert bench.Row("s", "missing", 1.0, None).ratio is None
    assert bench.Row("s", "text", 1.0, "> 17 s").ratio is None


@pytest.mark.parametrize("value, unit, text", [
    (0.0042, "s", "4.2 ms"),
    (0.25, "s", "250 ms"),
    (2.345, "s", "2.35 s"),
    (31.4, "s", "31.4 s"),
    (38785.2, "tok/s", "38,785 tok/s"),
    (704.4, "MiB", "704 MiB"),
    ((0.7051, 0.856), "", "0.705 / 0.856"),
    (None, "s", "–"),
    ("> 17.3 s", "s", "> 17.3 s"),
])
def test_format_value(value, unit, text):
    assert bench.format_value(value, unit) == text


def test_table_groups_sections_aligns_columns_and_marks_targets():
    rows = [
        bench.Row("projection", "1000x64 warm: first map", 0.45, 1.7, target="<= 0.6 s", met=True),
        bench.Row("projection", "trustworthiness", (0.70, 0.97), (0.66, 0.97), unit="", better="higher"),
        bench.Row("browser", "navigation", 6.3, 5.9, target="<= 3 s", met=False, note="of which scripts 4 s"),
        *bench.skipped("memory", "/usr/bin/chromium is missing"),
    ]
    table = bench.format_table(rows)
    lines = table.splitlines()
    assert lines[0].split() == ["figure", "ours", "plain", "plain/ours", "target"]
    assert "[projection]" in lines and "[browser]" in lines and "[memory]" in lines
    first = next(line for line in lines if line.startswith("1000x64"))
    assert "450 ms" in first and "1.70 s" in first and "3.78x" in first and first.endswith("met")
    assert next(line for line in lines if line.startswith("navigation")).endswith("NOT MET")
    assert "    of which scripts 4 s" in lines
    assert "skipped: /usr/bin/chromium is missing" in table
    # the value columns line up: every "x" of the ratio column ends at the same place
    ends = {line.index("x ") for line in lines if line.startswith(("1000x64", "navigation"))}
    assert len(ends) == 1


def test_report_is_json_with_numpy_values(tmp_path):
    report = bench.Report(mode="quick", machine={"cpu_count": 2})
    report.rows.append(bench.Row("training", "tokens/s", np.float64(3.0), 1.5, unit="tok/s", better="higher"))
    report.sections["training"] = {"curve": np.arange(3), "threads": np.int64(2)}
    data = json.loads(report.to_json())
    assert data["rows"][0]["ratio"] == pytest.approx(2.0)
    assert data["sections"]["training"] == {"curve": [0, 1, 2], "threads": 2}


def test_time_to_takes_the_first_checkpoint_reaching_the_threshold():
    curve = [(0, 0.0, 0.1), (25, 0.5, 0.79), (50, 1.0, 0.8), (75, 1.5, 0.95)]
    assert bench.time_to(curve) == 1.0
    assert bench.time_to(curve, threshold=0.99) is None


def test_median_ignores_missing_values():
    assert bench.median([3.0, None, 1.0, 2.0]) == 2.0
    assert bench.median([None]) is None


def test_peak_memory_of_this_process_is_read_from_proc():
    assert bench.vm_hwm_mib() > 10
    assert bench.vm_hwm_mib(pid=2**22 + 12345) is None  # no such process


def test_blob_pair_has_class_structure_that_grows():
    before, after = bench.blob_pair(120, dim=16, classes=4)
    assert before.shape == after.shape == (120, 16) and before.dtype == np.float32
    labels = [str(i % 4) for i in range(120)]

    from embedviz.neighbours import knn_agreement

    assert knn_agreement(after, labels) > knn_agreement(before, labels) > 0.3


def test_sentence_of_has_exactly_the_asked_number_of_tokens(enc):
    for n, skip in ((12, 0), (64, 0), (64, 500)):
        text = bench.sentence_of(enc, n, skip=skip)
        assert "\n" not in text and len(enc.encode(text)) == n


def test_tiny_training_side_by_side():
    """Both loops on the toy world for a few steps: the curves have a point per check, clocks run."""
    import torch

    # one thread: on a busy machine two spinning OpenMP threads make even 10 tiny steps take seconds
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    world = bench.toy_world()
    model_cfg = ModelConfig(EmbeddingConfig(dim=16, positions=8), n_layer=1, n_head=2)
    train_cfg = TrainConfig(steps=10, batch_size=8, eval_every=5, snapshot_every=5)
    try:
        ours = bench.ours_training(model_cfg, train_cfg, world)
        plain = bench.plain_training(model_cfg, train_cfg, world, check_every=5)
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
    ours = bench.ours_bare(text, cfg, enc, vocab)
    plain = bench.plain_bare(text, cfg, enc)
    assert tuple(ours.x.shape) == tuple(plain.shape) == (1, 6, 8)


def test_unknown_section_is_refused(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--only", "nonsense"])
    assert "unknown section" in capsys.readouterr().err


def test_tree_memory_sees_a_child_process():
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert child.pid in bench.descendants(os.getpid())
        tree = bench.TreeMemory(os.getpid(), every=0.05)
        tree.start()
        tree.stop()
        assert child.pid in tree.peaks and os.getpid() in tree.peaks
        assert tree.peak_sum_pss > 0
    finally:
        child.kill()
        child.wait()


def test_browser_part_is_skipped_with_the_reason_when_chromium_is_missing(monkeypatch):
    monkeypatch.setattr(bench, "CHROMIUM", "/nonexistent/chromium")
    rows, details = bench.browser_section(quick=True, env={})
    assert [r.figure for r in rows] == ["skipped: /nonexistent/chromium is missing (make test-setup installs it)"]
    assert "skipped: /nonexistent/chromium" in bench.format_table(rows)

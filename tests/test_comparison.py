"""Positional schemes trained side by side: histories, stopping, determinism, budget, the sentence."""
from __future__ import annotations

import math

import numpy as np
import pytest

from embedviz import comparison, corpus, training
from embedviz.comparison import Comparison, SchemeRun
from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig
from embedviz.training import LossPoint
from embedviz.vocab import Vocab

MODEL = ModelConfig(EmbeddingConfig(vocab_size=64, dim=16, positions=8, seed=3), n_layer=1, n_head=2)
TRAIN = TrainConfig(steps=20, batch_size=8, eval_every=10)


@pytest.fixture(scope="module")
def rows(enc) -> np.ndarray:
    """(N,) table rows of a small order world: about 4,000 tokens, 10 % held out (> 4P + 1)."""
    text = corpus.order_world(enc, n_sentences=300).text
    ids = np.asarray(enc.encode(text), dtype=np.int64)
    return Vocab.build(enc, MODEL.embedding.vocab_size, reference_ids=ids).rows(ids)


@pytest.fixture(scope="module")
def pair(rows) -> Comparison:
    return comparison.train_schemes(MODEL, TRAIN, rows, kinds=("learned", "rope"))


def test_each_scheme_gets_a_full_history_and_lengths(pair, rows):
    assert list(pair.runs) == ["learned", "rope"] and pair.kinds == ("learned", "rope")
    assert not pair.stopped_early and pair.steps == 20 and pair.lengths_error is None
    assert pair.held_out_tokens == int(len(rows) * TRAIN.held_out)
    for kind, run in pair.runs.items():
        assert [p.step for p in run.history] == [0, 10, 20]
        assert all(p.held_out_loss is not None for p in run.history)
        assert run.final_loss == run.history[-1].held_out_loss
        assert run.history[-1].held_out_loss < run.history[0].held_out_loss  # it learned something
        assert run.lengths.positional == kind and run.lengths.lengths == (8, 16, 32)
    learned, rope = pair.runs["learned"].lengths, pair.runs["rope"].lengths
    assert np.isnan(learned.loss_by_position[32][8:]).all() and np.isfinite(learned.loss_by_position[32][:8]).all()
    assert np.isfinite(rope.loss_by_position[32]).all()


def test_a_scheme_trains_exactly_as_alone(pair, rows):
    alone = training.train(comparison.scheme_config(MODEL, "rope"), TRAIN, rows)
    assert pair.runs["rope"].history == alone.history


def test_same_inputs_same_numbers(pair, rows):
    again = comparison.train_schemes(MODEL, TRAIN, rows, kinds=("learned", "rope"))
    for kind in pair.runs:
        assert again.runs[kind].history == pair.runs[kind].history
        np.testing.assert_array_equal(again.runs[kind].lengths.loss_by_position[16],
                                      pair.runs[kind].lengths.loss_by_position[16])


def test_progress_names_the_scheme_and_step(rows):
    seen: list[comparison.SchemeProgress] = []
    comparison.train_schemes(MODEL, TrainConfig(steps=10, batch_size=4, eval_every=5), rows,
                             kinds=("none", "alibi"), on_progress=seen.append)
    assert [(p.kind, p.index, p.count, p.step, p.steps) for p in seen] == [
        ("none", 0, 2, 0, 10), ("none", 0, 2, 5, 10), ("none", 0, 2, 10, 10),
        ("alibi", 1, 2, 0, 10), ("alibi", 1, 2, 5, 10), ("alibi", 1, 2, 10, 10)]


def test_a_stop_keeps_the_finished_schemes_and_drops_the_half_trained_one(rows):
    seen: list[comparison.SchemeProgress] = []

    def stop() -> bool:  # as soon as the second scheme has reported its first steps
        return any(p.kind == "sinusoidal" and p.step >= 10 for p in seen)

    result = comparison.train_schemes(MODEL, TRAIN, rows, kinds=("learned", "sinusoidal", "none"),
                                      on_progress=seen.append, should_stop=stop)
    assert result.stopped_early
    assert list(result.runs) == ["learned"]
    assert result.runs["learned"].history[-1].step == 20
    assert "none" not in {p.kind for p in seen}  # never started


def test_a_short_held_out_part_is_explained_not_invented(rows):
    short = rows[:200]  # 20 held-out tokens: windows of 4P = 32 need 33
    result = comparison.train_schemes(MODEL, TrainConfig(steps=10, batch_size=4), short, kinds=("rope",))
    assert list(result.runs) == ["rope"] and result.runs["rope"].lengths is None
    assert "held-out part has 20 tokens" in result.lengths_error and "33" in result.lengths_error


@pytest.mark.parametrize("kinds, message", [
    ((), "at least one"), (("learned", "learned"), "each scheme once"), (("xpos",), "each scheme once"),
])
def test_bad_scheme_lists_are_refused(rows, kinds, message):
    with pytest.raises(ValueError, match=message):
        comparison.train_schemes(MODEL, TRAIN, rows, kinds=kinds)


def test_rope_with_an_odd_head_width_is_refused_before_training(rows):
    odd = ModelConfig(EmbeddingConfig(vocab_size=64, dim=6, positions=8), n_head=2)  # head width 3
    with pytest.raises(ValueError, match="must be even"):
        comparison.train_schemes(odd, TRAIN, rows, kinds=("learned", "rope"))


def test_budget_caps_steps_so_all_schemes_fit():
    model = ModelConfig(EmbeddingConfig(vocab_size=256, positions=16))  # 32 x 16 x 256 = 131,072 logits/step
    cfg = TrainConfig(steps=1000, batch_size=32)
    capped = comparison.budget(model, cfg, n_schemes=5, max_seconds=60.0)
    expected = int(60 * comparison.PLANNED_LOGITS_PER_S / 5 / 131_072) // 10 * 10
    assert capped.steps == expected < 1000 and capped.batch_size == 32
    assert comparison.budget(model, TrainConfig(steps=100), n_schemes=5, max_seconds=60.0).steps == 100
    assert comparison.budget(model, cfg, n_schemes=5, max_seconds=0.001).steps == 10  # never below one report
    with pytest.raises(ValueError, match="at least one"):
        comparison.budget(model, cfg, n_schemes=0, max_seconds=60.0)


def _run(kind: str, final: float) -> SchemeRun:
    return SchemeRun(kind, [LossPoint(0, 5.0, 5.0), LossPoint(100, final - 0.1, final)], 1.0, None)


def _comparison(*runs: SchemeRun) -> Comparison:
    return Comparison({r.kind: r for r in runs}, tuple(r.kind for r in runs), 100, False, 5.0, 500, None)


def test_describe_ranks_by_the_measured_loss():
    text = comparison.describe(_comparison(_run("learned", 2.2), _run("none", 2.5), _run("rope", 2.0)))
    assert text == ("After 100 steps each, the final held-out loss is rope 2.000, learned 2.200, none 2.500: "
                    "rope lowest, none highest, 0.500 nats (25 %) above the lowest.")


def test_describe_calls_near_equal_losses_level():
    level = comparison.describe(_comparison(_run("learned", 2.003), _run("rope", 2.0), _run("none", 2.4)))
    assert "rope (level with learned) lowest" in level
    tied = comparison.describe(_comparison(_run("learned", 2.004), _run("rope", 2.0)))
    assert tied.endswith("all within 0.01 nats of each other, so none is clearly better here.")


def test_describe_needs_a_finished_scheme():
    with pytest.raises(ValueError, match="No scheme finished"):
        comparison.describe(_comparison())
    assert math.isclose(_run("rope", 1.5).final_loss, 1.5)

from __future__ import annotations

import collections
import dataclasses

import numpy as np
import pytest
import torch

from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig
from embedviz.corpus import toy_world
from embedviz.neighbours import chance_agreement, knn_agreement
from embedviz.positional import sinusoidal_positions
from embedviz.model import TinyGPT
from embedviz.training import LossPoint, Progress, Snapshot, train
from embedviz.vocab import Vocab
from tests.oracles import make_tables

SMALL = ModelConfig(embedding=EmbeddingConfig(vocab_size=16, dim=8, positions=8, seed=3), n_layer=1, n_head=2)
QUICK = TrainConfig(steps=40, batch_size=8, learning_rate=2e-2, eval_every=10, snapshot_every=15)
# a periodic sequence: perfectly predictable from the previous token
ROWS = np.tile(np.arange(10, dtype=np.int64), 60)


def test_loss_goes_down_and_history_is_complete():
    reports: list[Progress] = []
    result = train(SMALL, QUICK, ROWS, on_progress=reports.append, device="cpu")
    assert all(isinstance(h, LossPoint) for h in result.history)
    assert [h.step for h in result.history] == [0, 10, 20, 30, 40]
    assert [p.step for p in reports] == [0, 10, 20, 30, 40]
    assert [(p.train_loss, p.held_out_loss) for p in reports] == [(h.train_loss, h.held_out_loss)
                                                                  for h in result.history]
    assert result.history[-1].train_loss < result.history[0].train_loss - 1.0
    held = [h.held_out_loss for h in result.history]
    assert all(isinstance(x, float) for x in held) and held[-1] < held[0] - 1.0
    assert reports[0].eta_s is None and reports[-1].eta_s == 0
    assert all(p.steps == 40 and p.seconds >= 0 and p.tokens_per_s >= 0 for p in reports)
    assert not result.stopped_early and result.seconds > 0 and result.tokens_per_s > 0


def test_same_config_same_numbers():
    a = train(SMALL, QUICK, ROWS, device="cpu")
    b = train(SMALL, QUICK, ROWS, device="cpu")
    assert a.history == b.history
    for sa, sb in zip(a.snapshots, b.snapshots, strict=True):
        assert sa.step == sb.step and np.array_equal(sa.wte, sb.wte) and np.array_equal(sa.wpe, sb.wpe)
    other = train(ModelConfig(embedding=EmbeddingConfig(vocab_size=16, dim=8, positions=8, seed=4)),
                  QUICK, ROWS, device="cpu")
    assert not np.array_equal(other.snapshots[-1].wte, a.snapshots[-1].wte)


def test_snapshots_start_from_the_textbook_tables_and_end_at_the_model():
    result = train(SMALL, QUICK, ROWS, device="cpu")
    assert all(isinstance(s, Snapshot) for s in result.snapshots)
    assert [s.step for s in result.snapshots] == [0, 15, 30, 40]
    wte0, wpe0 = make_tables(SMALL.embedding)
    first, last = result.snapshots[0], result.snapshots[-1]
    assert np.array_equal(first.wte, wte0.numpy()) and np.array_equal(first.wpe, wpe0.numpy())
    assert first.wte.shape == (16, 8) and first.wpe.shape == (8, 8) and first.wte.dtype == np.float32
    assert np.array_equal(last.wte, result.model.wte.weight.detach().numpy())
    assert np.array_equal(last.wpe, result.model.wpe.weight.detach().numpy())
    assert not np.array_equal(last.wte, first.wte)
    assert not result.model.training and result.model.wte.weight.device.type == "cpu"


def test_snapshots_are_copies():
    result = train(SMALL, QUICK, ROWS, device="cpu")
    with torch.no_grad():
        result.model.wte.weight.zero_()
    assert np.abs(result.snapshots[-1].wte).sum() > 0


def test_should_stop_keeps_the_model_so_far():
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 12  # asked before every step: 12 steps run

    result = train(SMALL, QUICK, ROWS, should_stop=should_stop, device="cpu")
    assert result.stopped_early
    assert result.history[-1].step == 12 and result.snapshots[-1].step == 12
    assert [s.step for s in result.snapshots] == [0, 12]
    assert np.array_equal(result.snapshots[-1].wte, result.model.wte.weight.detach().numpy())
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_stop_before_the_first_step():
    result = train(SMALL, QUICK, ROWS, should_stop=lambda: True, device="cpu")
    assert result.stopped_early and [h.step for h in result.history] == [0]
    assert [s.step for s in result.snapshots] == [0]


def test_sinusoidal_snapshots_hold_the_fixed_positions():
    cfg = ModelConfig(embedding=SMALL.embedding, positional="sinusoidal")
    result = train(cfg, QUICK, ROWS, device="cpu")
    assert np.array_equal(result.snapshots[0].wpe, result.snapshots[-1].wpe)
    assert np.array_equal(result.snapshots[0].wpe, sinusoidal_positions(8, 8).numpy())
    assert result.history[-1].train_loss < result.history[0].train_loss - 1.0


@pytest.mark.parametrize("positional", ["rope", "alibi", "none"])
def test_schemes_that_add_nothing_to_x_snapshot_no_position_table(positional):
    cfg = ModelConfig(embedding=SMALL.embedding, n_head=2, positional=positional)
    result = train(cfg, TrainConfig(steps=3, batch_size=4, snapshot_every=2), ROWS, device="cpu")
    assert [s.step for s in result.snapshots] == [0, 2, 3]
    assert all(s.wpe is None for s in result.snapshots)
    assert np.array_equal(result.snapshots[0].wte, make_tables(SMALL.embedding)[0].numpy())


def test_no_held_out_part():
    result = train(SMALL, TrainConfig(steps=5, batch_size=4, held_out=0.0), ROWS, device="cpu")
    assert all(h.held_out_loss is None for h in result.history) and result.held_out_tokens == 0


def test_short_corpus_keeps_enough_for_one_window():
    rows = np.arange(10, dtype=np.int64)  # P + 2 tokens: the minimum
    result = train(SMALL, TrainConfig(steps=3, batch_size=2, held_out=0.4), rows, device="cpu")
    assert result.held_out_tokens == 1 and result.history[-1].held_out_loss is None


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (np.arange(9, dtype=np.int64), "has 9 tokens.*at least 10"),
        (np.array([0, 1, 16] * 10, dtype=np.int64), r"must be in \[0, 16\)"),
        (np.array([0, -1] * 10, dtype=np.int64), r"must be in \[0, 16\)"),
        (np.zeros((4, 5), dtype=np.int64), "1-D array"),
        (np.zeros(20, dtype=np.float32), "integer"),
    ],
    ids=["short", "too-big-row", "negative-row", "2d", "float"],
)
def test_bad_corpus(rows, match):
    with pytest.raises(ValueError, match=match):
        train(SMALL, QUICK, rows, device="cpu")


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="must divide"):
        train(ModelConfig(embedding=SMALL.embedding, n_head=3), QUICK, ROWS, device="cpu")


def test_training_organises_the_toy_world(enc):
    corpus = toy_world(enc, n_sentences=600)
    ids = enc.encode(corpus.text)
    V = 256
    counts = collections.Counter(ids)
    top = sorted(counts, key=lambda i: (-counts[i], i))[: V - 1]
    row_of = {tid: row for row, tid in enumerate(top)}
    rows = np.array([row_of.get(i, V - 1) for i in ids], dtype=np.int64)
    labels: list[str | None] = [None] * V
    for tid, row in row_of.items():
        labels[row] = corpus.word_classes.get(enc.decode([tid]).strip().lower())
    assert sum(lab is not None for lab in labels) >= 100

    cfg = ModelConfig(embedding=EmbeddingConfig(vocab_size=V, dim=16, positions=12, seed=0))
    result = train(cfg, TrainConfig(steps=150, batch_size=32, learning_rate=3e-2), rows, device="cpu")
    before = knn_agreement(result.snapshots[0].wte, labels)
    after = knn_agreement(result.snapshots[-1].wte, labels)
    assert before < 0.4 and before < 2 * chance_agreement(labels)
    assert after > 0.6


@pytest.fixture(scope="module")
def toy_ids(enc) -> np.ndarray:
    return np.asarray(enc.encode(toy_world(enc, n_sentences=600).text), dtype=np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_untrained_model_starts_above_guessing_uniformly(enc, toy_ids, seed):
    """A8: the loss curve's step 0 sits above ln V. The untrained model's logits are random, not equal
    (standard deviation ~1 over the vocabulary, see TinyGPT's head scale), and random guesses cost more
    than uniform ones: measured with the page's defaults on the toy world, about ln V + 0.6."""
    cfg = ModelConfig(embedding=dataclasses.replace(EmbeddingConfig(), seed=seed))
    V, P = cfg.embedding.vocab_size, cfg.embedding.positions
    rows = Vocab.build(enc, V, reference_ids=toy_ids).rows(toy_ids)
    result = train(cfg, TrainConfig(steps=1), rows, device="cpu")
    first = result.history[0]
    assert first.step == 0
    assert np.log(V) + 0.3 < first.train_loss < np.log(V) + 1.0
    assert np.log(V) + 0.3 < first.held_out_loss < np.log(V) + 1.0

    untrained = TinyGPT(cfg).eval()
    x = torch.from_numpy(rows[: 4 * P].reshape(4, P))  # (4, P)
    with torch.no_grad():
        logits, _ = untrained(x)  # (4, P, V)
    spread = logits.std(dim=-1)  # (4, P): 0 would be guessing uniformly
    assert 0.8 < float(spread.mean()) < 1.3


def test_cpu_threads_are_restored():
    before = torch.get_num_threads()
    train(SMALL, TrainConfig(steps=2, batch_size=2), ROWS, device="cpu", cpu_threads=1)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="cpu_threads"):
        train(SMALL, QUICK, ROWS, device="cpu", cpu_threads=0)


def test_a_step_too_large_for_memory_is_refused():
    cfg = ModelConfig(embedding=EmbeddingConfig(vocab_size=8192, dim=8, positions=1024))
    rows = np.zeros(2000, dtype=np.int64)
    with pytest.raises(ValueError, match="Lower the batch size"):
        train(cfg, TrainConfig(steps=1, batch_size=8), rows, device="cpu")

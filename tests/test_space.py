import numpy as np

from embedviz import corpus, space
from embedviz.vocab import Vocab
from embedviz.training import Snapshot


def toy(enc, vocab_size=256):
    c = corpus.toy_world(enc, n_sentences=400)
    ids = enc.encode(c.text)
    return c, Vocab.build(enc, vocab_size, reference_ids=ids)


def test_select_draws_seen_rows_most_frequent_first(enc):
    c, v = toy(enc)
    s = space.select(v, c, enc, max_points=3000)
    assert (v.frequency[s.rows] > 0).all() and v.unk_row not in s.rows
    assert list(s.frequencies) == sorted(s.frequencies, reverse=True)
    assert len(s.tokens) == len(s.classes) == len(s.scored) == s.rows.size
    assert s.note is None
    # toy-world classes are scored, function words and punctuation are not
    labelled = {cl for cl in s.scored if cl}
    assert labelled <= set(corpus.WORDS) and len(labelled) >= 10
    assert None in s.scored


def test_select_caps_points_with_a_note(enc):
    c, v = toy(enc)
    s = space.select(v, c, enc, max_points=20)
    assert s.rows.size == 20 and "20 most frequent" in s.note


def test_corpora_without_word_classes_are_coloured_by_kind_but_not_scored(enc):
    c = corpus.python_docs()
    ids = enc.encode(c.text[:20000])
    v = Vocab.build(enc, 300, reference_ids=ids)
    s = space.select(v, c, enc, max_points=3000)
    assert set(s.classes) <= {"word", "number", "punctuation", "whitespace", "other"}
    assert s.n_scored == 0 and not s.scoreable and s.agreement(np.zeros((300, 4))) is None


def test_evolution_follows_snapshots(enc):
    c, v = toy(enc, vocab_size=64)
    s = space.select(v, c, enc, max_points=3000)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(64, 8)).astype(np.float32)
    snaps = [Snapshot(0, a, a[:4]), Snapshot(10, a + 0.01, a[:4]), Snapshot(20, a + 0.02, None)]
    frames, agreement = space.evolution(snaps, s)
    assert [f[0] for f in frames] == [0, 10, 20]
    assert all(f[1].shape == (s.rows.size, 2) for f in frames)
    assert len(agreement) == 3 and all(0 <= x <= 1 for x in agreement)
    # nearly identical snapshots started from each other stay nearly in place
    spread = np.ptp(frames[0][1], axis=0).max()
    assert np.abs(frames[1][1] - frames[0][1]).mean() < 0.25 * spread


def test_evolution_keeps_the_spread_of_the_first_frame(enc):
    c, v = toy(enc, vocab_size=64)
    s = space.select(v, c, enc, max_points=3000)
    rng = np.random.default_rng(1)
    snaps = [Snapshot(i, rng.normal(size=(64, 8)).astype(np.float32), np.zeros((4, 8))) for i in range(5)]
    frames, _ = space.evolution(snaps, s)
    spreads = [np.sqrt((f[1] ** 2).sum(axis=1).mean()) for f in frames]
    np.testing.assert_allclose(spreads, spreads[0], rtol=1e-4)


def test_indices_of_gives_drawn_positions_of_rows_and_skips_undrawn(enc):
    c, v = toy(enc, vocab_size=64)
    s = space.select(v, c, enc, max_points=3000)
    first, third = int(s.rows[0]), int(s.rows[2])
    assert s.indices_of([third, first, third, 10**6]) == [0, 2]

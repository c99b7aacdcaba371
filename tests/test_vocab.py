import numpy as np
import pytest

from embedviz.config import EmbeddingConfig
from embedviz.vocab import UNK, Vocab, bpe_size_stops, nearest, size_stops


def test_identity_when_table_covers_the_encoding(enc):
    v = Vocab.build(enc, enc.n_vocab, reference_ids=[])
    ids = enc.encode("The cat sat on the mat.")
    assert v.rows(ids).tolist() == ids
    assert v.unk_row is None
    assert v.label(8415) == "␣cat"


def test_larger_table_has_unused_rows(enc):
    v = Vocab.build(enc, enc.n_vocab + 10, reference_ids=[1, 1])
    assert v.token_id(enc.n_vocab + 3) is None
    assert v.label(enc.n_vocab + 3).startswith("<unused")
    assert v.frequency[1] == 2


def test_small_table_keeps_most_frequent_and_unk(enc):
    ref = enc.encode(" the cat the dog the cat a")
    v = Vocab.build(enc, 4, reference_ids=ref)
    the, cat = enc.encode(" the")[0], enc.encode(" cat")[0]
    assert v.token_id(0) == the and v.token_id(1) == cat
    assert v.unk_row == 3 and v.label(3) == UNK
    # " a" and " dog" appear once each: the tie goes to the smaller id
    assert v.token_id(2) == min(enc.encode(" a")[0], enc.encode(" dog")[0])
    assert v.frequency.tolist() == [3, 2, 1, 1]
    assert v.frequency.sum() == len(ref)
    assert v.rows(enc.encode(" the zebra")).tolist()[0] == 0
    assert v.rows(enc.encode(" the zebra")).tolist()[-1] == 3


def test_two_rows_is_one_token_and_unk(enc):
    v = Vocab.build(enc, 2, reference_ids=enc.encode(" x x y"))
    assert v.size == 2 and v.unk_row == 1 and v.label(0) == "␣x"


def test_short_reference_fills_rows_with_unseen_tokens(enc):
    v = Vocab.build(enc, 10, reference_ids=enc.encode(" a"))
    assert len({v.token_id(r) for r in range(9)}) == 9
    assert v.frequency[1:9].sum() == 0


def test_encoding_gaps_leave_rows_unused(enc):
    v = Vocab.build(enc, enc.n_vocab - 1, reference_ids=[])
    assert v.label(v.size - 1) == UNK
    assert v.label(v.size - 2).startswith("<unused")


def test_a_tiny_vocab_is_refused_by_the_config_with_one_message():
    with pytest.raises(ValueError, match="at least 2"):
        EmbeddingConfig(vocab_size=1).validate()


def test_size_stops_keep_the_encoding_size_and_the_current_value():
    stops = size_stops(n_vocab=100_277, current=777)
    assert list(stops) == sorted(stops) and {2, 100, 256, 50_257, 100_277, 777} <= set(stops)


def test_bpe_size_stops_run_from_the_bytes_to_the_largest_size():
    stops = bpe_size_stops(smallest=256, largest=700)
    assert stops[0] == 256 and stops[-1] == 700 and 500 in stops and 1000 not in stops and 200 not in stops


@pytest.mark.parametrize(("value", "expected"), [(99, 100), (250, 256), (6, 5), (7, 8), (10**6, 65536)])
def test_nearest_stop(value, expected):
    assert nearest(size_stops(n_vocab=50, current=50), value) == expected


def test_vocab_is_read_only(enc):
    v = Vocab.build(enc, 5, reference_ids=[3, 3, 4])
    with pytest.raises(ValueError):
        v.row_ids[0] = 7
    assert isinstance(v.rows(np.array([3])), np.ndarray)

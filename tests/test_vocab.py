import numpy as np
import pytest

from embedviz.vocab import UNK, Vocab


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


def test_rejects_tiny_vocab(enc):
    with pytest.raises(ValueError, match="at least 2"):
        Vocab.build(enc, 1, reference_ids=[])


def test_vocab_is_read_only(enc):
    v = Vocab.build(enc, 5, reference_ids=[3, 3, 4])
    with pytest.raises(ValueError):
        v.row_ids[0] = 7
    assert isinstance(v.rows(np.array([3])), np.ndarray)

import numpy as np
import pytest
import torch

from embedviz import explorer
from embedviz.config import EmbeddingConfig, Limits
from embedviz.vocab import Vocab
from tests.oracles import AWKWARD, textbook


@pytest.fixture
def small_vocab(enc):
    return Vocab.build(enc, 100, reference_ids=enc.encode(" the cat sat on the mat and the dog"))


@pytest.mark.parametrize("seed", [0, 1, 42, 2**32 - 1])
def test_textbook_numbers(small_vocab, seed):
    cfg = EmbeddingConfig(100, 16, 10, seed)
    wte, wpe = explorer.tables(cfg)
    batch = explorer.from_ids("[[5, 20, 33, 2]]", vocab=small_vocab, positions=10)
    out = explorer.embed(batch, wte, wpe)
    assert torch.equal(out.x, textbook(seed))
    assert explorer.shape_text(out.x) == "torch.Size([1, 4, 16])"
    assert explorer.shape_text(out.pos) == "torch.Size([4, 16])"
    assert explorer.shape_text(batch.shape) == "torch.Size([1, 4])"


def test_tables_do_not_touch_the_global_generator():
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    explorer.tables(EmbeddingConfig(50, 8, 4, 123))
    assert torch.equal(torch.rand(3), before)


def test_position_table_continues_after_wte():
    cfg = EmbeddingConfig(30, 5, 7, 3)
    torch.manual_seed(3)
    wte, wpe = torch.nn.Embedding(30, 5), torch.nn.Embedding(7, 5)
    mine_wte, state = explorer.token_table(30, 5, 3)
    assert torch.equal(mine_wte, wte.weight.data)
    assert torch.equal(explorer.position_table(7, 5, state), wpe.weight.data)
    assert torch.equal(explorer.tables(cfg)[1], wpe.weight.data)


def test_text_rows_follow_the_vocab(enc, small_vocab):
    batch = explorer.from_text("the cat sat on the zebra", enc=enc, vocab=small_vocab, positions=32)
    s = batch.sentences[0]
    assert [t.token_id for t in s] == enc.encode("the cat sat on the zebra")
    assert [t.row for t in s] == small_vocab.rows(enc.encode("the cat sat on the zebra")).tolist()
    assert batch.n_unk == sum(t.row == small_vocab.unk_row for t in s) > 0
    assert s[1].label == "␣cat" and not s[1].unk


def test_long_sentence_is_cut_to_p(enc, small_vocab):
    batch = explorer.from_text("one two three four five six", enc=enc, vocab=small_vocab, positions=4)
    assert batch.shape == (1, 4)
    assert batch.cut == (2,)


def test_sentences_are_padded_and_masked(enc, small_vocab):
    text = "a\nthe cat sat\nthe cat sat on the mat\nhi there\nx"
    batch = explorer.from_text(text, enc=enc, vocab=small_vocab, positions=32)
    lengths = [len(s) for s in batch.sentences]
    assert batch.shape == (5, max(lengths))
    assert batch.mask.sum(axis=1).tolist() == lengths
    assert (batch.rows[~batch.mask] == explorer.PAD_ROW).all()
    wte, wpe = explorer.tables(EmbeddingConfig(100, 8, 32, 0))
    out = explorer.embed(batch, wte, wpe)
    assert out.x.shape == (5, max(lengths), 8)


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_text_never_raises_anything_but_a_clear_value_error(enc, small_vocab, text):
    try:
        batch = explorer.from_text(text, enc=enc, vocab=small_vocab, positions=8)
    except ValueError as exc:
        assert "type at least one sentence" in str(exc)
        assert not text.strip()
        return
    assert batch.shape[1] <= 8


def test_huge_text_is_refused(enc, small_vocab):
    lim = Limits(max_text_chars=1000)
    with pytest.raises(ValueError, match="limit is 1,000"):
        explorer.from_text("a" * 1001, enc=enc, vocab=small_vocab, positions=8, lim=lim)


def test_too_many_sentences(enc, small_vocab):
    with pytest.raises(ValueError, match="too many"):
        explorer.from_text("a\n" * 70, enc=enc, vocab=small_vocab, positions=8)


@pytest.mark.parametrize("text, expected", [
    ("[[5, 20, 33, 2]]", [[5, 20, 33, 2]]),
    ("[5, 20, 33, 2]", [[5, 20, 33, 2]]),
    ("5 20 33 2", [[5, 20, 33, 2]]),
    ("5, 20, 33", [[5, 20, 33]]),
    ("[[1, 2], [3]]", [[1, 2], [3]]),
])
def test_parse_ids(text, expected):
    assert explorer.parse_ids(text) == expected


@pytest.mark.parametrize("text, message", [
    ("", "Type some token ids"),
    ("   ", "Type some token ids"),
    ("[[1, 2]", "whole numbers in brackets"),
    ("[[1, 2]]]", "whole numbers in brackets"),
    ("[[1, 'a']]", "whole numbers in brackets"),
    ('[[1, "a"]]', "not a whole number"),
    ("[[1.5]]", "not a whole number"),
    ("[[true]]", "not a whole number"),
    ("[[]]", "at least one id"),
    ("[]", "list of lists"),
    ("[[1], 2]", "list of lists"),
    ("{}", "list of lists"),
    ("abc", "whole numbers in brackets"),
    ("[" * 5000 + "]" * 5000, "whole numbers in brackets"),
])
def test_bad_ids_get_a_clear_message(text, message):
    with pytest.raises(ValueError, match=message):
        explorer.parse_ids(text)


@pytest.mark.parametrize("text", ["[[5, " + "1" * 4301 + "]]", "9" * 4301, "[-" + "7" * 31 + "]"])
def test_huge_ids_are_refused_by_size_not_by_pythons_digit_limit(text):
    digits = text.count("1") + text.count("9") + text.count("7")
    with pytest.raises(ValueError, match="is too large") as info:
        explorer.parse_ids(text)
    message = str(info.value)
    assert f"({digits:,} digits)" in message and len(message) < 120
    assert "int_max_str_digits" not in message


def test_ids_of_thirty_digits_still_parse():
    assert explorer.parse_ids("[" + "9" * 30 + "]") == [[int("9" * 30)]]


@pytest.mark.parametrize("ids", ["[[-1]]", "[[100]]", "[[99999999999999999999999]]"])
def test_ids_outside_the_vocabulary(small_vocab, ids):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        explorer.from_ids(ids, vocab=small_vocab, positions=10)


def test_typed_ids_are_rows_with_no_tokenizer_and_no_unk(small_vocab):
    # in the textbook an id is a row: row 99 of a 100-row table is an ordinary row, not <unk>
    batch = explorer.from_ids("[[5, 20, 33, 99]]", vocab=small_vocab, positions=10)
    assert [t.label for t in batch.sentences[0]] == ["5", "20", "33", "99"]
    assert [t.row for t in batch.sentences[0]] == [5, 20, 33, 99]
    assert all(t.token_id is None and not t.unk for t in batch.sentences[0]) and batch.n_unk == 0


@pytest.mark.parametrize("cfg", [
    EmbeddingConfig(2, 1, 1, 0),
    EmbeddingConfig(2, 1024, 1024, 0),
    EmbeddingConfig(50257, 768, 64, 0),
])
def test_extreme_shapes(enc, cfg):
    cfg.validate()
    vocab = Vocab.build(enc, cfg.vocab_size, reference_ids=enc.encode("the cat"))
    batch = explorer.from_text("the cat sat", enc=enc, vocab=vocab, positions=cfg.positions)
    wte, wpe = explorer.tables(cfg)
    out = explorer.embed(batch, wte, wpe)
    assert out.x.shape == (1, min(3, cfg.positions), cfg.dim)
    assert np.isfinite(out.x.numpy()).all()


@pytest.mark.parametrize("changes, message", [
    ({"vocab_size": 1}, "at least 2"),
    ({"dim": 0}, "between 1 and"),
    ({"positions": 0}, "between 1 and"),
    ({"vocab_size": 100_277, "dim": 1000}, "the limit is"),
    ({"seed": -1}, "Seed"),
])
def test_config_bounds(changes, message):
    from dataclasses import replace

    with pytest.raises(ValueError, match=message):
        replace(EmbeddingConfig(), **changes).validate()


def test_sentence_view_masks_padding(enc, small_vocab):
    batch = explorer.from_text("a\nthe cat sat", enc=enc, vocab=small_vocab, positions=8)
    out = explorer.embed(batch, *explorer.tables(EmbeddingConfig(100, 4, 8, 0)))
    view = explorer.sentence_view(batch, out, 0)
    assert view.x.shape == (3, 4)
    assert np.isfinite(view.x[0]).all() and np.isnan(view.x[1:]).all() and np.isnan(view.tok[1:]).all()
    # the positional rows are real rows of wpe even where the sentence is padded
    assert np.isfinite(view.pos).all()
    assert view.labels == ("a", "pad", "pad")
    assert [h["pad"] for h in view.hover] == [False, True, True]
    np.testing.assert_array_equal(view.x[0], out.x[0, 0].detach().numpy())

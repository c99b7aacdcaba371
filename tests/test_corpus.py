from __future__ import annotations

import hashlib
import re

import pytest

from embedviz import figures
from embedviz.corpus import (
    CLASSROOM_SENTENCE,
    MAX_WORD_CLASSES,
    ORDER_TEMPLATES,
    TEMPLATES,
    WORDS,
    ClassCoverage,
    Corpus,
    class_coverage,
    from_upload,
    order_world,
    python_docs,
    token_class,
    toy_world,
    with_word_classes,
    word_classes_from_upload,
)


@pytest.fixture(scope="module")
def world(enc) -> Corpus:
    return toy_world(enc)


def test_toy_world_is_deterministic(enc):
    a, b = toy_world(enc, seed=3, n_sentences=300), toy_world(enc, seed=3, n_sentences=300)
    assert a == b
    assert a.key == b.key and "seed3" in a.key
    other = toy_world(enc, seed=4, n_sentences=300)
    assert other.text != a.text and other.key != a.key


def test_toy_world_size_and_shape(enc, world):
    n_tokens = len(enc.encode(world.text))
    assert 20_000 <= n_tokens <= 100_000  # tens of thousands of tokens
    lines = world.text.splitlines()
    assert all(line and line[0].isupper() and line[-1] in ".?" for line in lines)
    assert world.text.endswith("\n")


def test_toy_world_words_are_single_tokens_with_known_classes(enc, world):
    classes = world.word_classes
    assert len(set(classes.values())) >= 8
    for cls, words in WORDS.items():
        kept = [w for w in words if w.lower() in classes]
        assert len(kept) >= 7, cls
        for w in kept:
            assert classes[w.lower()] == cls
            assert len(enc.encode(" " + w)) == 1, w
            assert f" {w}" in world.text, w  # every word occurs


def test_toy_world_class_words_only_occur_mid_sentence(enc, world):
    # " cat" and "Cat" would be two rows with one label; the toy world only ever has " cat"
    for token_id in set(enc.encode(world.text)):
        text = enc.decode([token_id])
        if text.strip().lower() in world.word_classes:
            assert text.startswith(" ") and text.strip() in WORDS[world.word_classes[text.strip().lower()]]


def test_every_template_slot_is_a_class():
    for template in TEMPLATES:
        for part in template.split("{")[1:]:
            assert part.split("}", 1)[0] in WORDS


def test_classroom_sentence_tokens_occur_in_the_toy_world(enc, world):
    assert set(enc.encode(CLASSROOM_SENTENCE)) <= set(enc.encode(world.text))


def test_toy_world_rejects_no_sentences(enc):
    with pytest.raises(ValueError, match="at least one sentence"):
        toy_world(enc, n_sentences=0)


def test_toy_world_text_is_pinned(enc):
    # the same text as toy world v1 has always made (measured before the order world shared its paragraph
    # helper): change it only with TOY_WORLD_VERSION, or cached models would be reused for another corpus
    text = toy_world(enc, seed=0, n_sentences=5).text
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "f44be7706f6e757a"


def test_order_world_is_deterministic_and_keyed(enc):
    a, b = order_world(enc, seed=1, n_sentences=200), order_world(enc, seed=1, n_sentences=200)
    assert a == b and a.key.startswith("order-world:") and "seed1" in a.key and "n200" in a.key
    assert order_world(enc, seed=2, n_sentences=200).text != a.text
    assert a.key != toy_world(enc, seed=1, n_sentences=200).key


def order_sentence_pattern(template: str) -> re.Pattern:
    """A regex for one template: the first {class:k} captures a word, later ones must repeat it."""
    pattern, seen = "", set()
    for literal, slot in re.findall(r"([^{]*)(?:\{([a-z]+:\d)\})?", template):
        pattern += re.escape(literal)
        if slot:
            name = slot.replace(":", "_")
            pattern += f"(?P={name})" if slot in seen else f"(?P<{name}>[A-Za-z]+)"
            seen.add(slot)
    return re.compile(pattern)


def test_order_world_sentences_repeat_their_words_in_the_stated_order(enc):
    world = order_world(enc, n_sentences=400)
    patterns = [order_sentence_pattern(t) for t in ORDER_TEMPLATES]
    sentences = re.split(r"(?<=\.) |\n", world.text.strip())
    assert len(sentences) == 400
    used = set()
    for sentence in sentences:
        matches = [(i, m) for i, p in enumerate(patterns) if (m := p.fullmatch(sentence))]
        assert len(matches) == 1, sentence
        i, m = matches[0]
        used.add(i)
        words = m.groupdict()
        for slot, word in words.items():
            assert world.word_classes[word.lower()] == slot.split("_")[0], sentence
            assert len(enc.encode(" " + word)) == 1, word
        by_class: dict[str, list[str]] = {}
        for slot, word in words.items():
            by_class.setdefault(slot.split("_")[0], []).append(word)
        assert all(len(set(ws)) == len(ws) for ws in by_class.values()), sentence  # k=1, 2, 3 differ
    assert used == set(range(len(ORDER_TEMPLATES)))


def test_order_world_cannot_be_told_apart_by_word_counts(enc):
    # "chased" sentences with the roles swapped have the same words: only order says who ran from whom
    world = order_world(enc, n_sentences=2000)
    chases = re.findall(r"The (\w+) chased the (\w+),", world.text)
    assert len(chases) > 300
    pairs = {(a, b) for a, b in chases}
    assert sum((b, a) in pairs for a, b in pairs) > 20  # both orders of one pair occur


def test_order_world_rejects_no_sentences(enc):
    with pytest.raises(ValueError, match="at least one sentence"):
        order_world(enc, n_sentences=0)


def test_python_docs():
    docs = python_docs()
    assert len(docs.text) > 100_000
    assert "for" in docs.text and docs.word_classes is None
    assert docs.key.startswith("python-docs:") and docs == python_docs()


def test_upload_accepts_utf8_text():
    data = "Héllo wörld, 猫.\r\nSecond line 🐱\r\n".encode()
    corpus = from_upload(data, filename="notes.txt", max_bytes=1000)
    assert corpus.text == "Héllo wörld, 猫.\nSecond line 🐱\n"
    assert corpus.key == "upload:" + hashlib.sha256(data).hexdigest()
    assert corpus.title == "notes.txt" and corpus.word_classes is None


def test_upload_strips_a_byte_order_mark():
    assert from_upload(b"\xef\xbb\xbfhello", filename="a.txt", max_bytes=100).text == "hello"


def test_upload_single_huge_line_within_the_limit_is_fine():
    data = b"word " * 100_000
    assert len(from_upload(data, filename="one-line.txt", max_bytes=len(data)).text) == len(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"  \n\t \r\n", "only whitespace"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (bytes(range(1, 32)) * 3, "binary"),
        ("café crème".encode("latin-1"), "not UTF-8.*save it as UTF-8"),
        (b"x" * 101, "101 bytes; the limit is 100"),
    ],
    ids=["empty", "whitespace", "png", "control-chars", "latin-1", "too-big"],
)
def test_upload_errors(data, match):
    with pytest.raises(ValueError, match=match):
        from_upload(data, filename="f.txt", max_bytes=100)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" cat", "animal"),
        ("Cat", "animal"),
        (" Monday", "weekday"),
        (" the", "word"),
        ("ing", "word"),
        (" 42", "number"),
        ("7", "number"),
        (".", "punctuation"),
        (".\n", "punctuation"),
        ("?!", "punctuation"),
        ("\n", "whitespace"),
        ("   ", "whitespace"),
        ("", "other"),
        ("x2", "other"),
        ("\ufffd", "other"),
        (" 🐱", "other"),
        (" +=", "punctuation"),
        (" 猫", "word"),
    ],
)
def test_token_class(text, expected):
    classes = {"cat": "animal", "monday": "weekday"}
    assert token_class(text, classes) == expected


def test_token_class_without_classes():
    assert token_class(" cat", None) == "word"
    assert token_class(" cat", {}) == "word"


def classes_of(data: bytes, *, max_bytes: int = 1000) -> dict[str, str]:
    return word_classes_from_upload(data, filename="pets.csv", max_bytes=max_bytes)


@pytest.mark.parametrize("data", [
    b"cat,animal\ndog,animal\nred,colour\n",
    b"word,class\ncat,animal\ndog,animal\nred,colour\n",
    b"\xef\xbb\xbfWord,Class\r\n\r\n Cat , animal\r\nDOG,animal\r\n  \r\nred,colour",
    b"word\tclass\ncat\tanimal\ndog\tanimal\nred\tcolour\n",
    b"cat\tanimal\ndog\tanimal\ncat\tanimal\nred\tcolour\n",
], ids=["csv", "csv-header", "bom-crlf-blank-lines-case", "tsv-header", "tsv-repeated-row"])
def test_word_classes_from_csv_or_tsv(data):
    assert classes_of(data) == {"cat": "animal", "dog": "animal", "red": "colour"}


def test_word_classes_read_the_delimiter_the_file_uses():
    assert classes_of(b'",",punctuation\n"a,b",pair\n') == {",": "punctuation", "a,b": "pair"}
    assert classes_of(b'"\tquote\na,b\tpair\n') == {'"': "quote", "a,b": "pair"}  # TSV: no quoting


LINE_ERRORS = [
    ("not-utf8", "cat,animal\ncaf\xe9,drink\n".encode("latin-1"),
     "pets.csv, line 2: not UTF-8 text (byte 14 cannot be decoded). Save the file as UTF-8 (\"CSV UTF-8\" in a "
     "spreadsheet) and upload it again."),
    ("three-fields", b"cat,animal\n\ndog,animal,pet\n",
     "pets.csv, line 3: expected 2 fields (word and class), found 3. The file is read as comma-separated (CSV) "
     "from its first row; put one word and its class per line, e.g. cat,animal."),
    ("tsv-then-comma", b"cat\tanimal\ndog,animal\n",
     "pets.csv, line 2: expected 2 fields (word and class), found 1. The file is read as tab-separated (TSV) "
     "from its first row; put one word and its class per line, e.g. cat,animal."),
    ("one-field", b"cat;animal\n",
     "pets.csv, line 1: expected 2 fields (word and class), found 1. The file is read as comma-separated (CSV) "
     "from its first row; put one word and its class per line, e.g. cat,animal."),
    ("bad-quotes", b'cat,animal\n"dog,animal\n',
     "pets.csv, line 2: cannot be read as comma-separated (CSV) (unexpected end of data). Check its quotes."),
    ("empty-word", b"cat,animal\n  ,animal\n",
     "pets.csv, line 2: the word is empty; give a word before the class."),
    ("empty-class", b"cat, \n",
     "pets.csv, line 1: the class of 'cat' is empty; give it a class or remove the line."),
    ("two-classes", b"Cat,animal\ndog,animal\ncat,pet\n",
     "pets.csv, line 3: 'cat' has the class 'pet' here but 'animal' on line 1 (words are compared in lower "
     "case); give each word one class."),
    ("reserved-class", b"cat,animal\nzzz,other\n",
     "pets.csv, line 2: 'other' is the name the maps use for tokens without a class; call the class something "
     "else, or remove the line to leave the word without a class."),
    ("too-many-classes", "".join(f"w{i},c{i}\n" for i in range(MAX_WORD_CLASSES + 1)).encode(),
     f"pets.csv, line {MAX_WORD_CLASSES + 1}: 'c{MAX_WORD_CLASSES}' would be class number {MAX_WORD_CLASSES + 1}; "
     f"the maps tell at most {MAX_WORD_CLASSES} classes apart (each gets its own marker shape). "
     "Merge some classes."),
    ("no-rows", b"\n \n\t\n", "pets.csv has no rows; put one word and its class per line, e.g. cat,animal."),
    ("header-only", b"word,class\n",
     "pets.csv has a header but no rows; add one word and its class per line, e.g. cat,animal."),
    ("too-large", b"cat,animal\n" * 92, "pets.csv is 1,012 bytes; the limit is 1,000. Upload a shorter list."),
]


@pytest.mark.parametrize("data, message", [e[1:] for e in LINE_ERRORS], ids=[e[0] for e in LINE_ERRORS])
def test_word_class_file_errors(data, message):
    with pytest.raises(ValueError) as refused:
        classes_of(data, max_bytes=1000)
    assert str(refused.value) == message


def test_the_class_limit_is_what_the_maps_tell_apart():
    names = [f"c{i}" for i in range(MAX_WORD_CLASSES)]
    assert len(classes_of("".join(f"w{i},{c}\n" for i, c in enumerate(names)).encode())) == MAX_WORD_CLASSES
    colours = figures.class_colors(names, style=figures.style())
    shapes = figures.class_symbols(colours)
    assert len(set(shapes.values())) == MAX_WORD_CLASSES  # one shape each: colour is never the only cue
    more = figures.class_symbols(figures.class_colors([*names, "one more"], style=figures.style()))
    assert len(set(more.values())) == MAX_WORD_CLASSES  # a 17th class would repeat a shape


def test_with_word_classes_keeps_the_text_and_changes_the_key():
    plain = from_upload(b"The cat sat. The dog ran. Red!", filename="notes.txt", max_bytes=100)
    classed = with_word_classes(plain, word_classes={"cat": "animal", "dog": "animal", "fish": "animal"})
    assert (classed.text, classed.title) == (plain.text, plain.title) and plain.word_classes is None
    assert classed.key.startswith(plain.key + "+classes:") and classed.key != plain.key
    other = with_word_classes(plain, word_classes={"cat": "animal", "dog": "pet"})
    assert len({plain.key, classed.key, other.key}) == 3
    assert with_word_classes(plain, word_classes={"dog": "animal", "cat": "animal", "fish": "animal"}) == classed
    assert token_class(" Cat", classed.word_classes) == "animal"
    assert token_class(" sat", classed.word_classes) == "word"
    assert class_coverage(classed) == ClassCoverage(words=6, classed=2, listed=3, classes=1)


def test_classes_change_the_key_but_not_the_text_key(enc):
    from embedviz import corpus as corpora

    base = corpora.toy_world(enc, n_sentences=20)
    one = corpora.with_word_classes(base, word_classes={"cat": "animal"})
    two = corpora.with_word_classes(one, word_classes={"cat": "pet"})
    assert len({base.key, one.key, two.key}) == 3
    assert base.text_key == one.text_key == two.text_key == base.key

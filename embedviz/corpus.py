"""Corpora to train on: a generated toy world, an order world where positions matter, Python's docs, uploads.

Everything is offline. The generated worlds know the class of their words (for colouring and scoring), an
upload can bring them as a word,class file; otherwise a token's kind (word, number, punctuation, ...) is used.
Tokenising is not done here.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import random
import re
import sys
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol


_CLASSES_KEY = "+classes:"  # joins a text's key and the digest of the word classes given to it


class _Encoder(Protocol):
    name: str

    def encode(self, text: str) -> list[int]: ...


@dataclass(frozen=True)
class Corpus:
    key: str  # stable id for caches, e.g. "toy-world:v1:cl100k_base:seed0:n4000" or "upload:<sha256>"
    title: str
    text: str
    word_classes: Mapping[str, str] | None = None  # lower-cased stripped word -> class (generated or uploaded)

    @property
    def text_key(self) -> str:
        """The key of the text alone: training depends on the text, not on the classes added to it."""
        return self.key.split(_CLASSES_KEY)[0]


# Each class has its own slots in the templates below, so the words of one class are interchangeable
# while the classes differ by their neighbours: that is the structure training should find.
WORDS: dict[str, tuple[str, ...]] = {
    "animal": ("cat", "dog", "horse", "cow", "pig", "sheep", "goat", "duck", "mouse", "rabbit", "fox",
               "bear", "lion", "tiger", "frog", "wolf"),
    "colour": ("red", "blue", "green", "yellow", "black", "white", "brown", "pink", "purple", "grey",
               "orange", "gold", "silver"),
    "number": ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
               "twelve"),
    "family": ("mother", "father", "sister", "brother", "aunt", "uncle", "cousin", "son", "daughter",
               "grandmother", "grandfather", "wife", "husband"),
    "food": ("bread", "cheese", "rice", "soup", "cake", "pasta", "pizza", "salad", "butter", "honey",
             "meat", "chocolate", "corn", "pie"),
    "drink": ("tea", "coffee", "milk", "water", "juice", "cocoa", "soda", "cola", "espresso"),
    "place": ("park", "school", "library", "market", "beach", "farm", "station", "museum", "garden",
              "hospital", "church", "river", "forest", "village", "zoo"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "month": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December"),
    "verb": ("run", "jump", "swim", "sing", "dance", "read", "walk", "cook", "sleep", "play", "climb",
             "draw", "write"),
    "job": ("teacher", "doctor", "farmer", "baker", "pilot", "nurse", "driver", "chef", "singer",
            "dentist", "lawyer", "soldier", "painter"),
    "feeling": ("happy", "sad", "tired", "hungry", "angry", "sleepy", "proud", "calm", "scared", "bored",
                "excited", "busy"),
}

# {class} marks a slot; every slot word is preceded by a space, as GPT tokens are mid-sentence.
TEMPLATES: tuple[str, ...] = (
    "On {weekday}, my {family} took the {animal} to the {place}.",
    "The {colour} {animal} likes to {verb} near the {place}.",
    "My {family} and the {job} are good friends.",
    "In {month}, the {job} ate {food} with {number} friends.",
    "We drank {drink} and ate {food} at the {place}.",
    "The {animal} has {number} {colour} spots.",
    "I feel {feeling} because it is {weekday}.",
    "The {job} was {feeling} all through {month}.",
    "Every {weekday}, the {job} and the {animal} {verb} together.",
    "Can you {verb} like the {animal}?",
    "My {family} made {food} and a cup of {drink}.",
    "Our {family} was born in {month}.",
    "The {colour} house near the {place} has {number} windows.",
    "When I am {feeling}, I drink {drink}.",
    "The {job} wants to {verb} on {weekday}.",
    "Her {family} painted the old boat {colour}.",
)

# Read aloud in class: every token of it occurs in the default toy world.
CLASSROOM_SENTENCE = "On Monday, my sister took the dog to the park."

PARAGRAPH_SENTENCES = (2, 5)  # sentences per line of the toy world, inclusive
TOY_WORLD_VERSION = "v1"  # bump when WORDS or TEMPLATES change, so cached models are not reused


def toy_world(enc: _Encoder, *, seed: int = 0, n_sentences: int = 4000) -> Corpus:
    """Sentences from TEMPLATES with random slot words, in short paragraphs; same seed -> same text.

    Words that `enc` does not encode as a single token (with their leading space) are left out.
    """
    def sentence(rng: random.Random, words: Mapping[str, tuple[str, ...]]) -> str:
        # each slot draws its own word (str.format would repeat a class that a template uses twice)
        return _fill(rng.choice(TEMPLATES), lambda cls: rng.choice(words[cls]))

    return _generated(enc, sentence, key=f"toy-world:{TOY_WORLD_VERSION}", title="Toy world", seed=seed,
                      n_sentences=n_sentences)


# Sentences whose second half repeats words of the first half in an order set by the first half: which
# animal chased which, who paid whom, what came first. Words are drawn at random, so a model can only
# name the right word at a {class:k} slot by knowing where the first {class:k} stood, not by what it is.
# {class:1} and {class:2} are distinct words of one class; equal indices repeat the word.
ORDER_TEMPLATES: tuple[str, ...] = (
    "The {animal:1} chased the {animal:2}, so the {animal:2} ran from the {animal:1}.",
    "The {job:1} paid the {job:2}, and the {job:2} thanked the {job:1}.",
    "First {food:1}, then {food:2}: {food:1} before {food:2}.",
    "We saw the {place:1}, the {place:2} and the {place:3}, in the order {place:1}, {place:2}, {place:3}.",
)
ORDER_WORLD_VERSION = "v1"  # bump when ORDER_TEMPLATES change, so cached models are not reused


def order_world(enc: _Encoder, *, seed: int = 0, n_sentences: int = 4000) -> Corpus:
    """Sentences from ORDER_TEMPLATES with random words, in short paragraphs; same seed -> same text.

    A model without any position information ("none") cannot tell which of two words came first, so
    on this corpus it is measurably worse than the schemes that have positions. Words that `enc` does
    not encode as a single token (with their leading space) are left out, as in the toy world.
    """
    def sentence(rng: random.Random, words: Mapping[str, tuple[str, ...]]) -> str:
        chosen: dict[str, str] = {}  # "animal:1" -> its word in this sentence

        def word(slot: str) -> str:
            if slot not in chosen:
                cls = slot.split(":")[0]
                taken = {w for s, w in chosen.items() if s.startswith(cls + ":")}
                chosen[slot] = rng.choice([w for w in words[cls] if w not in taken])
            return chosen[slot]

        return _fill(rng.choice(ORDER_TEMPLATES), word)

    return _generated(enc, sentence, key=f"order-world:{ORDER_WORLD_VERSION}", title="Order world", seed=seed,
                      n_sentences=n_sentences)


def _generated(enc: _Encoder, sentence: Callable[[random.Random, Mapping[str, tuple[str, ...]]], str], *,
               key: str, title: str, seed: int, n_sentences: int) -> Corpus:
    """A generated corpus: n sentences drawn with one seeded generator, in paragraphs, with word classes."""
    if n_sentences < 1:
        raise ValueError(f"The {title.lower()} needs at least one sentence.")
    words = _single_token_words(enc)
    rng = random.Random(seed)
    sentences = [sentence(rng, words) for _ in range(n_sentences)]
    return Corpus(
        key=f"{key}:{enc.name}:seed{seed}:n{n_sentences}",
        title=title,
        text=_paragraphs(sentences, rng),
        word_classes={w.lower(): cls for cls, ws in words.items() for w in ws},
    )


def _fill(template: str, word: Callable[[str], str]) -> str:
    """The template with each {slot} replaced by word(slot), left to right."""
    parts = template.split("{")
    sentence = parts[0]
    for part in parts[1:]:
        slot, rest = part.split("}", 1)
        sentence += word(slot) + rest
    return sentence


def _paragraphs(sentences: list[str], rng: random.Random) -> str:
    """Paragraphs of a few sentences, so "." and " The" occur as well as ".\n" and "The"."""
    paragraphs = []
    start = 0
    while start < len(sentences):
        end = start + rng.randint(*PARAGRAPH_SENTENCES)
        paragraphs.append(" ".join(sentences[start:end]))
        start = end
    return "\n".join(paragraphs) + "\n"


def _single_token_words(enc: _Encoder) -> dict[str, tuple[str, ...]]:
    words = {cls: tuple(w for w in ws if len(enc.encode(" " + w)) == 1) for cls, ws in WORDS.items()}
    thin = [cls for cls, ws in words.items() if len(ws) < 3]
    if thin:
        raise ValueError(
            f"The encoding {enc.name!r} splits most words of the toy world's classes {thin} into "
            "several tokens; pick another encoding for the toy world."
        )
    return words


def python_docs() -> Corpus:
    """The help topics shipped with CPython (pydoc_data.topics): about 0.5 MB of technical English."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[name].strip() for name in sorted(topics)) + "\n"
    return Corpus(
        key=f"python-docs:{sys.version_info.major}.{sys.version_info.minor}",
        title="Python documentation (pydoc topics)",
        text=text,
    )


def from_upload(data: bytes, *, filename: str, max_bytes: int) -> Corpus:
    """An uploaded UTF-8 text file as a corpus; ValueError says what is wrong with anything else."""
    name = filename or "upload"
    if not data:
        raise ValueError(f"{name} is empty; upload a UTF-8 text file with some text in it.")
    if len(data) > max_bytes:
        raise ValueError(
            f"{name} is {len(data):,} bytes; the limit is {max_bytes:,}. Upload a shorter text."
        )
    if b"\x00" in data:
        raise ValueError(f"{name} looks like a binary file (it contains NUL bytes); upload plain text.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{name} is not UTF-8 text (byte {err.start} cannot be decoded). It was probably saved in "
            "another encoding such as Latin-1 or Windows-1252: save it as UTF-8 and upload it again."
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ValueError(f"{name} contains only whitespace; upload a file with some text in it.")
    control = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\t\f\v")
    if control > 0.05 * len(text):
        raise ValueError(f"{name} looks like a binary file (mostly control characters); upload plain text.")
    return Corpus(key="upload:" + hashlib.sha256(data).hexdigest(), title=name, text=text)


# The maps give each class its own marker shape, and figures has 16 of them (with 7 colour-blind-safe
# colours); past 16, two classes would share a shape.
MAX_WORD_CLASSES = 16
# Names the maps already use for tokens without a class (drawn grey, never scored).
RESERVED_CLASSES = frozenset({"other", "<unk>"})


def word_classes_from_upload(data: bytes, *, filename: str, max_bytes: int) -> dict[str, str]:
    """Word -> class from an uploaded file of `word,class` lines (comma- or tab-separated, whichever the
    first row uses; fields may be quoted as in CSV). An optional first row `word,class` is a header;
    blank lines are skipped. Words are stripped and lower-cased, as `token_class` looks them up.
    ValueError names the file and line for anything that cannot be read that way.
    """
    name = filename or "upload"
    if len(data) > max_bytes:
        raise ValueError(f"{name} is {len(data):,} bytes; the limit is {max_bytes:,}. Upload a shorter list.")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{name}, line {line}: not UTF-8 text (byte {err.start} cannot be decoded). Save the file as "
            "UTF-8 (\"CSV UTF-8\" in a spreadsheet) and upload it again."
        ) from None
    numbered = enumerate(content.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1)
    lines = [(n, line) for n, line in numbered if line.strip()]
    if not lines:
        raise ValueError(f"{name} has no rows; put one word and its class per line, e.g. cat,animal.")
    tsv = "\t" in lines[0][1]
    kind = "tab-separated (TSV)" if tsv else "comma-separated (CSV)"
    # CSV fields may be quoted (a word "," is written ",",punctuation); in TSV a quote is just a character
    dialect = dict(delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else dict(delimiter=",", strict=True)
    classes: dict[str, str] = {}
    first_line: dict[str, int] = {}  # word -> line that gave its class
    names: set[str] = set()  # the classes so far
    for k, (n, line) in enumerate(lines):
        where = f"{name}, line {n}"
        try:
            fields = next(csv.reader([line], **dialect))
        except csv.Error as err:
            raise ValueError(f"{where}: cannot be read as {kind} ({err}). Check its quotes.") from None
        if len(fields) != 2:
            raise ValueError(
                f"{where}: expected 2 fields (word and class), found {len(fields)}. The file is read as {kind} "
                "from its first row; put one word and its class per line, e.g. cat,animal."
            )
        word, cls = fields[0].strip().lower(), fields[1].strip()
        if k == 0 and (word, cls.lower()) == ("word", "class"):
            continue  # the header
        if not word:
            raise ValueError(f"{where}: the word is empty; give a word before the class.")
        if not cls:
            raise ValueError(f"{where}: the class of {word!r} is empty; give it a class or remove the line.")
        if cls in RESERVED_CLASSES:
            raise ValueError(
                f"{where}: {cls!r} is the name the maps use for tokens without a class; call the class "
                "something else, or remove the line to leave the word without a class."
            )
        if classes.get(word, cls) != cls:
            raise ValueError(
                f"{where}: {word!r} has the class {cls!r} here but {classes[word]!r} on line "
                f"{first_line[word]} (words are compared in lower case); give each word one class."
            )
        if cls not in names and len(names) == MAX_WORD_CLASSES:
            raise ValueError(
                f"{where}: {cls!r} would be class number {MAX_WORD_CLASSES + 1}; the maps tell at most "
                f"{MAX_WORD_CLASSES} classes apart (each gets its own marker shape). Merge some classes."
            )
        first_line.setdefault(word, n)
        names.add(cls)
        classes[word] = cls
    if not classes:
        raise ValueError(f"{name} has a header but no rows; add one word and its class per line, e.g. cat,animal.")
    return classes


def with_word_classes(corpus: Corpus, *, word_classes: Mapping[str, str]) -> Corpus:
    """The same text with these classes; a key of its own, so nothing cached for the corpus without
    classes (or with other classes) is reused for it."""
    digest = hashlib.sha256(json.dumps(sorted(word_classes.items())).encode()).hexdigest()
    return dataclasses.replace(corpus, key=f"{corpus.text_key}{_CLASSES_KEY}{digest}",
                               word_classes=dict(word_classes))


class ClassCoverage(NamedTuple):
    """How much of a corpus's vocabulary its word classes cover."""

    words: int  # distinct words of the text (runs of letters, lower-cased)
    classed: int  # of those, the ones with a class
    listed: int  # words that have a class, whether or not they occur in the text
    classes: int  # distinct classes


def class_coverage(corpus: Corpus) -> ClassCoverage:
    """Counts for a caption such as "312 of 1,204 distinct words have a class"."""
    words = set(re.findall(r"[^\W\d_]+", corpus.text.lower()))
    known = corpus.word_classes or {}
    return ClassCoverage(words=len(words), classed=len(words & known.keys()), listed=len(known),
                         classes=len(set(known.values())))


_PUNCTUATION = {"Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk"}


def token_class(text: str, word_classes: Mapping[str, str] | None) -> str:
    """The class of a token's text when the corpus knows it, else its kind.

    Kinds: "word", "number", "punctuation", "whitespace", "other" (mixed, partial bytes, empty).
    """
    stripped = text.strip()
    if word_classes and stripped.lower() in word_classes:
        return word_classes[stripped.lower()]
    if not text:
        return "other"
    if not stripped:
        return "whitespace"
    if stripped.isdecimal():
        return "number"
    if stripped.isalpha():
        return "word"
    # Symbols like "+" and "$" read as punctuation; emoji and U+FFFD (a partial UTF-8 byte) do not.
    if all(unicodedata.category(ch) in _PUNCTUATION for ch in stripped):
        return "punctuation"
    return "other"

"""Attack surface: typed text and token ids. Markup typed or quoted back in a message is shown as
typed, malformed ids end in a message that says what to type, half of an emoji is replaced, and after
each case the page draws again. One page is shared by the cases (each restores what it changed)."""
from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from embedviz import explorer
from embedviz.tokens import load_encoding
from embedviz.ui.text import literal
from embedviz.vocab import Vocab
from tests.test_app import fresh

MARKUP = "[Click](https://example.invalid) **b** $x^2$ :red[A] :smile:"


def plain(markdown: str) -> str:
    """What Streamlit shows for escaped Markdown: backslash escapes resolved, word joiners dropped."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def unescaped_links(at: AppTest) -> list[str]:
    kinds = ("markdown", "caption", "error", "info", "warning", "toast")
    values = [e.value for kind in kinds for e in getattr(at, kind) if not getattr(e.proto, "allow_html", False)]
    return [v for v in values if re.search(r"(?<!\\)\]\(", v)]


def heatmap_rows(at: AppTest) -> int:
    """T of the batch drawn, from the line `ids.shape` = `torch.Size([B, T])` above the heatmaps."""
    shapes = [re.search(r"`ids\.shape` = `torch\.Size\(\[\d+, (\d+)\]\)`", m.value) for m in at.markdown]
    assert "heatmap_2" in {c.proto.id.split("-", 2)[-1] for c in at.get("plotly_chart")}
    return int(next(s for s in shapes if s).group(1))


@pytest.fixture(scope="module")
def page() -> AppTest:
    return fresh(timeout=120)


def test_markup_typed_as_sentences_is_only_ever_text(page):
    page.text_area(key="text").set_value(MARKUP + "\n" + MARKUP[::-1]).run()
    assert not page.exception and not errors(page)
    assert not unescaped_links(page)
    # the sentence box's options are plain text (not Markdown): the tokens as typed
    [box] = [s for s in page.selectbox if s.key == "sentence"]
    assert box.options[0].startswith("0: [Click](https")
    page.text_area(key="text").set_value("The cat sat.").run()
    assert heatmap_rows(page) == 4


def test_too_many_sentences_and_too_much_text_are_refused(page):
    page.text_area(key="text").set_value("a\n" * 65).run()
    assert "65 sentences is too many; the limit is 64" in plain(errors(page)[0])
    page.text_area(key="text").set_value("a" * 100_001).run()
    assert "The text has 100,001 characters; the limit is 100,000" in plain(errors(page)[0])
    page.text_area(key="text").set_value("The cat sat.").run()
    assert not errors(page) and heatmap_rows(page) == 4


def test_lone_surrogates_become_the_replacement_character(enc):
    # A browser's lone surrogate never reaches the page: Streamlit drops the whole message ("String
    # field had bad UTF-8"), and AppTest cannot send one either. Text from anywhere else is repaired.
    vocab = Vocab.build(enc, 1000, reference_ids=enc.encode("the cat sat on the mat"))
    batch = explorer.from_text("a\udc00b \ud83d\ude42", enc=load_encoding("cl100k_base"), vocab=vocab, positions=16)
    text = "".join(t.label for t in batch.sentences[0])
    assert "\ufffd" in text and "\\x" not in text.split("\ufffd")[0]
    assert explorer.well_formed("a\ud800b\ud83d\ude42") == "a\ufffdb🙂"  # a pair stays one emoji
    assert explorer.well_formed("plain 🙂") == "plain 🙂"


@pytest.fixture(scope="module")
def ids_mode(page):
    page.radio(key="mode").set_value("Token ids").run()
    yield page
    page.radio(key="mode").set_value("Sentences").run()


@pytest.mark.parametrize("ids, expected", [
    ('[[5, "[x](https://example.invalid)"]]', '"[x](https://example.invalid)" is not a whole number'),
    ("[[5, NaN]]", "NaN is not a whole number"),
    ("[[5, 1e999]]", "Infinity is not a whole number"),
    ("[[5, 2.5]]", "2.5 is not a whole number"),
    ("[[1" + "0" * 100 + "]]", "is too large; ids are row numbers"),
    ("[[-1]]", "Id -1 is outside the vocabulary"),
    ("[[5, 20]] <img src=x onerror=alert(1)>", "Token ids must be whole numbers in brackets"),
    ("[" * 5_000, "Token ids must be whole numbers in brackets"),
    ("[[]]", "remove the empty [ ]"),
    ("   ", "Type some token ids"),
    (json.dumps([[1]] * 65), "65 sentences is too many; the limit is 64"),
], ids=["markdown", "nan", "inf", "float", "10^100", "negative", "html", "deep", "empty-row", "blank", "65-rows"])
def test_bad_ids_end_in_a_message_shown_as_typed(ids_mode, ids, expected):
    ids_mode.text_input(key="ids").set_value(ids).run()
    assert not ids_mode.exception
    [message] = errors(ids_mode)
    assert expected in plain(message)
    assert not unescaped_links(ids_mode)


def test_after_bad_ids_good_ones_draw_again(ids_mode):
    ids_mode.text_input(key="ids").set_value("[[5, 20, 33, 2]]").run()
    assert not errors(ids_mode) and heatmap_rows(ids_mode) == 4

"""Attack surface: uploads. Empty, binary, non-UTF-8, half-emoji, too large and hostile-named files
end in a message in the sidebar, shown as plain text, and the toy world is used instead; a BOM, a file
exactly at the limit, long whitespace runs and one repeated character are accepted and the page works.
A word,class file for an upload is refused with a message naming its line, or gives the class score.
One page (AppTest, which uploads through Streamlit's own file manager) is shared by the cases."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from embedviz import corpus
from embedviz.config import LOCAL_LIMITS
from embedviz.ui.sidebar import upload_message
from embedviz.ui.text import literal
from tests.test_app import open_training

APP = str(Path(__file__).resolve().parents[1] / "app.py")
LIMIT = LOCAL_LIMITS.max_upload_bytes
HOSTILE_NAME = "[x](https://example.invalid) **b** $y$ :red[z] :smile:.txt"
SENTENCES = b"The cat sat on the mat. The dog ran to the park.\n"
pytestmark = pytest.mark.usefixtures("trainings_on_a_thread")


def plain(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def sidebar_messages(at: AppTest) -> tuple[list[str], list[str]]:
    return [e.value for e in at.sidebar.error], [e.value for e in at.sidebar.info]


@pytest.fixture(scope="module")
def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="corpus").set_value("upload").run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.sidebar.file_uploader(key="upload").set_value((name, data, "text/plain")).run()
    assert not at.exception, at.exception
    return at


def test_before_any_file_the_page_says_what_to_do(page):
    assert "Choose a .txt file; until then the toy world is used." in sidebar_messages(page)[1]


REFUSED = [
    ("empty", "empty.txt", b"", "empty.txt is empty"),
    ("binary", "photo.txt", bytes(range(256)) * 8, "photo.txt looks like a binary file (it contains NUL bytes)"),
    ("control", "ctrl.txt", bytes(range(1, 32)) * 40, "ctrl.txt looks like a binary file (mostly control"),
    ("latin-1", "cafe.txt", "Un café crème à Noël.\n".encode("latin-1") * 20, "cafe.txt is not UTF-8 text (byte 6"),
    ("half-emoji", "half.txt", b"cat \xed\xa0\xbd dog", "half.txt is not UTF-8 text (byte 4"),
    ("whitespace", "blank.txt", b" \t\n" * 1000, "blank.txt contains only whitespace"),
    ("over-limit", "big.txt", b"a" * (LIMIT + 1), f"big.txt is {LIMIT + 1:,} bytes; the limit is {LIMIT:,}"),
    ("hostile-name", HOSTILE_NAME, b"", f"{HOSTILE_NAME} is empty"),
]


@pytest.mark.parametrize("name, data, expected", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_uploads_end_in_a_message_shown_as_plain_text(page, name, data, expected):
    errors, infos = sidebar_messages(upload(page, name, data))
    [error] = errors
    assert expected in plain(error)
    assert "Using the toy world instead." in infos
    assert not re.search(r"(?<!\\)(\]\(|\*\*|\$|:red\[|:smile:)", error), error
    assert "x.shape = torch.Size" in page.get("plotly_chart")[2].proto.spec  # the explorer still draws


@pytest.mark.parametrize("name, data, title", [
    ("bom.txt", b"\xef\xbb\xbf" + SENTENCES * 4, "bom.txt"),
    ("limit.txt", (SENTENCES * (LIMIT // len(SENTENCES) + 1))[:LIMIT], "limit.txt"),
    ("runs.txt", SENTENCES + b" " * 200_000 + b"\n" * 100_000 + SENTENCES, "runs.txt"),
    ("one.txt", b"a" * 300_000, "one.txt"),
    ("named.txt", SENTENCES * 4, "named.txt"),
], ids=["bom", "at-limit", "whitespace-runs", "one-character", "plain"])
def test_awkward_but_valid_uploads_are_accepted(page, name, data, title):
    errors, infos = sidebar_messages(upload(page, name, data))
    assert errors == [] and "Using the toy world instead." not in infos
    assert "x.shape = torch.Size" in page.get("plotly_chart")[2].proto.spec


def test_a_hostile_file_name_in_messages_is_escaped():
    """The message function on its own, for names no browser would send (newlines, HTML)."""
    for name in (HOSTILE_NAME, "<img src=x onerror=alert(1)>.txt", "a\n\n# heading.txt"):
        with pytest.raises(ValueError) as refused:
            corpus.from_upload(b"", filename=name, max_bytes=LIMIT)
        shown = upload_message(refused.value)
        assert shown == literal(str(refused.value)) and plain(shown) == str(refused.value).replace("\n", " ")
        assert not re.search(r"(?<!\\)[\[\]()<>#*$]", shown.replace("\\\\", "")), shown


def test_a_bom_is_not_part_of_the_text():
    assert corpus.from_upload(b"\xef\xbb\xbfhello", filename="b.txt", max_bytes=LIMIT).text == "hello"


def upload_classes(at: AppTest, name: str, data: bytes) -> AppTest:
    at.sidebar.file_uploader(key="upload_classes").set_value((name, data, "text/csv")).run()
    assert not at.exception, at.exception
    return at


def test_a_refused_classes_file_says_which_line_and_the_page_keeps_working(page):
    upload(page, "named.txt", SENTENCES * 4)
    errors, infos = sidebar_messages(upload_classes(page, HOSTILE_NAME + ".csv", b"cat,animal\ndog;animal\n"))
    [error] = errors
    assert plain(error) == (f"{HOSTILE_NAME}.csv, line 2: expected 2 fields (word and class), found 1. The "
                            "file is read as comma-separated (CSV) from its first row; put one word and its "
                            "class per line, e.g. cat,animal.")
    assert not re.search(r"(?<!\\)(\]\(|\*\*|\$|:red\[|:smile:)", error), error
    assert "The text is used without word classes." in infos
    assert "Using the toy world instead." not in infos  # the text itself was accepted
    assert "x.shape = torch.Size" in page.get("plotly_chart")[2].proto.spec


def test_a_good_classes_file_is_counted_and_gives_the_class_score_after_training(enc):
    world = corpus.toy_world(enc, n_sentences=300)
    rows = "".join(f"{word},{cls}\n" for word, cls in sorted(world.word_classes.items()))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.selectbox(key="corpus").set_value("upload").run()
    upload(at, "world.txt", world.text.encode())
    upload_classes(at, "classes.csv", ("word,class\n" + rows).encode())
    assert [e.value for e in at.sidebar.error] == []
    cover = corpus.class_coverage(corpus.with_word_classes(world, word_classes=world.word_classes))
    n_classes = len(set(world.word_classes.values()))
    assert (f"{cover.classed:,} of the {cover.words:,} distinct words of world.txt have a class "
            f"(classes.csv: {len(world.word_classes):,} words in {n_classes} classes).") in [
        plain(c.value) for c in at.sidebar.caption]
    assert 0 < cover.classed <= cover.words

    at.sidebar.select_slider(key="vocab_size").set_value(128)
    at.sidebar.slider(key="dim").set_value(16)
    at.sidebar.slider(key="positions").set_value(8)
    open_training(at)
    at.slider(key="steps").set_value(20).run()
    at.button(key="train").click().run()
    deadline = time.monotonic() + 120
    while not any(c.proto.id.endswith("-scatter_after") for c in at.get("plotly_chart")):
        assert time.monotonic() < deadline, "training did not finish"
        assert not at.exception and not at.error, (at.exception, at.error)
        time.sleep(0.5)
        at.run()
    labels = [m.label for m in at.metric]
    assert labels == ["Neighbours sharing a class, before", "… after training", "Chance level"]
    assert all(0 <= float(m.value) <= 1 for m in at.metric)
    [scored] = [c.value for c in at.caption if c.value.startswith("Scored: the ")]
    assert "drawn tokens that have a class in world.txt" in plain(scored)
    assert not [i.value for i in at.info if "does not know its words' classes" in i.value]

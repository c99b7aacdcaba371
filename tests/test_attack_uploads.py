"""Attack surface: uploads. Empty, binary, non-UTF-8, half-emoji, too large and hostile-named files
end in a message in the sidebar, shown as plain text, and the toy world is used instead; a BOM, a file
exactly at the limit, long whitespace runs and one repeated character are accepted and the page works.
One page (AppTest, which uploads through Streamlit's own file manager) is shared by the cases."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from embedviz import corpus
from embedviz.config import LOCAL_LIMITS
from embedviz.ui.sidebar import upload_message
from embedviz.ui.text import literal

APP = str(Path(__file__).resolve().parents[1] / "app.py")
LIMIT = LOCAL_LIMITS.max_upload_bytes
HOSTILE_NAME = "[x](https://example.invalid) **b** $y$ :red[z] :smile:.txt"
SENTENCES = b"The cat sat on the mat. The dog ran to the park.\n"


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

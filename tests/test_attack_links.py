"""Attack surface: the link. Every setting a link carries that is out of range, NaN, infinite, huge,
unicode, markdown, repeated or very long is ignored and named in one toast, as plain text; the page
opens with its defaults and works."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from embedviz.ui.text import literal

APP = str(Path(__file__).resolve().parents[1] / "app.py")
HOSTILE = {
    "V": "[Click](https://example.invalid)",  # a link
    "d": "![i](https://example.invalid/i.png)",  # an image
    "P": "**Session expired**",  # bold
    "mode": "$x^2$ :red[ALERT]",  # KaTeX and colour
    "enc": ":smile: :material/home: www.x.invalid",  # emoji, icon, a bare address
    "heads": "<img src=x onerror=alert(1)>",  # HTML
    "seed": "NaN",
    "lr": "inf",
    "rope_base": "1e100",
    "steps": "1" + "0" * 100,  # 10^100
    "corpus": "ｔｏｙ",  # fullwidth look-alike of "toy"
    "pictures": "🙂",
    "text": "a" * 5_000,  # over the 2,000 characters a link may carry
}
REPEATED = ("row", ["0", "99"])  # ?row=0&row=99: the last value counts, and 99 is past the 64 sentences


def plain(markdown: str) -> str:
    """What Streamlit shows for escaped Markdown: backslash escapes resolved, word joiners dropped."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def markdown_values(at: AppTest) -> list[str]:
    """Everything on the page that Streamlit renders as Markdown (HTML blocks made by the page aside)."""
    kinds = ("markdown", "caption", "error", "info", "warning", "success", "toast")
    values = [e.value for kind in kinds for e in getattr(at, kind) if not getattr(e.proto, "allow_html", False)]
    return values + [e.label for e in at.expander]


@pytest.fixture(scope="module")
def opened() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for param, value in (*HOSTILE.items(), REPEATED):
        at.query_params[param] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_every_bad_setting_is_named_in_one_toast(opened):
    [toast] = [t.value for t in opened.toast]
    shown = plain(toast)
    assert shown.startswith("Ignored link settings that are not valid here: ")
    for param, value in HOSTILE.items():
        assert f"{param}={value[:40]!r}" in shown, param
    assert "row='99'" in shown
    assert len(toast) < 1_500  # each value is cut to 40 characters


@pytest.mark.parametrize("param, value", [(p, HOSTILE[p]) for p in ("V", "d", "P", "mode", "enc", "heads")])
def test_markup_in_a_link_is_shown_as_typed(opened, param, value):
    [toast] = [t.value for t in opened.toast]
    assert literal(f"{param}={value!r}") in toast


def test_no_element_renders_link_markup(opened):
    for value in markdown_values(opened):
        assert not re.search(r"(?<!\\)\]\(", value), value  # a link or an image
        assert not re.search(r"(?<!\\)(\*\*Session|:red\[|\$x|:smile:|:material|https://|www\.)", value), value


def test_the_page_opens_with_its_defaults(opened):
    assert opened.sidebar.select_slider(key="vocab_size").value == 256
    assert opened.sidebar.slider(key="dim").value == 32
    assert opened.sidebar.slider(key="positions").value == 16
    assert opened.radio(key="mode").value == "Sentences"
    assert any("`ids.shape` = `torch.Size([1, " in m.value for m in opened.markdown)
    assert "heatmap_2" in {c.proto.id.split("-", 2)[-1] for c in opened.get("plotly_chart")}


@pytest.mark.parametrize("hostile", [
    "[Click](https://example.invalid)", "![i](https://example.invalid/i.png)", "**Session expired**",
    "$x^2$ :red[ALERT]", ":smile: :material/home:", "<b>&amp;</b>", "a\\b `c` ~~d~~ _e_ #f |g|",
    "line one\n\n# heading\n- item", "www.example.invalid a@example.invalid",
])
def test_literal_escapes_every_markdown_character_and_keeps_the_text(hostile):
    shown = literal(hostile)
    assert not re.search(r"(?<!\\)[\[\]()*$`_~#|<>&!]", shown.replace("\\\\", "")), shown
    assert not re.search(r":(?!\u2060)", shown), shown  # no shortcode can start
    assert "\n" not in shown
    assert plain(shown) == hostile.replace("\n", " ")

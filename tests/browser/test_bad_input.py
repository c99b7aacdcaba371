"""Hostile and awkward input in a real browser: markup typed as text stays text (in the chips, on the
heatmap axes and in their hover boxes) and never runs; emoji, CJK and right-to-left text render;
uploads that are empty, binary or not UTF-8 end in a clear message and the page keeps working."""
from __future__ import annotations

import pytest

from .conftest import (alerts, chip_tokens, choose, commit_text, element_shot, hover_text, plot, rerun, shapes,
                       shot, wait_text)

pytestmark = pytest.mark.browser

MARKUP = [
    ("script", "<script>alert(1)</script>"),
    ("img-onerror", "<img src=x onerror=alert(1)>"),
]


def no_injected_elements(p) -> None:
    counts = p.evaluate(
        """() => ({
            img_x: document.querySelectorAll('img[src="x"]').length,
            chip_elements: document.querySelectorAll('.ev-chips script, .ev-chips img').length,
            svg_elements: document.querySelectorAll('.js-plotly-plot script, .js-plotly-plot img').length,
            inline_alert_scripts: Array.from(document.querySelectorAll('script'))
                .filter(s => s.textContent.includes('alert(1)')).length,
        })""")
    assert counts == {"img_x": 0, "chip_elements": 0, "svg_elements": 0, "inline_alert_scripts": 0}, counts


@pytest.mark.parametrize("name, text", MARKUP, ids=[m[0] for m in MARKUP])
def test_markup_typed_as_text_shows_as_text_and_never_runs(page, name, text):
    p = page.page
    commit_text(p, "text", text)
    wait_text(p, "x.shape = torch.Size([1, ")
    # every image has loaded or failed: an onerror handler would have run by now
    p.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    no_injected_elements(p)

    # chips: the tokens, joined, are the typed characters (spaces are shown as ␣)
    [chips] = chip_tokens(p)
    assert "".join(chips).replace("␣", " ") == text
    T = len(chips)
    assert f"x.shape = torch.Size([1, {T}, 32])" in shapes(p)

    # heatmap y axis: "position · token", drawn as SVG text with the literal characters
    for key in ("heatmap_0", "heatmap_2"):
        d = plot(p, key)
        assert d["traces"][0]["rows"] == T
        assert len(d["ticks"]) == T, d["ticks"]
        labels = [t.split(" · ", 1)[1] for t in d["ticks"]]
        assert "".join(labels).replace("␣", " ") == text, labels

    # hover box of the first row (the "<" token) and of the last row
    first = hover_text(p, "heatmap_0", fx=0.5, fy=0.5 / T)
    assert f"token {chips[0]}" in first, first
    assert "<" in first and "position 0" in first, first
    last = hover_text(p, "heatmap_0", fx=0.5, fy=1 - 0.5 / T)
    assert f"token {chips[-1]}" in last and f"position {T - 1}" in last, last
    element_shot(p, ".st-key-heatmap_0", f"xss-{name}-hover", keep_hover=True)
    p.mouse.move(5, 5)

    no_injected_elements(p)
    shot(p, f"xss-{name}")
    page.assert_clean()


def test_markup_in_token_ids_mode_is_refused_with_a_message(page):
    p = page.page
    rerun(p, lambda: p.locator(".st-key-mode label", has_text="Token ids").first.click())
    box = p.locator(".st-key-ids input")
    box.fill("[[5, 20]] <img src=x onerror=alert(1)>")
    rerun(p, lambda: box.press("Enter"))
    message = " ".join(alerts(p, '[data-testid="stMain"]'))
    assert message.strip(), "no message for unparseable token ids"
    no_injected_elements(p)
    shot(p, "ids-markup-refused")

    box.fill("[[5, 20, 33, 2]]")
    rerun(p, lambda: box.press("Enter"))
    wait_text(p, "x.shape = torch.Size([1, 4, 32])")
    page.assert_clean()


def test_emoji_cjk_and_right_to_left_text_render(page):
    p = page.page
    lines = ["I ❤ tea 🙂 and 🐱", "你好世界，猫が座った。", "مرحبا بالعالم"]
    commit_text(p, "text", "\n".join(lines), type_it=False)
    wait_text(p, "x.shape = torch.Size([3, ")
    chips = chip_tokens(p)
    assert len(chips) == 3
    # a character that is a whole token reads back as itself; one split across tokens shows its
    # UTF-8 bytes as \xNN (🐱 is three tokens in cl100k_base)
    assert {"␣❤", "␣🙂"} <= set(chips[0]), chips[0]
    assert chips[0][-3:] == ["␣\\xf0\\x9f", "\\x90", "\\xb1"], chips[0]
    assert {"你", "好", "が"} <= set(chips[1]), chips[1]
    assert {"م", "ر", "␣ب"} <= set(chips[2]), chips[2]
    element_shot(p, '[data-testid="stMain"] .stMarkdown:has(.ev-chips)', "unicode-chips-0")
    element_shot(p, ".st-key-heatmap_0", "unicode-heatmap-sentence-0")

    # the heatmaps show one sentence at a time: pick the CJK one, then the Arabic one
    for b, name in ((1, "cjk"), (2, "rtl")):
        choose(p, "sentence", f"{b}: ")
        ticks = plot(p, "heatmap_0")["ticks"]
        assert ticks[0].startswith("0 · "), ticks
        assert "".join(t.split(" · ", 1)[1] for t in ticks).replace("␣", " ").strip(), ticks
        element_shot(p, ".st-key-heatmap_0", f"unicode-heatmap-{name}")
    shot(p, "unicode")
    page.assert_clean()


UPLOADS = [
    ("empty", "empty.txt", b"", "is empty"),
    ("binary", "photo.txt", bytes(range(256)) * 8, "binary"),
    ("latin1", "cafe.txt", "Un café crème, s'il vous plaît. Déjà vu à Noël.\n".encode("latin-1") * 20,
     "not UTF-8"),
]


def upload(p, filename: str, data: bytes) -> None:
    rerun(p, lambda: p.locator(".st-key-upload input[type=file]").set_input_files(
        files=[{"name": filename, "mimeType": "text/plain", "buffer": data}]))


def test_bad_uploads_show_a_clear_message_and_the_page_keeps_working(page):
    p = page.page
    # waited for by what the choice shows: this quick rerun was seen to end without the page ever marking
    # it as running, so rerun() (which counts runs) waited in vain
    p.locator(".st-key-corpus [role=combobox], .st-key-corpus [data-baseweb=select]").first.click()
    p.locator("[role=option]:visible", has_text="Your own (.txt)").first.click()
    wait_text(p, "Choose a .txt file", where='[data-testid="stSidebar"]')
    assert any("Choose a .txt file" in a for a in alerts(p, '[data-testid="stSidebar"]'))

    sentence = {"empty": "The cat sat.", "binary": "A dog ran to the park.", "latin1": "Hello there, world!"}
    for name, filename, data, expected in UPLOADS:
        upload(p, filename, data)
        sidebar = " ".join(alerts(p, '[data-testid="stSidebar"]'))
        assert expected in sidebar, (name, sidebar)
        assert "toy world" in sidebar.lower(), (name, sidebar)  # says what is used instead
        element_shot(p, '[data-testid="stSidebar"]', f"upload-{name}-sidebar")
        page.assert_clean()

        # the page still works: a new sentence redraws chips and heatmaps
        commit_text(p, "text", sentence[name], type_it=False)
        [chips] = chip_tokens(p)
        assert "".join(chips).replace("␣", " ") == sentence[name]
        assert f"x.shape = torch.Size([1, {len(chips)}, 32])" in shapes(p), shapes(p)
        assert plot(p, "heatmap_2")["traces"][0]["rows"] == len(chips)
        page.assert_clean()

    # and a good upload is accepted: its message goes away
    good = ("the cat sat on the mat. the dog sat on the log.\n" * 40).encode()
    upload(p, "good.txt", good)
    assert not any(w in " ".join(alerts(p, '[data-testid="stSidebar"]')) for w in ("empty", "binary", "UTF-8 text"))
    shot(p, "upload-good")
    page.assert_clean()

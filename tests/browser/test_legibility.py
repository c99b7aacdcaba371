"""Legible in a classroom, on a projector and on a phone (issue 10), checked where only a browser can:
sizes and boxes as drawn, text cut off, sideways scrolling, widgets that keep their state.

Each test opens its own page at the size it is about: 1440 x 1000 (a laptop), 1920 x 1080 with
?present=1 (a projector) and 390 x 844 (a phone). Screenshots: artifacts/screenshots/legibility-*.png.
"""
from __future__ import annotations

import pytest

from embedviz.ui import charts

from .conftest import (HEATMAPS, chart_eval, click_button, commit_text, element_shot, flip_toggle, open_expander,
                       open_page, open_tab, shot, wait_chart, wait_idle, wait_ready)

pytestmark = pytest.mark.browser

TRAIN_TIMEOUT = 150_000  # ms: training plus the first UMAP in a fresh server on a loaded 2-core machine
PROJECTOR = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}

# Boxes of elements as drawn, in page pixels: [left, top, right, bottom].
_BOX_JS = "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"
# Text cut off with an ellipsis by CSS (select boxes, tabs, labels) anywhere on the page.
_CUT_TEXT_JS = """() => Array.from(document.querySelectorAll('[data-testid="stSidebar"] *, [data-testid="stMain"] *'))
    .filter(e => e.children.length === 0 && e.textContent.trim() && e.offsetParent !== null
                 && e.scrollWidth > e.clientWidth + 1
                 && getComputedStyle(e).textOverflow === 'ellipsis')
    .map(e => e.textContent.trim())"""
# Every chart's title against its chart's box: the part of a title past the box is not drawn.
_TITLES_PAST_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(g => {
    const box = g.getBoundingClientRect();
    return Array.from(g.querySelectorAll('.g-gtitle text')).filter(t => t.getComputedTextLength() > 0
        && t.getBoundingClientRect().right > box.right + 1).map(t => t.textContent); })"""


def _meet(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _trained(p) -> None:
    open_tab(p, "2 · Training")
    click_button(p, "train")
    p.wait_for_selector(".st-key-scatter_after .js-plotly-plot", timeout=TRAIN_TIMEOUT)
    wait_idle(p, timeout=TRAIN_TIMEOUT)
    wait_chart(p, "scatter_after")


def test_before_and_after_maps_are_equal_squares_with_labels_apart(page):
    p = page.page
    _trained(p)
    # the content width: the main block's width inside its padding (where the page's content goes)
    content = p.locator('[data-testid="stMainBlockContainer"]').evaluate(
        "e => { const s = getComputedStyle(e); "
        "return e.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); }")
    sizes = {k: chart_eval(p, k, "g => [g._fullLayout.xaxis._length, g._fullLayout.yaxis._length]")
             for k in ("scatter_before", "scatter_after")}
    (wb, hb), (wa, ha) = sizes["scatter_before"], sizes["scatter_after"]
    assert abs(wb - wa) <= 2 and abs(hb - ha) <= 2, sizes  # the same size
    assert abs(wa - ha) <= 2, sizes  # square
    assert wa >= 0.45 * content, (sizes, content)
    for key in ("scatter_before", "scatter_after"):
        boxes = p.locator(f".st-key-{key} .annotation .bg").evaluate_all(f"es => es.map({_BOX_JS})")
        assert len(boxes) >= 5, key  # the typed sentence is labelled
        clashes = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if _meet(a, b)]
        assert not clashes, (key, clashes)
        # the toolbar (shown while the pointer is on the chart) covers neither the map, its title nor a label
        p.locator(f".st-key-{key} .js-plotly-plot").hover()
        bar = chart_eval(p, key, f"g => ({_BOX_JS})(g.querySelector('.modebar'))")
        others = chart_eval(p, key, f"g => Array.from(g.querySelectorAll('.nsewdrag, .g-gtitle text, "
                                    f".annotation .bg')).map({_BOX_JS})")
        assert len(others) >= 7 and not [o for o in others if _meet(bar, o)], (key, bar, others)
    assert p.evaluate(_TITLES_PAST_JS) == []  # every title of the trained page fits its chart (3 columns too)
    element_shot(p, ".st-key-scatter_after", "legibility-scatter-after")
    page.assert_clean()


def test_whole_wpe_table_uses_the_scale_of_the_three_heatmaps_and_the_code_stays_open(page):
    p = page.page
    open_expander(p, "Show the code")
    flip_toggle(p, "show_wpe")
    wait_chart(p, "heatmap_wpe")
    zmax = {k: chart_eval(p, k, "g => g._fullData[0].zmax") for k in (*HEATMAPS, "heatmap_wpe")}
    assert len(set(zmax.values())) == 1, zmax
    assert "same colour scale" in chart_eval(p, "heatmap_wpe", "g => g._fullLayout.title.text")
    commit_text(p, "text", "The cat sat on the mat.\nA dog ran.", type_it=False)  # content above it changes
    details = p.locator('[data-testid="stExpander"] details', has_text="Show the code").first
    assert details.get_attribute("open") is not None, "the code expander closed by itself"
    page.assert_clean()


def test_every_chart_saves_at_slide_size(shared_page):
    p = shared_page.page
    for key in HEATMAPS:
        options = chart_eval(p, key, "g => g._context.toImageButtonOptions")
        assert options["width"] == 1920 and options["height"] == 1080 and options["format"] == "png", options
        assert chart_eval(p, key, "g => !!g.querySelector('.modebar-btn[data-title^=\"Download plot\"]')")
    assert charts.config(image_format="svg", filename="x")["toImageButtonOptions"]["format"] == "svg"
    with pytest.raises(ValueError, match="png or svg"):
        charts.config(image_format="gif", filename="x")


def test_presentation_mode_fills_the_first_screen_legibly(browser, server):
    w = open_page(browser, server + "/?present=1", PROJECTOR)
    p = w.page
    try:
        wait_ready(p)
        shot(p, "legibility-presentation-first-screen", full=False)
        complete = p.evaluate("""(h) => Array.from(document.querySelectorAll('.js-plotly-plot')).some(g => {
            const r = g.getBoundingClientRect(); return r.height > 100 && r.top >= 0 && r.bottom <= h; })""",
                              PROJECTOR["height"])
        assert complete, "no chart is whole on the first screen"
        assert p.evaluate(_CUT_TEXT_JS) == []
        body = p.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid="stMain"] .stMarkdown p, [data-testid="stMain"] [data-testid="stCaptionContainer"]'))
            .filter(e => e.offsetParent !== null && e.textContent.trim())
            .map(e => [parseFloat(getComputedStyle(e).fontSize), e.textContent.slice(0, 40)])""")
        small = [b for b in body if b[0] < 20]
        assert body and not small, small
        for key in HEATMAPS:
            assert chart_eval(p, key, "g => g._fullLayout.title.font.size") >= 24
        assert p.evaluate(_TITLES_PAST_JS) == []
        w.assert_clean()
    finally:
        p.context.close()


def test_phone_titles_wrap_toolbar_clear_no_sideways_scrolling(browser, server):
    w = open_page(browser, server, PHONE)
    p = w.page
    try:
        wait_ready(p)
        shot(p, "legibility-phone")
        widths = p.evaluate("""() => [document.documentElement.scrollWidth,
            ...['stMain', 'stMainBlockContainer'].map(t => document.querySelector(`[data-testid="${t}"]`))
               .map(e => e.scrollWidth - e.clientWidth)]""")
        assert widths[0] <= PHONE["width"] and max(widths[1:]) <= 0, widths
        assert p.evaluate(_TITLES_PAST_JS) == []
        for key in HEATMAPS:
            bar = chart_eval(p, key, f"g => ({_BOX_JS})(g.querySelector('.modebar'))")
            for part in (".colorbar", ".legend"):
                other = chart_eval(p, key, f"g => {{ const e = g.querySelector('{part}'); "
                                           f"return e ? ({_BOX_JS})(e) : null; }}")
                assert other is None or not _meet(bar, other), (key, part, bar, other)
        w.assert_clean()
    finally:
        p.context.close()

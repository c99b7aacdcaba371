"""The page in a real browser: the heatmaps draw, typing and the keyboard on the sliders change
what is shown, a short training run ends in two UMAP scatter plots, the Textbook preset."""
from __future__ import annotations

import re

import pytest

from .conftest import (HEATMAPS, chip_tokens, click_button, commit_text, element_shot, open_tab, plot, press_slider,
                       shapes, shot, slider_value, wait_idle, wait_text)

pytestmark = pytest.mark.browser

CLASSROOM_TOKENS = ["On", "␣Monday", ",", "␣my", "␣sister", "␣took", "␣the", "␣dog", "␣to", "␣the", "␣park",
                    "."]


def heatmap_shapes(p) -> list[tuple[int, int]]:
    """(rows, columns) of the embedding trace of each of the three heatmaps."""
    return [(d["traces"][0]["rows"], d["traces"][0]["cols"]) for d in (plot(p, k) for k in HEATMAPS)]


def x_shape(p) -> tuple[int, int, int]:
    text = next(s for s in shapes(p) if s.startswith("x.shape"))
    return tuple(int(n) for n in re.findall(r"\d+", text))


def test_page_loads_and_draws_three_heatmaps(shared_page):
    page = shared_page
    p = page.page
    assert p.title().startswith("embedviz")
    assert "How a GPT turns text into vectors" in p.locator("h1").first.inner_text()
    assert chip_tokens(p) == [CLASSROOM_TOKENS]
    assert {"ids.shape = torch.Size([1, 12])", "wte.weight.shape = torch.Size([256, 32])",
            "wpe.weight.shape = torch.Size([16, 32])", "tok.shape = torch.Size([1, 12, 32])",
            "pos.shape = torch.Size([12, 32])", "x.shape = torch.Size([1, 12, 32])"} <= set(shapes(p)), shapes(p)
    for key in HEATMAPS:
        d = plot(p, key)
        assert d["traces"][0]["type"] == "heatmap"
        assert (d["traces"][0]["rows"], d["traces"][0]["cols"]) == (12, 32)
        if key == "heatmap_1":
            # wpe(arange(T)) does not depend on the tokens: its rows are labelled by position only
            assert "0" in d["ticks"] and {int(t) for t in d["ticks"]} <= set(range(12)), d["ticks"]
        else:
            # the y axis reads "position · token", first token at the top
            assert d["ticks"][:2] == ["0 · On", "1 · ␣Monday"], d["ticks"][:3]
    shot(p, "page-loaded")
    page.assert_clean()


def test_typing_a_sentence_updates_chips_and_heatmaps(page):
    p = page.page
    commit_text(p, "text", "The cat sat on the mat.")
    wait_text(p, "x.shape = torch.Size([1, 7, 32])")
    assert chip_tokens(p) == [["The", "␣cat", "␣sat", "␣on", "␣the", "␣mat", "."]]
    assert heatmap_shapes(p) == [(7, 32)] * 3
    assert plot(p, "heatmap_0")["ticks"][:2] == ["0 · The", "1 · ␣cat"]

    # two lines are a batch of two; the shorter sentence is padded
    commit_text(p, "text", "The cat sat.\nA dog ran to the park.")
    wait_text(p, "x.shape = torch.Size([2, 7, 32])")
    assert len(chip_tokens(p)) == 2
    assert "padded" in p.locator('[data-testid="stMain"]').inner_text()
    shot(p, "typed-sentences")
    page.assert_clean()


@pytest.mark.parametrize(
    "key, presses",
    [
        # V is a select_slider over VOCAB_STOPS plus the encoding's size: 256 -> 300, last, first
        ("vocab_size", [("ArrowRight", "wte.weight.shape = torch.Size([300, 32])"),
                        ("End", "wte.weight.shape = torch.Size([100277, 32])"),
                        ("Home", "wte.weight.shape = torch.Size([2, 32])")]),
        ("dim", [("ArrowRight", "x.shape = torch.Size([1, 12, 33])"),
                 ("ArrowLeft", "x.shape = torch.Size([1, 12, 32])"),
                 ("Home", "x.shape = torch.Size([1, 12, 1])"),
                 ("End", "x.shape = torch.Size([1, 12, 1024])")]),
        ("positions", [("ArrowLeft", "wpe.weight.shape = torch.Size([15, 32])"),
                       ("End", "wpe.weight.shape = torch.Size([1024, 32])"),
                       ("ArrowLeft", "wpe.weight.shape = torch.Size([1023, 32])")]),
    ],
)
def test_slider_moved_with_the_keyboard_changes_the_shapes(page, key, presses):
    p = page.page
    for key_name, expected in presses:
        press_slider(p, key, key_name)
        wait_text(p, expected)
        page.assert_clean()
        _, T, d = x_shape(p)
        assert heatmap_shapes(p) == [(T, d)] * 3, (key_name, expected)
    shot(p, f"slider-{key}")
    page.assert_clean()


def test_positions_below_sentence_length_cut_the_sentence_with_a_warning(page):
    p = page.page
    press_slider(p, "positions", "Home")
    wait_text(p, "x.shape = torch.Size([1, 1, 32])")
    assert slider_value(p, "positions") == "1"
    assert "the last 11 were cut" in p.locator('[data-testid="stMain"]').inner_text()
    assert p.locator(".ev-cut").first.inner_text() == "+11 cut"
    assert heatmap_shapes(p) == [(1, 32)] * 3
    shot(p, "positions-cut")
    page.assert_clean()


def test_short_training_run_draws_both_scatter_plots(page):
    p = page.page
    open_tab(p, "2 · Training")
    click_button(p, "train")
    # defaults: ~2 s of training on an idle machine, then UMAP (the first one in a server process
    # can take some seconds); a loaded 2-core machine is several times slower
    p.wait_for_selector(".st-key-scatter_after .js-plotly-plot", timeout=150_000)
    wait_idle(p, timeout=120_000)
    main = p.locator('[data-testid="stMain"]').inner_text()
    assert "Trained in" in main
    assert "Training failed" not in main
    for key, title in (("scatter_before", "wte at start"), ("scatter_after", "wte after 300 steps")):
        d = plot(p, key)
        assert d is not None, key
        assert title in d["title"], d["title"]
        scatter = [t for t in d["traces"] if t["type"] in ("scatter", "scattergl")]
        # the toy world has ~216 distinct tokens, all with a row of their own at V = 256
        assert sum(t["points"] or 0 for t in scatter) >= 100, key
        assert p.locator(f".st-key-{key} .scatterlayer .point, .st-key-{key} canvas").count() >= 100, key
    assert plot(p, "loss_final") is not None
    element_shot(p, ".st-key-scatter_before", "training-scatter-before")
    element_shot(p, ".st-key-scatter_after", "training-scatter-after")
    shot(p, "training-done")
    page.assert_clean()


def test_textbook_preset_shows_the_textbook_shapes(page):
    p = page.page
    click_button(p, "preset_textbook")
    wait_text(p, "x.shape = torch.Size([1, 4, 16])")
    found = shapes(p)
    assert {"ids.shape = torch.Size([1, 4])", "wte.weight.shape = torch.Size([100, 16])",
            "wpe.weight.shape = torch.Size([10, 16])", "tok.shape = torch.Size([1, 4, 16])"} <= set(found), found
    assert heatmap_shapes(p) == [(4, 16)] * 3
    assert (slider_value(p, "vocab_size"), slider_value(p, "dim"), slider_value(p, "positions")) == ("100", "16", "10")
    shot(p, "preset-textbook")
    page.assert_clean()

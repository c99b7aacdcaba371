"""The positions section in a real browser: the five schemes trained side by side draw their loss
curves and their loss past P, and each scheme's pictures draw (screenshots to look at)."""
from __future__ import annotations

import pytest

from .conftest import (choose, click_button, open_page, open_tab, plot, shot, wait_chart, wait_idle,
                       wait_ready)

pytestmark = pytest.mark.browser

COMPARE_TIMEOUT = 300_000  # ms: five schemes of 10 steps and their length evaluations on a loaded machine


def test_schemes_side_by_side_and_their_pictures_draw(browser, server):
    # the word-order corpus, 10 steps, trained by the link itself
    w = open_page(browser, server + "?corpus=order&steps=10&trained=1")
    p = w.page
    try:
        wait_ready(p, timeout=COMPARE_TIMEOUT)  # a fresh server under load: the first page can take minutes
        open_tab(p, "2 · Training")
        wait_chart(p, "pos_after_table", timeout=COMPARE_TIMEOUT)
        click_button(p, "compare")
        wait_chart(p, "scheme_lengths", timeout=COMPARE_TIMEOUT)
        losses, lengths = plot(p, "scheme_losses"), plot(p, "scheme_lengths")
        assert [t["name"] for t in losses["traces"]] == ["learned", "sinusoidal", "rope", "alibi", "none"]
        assert all(t["points"] == 2 for t in losses["traces"])  # steps 0 and 10
        by_name = {t["name"]: t for t in lengths["traces"]}
        assert max(by_name["learned"]["x"]) == 15 and max(by_name["rope"]["x"]) == 63  # P = 16, 4P = 64
        text = p.locator('[data-testid="stMain"]').inner_text()
        assert "After 10 steps each, the final held-out loss is" in text and "Past the 16 trained positions" in text
        p.locator(".st-key-scheme_lengths").scroll_into_view_if_needed()
        shot(p, "positions-schemes", full=False)
        for kind, key in (("rope", "pic_rope_rotation"), ("alibi", "pic_alibi_bias"), ("none", "pic_mask")):
            choose(p, "scheme_pictures", kind)
            wait_chart(p, key)
            assert plot(p, key)["traces"], key
            p.locator(f".st-key-{key}").scroll_into_view_if_needed()
            shot(p, f"positions-{kind}", full=False)
        wait_idle(p)
        shot(p, "positions-section")
        w.assert_clean()
    finally:
        p.context.close()

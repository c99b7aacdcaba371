"""The features past the first page, in a real browser: the animated evolution of the space, learned
vs sinusoidal positions, the page's own BPE tokenizer, share links opened by a new visitor, the
downloads read back, and presentation mode.

One training run with the default settings is shared by every test here (the server keeps trained
models per settings); only the share and positions tests train anything else.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from embedviz.config import ModelConfig
from tests.oracles import load_model_safetensors, read_projector_tsv

from .conftest import (HEATMAPS, chart_eval, click_button, choose, download, element_shot, flip_toggle, heatmap_z,
                       open_expander, open_page, open_tab, plot, press_slider, shapes, shot,
                       slider_value, type_number, wait_chart, wait_idle, wait_ready, wait_text)

pytestmark = pytest.mark.browser

TRAIN_TIMEOUT = 150_000  # ms: training plus the first UMAP in a fresh server, on a loaded 2-core machine
POSITION_CHARTS = ("pos_before", "pos_after", "pos_sinusoid")
DOWNLOAD_BUTTONS = ("download_all", "download_projector", "download_model")
# How plotly.js's rejected animate() promise (reason: undefined) reaches Playwright.
PLOTLY_ANIMATE_REJECTION = {"undefined", "Error: undefined", "Uncaught (in promise) undefined"}


def trained(p) -> None:
    """Tab "2 · Training" with the current settings trained: the first call trains, later calls with
    the same settings get the server's finished model at once."""
    open_tab(p, "2 · Training")
    click_button(p, "train")
    p.wait_for_selector(".st-key-scatter_after .js-plotly-plot", timeout=TRAIN_TIMEOUT)
    wait_idle(p, timeout=TRAIN_TIMEOUT)
    main = main_text(p)
    assert "Trained in" in main and "Training failed" not in main


def main_text(p) -> str:
    return p.locator('[data-testid="stMain"]').inner_text()


def metrics(p) -> list[str]:
    return p.locator('[data-testid="stMain"] [data-testid="stMetricValue"]').all_inner_texts()


def share_link(p) -> str:
    """The link in the sidebar's share box (read from the DOM even when presentation mode hides it)."""
    return p.locator('.st-key-share [data-testid="stCode"] code').first.text_content().strip()


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def font_px(p, selector: str) -> float:
    return float(p.evaluate("(s) => parseFloat(getComputedStyle(document.querySelector(s)).fontSize)", selector))


def title_size(p, key: str) -> float:
    return chart_eval(p, key, "g => g._fullLayout.title.font.size")


# ---------------------------------------------------------------- 1. evolution

def test_evolution_animates_the_space_during_training(page):
    p = page.page
    trained(p)
    flip_toggle(p, "show_evolution")
    wait_chart(p, "evolution", timeout=TRAIN_TIMEOUT)
    wait_chart(p, "agreement_curve")

    frames = chart_eval(p, "evolution", "g => g._transitionData._frames.length")
    steps = chart_eval(p, "evolution", "g => g.layout.sliders[0].steps.map(s => s.label)")
    # 300 steps with a snapshot every 25: steps 0, 25, ..., 300
    assert frames >= 2 and frames == len(steps), (frames, steps)
    assert steps[0] == "0" and steps[-1] == "300", steps
    assert chart_eval(p, "evolution", "g => g._fullLayout.sliders[0].active") == 0
    agreement = plot(p, "agreement_curve")
    curve = next(t for t in agreement["traces"] if t["y"] and len(t["y"]) == frames)
    assert curve["x"][0] == 0 and curve["x"][-1] == 300
    assert curve["y"][-1] > curve["y"][0], curve["y"]  # training organises the space

    play = p.locator(".st-key-evolution .updatemenu-button", has_text="play").first
    play.click()
    # a frame lasts 0.7 s: the slider moves on by itself
    p.wait_for_function("() => document.querySelector('.st-key-evolution .js-plotly-plot')"
                        "._fullLayout.sliders[0].active >= 1", timeout=15_000)
    shot(p, "beyond-evolution")
    # plotly.js may reject animate()'s promise with an undefined reason (a frame cut short by the
    # next one); that page error is harmless, the animation carries on, and it is the only one let pass
    page.console_errors = [e for e in page.console_errors if e.strip() not in PLOTLY_ANIMATE_REJECTION]
    page.assert_clean()


def test_evolution_chart_stays_readable(page):
    p = page.page
    trained(p)
    flip_toggle(p, "show_evolution")
    wait_chart(p, "evolution", timeout=TRAIN_TIMEOUT)
    # to the last frame the way a reader gets there (a click at the right end of the slider's rail),
    # then measure what is drawn against the axes, which are fixed to cover every frame
    last = chart_eval(p, "evolution", "g => g._transitionData._frames.length - 1")
    rail = p.locator(".st-key-evolution .slider-rail-touch-rect").first
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    # plotly.js emits plotly_animated once the frame's 300 ms transition is over
    chart_eval(p, "evolution", "g => { g.__evAnimated = false; g.on('plotly_animated', () => { "
                               "g.__evAnimated = true; }); return true; }")
    p.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    p.wait_for_function("(n) => { const g = document.querySelector('.st-key-evolution .js-plotly-plot'); "
                        "return g._fullLayout.sliders[0].active === n && g.__evAnimated; }", arg=last)
    spans = chart_eval(p, "evolution", """g => {
        const xs = g._fullData.flatMap(t => Array.from(t.x)), ys = g._fullData.flatMap(t => Array.from(t.y));
        const xr = g._fullLayout.xaxis.range, yr = g._fullLayout.yaxis.range;
        return [(Math.max(...xs) - Math.min(...xs)) / (xr[1] - xr[0]),
                (Math.max(...ys) - Math.min(...ys)) / (yr[1] - yr[0])]; }""")
    boxes = p.evaluate("""() => {
        const label = Array.from(document.querySelectorAll('.st-key-evolution text.slider-label'))
            .find(t => t.textContent.startsWith('training step')).getBoundingClientRect();
        const buttons = Array.from(document.querySelectorAll('.st-key-evolution .updatemenu-button'))
            .map(b => b.getBoundingClientRect());
        return {label: [label.left, label.right, label.top, label.bottom],
                buttons: buttons.map(b => [b.left, b.right, b.top, b.bottom])}; }""")
    element_shot(p, ".st-key-evolution", "beyond-evolution-last-frame")
    problems = []
    if min(spans) < 0.25:
        problems.append(f"at the last step the points cover only {spans[0]:.1%} x {spans[1]:.1%} of the axes")
    l0, l1, t0, t1 = boxes["label"]
    for b0, b1, c0, c1 in boxes["buttons"]:
        if b0 < l1 and l0 < b1 and c0 < t1 and t0 < c1:
            problems.append(f"a play/pause button {[b0, b1]} overlaps the step label {[l0, l1]}")
    assert not problems, problems
    page.assert_clean()


# ---------------------------------------------------------------- 2. positions

def test_positions_learned_vs_sinusoidal(page):
    p = page.page
    trained(p)
    P, d = 16, 32  # the default table shapes
    for key in POSITION_CHARTS:
        wait_chart(p, key)
        wait_chart(p, key + "_table")
        similarity = heatmap_z(p, key)
        assert (len(similarity), len(similarity[0])) == (P, P), key
        # cosine of every position with itself
        assert all(abs(similarity[i][i] - 1) < 1e-5 for i in range(P)), key
        table = plot(p, key + "_table")["traces"][0]
        assert (table["rows"], table["cols"]) == (P, d), key
    titles = [plot(p, k + "_table")["title"].replace("<br>", " · ") for k in POSITION_CHARTS]  # wrapped lines
    assert titles == [f"{name} · torch.Size([{P}, {d}])"
                      for name in ("learned, start", "learned, step 300", "sinusoidal")], titles
    # the side-by-side comparison of the schemes is tests/browser/test_positions.py's
    shot(p, "beyond-positions-learned")
    page.assert_clean()


# ---------------------------------------------------------------- 3. your own tokenizer

_SPLIT_LINE = re.compile(r"V = ([\d,]+) · (\d+) tokens")


def tokenizer_lines(p) -> list[tuple[int, int]]:
    """(V, token count) of each "V = … · N tokens" line in the tokenizer expander."""
    text = p.locator('[data-testid="stExpander"]', has_text="Your tokenizer:").first.inner_text()
    return [(int(v.replace(",", "")), int(n)) for v, n in _SPLIT_LINE.findall(text)]


def merge_rows(expander) -> int:
    """Rows of the merges dataframe (its accessible grid counts the header row too)."""
    grid = expander.locator('[data-testid="stDataFrame"] [role=grid]').first
    return int(grid.get_attribute("aria-rowcount")) - 1


def test_own_bpe_tokenizer(page):
    p = page.page
    choose(p, "encoding", "bpe ·")
    wait_text(p, "Your tokenizer:")
    opened = int(slider_value(p, "vocab_size"))  # its largest size up to 1,024: merges learned, words whole
    assert 256 < opened <= 1024, opened
    assert f"Your tokenizer: {opened:,} tokens" in p.locator("summary", has_text="Your tokenizer:").first.inner_text()
    press_slider(p, "vocab_size", "Home")  # the smallest BPE vocabulary: the 256 single bytes
    wait_text(p, "wte.weight.shape = torch.Size([256, 32])")
    press_slider(p, "vocab_size", "ArrowRight")
    wait_text(p, "wte.weight.shape = torch.Size([300, 32])")
    press_slider(p, "vocab_size", "Home")
    wait_text(p, "wte.weight.shape = torch.Size([256, 32])")
    assert slider_value(p, "vocab_size") == "256"

    expander = p.locator('[data-testid="stExpander"]', has_text="Your tokenizer:").first
    header = expander.locator("summary").inner_text()
    assert "Your tokenizer: 256 tokens learned on Toy world" in header, header
    assert "256 single bytes + 0 merges" in expander.inner_text()
    assert expander.locator('[data-testid="stDataFrame"] [role=gridcell]', has_text=" + ").count() == 0
    lines = tokenizer_lines(p)
    assert [v for v, _ in lines][:2] == [256, 300], lines
    counts = [n for _, n in lines]
    assert counts == sorted(counts, reverse=True) and counts[-1] < counts[0], lines
    # the sentence at V = 256 is one token per byte of the sentence
    sentence = p.locator(".st-key-text textarea").input_value().splitlines()[0]
    assert counts[0] == len(sentence.encode("utf-8")), (counts[0], sentence)
    assert expander.locator(".ev-chips").count() == len(lines)
    assert heatmaps_drawn_for(p, T=counts[0] if counts[0] <= 16 else 16)
    shot(p, "beyond-bpe-256")

    # the largest size this corpus allows: its line is there too, with the fewest tokens
    press_slider(p, "vocab_size", "End")
    largest = int(slider_value(p, "vocab_size").replace(",", ""))
    wait_text(p, f"V = {largest:,} ·")
    lines = tokenizer_lines(p)
    assert lines[-1][0] == largest and lines[-1][1] <= min(n for _, n in lines), lines
    expander = p.locator('[data-testid="stExpander"]', has_text="Your tokenizer:").first
    assert f"256 single bytes + {largest - 256} merges" in expander.inner_text()
    assert merge_rows(expander) == min(24, largest - 256)  # the first merges are listed
    first = expander.locator('[data-testid="stDataFrame"] [role=gridcell][aria-colindex="2"]').first.inner_text()
    assert re.fullmatch(r".+ \+ .+", first), first
    assert f"wte.weight.shape = torch.Size([{largest}, 32])" in shapes(p)
    assert heatmaps_drawn_for(p, T=min(lines[-1][1], 16))
    shot(p, "beyond-bpe-largest")
    page.assert_clean()


def heatmaps_drawn_for(p, *, T: int, d: int = 32) -> bool:
    """All three heatmaps drawn with T rows of d columns."""
    return all((plot(p, k)["traces"][0]["rows"], plot(p, k)["traces"][0]["cols"]) == (T, d) for k in HEATMAPS)


# ---------------------------------------------------------------- 4. share links

def test_share_link_opens_the_same_view_for_a_new_visitor(page, browser):
    p = page.page
    click_button(p, "preset_textbook")
    wait_text(p, "x.shape = torch.Size([1, 4, 16])")
    type_number(p, "seed", 7)
    flip_toggle(p, "presentation")
    link = share_link(p)
    assert link.startswith("http://127.0.0.1:"), link
    params = query(link)
    assert params == query(p.url), (link, p.url)  # the address bar carries the same settings
    assert {k: params.get(k) for k in ("V", "d", "P", "seed", "present")} == {
        "V": ["100"], "d": ["16"], "P": ["10"], "seed": ["7"], "present": ["1"]}, params
    here = {"shapes": shapes(p), "x": heatmap_z(p, "heatmap_2"), "chip_px": font_px(p, ".ev-chip")}
    shot(p, "beyond-share-original")

    there = open_page(browser, link)  # a new context: no cookies, storage or session in common
    try:
        q = there.page
        wait_ready(q)
        assert shapes(q) == here["shapes"]
        assert heatmap_z(q, "heatmap_2") == here["x"]  # the same seed gives the same numbers, exactly
        assert q.locator(".st-key-presentation input[type=checkbox]").is_checked()
        assert font_px(q, ".ev-chip") == here["chip_px"]
        assert not q.locator(".st-key-share").is_visible()
        assert query(q.url) == params
        shot(q, "beyond-share-opened")
        there.assert_clean()
    finally:
        there.page.context.close()

    # a trained view: the link gains trained=1 and the new visitor sees the results without pressing Train
    trained(p)
    link = share_link(p)
    assert query(link).get("trained") == ["1"], link
    assert query(link) == query(p.url)
    here = {"metrics": metrics(p), "after": plot(p, "scatter_after")["traces"]}
    assert len(here["metrics"]) == 3, here["metrics"]

    there = open_page(browser, link)
    try:
        q = there.page
        wait_ready(q)
        open_tab(q, "2 · Training")
        q.wait_for_selector(".st-key-scatter_after .js-plotly-plot", timeout=TRAIN_TIMEOUT)
        wait_idle(q, timeout=TRAIN_TIMEOUT)
        q.wait_for_selector(".st-key-scatter_before .js-plotly-plot")
        assert metrics(q) == here["metrics"]
        assert plot(q, "scatter_after")["traces"] == here["after"]
        assert query(q.url).get("trained") == ["1"]
        shot(q, "beyond-share-trained-opened")
        there.assert_clean()
    finally:
        there.page.context.close()
    page.assert_clean()


# ---------------------------------------------------------------- 5. downloads

def unzip(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def safetensors_parts(data: bytes) -> tuple[dict, bytes]:
    """(header, tensor bytes) of a safetensors file: an 8-byte length, a JSON header, the data."""
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def read_table_csv(data: bytes) -> tuple[list[str], np.ndarray]:
    """(token labels, values) of a table CSV; the apostrophe that defuses formula-like labels is removed."""
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == "token"
    labels = [r[0][1:] if r[0][:1] == "'" and r[0][1:2] in ("=", "+", "-", "@", "\t", "\r") else r[0]
              for r in rows[1:]]
    return labels, np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float32)


def test_downloads_read_back(page, tmp_path):
    p = page.page
    trained(p)
    open_expander(p, "Download the trained space and model")
    got = {key: download(p, key, tmp_path) for key in DOWNLOAD_BUTTONS}
    assert [f.suffix for f in got.values()] == [".zip", ".zip", ".safetensors"], got

    files = unzip(got["download_all"])
    for name in ("wte_before.csv", "wte_after.npy", "projector/vectors.tsv", "projector/metadata.tsv",
                 "model.safetensors"):
        assert name in files, sorted(files)
    assert unzip(got["download_projector"]) == {"vectors.tsv": files["projector/vectors.tsv"],
                                                "metadata.tsv": files["projector/metadata.tsv"]}
    # the same model; not the same bytes: safetensors writes its header's metadata in hash order
    assert safetensors_parts(got["download_model"].read_bytes()) == safetensors_parts(files["model.safetensors"])

    wte_before, wte_after = npy(files["wte_before.npy"]), npy(files["wte_after.npy"])
    assert wte_after.shape == wte_before.shape == (256, 32)
    assert not np.array_equal(wte_before, wte_after)
    vectors, meta = read_projector_tsv(files["projector/vectors.tsv"], files["projector/metadata.tsv"])
    assert len(meta) == len(vectors) >= 100
    # each Projector line is the wte_after row of the token its metadata line names, exactly
    labels, table = read_table_csv(files["wte_after.csv"])
    assert np.array_equal(table, wte_after)  # the CSV holds the same numbers as the .npy
    rows_of: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        rows_of.setdefault(label, []).append(row)
    for vector, record in zip(vectors, meta):
        rows = rows_of.get(record["token"], [])
        assert any(np.array_equal(vector, wte_after[r]) for r in rows), record

    model = load_model_safetensors(files["model.safetensors"], ModelConfig(), max_bytes=100_000_000)
    assert np.array_equal(model.wte.weight.detach().numpy(), wte_after)
    assert np.array_equal(model.wpe.weight.detach().numpy(), npy(files["wpe_after.npy"]))
    assert model.lm_head.weight is model.wte.weight

    # the explorer's tensors are the numbers of the heatmaps
    open_tab(p, "1 · Embeddings")
    tensors = unzip(download(p, "download_tensors", tmp_path))
    for name in ("tok.npy", "pos.npy", "x.npy"):
        assert name in tensors, sorted(tensors)
    tok, pos, x = (npy(tensors[n]) for n in ("tok.npy", "pos.npy", "x.npy"))
    assert x.shape == tok.shape == pos.shape == (1, 12, 32)
    assert np.array_equal(tok + pos, x)
    assert np.array_equal(np.asarray(heatmap_z(p, "heatmap_2"), dtype=np.float32), x[0])
    assert np.array_equal(np.asarray(heatmap_z(p, "heatmap_0"), dtype=np.float32), tok[0])
    # "its wte and wpe start as the exact tables above": the sentence's rows of wte_before are tok
    rows = [int(m.replace(",", "")) for m in re.findall(r"row ([\d,]+)", " ".join(
        p.locator(".ev-chips").first.locator(".ev-meta").all_inner_texts()))]
    assert len(rows) == 12
    assert np.array_equal(wte_before[rows], tok[0])
    assert np.array_equal(npy(files["wpe_before.npy"])[:12], pos[0])
    shot(p, "beyond-downloads")
    page.assert_clean()


# ---------------------------------------------------------------- 6. presentation mode

def test_presentation_mode_is_readable_from_the_back(page):
    p = page.page
    trained(p)
    scatter_title = title_size(p, "scatter_after")
    open_tab(p, "1 · Embeddings")
    before = {"chip": font_px(p, ".ev-chip"), "title": title_size(p, "heatmap_0")}
    assert p.locator(".st-key-share").is_visible()
    assert p.locator(".st-key-download_tensors").is_visible()
    assert p.locator(".st-key-steps").count() == 0  # only the open tab is drawn

    flip_toggle(p, "presentation")
    p.wait_for_function(
        "(t) => { const g = document.querySelector('.st-key-heatmap_0 .js-plotly-plot'); "
        "return g && g._fullLayout && g._fullLayout.title.font.size > t; }", arg=before["title"])
    after = {"chip": font_px(p, ".ev-chip"), "title": title_size(p, "heatmap_0")}
    assert after["chip"] >= 1.3 * before["chip"], (before, after)
    assert after["title"] > before["title"], (before, after)
    assert not p.locator(".st-key-share").is_visible()
    assert not p.locator(".st-key-download_tensors").is_visible()
    shot(p, "beyond-presentation-embeddings")

    open_tab(p, "2 · Training")
    wait_chart(p, "scatter_after")
    assert title_size(p, "scatter_after") > scatter_title
    settings = p.locator('[data-testid="stExpander"]', has_text="Training settings").first
    assert settings.count() == 1 and settings.locator("details").get_attribute("open") is None
    assert not p.locator(".st-key-steps").is_visible()
    # the downloads box is left out altogether, not shown empty
    assert p.locator('[data-testid="stExpander"]', has_text="Download the trained space").count() == 0
    for key in DOWNLOAD_BUTTONS:
        assert p.locator(f".st-key-{key}").count() == 0, key
    open_expander(p, "Training settings")  # still there for the teacher who needs them
    assert p.locator(".st-key-steps").is_visible()
    shot(p, "beyond-presentation-training")
    page.assert_clean()


def test_presentation_mode_charts_keep_their_titles(page):
    p = page.page
    trained(p)
    flip_toggle(p, "presentation")
    problems = []
    for tab, keys in (("1 · Embeddings", HEATMAPS),
                      ("2 · Training", [*POSITION_CHARTS, *(k + "_table" for k in POSITION_CHARTS)])):
        open_tab(p, tab)
        p.wait_for_function("(k) => { const t = document.querySelector('.st-key-' + k + ' .g-gtitle text'); "
                            "return t && t.getComputedTextLength() > 0; }", arg=keys[0])
        for key in keys:
            wait_chart(p, key)
            # the title's text box against the chart's box on the page (what is outside is cut off)
            width, text_right, plot_w, title = chart_eval(p, key, """g => {
                const t = g.querySelector('.g-gtitle text'), box = g.closest('.stElementContainer');
                const left = box.getBoundingClientRect().left;
                return [box.getBoundingClientRect().width, t.getBoundingClientRect().right - left,
                        g._fullLayout._size.w, t.textContent]; }""")
            if text_right > width:
                problems.append(f"{key}: title {title!r} ends at {text_right:.0f} px of a {width:.0f} px chart")
            # a 16 x 16 map under 200 px has cells under 12 px: not for the back row
            if key in POSITION_CHARTS and plot_w < 200:
                problems.append(f"{key}: the cosine map is {plot_w:.0f} px wide")
    element_shot(p, ".st-key-pos_before", "beyond-presentation-pos-before")
    assert not problems, problems
    page.assert_clean()

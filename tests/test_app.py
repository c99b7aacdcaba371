"""The page, driven through Streamlit's AppTest: widgets in, figure data and messages out."""
from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import tiktoken
from streamlit.testing.v1 import AppTest

from embedviz import tokens
from embedviz.ui.page import TABS
from tests.oracles import textbook
from tests.test_snippet import run_snippet

APP = str(Path(__file__).resolve().parents[1] / "app.py")
pytestmark = pytest.mark.usefixtures("trainings_on_a_thread")


def fresh(timeout: float = 60) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    assert not at.exception, at.exception
    return at


def open_tab(at: AppTest, label: str) -> AppTest:
    """What clicking a tab does: only the open tab's part of the page runs."""
    at.session_state["tab"] = label
    return at.run()


def open_training(at: AppTest) -> AppTest:
    return open_tab(at, TABS[1])


def figures_of(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by their widget key (e.g. "heatmap_2")."""
    return {_key_of(chart): json.loads(chart.proto.spec) for chart in at.get("plotly_chart")}


def _key_of(chart) -> str:
    # the element id ends with the user key: "$$ID-<hash>-<key>"
    return chart.proto.id.split("-", 2)[-1]


def array(value) -> np.ndarray:
    """Decode plotly 7's base64 typed arrays (or plain lists)."""
    if isinstance(value, dict) and "bdata" in value:
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if shape:
            data = data.reshape([int(s) for s in str(shape).split(",")])
        return data
    return np.array(value, dtype=float)


def heatmap_values(at: AppTest, i: int) -> np.ndarray:
    spec = figures_of(at)[f"heatmap_{i}"]
    return array(spec["data"][0]["z"]).astype(np.float64)


def texts(at: AppTest) -> str:
    """Markdown, captions and chart titles (the heatmaps carry the shapes in their titles)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [spec["layout"].get("title", {}).get("text", "") for spec in figures_of(at).values()]
    return "\n".join(parts)


def messages(at: AppTest, kind: str) -> list[str]:
    """The text of the page's messages of one kind, as a reader sees it (literal() escapes undone)."""
    return [shown(e.value) for e in getattr(at, kind)] + [shown(e.value) for e in getattr(at.sidebar, kind)]


def shown(markdown: str) -> str:
    """What Markdown escaped by embedviz.ui.text.literal() displays."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def test_default_page_draws_three_heatmaps():
    at = fresh()
    figs = figures_of(at)
    assert {"heatmap_0", "heatmap_1", "heatmap_2"} <= set(figs)
    body = texts(at)
    assert "x.shape = torch.Size([1, " in body and ", 32])" in body
    assert "ev-chip" in body
    # one colour range for the three heatmaps, centred at 0
    ranges = {(figs[f"heatmap_{i}"]["data"][0]["zmin"], figs[f"heatmap_{i}"]["data"][0]["zmax"]) for i in range(3)}
    assert len(ranges) == 1
    (lo, hi), = ranges
    assert lo == -hi


@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_textbook_preset_reproduces_the_textbook(seed):
    at = fresh()
    at.sidebar.button(key="preset_textbook").click().run()
    at.sidebar.number_input(key="seed").set_value(seed).run()
    assert not at.exception
    assert "x.shape = torch.Size([1, 4, 16])" in texts(at)
    assert "wte.weight.shape` = `torch.Size([100, 16])" in texts(at)
    np.testing.assert_allclose(heatmap_values(at, 2), textbook(seed)[0].numpy(), rtol=0, atol=1e-6)


def test_shown_code_prints_the_numbers_shown():
    at = fresh()
    at.text_area(key="text").input("The cat sat on the mat.\nA dog!").run()
    assert not at.main.get("code")  # drawn only once its expander is opened
    at.session_state["show_code"] = True  # what opening the expander does
    code = at.run().main.get("code")[0].value
    ran = run_snippet(code)["x"][0].detach().numpy()
    shown = heatmap_values(at, 2)
    assert shown.shape == ran.shape
    np.testing.assert_allclose(shown, ran, rtol=0, atol=1e-6)


def test_sliders_change_the_shapes():
    at = fresh()
    at.sidebar.slider(key="dim").set_value(8).run()
    at.sidebar.slider(key="positions").set_value(3).run()
    body = texts(at)
    assert "x.shape = torch.Size([1, 3, 8])" in body
    assert any("only 3 learned positions" in w for w in messages(at, "warning"))
    assert heatmap_values(at, 0).shape == (3, 8)


def test_padding_is_marked_not_data():
    at = fresh()
    at.text_area(key="text").input("a\nthe cat sat on the mat").run()
    values = heatmap_values(at, 2)  # sentence 0: one token, padded
    assert np.isfinite(values[0]).all() and np.isnan(values[1:]).all()
    spec = figures_of(at)["heatmap_2"]
    assert any(t.get("name") == "padding" for t in spec["data"])


def test_small_vocab_uses_unk():
    at = fresh()
    at.sidebar.select_slider(key="vocab_size").set_value(4).run()
    at.text_area(key="text").input("the zebra quantum").run()
    assert any("<unk>" in m for m in messages(at, "info"))
    assert "&lt;unk&gt;" in texts(at)


BAD_TEXT = [
    "",
    "   \n\t  ",
    "a",
    "🐱🐶 emoji and 猫が座った。",
    "مرحبا بالعالم",
    "e\u0301\u0301\u0301",
    "tab\tcontrol\x07\x1b[31m",
    "nul\x00byte",
    "one\ntwo words\nthree little words\nfour words right here\nand five words in this one",
    "word " * 40,
    "x" * 100_000,
]


@pytest.mark.parametrize("text", BAD_TEXT, ids=range(len(BAD_TEXT)))
def test_awkward_text_never_shows_a_traceback(text):
    at = fresh()
    at.text_area(key="text").input(text).run()
    assert not at.exception
    if not text.strip():
        assert any("type at least one sentence" in e for e in messages(at, "error"))
    else:
        assert "heatmap_2" in figures_of(at)


def test_text_over_the_limit_is_refused_with_a_message():
    at = fresh()
    # set_value, not input: AppTest's input() (like the browser) silently drops text over max_chars
    at.text_area(key="text").set_value("x" * 100_001).run()
    assert not at.exception
    assert any("the limit is 100,000" in e for e in messages(at, "error")), messages(at, "error")
    assert "heatmap_2" not in figures_of(at)


@pytest.mark.parametrize("ids, message", [
    ("[[-1]]", "outside the vocabulary"),
    ("[[100]]", "outside the vocabulary"),
    ("[[1e400]]", "not a whole number"),
    ("[[5, 20", "whole numbers in brackets"),
    ("hello", "whole numbers in brackets"),
    ("", "Type some token ids"),
])
def test_bad_ids_get_a_message(ids, message):
    at = fresh()
    at.sidebar.button(key="preset_textbook").click().run()
    at.text_input(key="ids").input(ids).run()
    assert not at.exception
    assert any(message in e for e in messages(at, "error")), messages(at, "error")


@pytest.mark.parametrize("setting, value, shape, training_error", [
    ("vocab_size", 2, (16, 32), None),
    ("dim", 1, (16, 1), "The number of heads (2) must divide the embedding dimension (1)"),
    ("positions", 1, (1, 32), None),
    ("dim", 1024, (16, 1024), "Training is limited to 256 dimensions"),
    ("positions", 1024, (1024, 32), None),
])
def test_extreme_sliders(setting, value, shape, training_error):
    """Each end of each table slider still draws the tables (shape: the whole wpe, (P, d)); where the
    model cannot be trained at that size, the training section says why."""
    at = fresh()
    widget = at.sidebar.select_slider(key=setting) if setting == "vocab_size" else at.sidebar.slider(key=setting)
    widget.set_value(value).run()
    assert not at.exception and not messages(at, "error"), messages(at, "error")
    assert "heatmap_2" in figures_of(at)
    at.toggle(key="show_wpe").set_value(True).run()
    assert array(figures_of(at)["heatmap_wpe"]["data"][0]["z"]).shape == shape
    errors = messages(open_training(at), "error")
    assert len(errors) == (training_error is not None) and all(training_error in e for e in errors), errors


def test_table_too_large_is_a_message():
    at = fresh()
    at.sidebar.selectbox(key="encoding").set_value("cl100k_base").run()
    at.sidebar.select_slider(key="vocab_size").set_value(100277).run()
    at.sidebar.slider(key="dim").set_value(1024).run()
    assert not at.exception
    assert any("the limit is" in e for e in messages(at, "error"))


def test_html_is_shown_as_text():
    at = fresh()
    at.text_area(key="text").input("<img src=x onerror=alert(1)> <script>alert(1)</script>").run()
    body = "\n".join(m.value for m in at.markdown)
    assert "&lt;" in body and "&gt;" in body  # tokens such as "<" and "></" shown as text
    assert "<img" not in body and "<script>" not in body
    spec = json.dumps(figures_of(at)["heatmap_2"])
    assert "<img" not in spec and "<script" not in spec


def test_unavailable_encoding_is_explained_and_page_works(monkeypatch):
    real = tiktoken.get_encoding

    def offline(name: str) -> tiktoken.Encoding:
        if name == "gpt2":
            raise ConnectionError("Max retries exceeded with url: openaipublic.blob.core.windows.net")
        return real(name)

    # gpt2 unavailable whether or not this machine is online (tokens remembers loads and failures)
    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    monkeypatch.delitem(tokens._loaded, "gpt2", raising=False)
    monkeypatch.delitem(tokens._failed, "gpt2", raising=False)
    at = fresh()
    at.sidebar.selectbox(key="encoding").set_value("gpt2").run()
    assert not at.exception
    errors = messages(at, "error")
    assert any("gpt2" in e and "no internet" in e and "Using cl100k_base instead" in e for e in errors), errors
    assert "heatmap_2" in figures_of(at)


def test_whole_wpe_on_demand():
    at = fresh()
    at.toggle(key="show_wpe").set_value(True).run()
    assert array(figures_of(at)["heatmap_wpe"]["data"][0]["z"]).shape == (16, 32)


def wait_for_training(at: AppTest, timeout: float = 120) -> AppTest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        if "scatter_after" in figures_of(at) or messages(at, "error"):
            return at
        time.sleep(0.5)
    raise AssertionError("training did not finish")


TINY = {"V": "128", "d": "16", "P": "8", "steps": "40"}  # a small model, as link parameters


def tiny_page(**params: str) -> AppTest:
    """A page opened from a link with the tiny model's settings (one run instead of one per slider)."""
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in {**TINY, **params}.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return open_training(at)


@pytest.fixture(scope="module")
def trained_tiny() -> AppTest:
    """A page that pressed Train with the tiny settings. Trained models are shared by the server's
    sessions, so every tiny_page() of this module opens with this model's results at once."""
    at = tiny_page()
    at.button(key="train").click().run()
    assert not at.exception
    return wait_for_training(at)


def test_training_flow_tiny(trained_tiny):
    at = trained_tiny
    figs = figures_of(at)
    assert {"scatter_before", "scatter_after", "loss_final", "pos_before", "pos_after"} <= set(figs)
    assert len(at.metric) == 3
    assert at.dataframe  # nearest neighbours before / after
    # the same settings in a second session reuse the trained model at once
    assert "scatter_after" in figures_of(tiny_page())


def test_a_trained_link_trains_while_the_explorer_is_open():
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in {**TINY, "seed": "7", "trained": "1"}.items():
        at.query_params[k] = v
    at.run()
    assert "heatmap_2" in figures_of(at) and "train" not in [b.key for b in at.button]  # the explorer is open
    deadline = time.monotonic() + 120
    while not at.session_state["trained"]:  # the link's promise, kept while its tab is closed
        assert time.monotonic() < deadline, "the link's training did not finish"
        time.sleep(0.5)
        at.run()
    assert "scatter_after" in figures_of(open_training(at))
    assert not at.exception


def test_changing_the_text_does_not_rebuild_the_training_charts(trained_tiny, monkeypatch):
    from embedviz import figures

    built = []
    real = figures.embedding_scatter

    def counted(*args, **kwargs):
        built.append(kwargs["title"])
        return real(*args, **kwargs)

    monkeypatch.setattr(figures, "embedding_scatter", counted)
    at = open_tab(tiny_page(), TABS[0])
    sentence = at.text_area(key="text").value
    at.text_area(key="text").input(f"{sentence}\n{sentence}").run()  # new text, the same tokens outlined
    at.toggle(key="show_wpe").set_value(True).run()
    assert "heatmap_wpe" in figures_of(at) and "scatter_after" not in figures_of(at)  # a closed tab does not run
    assert "scatter_after" in figures_of(open_training(at)) and built == []  # the maps of the same tokens: reused
    at.sidebar.toggle(key="presentation").set_value(True).run()  # a new style: both maps are rebuilt
    assert len(built) == 2, built


def test_own_bpe_tokenizer():
    at = fresh()
    at.sidebar.selectbox(key="encoding").set_value("bpe").run()
    assert not at.exception
    v = at.sidebar.select_slider(key="vocab_size")
    assert int(v.options[0]) == 256 and int(v.value) >= 256
    v.set_value(v.options[-1]).run()
    assert not at.exception
    splits = [m.value for m in at.markdown if m.value.startswith("**V = ")]
    counts = [int(s.split("· ")[1].split()[0]) for s in splits]
    assert len(splits) >= 3 and counts == sorted(counts, reverse=True)  # more merges, fewer tokens
    assert at.dataframe  # the merges learned
    assert "heatmap_2" in figures_of(at)


def test_a_link_reproduces_the_view():
    at = fresh()
    at.sidebar.button(key="preset_textbook").click().run()
    at.sidebar.number_input(key="seed").set_value(3).run()
    at.sidebar.toggle(key="presentation").set_value(True).run()
    params = dict(at.query_params)
    assert params["V"] == ["100"] or params["V"] == "100"
    shown = heatmap_values(at, 2)

    opened = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        opened.query_params[k] = v[0] if isinstance(v, list) else v
    opened.run()
    assert not opened.exception
    assert opened.sidebar.toggle(key="presentation").value is True
    np.testing.assert_array_equal(heatmap_values(opened, 2), shown)
    link = [c.value for c in opened.sidebar.get("code")][0]
    assert "V=100" in link and "seed=3" in link


def test_bad_link_parameters_are_ignored():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["V"] = "abc"
    at.query_params["d"] = "-5"
    at.query_params["mode"] = "<script>"
    at.run()
    assert not at.exception
    assert "heatmap_2" in figures_of(at)


def test_training_extras_evolution_positions_comparison(trained_tiny):
    at = tiny_page()
    figs = figures_of(at)
    assert {"pos_before", "pos_after", "pos_sinusoid", "pos_sinusoid_table"} <= set(figs)
    at.toggle(key="show_evolution").set_value(True).run()
    assert not at.exception
    evo = figures_of(at)["evolution"]
    assert len(evo["frames"]) >= 2
    assert "agreement_curve" in figures_of(at)


def test_community_cloud_entry_point_runs_in_hosted_mode(monkeypatch):
    monkeypatch.setenv("EMBEDVIZ_HOSTED", "1")
    at = AppTest.from_file(str(Path(APP).parent / "cloud" / "streamlit_app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert "heatmap_2" in figures_of(at)
    assert at.sidebar.slider(key="dim").max == 768  # hosted bounds
    assert any("Public instance" in c.value for c in at.sidebar.caption)
    at.sidebar.select_slider(key="vocab_size").set_value(65536).run()
    at.sidebar.slider(key="dim").set_value(768).run()
    assert any("the limit is 10,000,000" in e for e in messages(at, "error"))


@pytest.mark.parametrize("vocab_size", [2, 3])
def test_training_with_a_tiny_vocabulary_explains_instead_of_failing(vocab_size):
    at = open_training(fresh())
    at.sidebar.select_slider(key="vocab_size").set_value(vocab_size).run()
    at.slider(key="steps").set_value(10).run()
    at.button(key="train").click().run()
    wait_for_training(at)
    assert not at.exception
    assert "scatter_after" in figures_of(at)
    assert any("raise the vocabulary size" in i for i in messages(at, "info"))


@pytest.mark.parametrize("key, value", [
    ("steps", 10), ("steps", 5000), ("batch_size", 1), ("batch_size", 256), ("learning_rate", 1e-4),
    ("learning_rate", 1e-1), ("n_layer", 1), ("n_layer", 4), ("n_head", 1), ("n_head", 8),
])
def test_training_controls_at_both_ends(key, value):
    at = open_training(fresh())
    slider = key in ("steps", "n_layer")
    widget = at.slider(key=key) if slider else at.select_slider(key=key)
    widget.set_value(value).run()
    assert not at.exception
    widget = at.slider(key=key) if slider else at.select_slider(key=key)
    at_an_end = (widget.value in (widget.min, widget.max) if slider
                 else widget.format_func(widget.value) in (widget.options[0], widget.options[-1]))
    assert widget.value == value and at_an_end, widget.value
    assert not messages(at, "error"), messages(at, "error")
    assert [b.key for b in at.button].count("train") == 1


def test_heads_that_do_not_divide_the_width_get_a_message():
    at = open_training(fresh())
    at.sidebar.slider(key="dim").set_value(6).run()
    at.select_slider(key="n_head").set_value(4).run()
    assert not at.exception
    assert any("must divide the embedding dimension" in e for e in messages(at, "error"))


def test_seed_at_both_ends():
    for seed in (0, 2**32 - 1):
        at = fresh()
        at.sidebar.number_input(key="seed").set_value(seed).run()
        assert not at.exception and "heatmap_2" in figures_of(at)

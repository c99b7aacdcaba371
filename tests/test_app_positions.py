"""The positions section and the trained sentence, driven through AppTest: pictures of each scheme, the
schemes trained side by side, their loss past P, the RoPE base control, links, and the trained sentence
whose code prints the numbers shown."""
from __future__ import annotations

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from embedviz import comparison, corpus, export, tokens, training
from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig
from embedviz.ui.page import TABS
from embedviz.vocab import Vocab
from tests.test_app import APP, array, figures_of, messages, open_tab, open_training, texts
from tests.test_snippet import run_snippet

SMALL = {"vocab_size": 128, "dim": 16, "positions": 8}
STEPS = 20


pytestmark = pytest.mark.usefixtures("trainings_on_a_thread")


def small_page(params: dict[str, str] | None = None) -> AppTest:
    """The order corpus with a small table (V 128, d 16, P 8) and 20 training steps."""
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    open_training(at.run())
    if params is None:
        at.sidebar.selectbox(key="corpus").set_value("order").run()
        at.sidebar.select_slider(key="vocab_size").set_value(SMALL["vocab_size"]).run()
        at.sidebar.slider(key="dim").set_value(SMALL["dim"]).run()
        at.sidebar.slider(key="positions").set_value(SMALL["positions"]).run()
        at.slider(key="steps").set_value(STEPS).run()
    assert not at.exception, at.exception
    return at


def wait_for(at: AppTest, chart: str, timeout: float = 300) -> AppTest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        if chart in figures_of(at) or messages(at, "error"):
            return at
        assert not any("stopped" in w for w in messages(at, "warning")), messages(at, "warning")
        time.sleep(0.5)
    raise AssertionError(f"{chart} did not appear")


def trained(at: AppTest) -> AppTest:
    at.button(key="train").click().run()
    return wait_for(at, "scatter_after")


@pytest.fixture(scope="module")
def compared() -> AppTest:
    """A page that trained learned positions, then compared learned and rope side by side."""
    at = trained(small_page())
    at.multiselect(key="compare_kinds").set_value(["rope", "learned"]).run()
    at.button(key="compare").click().run()
    return wait_for(at, "scheme_losses")


def rows_of_order_corpus(vocab_size: int) -> np.ndarray:
    enc = tokens.load_encoding("cl100k_base")
    ids = np.asarray(enc.encode(corpus.order_world(enc).text, disallowed_special=()), dtype=np.int64)
    return Vocab.build(enc, vocab_size, reference_ids=ids).rows(ids)


def small_configs(positional: str = "learned") -> tuple[ModelConfig, TrainConfig]:
    return (ModelConfig(EmbeddingConfig(SMALL["vocab_size"], SMALL["dim"], SMALL["positions"], 0),
                        positional=positional), TrainConfig(steps=STEPS))


def test_comparison_shows_the_measured_losses_and_says_what_they_show(compared):
    at = compared
    figs = figures_of(at)
    assert not messages(at, "error"), messages(at, "error")
    losses = {t["name"]: array(t["y"]) for t in figs["scheme_losses"]["data"]}
    assert set(losses) == {"learned", "rope"}
    # the same numbers as training the two schemes here, directly
    model_cfg, train_cfg = small_configs()
    direct = comparison.train_schemes(model_cfg, train_cfg, rows_of_order_corpus(128), kinds=("learned", "rope"))
    for kind, run in direct.runs.items():
        np.testing.assert_allclose(losses[kind], [p.held_out_loss for p in run.history], rtol=1e-5)
    body = texts(at)
    assert comparison.describe(direct) in body
    assert f"trained for {STEPS} steps" in body
    from embedviz.evaluation import describe_lengths

    assert describe_lengths([r.lengths for r in direct.runs.values()]) in body


def test_loss_past_p_is_charted_and_learned_stops_at_p(compared):
    spec = figures_of(compared)["scheme_lengths"]
    lines = {t["name"]: array(t["x"]) for t in spec["data"]}
    assert lines["learned"].max() == SMALL["positions"] - 1
    assert lines["rope"].max() == 4 * SMALL["positions"] - 1
    assert any(a.get("text") == "learned: no rows past P" for a in spec["layout"]["annotations"])
    assert "Past the 8 trained positions" in texts(compared)


def test_pictures_of_the_trained_scheme_share_one_colour_scale(compared):
    figs = figures_of(compared)
    assert "How the model knows the order of words" in texts(compared)
    ranges = {(figs[k]["data"][0]["zmin"], figs[k]["data"][0]["zmax"])
              for k in ("pos_before_table", "pos_after_table", "pos_sinusoid_table")}
    assert len(ranges) == 1
    title = figs["pos_before_table"]["layout"]["title"]["text"]  # three to a row: wrapped at " · "
    assert title == "learned, start<br>torch.Size([8, 16])"


@pytest.mark.parametrize("kind, charts", [
    ("rope", {"pic_rope_rotation", "pic_rope_frequencies", "pic_rope_decay"}),
    ("alibi", {"pic_alibi_bias", "pic_alibi_slopes"}),
    ("none", {"pic_mask"}),
    ("sinusoidal", {"pos_sinusoid", "pos_sinusoid_table"}),
])
def test_any_scheme_pictures_without_training_it(compared, kind, charts):
    at = compared
    at.selectbox(key="scheme_pictures").set_value(kind).run()
    assert not at.exception
    figs = figures_of(at)
    assert charts <= set(figs)
    assert "pos_after" not in figs  # the learned model's own table is not shown for another scheme
    at.selectbox(key="scheme_pictures").set_value("").run()


def test_rope_base_control_and_link():
    at = small_page()
    assert "rope_base_input" not in [n.key for n in at.number_input]  # hidden unless rope is chosen
    at.selectbox(key="positional").set_value("rope").run()
    at.number_input(key="rope_base_input").set_value(500_000.0).run()
    at.selectbox(key="positional").set_value("learned").run()
    at.run()
    assert "rope_base_input" not in [n.key for n in at.number_input]
    params = {k: v[0] if isinstance(v, list) else v for k, v in at.query_params.items()}
    assert params["rope_base"] == "500000.0"  # kept while hidden: the comparison's RoPE run uses it
    opened = small_page({**params, "pos": "rope", "trained": "1"})  # trains by itself: small settings
    assert opened.number_input(key="rope_base_input").value == 500_000.0
    wait_for(opened, "pic_rope_frequencies")  # the trained model's own scheme is pictured
    title = figures_of(opened)["pic_rope_frequencies"]["layout"]["title"]["text"]
    assert "500,000" in title


def test_a_link_reopens_the_same_comparison(compared):
    params = {k: v[0] if isinstance(v, list) else v for k, v in compared.query_params.items()}
    assert sorted(params["compare"].split(",")) == ["learned", "rope"] and params["corpus"] == "order"
    opened = wait_for(small_page(params), "scheme_losses")
    assert opened.multiselect(key="compare_kinds").value == params["compare"].split(",")
    shown, again = figures_of(compared)["scheme_losses"], figures_of(opened)["scheme_losses"]
    assert [array(t["y"]).tolist() for t in again["data"]] == [array(t["y"]).tolist() for t in shown["data"]]


def test_no_scheme_chosen_is_a_message(compared):
    at = compared
    at.multiselect(key="compare_kinds").set_value([]).run()
    assert any("at least one scheme" in i for i in messages(at, "info"))
    assert "compare" not in [b.key for b in at.button]
    at.multiselect(key="compare_kinds").set_value(["learned", "rope"]).run()


def test_trained_sentence_matches_its_code_run_on_the_model_file(compared, tmp_path, monkeypatch):
    at = open_tab(compared, TABS[0])  # the section is under the explorer's heatmaps
    at.toggle(key="trained_sentence").set_value(True).run()
    assert not at.exception, at.exception
    figs = figures_of(at)
    keys = [f"mine_{n}_{w}" for n in ("tok", "pos", "x") for w in ("before", "after")]
    assert set(keys) <= set(figs) and {"mine_cos_before", "mine_cos_after"} <= set(figs)
    assert len({(figs[k]["data"][0]["zmin"], figs[k]["data"][0]["zmax"]) for k in keys}) == 1  # one scale
    shown = {k: array(figs[k]["data"][0]["z"]).astype(np.float64) for k in keys}
    assert not np.allclose(shown["mine_tok_before"], shown["mine_tok_after"])
    code = next(c.value for c in at.get("code") if "load_file" in c.value)
    # the model file: the same settings trained here give the same weights (training is deterministic)
    model_cfg, train_cfg = small_configs()
    result = training.train(model_cfg, train_cfg, rows_of_order_corpus(128))
    (tmp_path / "embedviz-model.safetensors").write_bytes(export.model_safetensors(result.model, metadata={}))
    monkeypatch.chdir(tmp_path)  # the code opens the file by its download name
    namespace = run_snippet(code)
    ran = {f"{n}_{w}": namespace[f"{n}_{w}"].numpy() for n in ("tok", "pos", "x") for w in ("before", "after")}
    for key in keys:
        np.testing.assert_allclose(shown[key], ran[key.removeprefix("mine_")], rtol=0, atol=1e-6)
    # the cosine readout: the two chosen tokens' wte rows
    before, after = shown["mine_tok_before"][:2], shown["mine_tok_after"][:2]
    cos = [float(v[0] @ v[1] / np.linalg.norm(v[0]) / np.linalg.norm(v[1])) for v in (before, after)]
    readout = {m.label: m.value for m in at.metric}
    assert (readout["cosine before training"], readout["after training"]) == (f"{cos[0]:.3f}", f"{cos[1]:.3f}")
    at.toggle(key="trained_sentence").set_value(False).run()
    open_training(at)  # as the other tests of the module expect it

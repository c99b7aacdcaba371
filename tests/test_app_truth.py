"""What the page says is true of a real GPT, and a teaching shortcut is named where it is shown (AppTest)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.oracles import textbook
from tests.test_app import figures_of, fresh, heatmap_values, messages, texts


pytestmark = pytest.mark.usefixtures("trainings_on_a_thread")
@pytest.mark.parametrize("seed", [0, 3])
def test_textbook_preset_is_the_tutorial_whatever_tokenizer_was_chosen(seed):
    at = fresh()
    at.sidebar.selectbox(key="encoding").set_value("bpe").run()
    at.sidebar.button(key="preset_textbook").click().run()
    at.sidebar.number_input(key="seed").set_value(seed).run()
    assert not at.exception
    assert at.session_state["vocab_size"] == 100
    np.testing.assert_allclose(heatmap_values(at, 2), textbook(seed)[0].numpy(), rtol=0, atol=1e-6)


def test_typed_ids_are_rows_not_another_tokenizers_words():
    at = fresh()
    at.sidebar.button(key="preset_textbook").click().run()
    at.text_input(key="ids").input("[[5, 20, 33, 99]]").run()
    chips = [m.value for m in at.markdown if m.value.startswith("<div class=\"ev-chips\">")][0]
    assert "row 5" in chips and "row 99" in chips and "id " not in chips and "&lt;unk&gt;" not in chips
    assert not any("<unk>" in m for m in messages(at, "info"))


def test_the_default_view_shows_no_unk_and_names_the_row_shortcut():
    at = fresh()
    body = texts(at) + "\n".join(messages(at, "info"))
    assert "&lt;unk&gt;" not in texts(at)
    assert "Teaching shortcut, not what GPT-2 does" in body and "choose the tokenizer **bpe**" in body
    assert "cl100k_base's 100,277 token ids" in body  # the name learners chose, not its offline twin
    assert "`␣` is a space" in body


def test_a_table_as_large_as_the_tokenizer_needs_no_shortcut():
    at = fresh()
    at.sidebar.select_slider(key="vocab_size").set_value(100_277).run()
    assert not at.exception
    assert "Teaching shortcut" not in "\n".join(messages(at, "info"))


def test_own_bpe_starts_with_merges_and_rows_equal_ids():
    at = fresh()
    at.sidebar.selectbox(key="encoding").set_value("bpe").run()
    assert at.session_state["vocab_size"] > 256
    chips = [m.value for m in at.markdown if m.value.startswith("<div class=\"ev-chips\">")][0]
    assert "&lt;unk&gt;" not in chips
    for meta in chips.split('class="ev-meta">')[1:]:
        tid, row = meta.split("</span>")[0].replace(",", "").split(" · ")
        assert tid.removeprefix("id ") == row.removeprefix("row ")


def test_positional_rows_are_positions_and_padding_rows_of_wpe_are_real():
    at = fresh()
    at.text_area(key="text").input("a\nthe cat sat on the mat").run()
    pos = figures_of(at)["heatmap_1"]
    from tests.test_app import array

    assert pos["layout"]["yaxis"]["title"]["text"] == "position"
    assert array(pos["data"][0]["y"]).tolist() == list(range(6))  # rows are positions 0 … T-1
    assert np.isfinite(heatmap_values(at, 1)).all()  # sentence 0 is padded, wpe(arange(T)) is not
    assert np.isnan(heatmap_values(at, 2)[1:]).all()  # the padded rows of the sum are not real input
    assert "one generator draws `wte` first, then `wpe`" in texts(at)


def test_no_sentence_claims_attention_ignores_order():
    at = fresh()
    assert "ignores order" not in texts(at)
    assert "the causal mask gives order only indirectly" in texts(at)


def test_initialisation_is_stated_where_the_numbers_are_shown():
    body = texts(fresh())
    assert "N(0, 1)" in body and "N(0, 0.02²)" in body and "N(0, 0.01²)" in body


def test_an_encoding_that_cannot_load_is_not_left_selected(monkeypatch):
    from embedviz import tokens

    real = tokens.load_encoding

    def offline(name, **kw):
        if name == "gpt2":
            raise tokens.EncodingUnavailable("The gpt2 encoding cannot be loaded: no internet.")
        return real(name, **kw)

    monkeypatch.setattr(tokens, "load_encoding", offline)
    at = fresh()
    at.sidebar.selectbox(key="encoding").set_value("gpt2").run()
    assert at.session_state["encoding"] == "cl100k_base"
    assert at.sidebar.selectbox(key="encoding").value == "cl100k_base"
    assert any("gpt2 encoding cannot be loaded" in e for e in messages(at, "error"))
    assert "enc" not in at.query_params


def test_o200k_works_offline():
    at = fresh()
    at.sidebar.selectbox(key="encoding").set_value("o200k_base").run()
    assert not at.exception and at.session_state["encoding"] == "o200k_base"
    assert not messages(at, "error")


def test_the_link_carries_only_the_box_on_the_page():
    at = fresh()
    at.sidebar.button(key="preset_textbook").click().run()
    at.text_input(key="ids").input("[[1, 2]]").run()
    at.sidebar.button(key="preset_classroom").click().run()
    assert "ids" not in at.query_params
    link = at.sidebar.get("code")[0].value if at.sidebar.get("code") else ""
    assert "ids=" not in link
    caption = " ".join(c.value for c in at.sidebar.caption)
    assert "same trained model" not in caption  # nothing was trained

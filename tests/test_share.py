import pytest

from embedviz.config import LOCAL_LIMITS, HOSTED_LIMITS
from embedviz.share import FIELDS, MAX_URL_TEXT, from_query, to_query

DEFAULTS = {"mode": "Sentences", "text": "hi", "vocab_size": 256, "dim": 32, "positions": 16, "seed": 0,
            "learning_rate": 2e-2, "presentation": False, "corpus": "toy"}


def test_round_trip_of_every_field():
    state = {"mode": "Token ids", "text": "The cat\n<b>&</b> 🐱", "ids": "[[5, 20, 33, 2]]",
             "encoding": "gpt2", "corpus": "pydocs", "vocab_size": 100, "dim": 16, "positions": 10,
             "seed": 4294967295, "sentence": 2, "steps": 300, "batch_size": 64, "learning_rate": 3e-3,
             "n_layer": 2, "n_head": 4, "positional": "sinusoidal", "neighbour_token": 17,
             "presentation": True, "trained": True, "rope_base": 500_000.0, "compare_kinds": ["rope", "alibi"],
             "scheme_pictures": "none", "trained_sentence": True, "cos_a": 3, "cos_b": 0}
    assert set(state) == set(FIELDS)
    params, left_out = to_query(state, DEFAULTS)
    assert not left_out
    assert all(isinstance(v, str) for v in params.values())
    back, ignored = from_query(params, LOCAL_LIMITS)
    assert not ignored
    # in ids mode the text box is not on the page, so its text does not travel
    assert back == {k: v for k, v in state.items() if k != "text"}
    sentences, _ = to_query({**state, "mode": "Sentences"}, DEFAULTS)
    back, _ = from_query(sentences, LOCAL_LIMITS)
    assert back["text"] == state["text"] and "ids" not in back


def test_only_the_box_on_the_page_travels_in_the_link():
    state = {"mode": "Sentences", "text": "hello", "ids": "[[1, 2]]"}
    assert to_query(state, DEFAULTS)[0] == {"text": "hello"}
    assert to_query({**state, "mode": "Token ids"}, DEFAULTS)[0] == {"mode": "Token ids", "ids": "[[1, 2]]"}


def test_defaults_are_left_out_of_the_link():
    params, _ = to_query(DEFAULTS, DEFAULTS)
    assert params == {}


def test_uploads_and_long_text_cannot_travel():
    params, left_out = to_query({"corpus": "upload", "text": "x" * (MAX_URL_TEXT + 1)}, DEFAULTS)
    assert params == {} and len(left_out) == 2


@pytest.mark.parametrize("params", [
    {"V": "abc"}, {"V": "1"}, {"V": "9" * 40}, {"d": "0"}, {"d": "100000"}, {"P": "-3"},
    {"seed": "-1"}, {"lr": "nan"}, {"lr": "0.5"}, {"present": "maybe"}, {"mode": "<script>"},
    {"enc": "../../etc/passwd"}, {"corpus": "upload"}, {"heads": "3"}, {"text": "x" * (MAX_URL_TEXT + 1)},
])
def test_bad_values_are_ignored_and_reported(params):
    state, ignored = from_query(params, LOCAL_LIMITS)
    assert state == {} and len(ignored) == 1


def test_hosted_bounds_apply():
    state, ignored = from_query({"d": "1024", "steps": "5000"}, HOSTED_LIMITS)
    assert state == {} and len(ignored) == 2


@pytest.mark.parametrize("raw", ["1", "1.0", "0.5", "-3", "nan", "inf", "1e10", "abc"])
def test_rope_base_must_be_finite_above_one_and_bounded(raw):
    state, ignored = from_query({"rope_base": raw}, LOCAL_LIMITS)
    assert "rope_base" not in state and ignored == [f"rope_base={raw!r}"]


@pytest.mark.parametrize("raw, kinds", [("rope,none", ["rope", "none"]), ("learned", ["learned"])])
def test_compared_schemes_travel_as_a_comma_list(raw, kinds):
    state, ignored = from_query({"compare": raw}, LOCAL_LIMITS)
    assert state == {"compare_kinds": kinds} and not ignored
    assert to_query(state, {})[0] == {"compare": raw}


@pytest.mark.parametrize("raw", ["", "rope,rope", "rope,xpos", "learned,,none"])
def test_bad_scheme_lists_are_ignored(raw):
    state, ignored = from_query({"compare": raw}, LOCAL_LIMITS)
    assert state == {} and ignored

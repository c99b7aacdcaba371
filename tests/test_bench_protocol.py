"""The benchmark's protocol visitor (benchmarks/protocol.py) against a real `streamlit run app.py` on
127.0.0.1: the first run's heatmap, a slider moved and the next run's chart, Train pressed and both maps
arriving through the training fragment's timed reruns. One server for the module, in one xdist group
(the tests share it; under `pytest -n 2 --dist loadgroup` they run on one worker). No timing is asserted
beyond generous deadlines: the figures depend on the machine and its load."""
from __future__ import annotations

import asyncio

import pytest
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from benchmarks import harness
from benchmarks.classroom import browser_seats, class_plan, classroom_rows
from benchmarks.protocol import Visitor, _MessageCache, key_of, text_of
from embedviz.ui.page import TABS

pytestmark = pytest.mark.xdist_group("protocol_server")

DEADLINE_S = 90  # one step of a test on a busy 2-core machine; a stuck server fails, it does not hang
SMALL = "V=64&d=16&P=8&steps=10&batch=8"  # share.py's parameter names: a training of a second or so


@pytest.fixture(scope="module")
def server():
    s = harness.start_server(script=harness.APP)
    try:
        yield s.url
    finally:
        harness.stop_server(s)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, DEADLINE_S * 2))


def z_shape(figure: dict) -> tuple[int, int]:
    """Rows and columns of a heatmap's z: a list of rows, or Plotly's typed array {"bdata", "shape"}."""
    z = figure["data"][0]["z"]
    if isinstance(z, dict):
        rows, cols = (int(n) for n in z["shape"].split(","))
        return rows, cols
    return len(z), len(z[0])


# ---------------------------------------------------------------- pure pieces, no server

def test_keys_and_texts_are_read_from_elements():
    chart = Element()
    chart.plotly_chart.id = "$$ID-0123abcd-heatmap_0"
    chart.plotly_chart.spec = "{}"
    info = Element()
    info.alert.body = "Waiting for a free trainer: 1 training(s) running"
    plain = Element()
    plain.markdown.body = "no key"
    assert key_of(chart) == "heatmap_0" and key_of(info) is None and key_of(plain) is None
    assert text_of(info).startswith("Waiting for a free trainer") and text_of(chart) == ""


def test_message_cache_resolves_references_and_forgets_unused_messages():
    cache = _MessageCache()
    msg = ForwardMsg(hash="h1")
    msg.metadata.cacheable = True
    msg.metadata.delta_path[:] = [0, 3]
    msg.delta.new_element.markdown.body = "large"
    cache.keep(msg, msg.SerializeToString())
    assert cache.hashes() == ["h1"]
    ref = ForwardMsg(ref_hash="h1")
    ref.metadata.delta_path[:] = [0, 7]  # the same content in another place
    resolved = cache.resolve(ref)
    assert resolved.delta.new_element.markdown.body == "large" and list(resolved.metadata.delta_path) == [0, 7]
    for _ in range(cache.max_age + 1):  # runs that did not use it
        cache.run_finished([])
    assert cache.hashes() == []
    with pytest.raises(RuntimeError, match="never had"):
        cache.resolve(ref)


def test_browser_seats_spread_over_the_class_and_include_trainers():
    plan = class_plan(sessions=30, other_settings=5, explorers=5)
    assert browser_seats(plan, browsers=5) == [3, 9, 15, 21, 27]
    assert browser_seats([0, 1, 0, 0, None, 0], browsers=2) == [1, 3]  # the explorer's seat goes to a trainer
    assert browser_seats(plan, browsers=0) == []
    with pytest.raises(ValueError, match="3 Chromium pages do not fit in 2 sessions"):
        browser_seats([0, 0], browsers=3)


def test_classroom_rows_split_protocol_visitors_from_chromium_pages():
    def session(index, seed, client, **changes):
        return {"index": index, "seed": seed, "opens_at": 2.0 * index, "client": client,
                "first_heatmap_s": 1.0 + index, "train_to_maps_s": None if seed is None else 10.0 + index,
                "pressed": int(seed is not None), "joined": False, "moves": [0.1 * (index + 1)], "seen_s": {},
                "exceptions": 0, "errors": [], "failure": None,
                "received": {"messages": 100, "bytes": 2**20, "auto_reruns": 4} if client == "protocol" else {},
                **changes}

    out = {"sessions": [session(0, 0, "protocol"), session(1, None, "protocol"), session(2, 1, "browser"),
                        session(3, 0, "protocol", failure="no maps 240 s after Train", train_to_maps_s=None)],
           "tree_peak_pss_mib": 900.0, "tree_pss_at_peak_mib": {"server": 900.0}, "training_pids": [7, 8],
           "server_up": True, "server_cpu_s": 12.0, "total_s": 60.0,
           "load_average_before": [1.0, 1.0, 1.0], "load_average_after": [2.0, 2.0, 2.0]}
    rows = {r.figure: r for r in classroom_rows(out)}
    assert rows["4 sessions, time to first heatmap (median / p95 / max)"].ours == (2.5, 4.0, 4.0)
    protocol = rows["  time to first heatmap, 3 protocol visitors (median / p95 / max)"]
    assert protocol.ours == (2.0, 4.0, 4.0) and "the server's work for a page without drawing it" in protocol.note
    assert "received 3.0 MiB in 300 messages, 12 fragment reruns sent" in protocol.note
    assert rows["  time to first heatmap, 1 Chromium pages (median / p95 / max)"].ours == (3.0, 3.0, 3.0)
    trained = rows["  Train -> both maps, any seed, 2 protocol visitors (median / p95 / max)"]
    assert trained.ours == (10.0, 10.0, 10.0) and trained.note.startswith("1/2 drew both maps")
    assert rows["  Train -> both maps, any seed, 1 Chromium pages (median / p95 / max)"].ours == (12.0, 12.0, 12.0)
    assert rows["failed or stuck sessions (target 0)"].note == (
        "1x no maps 240 s after Train; protocol visitors 1/3, Chromium pages 0/1")
    assert rows["  slider moves, 1 Chromium pages (median / p95 / max)"].ours == pytest.approx((0.3, 0.3, 0.3))


# ---------------------------------------------------------------- against the server

def test_open_gets_the_first_heatmap_and_the_end_of_the_run(server):
    async def visit():
        async with Visitor(server) as v:
            opened = await v.open(timeout_s=DEADLINE_S)
            return v, opened

    v, opened = run(visit())
    assert opened.heatmap_s is not None and 0 < opened.heatmap_s <= opened.finished_s
    for key in harness.HEATMAPS:
        figure = v.chart(key)
        assert figure is not None and figure["data"][0]["type"] == "heatmap"
    assert z_shape(v.chart("heatmap_0"))[1] == 32  # the default d
    assert v.element("train") is None  # only the open tab runs
    assert v.full_runs_done == 1 and v.exceptions() == 0 and v.closed == "closed by the visitor"


def test_opening_the_training_tab_runs_it_and_not_the_other(server):
    async def visit():
        async with Visitor(server) as v:
            await v.open(timeout_s=DEADLINE_S)
            seconds = await v.open_tab("tab", TABS[1], timeout_s=DEADLINE_S)
            return v, seconds

    v, seconds = run(visit())
    assert seconds > 0 and v.full_runs_done == 2
    assert v.element("train") is not None and v.chart("heatmap_0") is None
    with pytest.raises(LookupError, match="no tabs with key 'nope'"):
        run(v.open_tab("nope", TABS[0]))


def test_a_slider_move_reruns_the_page_with_the_new_shape(server):
    async def visit():
        async with Visitor(server) as v:
            await v.open("d=16", timeout_s=DEADLINE_S)
            before = z_shape(v.chart("heatmap_0")), v.slider_value("dim")
            seconds = await v.set_slider("dim", 20, timeout_s=DEADLINE_S)
            return v, before, seconds

    v, (shape, dim), seconds = run(visit())
    assert dim == 16 and shape[1] == 16  # the link's d
    assert seconds > 0 and v.full_runs_done == 2
    assert z_shape(v.chart("heatmap_0")) == (shape[0], 20) and v.slider_value("dim") == 20
    assert v.shows("wte.weight.shape` = `torch.Size([256, 20])")
    assert "d=20" in v.query.split("&")  # the page keeps the address bar in step (page_info_changed)


def test_train_brings_both_maps_through_the_fragment_reruns(server):
    async def visit():
        async with Visitor(server) as v:
            await v.open(SMALL, timeout_s=DEADLINE_S)
            await v.open_tab("tab", TABS[1], timeout_s=DEADLINE_S)
            assert not v.element("train").button.disabled and not v.has_chart("scatter_after")
            await v.click("train", timeout_s=DEADLINE_S)
            # the press's run shows the job waiting or starting; only the fragment's timed reruns
            # (run_every) see it finish and rerun the page, which then draws the maps
            assert v.shows("Waiting for a free trainer") or v.shows("Starting…") or v.shows("step ")
            await v.wait_for(lambda: v.has_chart("scatter_before") and v.has_chart("scatter_after"),
                             timeout_s=DEADLINE_S)
            await v.wait_for(lambda: v.idle, timeout_s=DEADLINE_S)
            return v

    v = run(visit())
    assert v.auto_reruns_sent >= 1 and v.full_runs_done >= 3  # open, press, the fragment's st.rerun()
    assert v.chart("scatter_after")["data"] and v.shows("Trained in")
    assert v.element("train").button.disabled is False and v.exceptions() == 0

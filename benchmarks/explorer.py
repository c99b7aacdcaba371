"""Explorer: reruns of the page (AppTest on app.py) after a slider move or new text, beside the plain
page benchmarks/plain_explorer.py, at the default and GPT-2-sized settings, plus the bare tensor work."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from embedviz.config import EmbeddingConfig

from .harness import APP, ROOT
from .report import Row, log, median, run_range, timed
from .world import sentence_of, toy_world

PLAIN_EXPLORER = ROOT / "benchmarks" / "plain_explorer.py"
# The large explorer settings: GPT-2 small's tables and a long sentence filling every position.
LARGE = {"vocab_size": 50_257, "dim": 768, "positions": 64, "tokens": 64}

def _set(at: Any, key: str, value: Any, *, select_vocab: bool) -> None:
    if key == "text":
        at.text_area(key="text").input(value)
    elif key == "vocab_size" and select_vocab:
        at.sidebar.select_slider(key=key).set_value(value)
    else:
        at.sidebar.slider(key=key).set_value(value)


def _run(at: Any) -> float:
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"the page raised: {at.exception[0].value}")
    return seconds


def _join_warm_up() -> None:
    """The app warms up (umap, training) in a background thread on its first run: let it finish
    before timing reruns."""
    for thread in threading.enumerate():
        if thread.name.endswith("warm-up"):
            thread.join(180)


def rerun_times(apps: dict[str, tuple[Path, bool]], *, settings: dict[str, dict], repeats: int) -> dict:
    """Seconds of at.run() after one widget change (d, P, text), per app, setting and change.

    apps: name -> (script, whether V is a select_slider); a setting's own "repeats" overrides `repeats`.
    The apps take turns change by change, so a
    burst of load from elsewhere on a shared machine falls on both sides alike."""
    from streamlit.testing.v1 import AppTest

    tests = {}
    for who, (script, _) in apps.items():
        tests[who] = AppTest.from_file(str(script), default_timeout=300)
        _run(tests[who])
    _join_warm_up()
    out: dict[str, dict] = {who: {} for who in apps}
    for name, s in settings.items():
        for who, at in tests.items():
            for key in ("vocab_size", "dim", "positions", "text"):  # V first: d=768 only fits once V is set
                _set(at, key, s[key], select_vocab=apps[who][1])
                _run(at)
        times = {who: {"d": [], "P": [], "text": []} for who in apps}
        for i in range(s.get("repeats", repeats)):
            for who, at in tests.items():
                select_vocab = apps[who][1]
                _set(at, "dim", s["dim"] - 1 - i, select_vocab=select_vocab)  # a new d: table regenerated
                times[who]["d"].append(_run(at))
                _set(at, "positions", s["positions"] + 1 if i % 2 == 0 else s["positions"], select_vocab=select_vocab)
                times[who]["P"].append(_run(at))
                _set(at, "text", s["other_text"] if i % 2 == 0 else s["text"], select_vocab=select_vocab)
                times[who]["text"].append(_run(at))
        for who in apps:
            out[who][name] = times[who]
    return out


def trained_rerun_times(app: Path, *, setting: dict, repeats: int, timeout_s: float = 600) -> dict[str, list[float]]:
    """Once the default model is trained: seconds of at.run() after changing the text in the explorer
    ("text"), and of opening the training tab again, which draws the trained results ("tab")."""
    from streamlit.testing.v1 import AppTest

    from embedviz.ui.page import TABS

    at = AppTest.from_file(str(app), default_timeout=300)
    _run(at)
    _join_warm_up()
    at.session_state["tab"] = TABS[1]
    _run(at)
    at.button(key="train").click()
    _run(at)
    deadline = time.monotonic() + timeout_s
    while not any(c.proto.id.endswith("-scatter_after") for c in at.get("plotly_chart")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"training in AppTest did not show its results within {timeout_s:.0f} s")
        time.sleep(0.5)
        _run(at)
    times: dict[str, list[float]] = {"text": [], "tab": []}
    for i in range(repeats):
        at.session_state["tab"] = TABS[0]
        _run(at)
        _set(at, "text", setting["other_text"] if i % 2 == 0 else setting["text"], select_vocab=True)
        times["text"].append(_run(at))
        at.session_state["tab"] = TABS[1]
        times["tab"].append(_run(at))
    return times


def ours_bare(text: str, cfg: EmbeddingConfig, enc: Any, vocab: Any) -> Any:
    from embedviz import explorer

    batch = explorer.from_text(text, enc=enc, vocab=vocab, positions=cfg.positions)
    wte, wpe = explorer.tables(cfg)
    return explorer.embed(batch, wte, wpe)


def plain_bare(text: str, cfg: EmbeddingConfig, enc: Any) -> Any:
    """The textbook: manual_seed, two nn.Embedding, wte(ids) + wpe(arange(T))."""
    import torch

    ids = [min(i, cfg.vocab_size - 1) for i in enc.encode(text)][: cfg.positions]
    torch.manual_seed(cfg.seed)
    wte, wpe = torch.nn.Embedding(cfg.vocab_size, cfg.dim), torch.nn.Embedding(cfg.positions, cfg.dim)
    return wte(torch.tensor([ids])) + wpe(torch.arange(len(ids)))  # (1, T, d)


def tokenising_rows(enc: Any, *, repeats: int) -> list[Row]:
    """tokens.encode (blocks and whitespace runs cut so tiktoken's regex never backtracks too far) beside
    tiktoken on 2 MB of prose, and our own BPE trained on the worst upload the hosted limits allow."""
    import random
    from pydoc_data.topics import topics

    from embedviz import bpe, tokens

    prose = ("\n".join(topics.values()) * 5)[:2_000_000] + " " * 40_000 + "tail"
    ours, plain = [], []
    for _ in range(repeats):  # taking turns
        ours += timed(lambda: tokens.encode(enc, prose), repeats=1)
        plain += timed(lambda: enc.encode(prose, disallowed_special=()), repeats=1)
    rng = random.Random(0)
    cjk = "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(300_000))  # no two words alike
    trained = timed(lambda: bpe.train_largest(cjk), repeats=1)
    return [Row("explorer", "tokenise 2 MB of prose (tokens.encode vs tiktoken's encode)", median(ours),
                median(plain)),
            Row("explorer", "own BPE on 300,000 random CJK characters (the worst hosted upload)", trained[0],
                note="training reads at most bpe.MAX_DISTINCT_BYTES of distinct words")]


def explorer_settings() -> dict[str, dict]:
    from embedviz.corpus import CLASSROOM_SENTENCE

    enc = toy_world().enc
    default = EmbeddingConfig()
    return {
        "default": {"vocab_size": default.vocab_size, "dim": default.dim, "positions": default.positions,
                    "text": CLASSROOM_SENTENCE, "other_text": "On Friday, my brother took the cat to the farm."},
        "large": {"vocab_size": LARGE["vocab_size"], "dim": LARGE["dim"], "positions": LARGE["positions"],
                  "text": sentence_of(enc, LARGE["tokens"]),
                  "other_text": sentence_of(enc, LARGE["tokens"], skip=500)},
    }


def explorer_section(*, quick: bool, env: dict) -> tuple[list[Row], dict]:
    from embedviz.vocab import Vocab

    world = toy_world()
    settings = explorer_settings()
    repeats = 3 if quick else 7
    # a default rerun takes ~10 ms, where one burst of load from elsewhere moves a median of 3: more runs
    settings["default"]["repeats"] = 15 if quick else 30
    log("explorer: AppTest reruns, ours (app.py) and the plain page taking turns")
    reruns = rerun_times({"ours": (APP, True), "plain": (PLAIN_EXPLORER, False)}, settings=settings,
                         repeats=repeats)
    ours, plain = reruns["ours"], reruns["plain"]
    log("explorer: AppTest reruns, ours with the default model trained")
    trained = trained_rerun_times(APP, setting=settings["default"], repeats=repeats)

    bare: dict[str, dict] = {}
    for name, s in settings.items():
        cfg = EmbeddingConfig(s["vocab_size"], s["dim"], s["positions"])
        vocab = Vocab.build(world.enc, cfg.vocab_size, reference_ids=world.ids)  # cached by the app
        bare[name] = {"ours_s": [], "plain_s": []}
        for _ in range(repeats):  # taking turns, as above
            bare[name]["ours_s"] += timed(lambda: ours_bare(s["text"], cfg, world.enc, vocab), repeats=1)
            bare[name]["plain_s"] += timed(lambda: plain_bare(s["text"], cfg, world.enc), repeats=1)

    rows = tokenising_rows(world.enc, repeats=repeats)
    labels = {"d": "moving d (table regenerated)", "P": "moving P (table cached)",
              "text": "changing the text (table cached)"}
    for name, s in settings.items():
        where = f"V={s['vocab_size']:,} d={s['dim']} P={s['positions']}"
        for change, label in labels.items():
            o, p = median(ours[name][change]), median(plain[name][change])
            large = name == "large"
            target = ("default_rerun" if not large else "large_regenerated" if change == "d" else "large_rerun")
            rows.append(Row("explorer", f"{name} ({where}): rerun after {label}", o, p, target=target,
                            note=run_range(ours=ours[name][change], plain=plain[name][change])))
        if name == "default":
            rows.append(Row("explorer", f"{name}, model trained: rerun after changing the text", median(trained["text"]),
                            target="trained_rerun",
                            note="only the open tab runs: the training charts are not drawn, let alone rebuilt, "
                                 "while the explorer changes; " + run_range(ours=trained["text"])))
            rows.append(Row("explorer", f"{name}, model trained: opening the training tab (its charts drawn)",
                            median(trained["tab"]),
                            note="charts built once per trained result and reused; the plain page has no "
                                 "training; " + run_range(ours=trained["tab"])))
        rows.append(Row("explorer", f"{name}: bare from_text + tables + embed vs textbook",
                        median(bare[name]["ours_s"]), median(bare[name]["plain_s"])))
    details = {"settings": settings, "repeats": repeats,
               "rerun_s": {"ours": ours, "plain": plain, "ours_trained_text": trained}, "bare_s": bare,
               "plain_page": str(PLAIN_EXPLORER.relative_to(ROOT))}
    return rows, details


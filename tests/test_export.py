from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors

from embedviz.config import EmbeddingConfig, ModelConfig, TrainConfig
from embedviz.export import model_safetensors, projector_tsv, to_csv, to_npy, training_files, zip_bundle
from embedviz.model import TinyGPT
from embedviz.training import Snapshot, train
from tests.oracles import AWKWARD, load_model_safetensors, read_projector_tsv

TOKENS = ["cat", "␣cat", "<script>alert(1)</script>", "a\tb", "line\nbreak", "cr\rlf", "🐱🐶", "猫",
          "", "=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\tx", '"quoted", with comma', ";=1+1",
          "<|endoftext|>", "\\x80"]
FORMULA = ("=", "+", "-", "@", "\t", "\r")
CFG = ModelConfig(embedding=EmbeddingConfig(vocab_size=32, dim=8, positions=4, seed=3), n_layer=1, n_head=2)
MAX_BYTES = 1_000_000


def table(n: int = len(TOKENS), d: int = 6, seed: int = 0) -> np.ndarray:
    values = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    values[0, :4] = [1e-38, -3.4e38, 1e-45, -0.0][:d]  # denormal, extreme and signed-zero values
    values[-1, :2] = [0.1, 1 / 3]
    return values


def parse_csv(data: bytes) -> list[list[str]]:
    assert data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def defused(label: str) -> str:
    return "'" + label if label.startswith(FORMULA) else label


# CSV


def test_csv_round_trips_labels_and_float32_exactly():
    values = table()
    rows = parse_csv(to_csv(values, row_labels=TOKENS))
    assert rows[0] == ["token", *(f"dim_{j}" for j in range(6))]
    assert len(rows) == len(TOKENS) + 1
    assert [r[0] for r in rows[1:]] == [defused(t) for t in TOKENS]
    back = np.array([[float(x) for x in r[1:]] for r in rows[1:]], dtype=np.float32)
    assert np.array_equal(back, values) and np.array_equal(np.signbit(back), np.signbit(values))


def test_csv_without_labels_numbers_the_rows():
    rows = parse_csv(to_csv(np.array([[0.5, 1.5, -2.0], [1, 2, 3]], dtype=np.float32)))
    assert rows == [["row", "dim_0", "dim_1", "dim_2"], ["0", "0.5", "1.5", "-2"], ["1", "1", "2", "3"]]


def test_csv_of_integers():
    rows = parse_csv(to_csv(np.array([[1, -2]], dtype=np.int64), row_labels=["a"]))
    assert rows[1] == ["a", "1", "-2"]


def test_csv_keeps_float64_precision():
    values = np.array([[1 / 3, np.pi]], dtype=np.float64)
    rows = parse_csv(to_csv(values, row_labels=["x"]))
    assert [float(x) for x in rows[1][1:]] == [1 / 3, np.pi]


@pytest.mark.parametrize("label", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "=HYPERLINK(\"x\")"])
def test_csv_defuses_formulas(label):
    data = to_csv(np.zeros((1, 2), np.float32), row_labels=[label])
    cell = parse_csv(data)[1][0]
    assert cell == "'" + label
    # every label cell is quoted, so a reader splitting on ; or , cannot start a new cell inside it
    assert data.decode("utf-8-sig").split("\r\n")[1].startswith("\"'")


def test_csv_leaves_ordinary_labels_alone():
    labels = ["cat", "␣=", "a=b", "'quoted'", "1.5", ""]
    rows = parse_csv(to_csv(np.zeros((len(labels), 2), np.float32), row_labels=labels))
    assert [r[0] for r in rows[1:]] == labels


def test_csv_accepts_a_tensor_with_grad():
    weight = torch.nn.Embedding(3, 2).weight
    rows = parse_csv(to_csv(weight, row_labels=["a", "b", "c"]))
    assert np.array_equal(np.array([[float(x) for x in r[1:]] for r in rows[1:]], np.float32),
                          weight.detach().numpy())


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 2, 2)), np.array([["a", "b"]])])
def test_csv_refuses_what_is_not_a_table(bad):
    with pytest.raises(ValueError, match="table"):
        to_csv(bad)


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((2, 2, 2, 2)), np.array([["a", "b"]])])
def test_npy_refuses_what_is_not_a_table_or_batch(bad):
    with pytest.raises(ValueError, match="table"):
        to_npy(bad)


def test_npy_of_a_batch():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert np.array_equal(np.load(io.BytesIO(to_npy(x)), allow_pickle=False), x)


def test_csv_refuses_a_wrong_number_of_labels():
    with pytest.raises(ValueError, match="2 row labels for a table of 3 rows"):
        to_csv(np.zeros((3, 2)), row_labels=["a", "b"])


# .npy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_npy_round_trips_without_pickle(dtype):
    values = table().astype(dtype)
    back = np.load(io.BytesIO(to_npy(values)), allow_pickle=False)
    assert back.dtype == dtype and np.array_equal(back, values)


def test_npy_of_a_tensor():
    weight = torch.nn.Embedding(4, 3).weight
    back = np.load(io.BytesIO(to_npy(weight)), allow_pickle=False)
    assert back.dtype == np.float32 and np.array_equal(back, weight.detach().numpy())


# Embedding Projector


def projector_files(tokens=TOKENS, d: int = 6):
    values = table(len(tokens), d)
    classes = [None if i % 5 == 0 else f"class {i % 3}" for i in range(len(tokens))]
    frequencies = np.arange(len(tokens), dtype=np.int64) * 7
    return values, classes, frequencies, projector_tsv(values, tokens=tokens, classes=classes,
                                                       frequencies=frequencies)


def test_projector_round_trips_exactly():
    values, classes, frequencies, (vectors, metadata) = projector_files()
    back, records = read_projector_tsv(vectors, metadata)
    assert back.dtype == np.float32 and np.array_equal(back, values)
    assert [r["frequency"] for r in records] == [str(f) for f in frequencies]
    assert [r["class"] for r in records] == ["" if c is None else c for c in classes]
    visible = [t.replace("\t", "⇥").replace("\n", "↵").replace("\r", "␍") for t in TOKENS]
    assert [r["token"] for r in records] == visible


@pytest.mark.parametrize("tokens", [TOKENS, AWKWARD, ["only"], ["", ""]],
                         ids=["tokens", "awkward", "one", "empty"])
def test_projector_files_have_one_line_per_row(tokens):
    _, _, _, (vectors, metadata) = projector_files(tokens)
    vector_lines = vectors.decode().split("\n")
    meta_lines = metadata.decode().split("\n")
    # as the Projector reads them: split on \n, then on \t; the last line is empty (trailing newline)
    assert vector_lines[-1] == "" and meta_lines[-1] == ""
    assert len(vector_lines) - 1 == len(tokens) and len(meta_lines) - 2 == len(tokens)
    assert meta_lines[0] == "token\tclass\tfrequency"
    assert all(line.count("\t") == 2 for line in meta_lines[:-1])
    assert all(len(line.split("\t")) == 6 for line in vector_lines[:-1])
    assert b"\r" not in metadata and b"\r" not in vectors


def test_projector_accepts_float_frequencies_and_float64_tables():
    values = np.random.default_rng(1).standard_normal((3, 2))
    vectors, metadata = projector_tsv(values, tokens=["a", "b", "c"], classes=["x", "y", "z"],
                                      frequencies=[1.0, 2.5, 3])
    back, records = read_projector_tsv(vectors, metadata)
    assert np.array_equal(back, values.astype(np.float32))
    assert [r["frequency"] for r in records] == ["1", "2.5", "3"]


@pytest.mark.parametrize(
    "values, match",
    [(np.zeros((2, 1), np.float32), "at least 2 dimensions"),
     (np.zeros((0, 2), np.float32), "at least one row"),
     (np.array([[np.nan, 1], [0, 1]], np.float32), "NaN"),
     (np.array([[np.inf, 1], [0, 1]], np.float32), "NaN or infinite")],
)
def test_projector_refuses_what_it_cannot_show(values, match):
    n = len(values)
    with pytest.raises(ValueError, match=match):
        projector_tsv(values, tokens=["a"] * n, classes=["x"] * n, frequencies=[1] * n)


def test_projector_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="needs 2 tokens"):
        projector_tsv(np.zeros((2, 2)), tokens=["a"], classes=["x", "y"], frequencies=[1, 2])


@pytest.mark.parametrize(
    "vectors, metadata, match",
    [(b"1\t2\n3\n", b"token\tclass\tfrequency\na\tx\t1\nb\tx\t1\n", "same number"),
     (b"1\t2\n", b"token\tclass\tfrequency\na\tx\t1\nb\tx\t1\n", "describes 2 rows"),
     (b"1\t2\n", b"label\tclass\tfrequency\na\tx\t1\n", "header"),
     (b"1\t2\n", b"token\tclass\tfrequency\na\tx\n", "2 fields"),
     (b"1\tx\n", b"token\tclass\tfrequency\na\tx\t1\n", "not a number"),
     (b"1\t2", b"token\tclass\tfrequency\na\tx\t1\n", "newline"),
     (b"1\t2\r\n", b"token\tclass\tfrequency\na\tx\t1\n", "newline"),
     (b"1\t2\n\n", b"token\tclass\tfrequency\na\tx\t1\n", "empty line"),
     (b"\xff\n", b"token\tclass\tfrequency\n", "UTF-8")],
)
def test_reading_projector_files_is_strict(vectors, metadata, match):
    with pytest.raises(ValueError, match=match):
        read_projector_tsv(vectors, metadata)


# safetensors


def trained(cfg: ModelConfig = CFG) -> TinyGPT:
    """A model whose weights differ from TinyGPT(cfg)'s fresh ones, so loading must really load them."""
    model = TinyGPT(cfg)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=generator))
    return model.eval()


def idx(cfg: ModelConfig = CFG) -> torch.Tensor:
    e = cfg.embedding
    return torch.randint(0, e.vocab_size, (3, e.positions), generator=torch.Generator().manual_seed(0))


def header(data: bytes) -> dict:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size])


@pytest.mark.parametrize(
    "cfg",
    [CFG, ModelConfig(embedding=EmbeddingConfig(vocab_size=20, dim=12, positions=5), n_layer=2, n_head=3,
                      positional="sinusoidal")],
    ids=["learned", "sinusoidal-2-layers"],
)
def test_safetensors_round_trip_gives_identical_logits(cfg):
    model = trained(cfg)
    data = model_safetensors(model, metadata={"corpus": "toy-world", "steps": "300"})
    loaded = load_model_safetensors(data, cfg, max_bytes=MAX_BYTES)
    assert not loaded.training
    assert loaded.lm_head.weight is loaded.wte.weight
    with torch.no_grad():
        assert torch.equal(loaded(idx(cfg))[0], model(idx(cfg))[0])
        assert not torch.equal(TinyGPT(cfg).eval()(idx(cfg))[0], model(idx(cfg))[0])
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_safetensors_stores_the_tied_head_once_with_metadata():
    data = model_safetensors(trained(), metadata={"corpus": "toy-world"})
    head = header(data)
    assert "lm_head.weight" not in head and "wte.weight" in head
    assert head["__metadata__"]["corpus"] == "toy-world" and head["__metadata__"]["format"] == "pt"
    assert json.loads(head["__metadata__"]["tied"]) == {"lm_head.weight": "wte.weight"}
    assert data.count(b"pickle") == 0


def test_safetensors_metadata_cannot_hide_the_tie():
    head = header(model_safetensors(trained(), metadata={"tied": "{}", "format": "np"}))
    assert head["__metadata__"]["format"] == "pt" and head["__metadata__"]["tied"] != "{}"


def test_safetensors_metadata_must_be_strings():
    with pytest.raises(ValueError, match="strings"):
        model_safetensors(trained(), metadata={"steps": 300})


def test_loading_refuses_an_oversized_file():
    data = model_safetensors(trained(), metadata={})
    with pytest.raises(ValueError, match="limit"):
        load_model_safetensors(data, CFG, max_bytes=len(data) - 1)
    assert load_model_safetensors(data, CFG, max_bytes=len(data)) is not None


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", b"\xff" * 8 + b"{}", (10).to_bytes(8, "little") + b'{"a":1}   '],
    ids=["empty", "text", "huge-header", "bad-json"],
)
def test_loading_refuses_garbage(data):
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_model_safetensors(data, CFG, max_bytes=MAX_BYTES)


def test_loading_refuses_a_pickle():
    buffer = io.BytesIO()
    torch.save(trained().state_dict(), buffer)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_model_safetensors(buffer.getvalue(), CFG, max_bytes=MAX_BYTES)


@pytest.mark.parametrize(
    "other, match",
    [(ModelConfig(embedding=EmbeddingConfig(vocab_size=33, dim=8, positions=4), n_head=2), r"wte\.weight is"),
     (ModelConfig(embedding=EmbeddingConfig(vocab_size=32, dim=8, positions=5), n_head=2), r"wpe\.weight is"),
     (ModelConfig(embedding=EmbeddingConfig(vocab_size=32, dim=16, positions=4), n_head=2),
      "is torch.float32"),
     (ModelConfig(embedding=EmbeddingConfig(vocab_size=32, dim=8, positions=4), n_layer=2, n_head=2),
      r"missing blocks\.1\.")],
    ids=["vocab", "positions", "dim", "layers"],
)
def test_loading_refuses_another_models_weights(other, match):
    data = model_safetensors(trained(), metadata={})
    with pytest.raises(ValueError, match=match) as info:
        load_model_safetensors(data, other, max_bytes=MAX_BYTES)
    assert "settings the model was trained with" in str(info.value)


def test_loading_refuses_extra_missing_and_retyped_tensors():
    state = {k: v.contiguous() for k, v in trained().state_dict().items() if k != "lm_head.weight"}
    extra = save_safetensors({**state, "surprise": torch.zeros(2)})
    with pytest.raises(ValueError, match="unexpected surprise"):
        load_model_safetensors(extra, CFG, max_bytes=MAX_BYTES)
    missing = save_safetensors({k: v for k, v in state.items() if k != "ln_f.bias"})
    with pytest.raises(ValueError, match=r"missing ln_f\.bias"):
        load_model_safetensors(missing, CFG, max_bytes=MAX_BYTES)
    retyped = save_safetensors({**state, "ln_f.weight": state["ln_f.weight"].double()})
    with pytest.raises(ValueError, match=r"ln_f\.weight is torch\.float64"):
        load_model_safetensors(retyped, CFG, max_bytes=MAX_BYTES)


# zip


def test_zip_bundle_holds_every_file_and_is_reproducible():
    values, classes, frequencies, (vectors, metadata) = projector_files()
    files = {
        "wte_before.csv": to_csv(values, row_labels=TOKENS),
        "wte_before.npy": to_npy(values),
        "projector/vectors.tsv": vectors,
        "projector/metadata.tsv": metadata,
        "model.safetensors": model_safetensors(trained(), metadata={}),
    }
    data = zip_bundle(files)
    assert zip_bundle(files) == data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == list(files)
        assert {name: archive.read(name) for name in files} == files
        loaded = load_model_safetensors(archive.read("model.safetensors"), CFG, max_bytes=MAX_BYTES)
        assert torch.equal(loaded.wte.weight, trained().wte.weight)


@pytest.mark.parametrize("name", ["", "/etc/passwd", "../up.csv", "a/../b.csv", "a\\b.csv", "a//b",
                                  "dir/"])
def test_zip_bundle_refuses_unsafe_names(name):
    with pytest.raises(ValueError, match="not a safe file name"):
        zip_bundle({name: b"x"})


def test_training_files_hold_every_table_and_load_back():
    cfg = ModelConfig(EmbeddingConfig(vocab_size=16, dim=8, positions=4, seed=1), n_layer=1, n_head=2)
    rows = np.arange(400) % 16
    result = train(cfg, TrainConfig(steps=5, batch_size=4, eval_every=5, snapshot_every=5), rows)
    labels = [f"t{i}" for i in range(16)]
    files = training_files(snapshots=result.snapshots, row_labels=labels, drawn_rows=[3, 1, 2],
                           classes=["a", "b", None], frequencies=[9, 8, 7], model=result.model,
                           metadata={"corpus": "test"}, batch_rows=np.array([[1, 2, 3], [4, 0, 0]]))
    assert {"wte_before.csv", "wte_after.npy", "wpe_after.csv", "projector/vectors.tsv",
            "model.safetensors"} <= set(files)
    last = result.snapshots[-1]
    vectors, meta = read_projector_tsv(files["projector/vectors.tsv"], files["projector/metadata.tsv"])
    np.testing.assert_array_equal(vectors, last.wte[[3, 1, 2]])
    assert [m["token"] for m in meta] == ["t3", "t1", "t2"]
    x_after = np.load(io.BytesIO(files["x_after.npy"]), allow_pickle=False)
    np.testing.assert_array_equal(x_after[0, 1], last.wte[2] + last.wpe[1])
    assert x_after.shape == (2, 3, 8)
    loaded = load_model_safetensors(files["model.safetensors"], cfg, max_bytes=10_000_000)
    assert torch.equal(loaded.wte.weight, result.model.wte.weight)


def test_training_files_without_an_added_position_table():
    """rope, alibi and none add nothing to x: no wpe files, and x is the token rows alone."""
    rope = ModelConfig(EmbeddingConfig(vocab_size=6, dim=4, positions=3), n_head=2, positional="rope")
    rng = np.random.default_rng(0)
    wte0, wte1 = rng.standard_normal((2, 6, 4)).astype(np.float32)  # (V, d) each
    snapshots = [Snapshot(step=0, wte=wte0, wpe=None), Snapshot(step=10, wte=wte1, wpe=None)]
    batch_rows = np.array([[5, 0, 3], [1, 1, 2]])  # (B, T)
    files = training_files(snapshots=snapshots, row_labels=[f"t{i}" for i in range(6)], drawn_rows=[0, 5],
                           classes=["a", None], frequencies=[3, 1], model=TinyGPT(rope), metadata={},
                           batch_rows=batch_rows)
    assert set(files) == {"wte_before.csv", "wte_before.npy", "wte_after.csv", "wte_after.npy",
                          "projector/vectors.tsv", "projector/metadata.tsv", "x_before.npy", "x_after.npy",
                          "model.safetensors"}
    for name, wte in (("x_before", wte0), ("x_after", wte1)):
        x = np.load(io.BytesIO(files[f"{name}.npy"]), allow_pickle=False)
        assert x.shape == (2, 3, 4) and np.array_equal(x, wte[batch_rows])
    assert np.array_equal(np.load(io.BytesIO(files["wte_after.npy"]), allow_pickle=False), wte1)

"""Models read for an audit, never by unpickling: every format gives back the predictions of the
model that was saved, gradients flow through the module of a network in the data's own space,
and a hostile or inconsistent file is one line, exit 2."""

from __future__ import annotations

import io as _io
import json
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from poisonguard import io
from poisonguard.audits import as_audited, inputs_for, load_audited
from poisonguard.audits.load import _files as load_mod
from poisonguard.cli import main
from poisonguard.datasets import load_dataset
from poisonguard.defenses.store import load_model
from poisonguard.errors import InputError

torch = pytest.importorskip("torch")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    folder = tmp_path_factory.mktemp("digits")
    ds = load_dataset("digits").take(np.arange(300))
    io.save(ds, folder / "clean.npz")
    return folder / "clean.npz", ds


def _net(kind: str, shape: tuple[int, ...], k: int, width: int) -> Any:
    from poisonguard.models._loop import make_net

    torch.manual_seed(0)
    return make_net(kind, shape, k, width).eval()


def _save_weights(tmp_path: Path, net: Any, arch: dict[str, Any]) -> tuple[Path, Path]:
    st = pytest.importorskip("safetensors.torch")
    weights, spec = tmp_path / "w.safetensors", tmp_path / "arch.json"
    st.save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    spec.write_text(json.dumps(arch))
    return weights, spec


# ------------------------------------------------------------------------------ round trips
def test_safetensors_mlp_round_trips_and_gives_gradients(tmp_path: Path) -> None:
    net = _net("mlp", (5,), 3, 8)
    weights, spec = _save_weights(tmp_path, net, {"kind": "mlp", "input_shape": [5], "width": 8,
                                                  "classes": ["a", "b", "c"], "scale": 2.0})
    model = load_audited(weights, arch=spec)
    X = np.random.default_rng(0).normal(size=(7, 5))
    with torch.no_grad():
        want = torch.softmax(net(torch.tensor(X / 2.0, dtype=torch.float32)), 1).numpy()
    assert np.allclose(model.predict_proba(X), want, atol=1e-6)
    assert model.classes.tolist() == ["a", "b", "c"] and model.input_shape == (5,)
    assert model.modality == "tabular" and model.module is not None
    x = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    model.module(x)[:, 1].sum().backward()
    assert x.grad is not None and x.grad.shape == (7, 5) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 3)])
def test_safetensors_cnn_takes_channels_last_images(tmp_path: Path, shape: tuple[int, ...]) -> None:
    net = _net("cnn", shape, 4, 4)
    weights, spec = _save_weights(tmp_path, net, {"format": "poisonguard-arch/1", "kind": "cnn",
                                                  "input_shape": list(shape), "width": 4,
                                                  "n_classes": 4})
    model = load_audited(weights, arch=spec)
    X = np.random.default_rng(1).random((5, *shape))
    nchw = X[:, None] if len(shape) == 2 else np.moveaxis(X, -1, 1)
    with torch.no_grad():
        want = torch.softmax(net(torch.tensor(nchw, dtype=torch.float32)), 1).numpy()
    assert np.allclose(model.predict_proba(X), want, atol=1e-6)
    assert model.modality == "image" and model.input_shape == shape
    assert model.classes.tolist() == [0, 1, 2, 3]


def _onnx_mlp(path: Path, *, softmax: bool, d: int = 4, k: int = 3, symbolic: bool = True) -> Any:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    w1, b1 = rng.normal(size=(d, 6)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    w2, b2 = rng.normal(size=(6, k)).astype(np.float32), rng.normal(size=k).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h2"]), helper.make_node("MatMul", ["h2", "w2"], ["z0"]),
             helper.make_node("Add", ["z0", "b2"], ["z" if softmax else "logits"])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["logits"], axis=1))
    n = "n" if symbolic else 1
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, d])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [n, k])],
        [numpy_helper.from_array(a, name) for a, name in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())

    def reference(X: np.ndarray) -> np.ndarray:
        z = np.maximum(X @ w1 + b1, 0) @ w2 + b2
        return _softmax(z.astype(np.float64))

    return reference


@pytest.mark.parametrize("softmax", [False, True])
def test_onnx_round_trips_logits_or_probabilities(tmp_path: Path, softmax: bool) -> None:
    reference = _onnx_mlp(tmp_path / "m.onnx", softmax=softmax)
    model = load_audited(tmp_path / "m.onnx", classes=["x", "y", "z"])
    X = np.random.default_rng(3).normal(size=(9, 4))
    assert np.allclose(model.predict_proba(X), reference(X), atol=1e-5)
    assert model.module is None and model.classes.tolist() == ["x", "y", "z"]
    assert load_audited(tmp_path / "m.onnx").classes.tolist() == [0, 1, 2]
    with pytest.raises(InputError, match=r"--classes: 2 given, the model .* has 3 outputs"):
        load_audited(tmp_path / "m.onnx", classes=[0, 1])


def test_onnx_flat_model_takes_images_of_the_data_s_shape(tmp_path: Path) -> None:
    reference = _onnx_mlp(tmp_path / "m.onnx", softmax=False, d=16)
    model = load_audited(tmp_path / "m.onnx", modality="image", input_shape=(4, 4))
    X = np.random.default_rng(4).random((3, 4, 4))
    assert model.input_shape == (4, 4) and model.modality == "image"
    assert np.allclose(model.predict_proba(X), reference(X.reshape(3, 16)), atol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_onnx_channels_first_images_are_fed_channels_first(tmp_path: Path, channels: int) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(8).normal(size=(channels * 16, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["z"])],
        "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", channels, 4, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 3])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (tmp_path / "c.onnx").write_bytes(model.SerializeToString())
    audited = load_audited(tmp_path / "c.onnx")
    shape = (4, 4) if channels == 1 else (4, 4, 3)
    assert audited.input_shape == shape and audited.modality == "image"
    X = np.random.default_rng(9).random((2, *shape))
    nchw = X[:, None] if channels == 1 else np.moveaxis(X, -1, 1)
    assert np.allclose(audited.predict_proba(X), _softmax(nchw.reshape(2, -1) @ w), atol=1e-5)


def test_skops_logistic_regression_round_trips(tmp_path: Path) -> None:
    sio = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["p", "q", "r"])
    y = np.where(X["p"] > 0, "yes", "no")
    est = LogisticRegression().fit(X, y)
    sio.dump(est, tmp_path / "lr.skops")
    model = load_audited(tmp_path / "lr.skops")
    assert model.classes.tolist() == ["no", "yes"] and model.input_shape == (3,)
    assert model.feature_names == ("p", "q", "r") and model.module is None
    assert np.allclose(model.predict_proba(X.to_numpy()), est.predict_proba(X))


@pytest.fixture(scope="module")
def hardened(digits: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hardened")
    out = {}
    for name, extra in (("mlp", ["--param", "net=mlp"]), ("cnn", ["--param", "net=cnn"]),
                        ("linear", None)):
        argv = ["harden", str(digits[0]), "--out", str(folder / name)]
        argv += (["--defense", "robust-net", "--param", "epochs=2", "--param", "width=8", *extra]
                 if extra else ["--defense", "robust-linear"])
        assert main(argv) == 0
        out[name] = folder / name
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn", "linear"])
def test_harden_output_round_trips_in_the_data_s_space(hardened: dict[str, Path],
                                                       digits: tuple[Path, Any], name: str) -> None:
    model = load_audited(hardened[name])
    est, _ = load_model(hardened[name])
    ds = digits[1]
    sample = inputs_for(model, ds)
    assert sample.X.shape == (300, 8, 8) and model.modality == "image"
    flat = np.asarray(ds.X, dtype=np.float64).reshape(300, -1)
    want = est.predict_proba(np.asarray(ds.X) if name == "cnn" else flat)
    got = model.predict_proba(sample.X)
    assert np.array_equal(got, want)
    if name == "linear":
        assert model.module is None
        return
    with torch.no_grad():
        logits = model.module(torch.tensor(sample.X, dtype=torch.float32))
    assert np.allclose(torch.softmax(logits, 1).numpy(), got, atol=1e-5)


def test_harden_output_of_a_mixed_table_takes_its_encoding(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"age": rng.integers(20, 60, 80), "city": rng.choice(["a", "b", "c"], 80),
                          "label": rng.integers(0, 2, 80)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main(["harden", str(tmp_path / "t.csv"), "--out", str(tmp_path / "m")]) == 0
    model = load_audited(tmp_path / "m")
    assert model.feature_names == ("age", "city=a", "city=b", "city=c")
    ds = io.load(tmp_path / "t.csv")
    sample = inputs_for(model, ds)
    assert sample.X.shape == (80, 4) and set(np.unique(sample.X[:, 1:])) <= {0.0, 1.0}
    est, _ = load_model(tmp_path / "m")
    assert np.allclose(model.predict_proba(sample.X), est.predict_proba(sample.X))


def test_as_audited_takes_modules_and_predict_proba_objects() -> None:
    from sklearn.linear_model import LogisticRegression

    net = _net("mlp", (3,), 2, 4)
    model = as_audited(net, input_shape=(3,))
    X = np.random.default_rng(7).normal(size=(4, 3))
    assert model.module is net and model.classes.tolist() == [0, 1]
    assert model.predict_proba(X).shape == (4, 2)
    lr = LogisticRegression().fit(X, [0, 1, 0, 1])
    assert as_audited(lr).input_shape == (3,)
    with pytest.raises(InputError, match=r"--classes 1,2: the model .* has classes 0,1"):
        as_audited(lr, classes=[1, 2])
    with pytest.raises(InputError, match="needs input_shape"):
        as_audited(net)
    with pytest.raises(InputError, match="cannot audit a str"):
        as_audited("model")
    with pytest.raises(InputError, match=r"takes inputs of shape \[3\] \(got \[2\]\)"):
        model.predict_proba(np.zeros((1, 2)))


# ------------------------------------------------------------------------------ hostile files
def _refused(capsys: pytest.CaptureFixture[str], model: Path, clean: Path, out: Path,
             *extra: str) -> str:
    capsys.readouterr()
    code = main(["audit", str(model), "--data", str(clean), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), (code, err)
    assert not out.exists()
    return err[0]


def test_skops_with_an_untrusted_type_is_refused_naming_it(tmp_path: Path, digits: tuple[Path, Any],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import fractions

    sio = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression

    est = LogisticRegression().fit(np.random.default_rng(0).normal(size=(20, 64)), np.arange(20) % 2)
    est.extra_ = fractions.Fraction(1, 3)
    sio.dump(est, tmp_path / "m.skops")
    line = _refused(capsys, tmp_path / "m.skops", digits[0], tmp_path / "out")
    assert "refusing to load types skops does not trust: fractions.Fraction" in line


@pytest.mark.parametrize("ext", [".skops", ".onnx", ".safetensors", ".pkl"])
def test_a_pickle_under_any_name_is_refused(tmp_path: Path, digits: tuple[Path, Any], ext: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"model{ext}"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    (tmp_path / "arch.json").write_text('{"kind": "mlp", "input_shape": [64], "width": 4, "n_classes": 10}')
    extra = ["--arch", str(tmp_path / "arch.json")] if ext == ".safetensors" else []
    line = _refused(capsys, path, digits[0], tmp_path / "out", *extra)
    assert "pickle" in line and "never" in line


def test_a_torch_save_archive_renamed_onnx_is_refused(tmp_path: Path, digits: tuple[Path, Any],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    torch.save(_net("mlp", (64,), 10, 4).state_dict(), tmp_path / "m.onnx")
    assert "PyTorch / pickle archive" in _refused(capsys, tmp_path / "m.onnx", digits[0], tmp_path / "o")


@pytest.mark.parametrize("arch, message", [
    ({"kind": "mlp", "input_shape": [64], "width": 5, "n_classes": 10},
     r"tensor '1.weight' has shape \[4, 64\]; --arch .* needs \[5, 64\]"),
    ({"kind": "cnn", "input_shape": [8, 8], "width": 4, "n_classes": 10},
     r"tensors do not match --arch .* \(missing: 0.bias, .*; unexpected: 1.bias, 1.weight\)"),
    ({"kind": "mlp", "input_shape": [64], "width": 4}, "give exactly one of 'classes'"),
    ({"kind": "rnn", "input_shape": [64], "width": 4, "n_classes": 10}, "'kind' must be"),
    ({"kind": "mlp", "input_shape": [64, -1], "width": 4, "n_classes": 10}, "'input_shape' must be"),
    ({"kind": "mlp", "input_shape": [64], "width": 4, "n_classes": 10, "depth": 3}, "unknown keys depth"),
    ({"input_shape": [64], "width": 4, "n_classes": 10}, "missing key 'kind'"),
    ({"kind": "mlp", "input_shape": [64], "width": 4, "n_classes": 10, "scale": 0},
     "'scale' must be positive"),
])
def test_an_arch_spec_that_does_not_fit_is_one_line(tmp_path: Path, digits: tuple[Path, Any],
                                                    capsys: pytest.CaptureFixture[str],
                                                    arch: dict[str, Any], message: str) -> None:
    weights, _ = _save_weights(tmp_path, _net("mlp", (64,), 10, 4), {})
    (tmp_path / "bad.json").write_text(json.dumps(arch))
    line = _refused(capsys, weights, digits[0], tmp_path / "out", "--arch", str(tmp_path / "bad.json"))
    assert re.search(message, line), line


def test_an_arch_spec_that_is_not_json_is_one_line(tmp_path: Path, digits: tuple[Path, Any],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    weights, _ = _save_weights(tmp_path, _net("mlp", (64,), 10, 4), {})
    (tmp_path / "bad.json").write_text("{kind: mlp")
    line = _refused(capsys, weights, digits[0], tmp_path / "out", "--arch", str(tmp_path / "bad.json"))
    assert "not a architecture spec (invalid JSON" in line or "invalid JSON" in line


def test_safetensors_whose_header_lies_is_refused(tmp_path: Path, digits: tuple[Path, Any],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    arch = {"kind": "mlp", "input_shape": [64], "width": 4, "n_classes": 10}
    weights, spec = _save_weights(tmp_path, _net("mlp", (64,), 10, 4), arch)
    raw = weights.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    header["1.weight"]["shape"] = [4000, 64000]  # far more than the file holds
    text = json.dumps(header).encode()
    weights.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])
    line = _refused(capsys, weights, digits[0], tmp_path / "out", "--arch", str(spec))
    assert "offsets do not fit its shape" in line
    weights.write_bytes(raw[:30])
    assert "not a safetensors file" in _refused(capsys, weights, digits[0], tmp_path / "out",
                                                "--arch", str(spec))


def test_safetensors_without_arch_is_one_line(tmp_path: Path, digits: tuple[Path, Any],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    weights, _ = _save_weights(tmp_path, _net("mlp", (64,), 10, 4), {})
    assert "need --arch SPEC" in _refused(capsys, weights, digits[0], tmp_path / "out")


def test_onnx_that_is_not_onnx_or_reads_other_files_is_refused(tmp_path: Path, digits: tuple[Path, Any],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    (tmp_path / "junk.onnx").write_bytes(b"\x12\x34 this is not a protobuf \xff\xfe" * 10)
    assert "not an ONNX model" in _refused(capsys, tmp_path / "junk.onnx", digits[0], tmp_path / "o")
    w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[64, 10],
                    data_location=TensorProto.EXTERNAL)
    entry = w.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "ext.onnx").write_bytes(model.SerializeToString())
    assert "external data" in _refused(capsys, tmp_path / "ext.onnx", digits[0], tmp_path / "o")
    assert onnx is not None


def test_links_folders_and_unknown_files_are_refused(tmp_path: Path, digits: tuple[Path, Any],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    reference = _onnx_mlp(tmp_path / "m.onnx", softmax=False, d=64, k=10)
    assert reference is not None
    (tmp_path / "link.onnx").symlink_to(tmp_path / "m.onnx")
    assert "is a symbolic link" in _refused(capsys, tmp_path / "link.onnx", digits[0], tmp_path / "o")
    (tmp_path / "folder").mkdir()
    assert "not a model folder" in _refused(capsys, tmp_path / "folder", digits[0], tmp_path / "o")
    (tmp_path / "m.txt").write_text("weights")
    assert "unknown model format '.txt'" in _refused(capsys, tmp_path / "m.txt", digits[0], tmp_path / "o")
    assert "no such ONNX model" in _refused(capsys, tmp_path / "gone.onnx", digits[0], tmp_path / "o")
    (tmp_path / "empty.onnx").write_bytes(b"")
    assert "file is empty" in _refused(capsys, tmp_path / "empty.onnx", digits[0], tmp_path / "o")


def test_a_model_file_over_the_size_limit_is_not_read(tmp_path: Path, digits: tuple[Path, Any],
                                                      capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _onnx_mlp(tmp_path / "m.onnx", softmax=False, d=64, k=10)
    monkeypatch.setattr(load_mod, "MODEL_MAX_BYTES", 100)
    assert "over the 100 read for a model file" in _refused(capsys, tmp_path / "m.onnx", digits[0],
                                                         tmp_path / "o")


def test_skops_that_is_not_a_zip_or_a_bomb_is_refused(tmp_path: Path, digits: tuple[Path, Any],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("skops.io")
    (tmp_path / "a.skops").write_bytes(b"not a zip archive at all")
    assert "not a skops file (not a zip archive)" in _refused(capsys, tmp_path / "a.skops", digits[0],
                                                              tmp_path / "o")
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("schema.json", "{}")
        zf.writestr("zeros.bin", b"\0" * 2**27)
    (tmp_path / "bomb.skops").write_bytes(buf.getvalue())
    assert "declares" in _refused(capsys, tmp_path / "bomb.skops", digits[0], tmp_path / "o")

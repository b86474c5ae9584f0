"""ONNX import: each supported op against onnxruntime, and clear one-line errors."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from conftest import MODELS, SAMPLE, mlp_model, save_graph
from weightfab.errors import ModelError
from weightfab.frontend.onnx_import import SUPPORTED_OPS, load_onnx


def ort_run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("trans_b, alpha, beta", [(0, 1.0, 1.0), (1, 1.0, 1.0), (1, 0.5, 2.0), (0, 2.0, 0.0)])
def test_gemm_attributes_match_onnxruntime(tmp_path, trans_b, alpha, beta):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 6) if trans_b else (6, 4)).astype(np.float32)
    c = rng.normal(size=4).astype(np.float32)
    path = save_graph(tmp_path / "g.onnx", [helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=trans_b, alpha=alpha, beta=beta)],
                [numpy_helper.from_array(w, "w"), numpy_helper.from_array(c, "c")], ["N", 6], "y", ["N", 4])
    net = load_onnx(path)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), ort_run(path, x), rtol=1e-5, atol=1e-5)


def test_matmul_add_relu_chain_and_softmax(tmp_path):
    path = mlp_model(tmp_path / "m.onnx", (6, 5, 4, 3))
    net = load_onnx(path)
    assert [l.shape for l in net.layers] == [(5, 6), (4, 5), (3, 4)]
    assert [type(o).__name__ for o in net.ops] == ["Dense", "Act", "Dense", "Act", "Dense"] and net.softmax
    x = np.random.default_rng(2).normal(size=(7, 6)).astype(np.float32)
    np.testing.assert_allclose(softmax(net.forward(x)), ort_run(path, x), rtol=1e-5, atol=1e-6)


def test_flatten_reshape_identity_and_folded_shape(tmp_path):
    """Reshape's target comes from a constant subgraph (Constant -> Identity) that is folded."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(12, 3)).astype(np.float32)
    shape = numpy_helper.from_array(np.array([-1, 12], np.int64), "s")
    nodes = [helper.make_node("Constant", [], ["s0"], value=shape),
             helper.make_node("Identity", ["s0"], ["s1"]),
             helper.make_node("Reshape", ["x", "s1"], ["r"]),
             helper.make_node("Identity", ["r"], ["i"]),
             helper.make_node("Flatten", ["i"], ["f"], axis=1),
             helper.make_node("MatMul", ["f", "w"], ["y"])]
    path = save_graph(tmp_path / "r.onnx", nodes, [numpy_helper.from_array(w, "w")], ["batch", 2, 3, 2], "y", ["batch", 3])
    net = load_onnx(path)
    assert net.input_shape == (2, 3, 2)
    x = rng.normal(size=(4, 2, 3, 2)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), ort_run(path, x), rtol=1e-5, atol=1e-5)


def test_sample_and_keras_models_match_onnxruntime():
    for path, shape in [(SAMPLE, (8, 8)), (MODELS / "mnist_mlp_keras2onnx.onnx", (28, 28, 1))]:
        net = load_onnx(path)
        x = np.random.default_rng(4).uniform(0, 16, size=(6, *shape)).astype(np.float32)
        np.testing.assert_allclose(softmax(net.forward(x)), ort_run(path, x), rtol=1e-4, atol=1e-5)


def test_unsupported_op_names_node_op_and_supported_list(tmp_path):
    nodes = [helper.make_node("Tanh", ["x"], ["y"], name="squash")]
    path = save_graph(tmp_path / "s.onnx", nodes, [], ["N", 4], "y", ["N", 4])
    with pytest.raises(ModelError) as err:
        load_onnx(path)
    msg = str(err.value)
    assert "\n" not in msg and "'squash'" in msg and "Tanh" in msg and str(path) in msg
    assert all(op in msg for op in SUPPORTED_OPS)


def test_nan_weights_are_refused_naming_the_node(tmp_path):
    w = np.ones((4, 2), np.float32)
    w[1, 1] = np.nan
    path = save_graph(tmp_path / "n.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"], name="bad_mm")],
                [numpy_helper.from_array(w, "w")], ["N", 4], "y", ["N", 2])
    with pytest.raises(ModelError, match=r"'bad_mm'.*NaN"):
        load_onnx(path)


@pytest.mark.parametrize("content, expect", [(b"", "invalid ONNX model|not a readable"),
                                             (b"\x00garbage\xff" * 10, "not a readable|invalid")])
def test_malformed_files(tmp_path, content, expect):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=expect):
        load_onnx(path)


def test_missing_file():
    with pytest.raises(ModelError, match="no such file"):
        load_onnx("/nonexistent/model.onnx")

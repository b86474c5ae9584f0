"""Quantized models computed as onnxruntime computes them: the integer simulation's output codes
against onnxruntime's on the QDQ models (shared ones and ones made with onnxruntime.quantization)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import DATA, MODELS
from weightfab.frontend.onnx_import import load_onnx
from weightfab.quant.quantize import quantize, quantize_input, run_integer


def cut_at_softmax(path) -> bytes:
    """The model up to the input of its Softmax (the codes onnxruntime computes before it)."""
    m = onnx.load(str(path))
    g = m.graph
    sm = [i for i, n in enumerate(g.node) if n.op_type in ("Softmax", "QLinearSoftmax")]
    if sm:
        src = g.node[sm[0]].input[0]
        keep = list(g.node)[:sm[0]]
        del g.node[:]
        g.node.extend(keep)
        g.output[0].name = src
        del g.output[0].type.tensor_type.shape.dim[:]
    return m.SerializeToString()


def ort_run(model, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    if isinstance(inp.shape[0], int):  # fixed batch: one sample at a time
        return np.concatenate([sess.run(None, {inp.name: x[i:i + inp.shape[0]]})[0] for i in range(len(x))])
    return sess.run(None, {inp.name: x})[0]


def agreement(path, x, calib=None):
    """(share of output codes equal, share of equal arg-max) between the chip's integers and onnxruntime."""
    q = quantize(load_onnx(path), x if calib is None else calib)
    ours = run_integer(q, x)
    ref = np.rint(ort_run(cut_at_softmax(path), x).reshape(len(x), -1) / q.tq[q.output].scale).astype(np.int64)
    return float(np.mean(ours == ref)), float(np.mean(ours.argmax(1) == ref.argmax(1)))


def mnist_inputs(n):
    m = np.load(DATA / "mnist_t10k.npz")
    return ((m["images"][:n].astype(np.float32) / 255 - 0.1307) / 0.3081).reshape(-1, 1, 28, 28)


SHARED_QDQ = {
    "mnist_tinycnn_pytorch_qdq_opset17": lambda: mnist_inputs(1000),
    # no data ships with it: MFCC-like features, the model's own input quantizer sets the grid
    "mlperftiny_kws_dscnn_int8_qdq_tf2onnx": lambda: np.random.default_rng(0).normal(0, 1, (300, 490)).astype(np.float32),
}


@pytest.mark.parametrize("name", list(SHARED_QDQ))
def test_shared_qdq_model_codes_equal_onnxruntime(name):
    codes, argmax = agreement(MODELS / f"{name}.onnx", SHARED_QDQ[name]())
    assert codes >= 0.999 and argmax == 1.0, (codes, argmax)


def cifar(n=None):
    c = np.load(DATA / "cifar10_test_first846.npz")
    return c["images"][:n].astype(np.float32).transpose(0, 3, 1, 2), c["labels"][:n].astype(np.int64)


@pytest.fixture(scope="module")
def resnet8_op13(tmp_path_factory):
    from onnx import version_converter
    out = tmp_path_factory.mktemp("r8") / "resnet8_op13.onnx"
    onnx.save(version_converter.convert_version(onnx.load(MODELS / "mlperftiny_resnet8_fp32_tflite2onnx.onnx"), 13), out)
    return out


def quantize_static_model(src, dst, fmt, calib):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input_1": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(src), str(dst), Reader(), quant_format=getattr(QuantFormat, fmt), per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return dst


@pytest.mark.slow
def test_resnet8_qdq_from_quantize_static_agrees_with_onnxruntime(resnet8_op13, tmp_path):
    """Residual QLinearAdd and the 8x8 average pool round once, ties to even. What is left is
    onnxruntime's float32 requantization (measured 99.35 % of codes on all 846 images)."""
    x, _ = cifar()
    path = quantize_static_model(resnet8_op13, tmp_path / "r8_qdq.onnx", "QDQ", x[:100])
    codes, argmax = agreement(path, x[423:])
    assert codes >= 0.99 and argmax == 1.0, (codes, argmax)


def qdq(x, scale, zp, name, dtype=TensorProto.UINT8):
    """QuantizeLinear -> DequantizeLinear nodes and their constants for tensor ``x``."""
    inits = [helper.make_tensor(f"{name}_s", TensorProto.FLOAT, [], [scale]),
             helper.make_tensor(f"{name}_z", dtype, [], [zp])]
    nodes = [helper.make_node("QuantizeLinear", [x, f"{name}_s", f"{name}_z"], [f"{name}_q"]),
             helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"])]
    return nodes, inits


def qdq_weight(w, name):
    s = np.abs(w).max(axis=0) / 127
    q = np.clip(np.rint(w / s), -127, 127).astype(np.int8)
    inits = [numpy_helper.from_array(q, f"{name}_q"), numpy_helper.from_array(s.astype(np.float32), f"{name}_s"),
             numpy_helper.from_array(np.zeros(len(s), np.int8), f"{name}_z")]
    return [helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"], axis=1)], inits


def save(path, nodes, inits, in_shape, out, out_shape, opset=13):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def test_layout_op_before_the_first_quantizer_quantizes_the_input_once(tmp_path):
    """Reshape -> QuantizeLinear: the input takes the model's grid (no calibrated grid before it)."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (12, 5)).astype(np.float32)
    n0, i0 = qdq("r", 0.0173, 3, "in")
    nw, iw = qdq_weight(w, "w")
    n1, i1 = qdq("y", 0.041, 128, "out")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), *n0, *nw,
             helper.make_node("MatMul", ["in_dq", "w_dq"], ["y"]), *n1]
    path = save(tmp_path / "m.onnx", nodes, [numpy_helper.from_array(np.array([-1, 12], np.int64), "shape"), *i0, *iw, *i1],
                ["N", 3, 4], "out_dq", ["N", 5])
    x = rng.uniform(-0.5, 4, (400, 3, 4)).astype(np.float32)
    q = quantize(load_onnx(path), x)
    assert q.tq[q.input_name].scale == pytest.approx(0.0173)
    assert np.array_equal(quantize_input(q, x).reshape(len(x), -1) + 3,
                          np.clip(np.rint(x.reshape(len(x), -1) / np.float32(0.0173)) + 3, 0, 255))
    codes, argmax = agreement(path, x)
    assert codes == 1.0 and argmax == 1.0


def test_residual_add_rounds_once_as_qlinearadd(tmp_path):
    """Two quantized branches added and requantized: one rounding, like onnxruntime's QLinearAdd
    (rounding each operand first differs on a fifth of the codes here: 79.7 % equal)."""
    rng = np.random.default_rng(1)
    n0, i0 = qdq("x", 0.02, 128, "in")
    na, ia = qdq_weight(rng.normal(0, 0.4, (16, 16)).astype(np.float32), "wa")
    nb, ib = qdq_weight(rng.normal(0, 0.4, (16, 16)).astype(np.float32), "wb")
    qa, ja = qdq("a", 0.0131, 120, "qa")
    qb, jb = qdq("b", 0.0077, 131, "qb")
    qc, jc = qdq("c", 0.0213, 127, "qc")
    nodes = [*n0, *na, *nb, helper.make_node("MatMul", ["in_dq", "wa_dq"], ["a"]), *qa,
             helper.make_node("MatMul", ["in_dq", "wb_dq"], ["b"]), *qb,
             helper.make_node("Add", ["qa_dq", "qb_dq"], ["c"]), *qc]
    path = save(tmp_path / "add.onnx", nodes, [*i0, *ia, *ib, *ja, *jb, *jc], ["N", 16], "qc_dq", ["N", 16])
    x = rng.normal(0, 1, (500, 16)).astype(np.float32)
    codes, argmax = agreement(path, x)
    assert codes >= 0.999 and argmax == 1.0, (codes, argmax)


def test_float16_model_verifies_with_the_onnxruntime_oracle(tmp_path):
    from weightfab.flow.compile import compile as run_compile
    from weightfab.flow.verify import verify

    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.5, (6, 4)).astype(np.float16)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "h",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["N", 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["N", 4])],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "h.onnx")
    x = rng.normal(0, 1, (64, 6)).astype(np.float32)
    y = (x.astype(np.float16) @ w).argmax(1)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    run_compile(tmp_path / "h.onnx", tmp_path / "h.gds", data=tmp_path / "d.npz", drc=False)
    res = verify(tmp_path / "h.gds", tmp_path / "h.onnx", data=tmp_path / "d.npz")
    assert res.readback.ok and res.accuracy["onnxruntime"] == 1.0

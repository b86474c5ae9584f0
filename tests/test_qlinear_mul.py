"""QLinearMul (com.microsoft, operator format): an activation times a quantized constant (a scale,
per tensor or per channel) is computed as onnxruntime computes it; two activations are refused."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from test_qformats import Reader, agreement
from weightfab.errors import ModelError
from weightfab.frontend.network import MulConst
from weightfab.frontend.onnx_import import load_onnx

MS = "com.microsoft"


def inputs(n=400, seed=0):
    return np.random.default_rng(seed).normal(0, 1, (n, 4, 3, 3)).astype(np.float32)


def mul_model(tmp_path, const_shape=(4, 1, 1), both_activations=False):
    """x -> QuantizeLinear -> QLinearMul(x_q, constant codes) -> QLinearMatMul -> DequantizeLinear."""
    rng = np.random.default_rng(1)
    f = lambda name, v: numpy_helper.from_array(np.asarray(v, np.float32), name)  # noqa: E731
    u8 = lambda name, v: numpy_helper.from_array(np.asarray(v, np.uint8), name)   # noqa: E731
    w = rng.integers(-127, 128, (36, 5)).astype(np.int8)
    inits = [f("xs", 0.02), u8("xz", 128), u8("cq", rng.integers(0, 256, const_shape)), f("cs", 0.013), u8("cz", 40),
             f("ms", 0.05), u8("mz", 120), numpy_helper.from_array(w, "wq"), f("ws", rng.uniform(0.002, 0.01, 5)),
             numpy_helper.from_array(np.zeros(5, np.int8), "wz"), f("ys", 0.2), u8("yz", 128),
             numpy_helper.from_array(np.asarray([-1, 36], np.int64), "shape")]
    other = ["xq", "xs", "xz"] if both_activations else ["cq", "cs", "cz"]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("QLinearMul", ["xq", "xs", "xz", *other, "ms", "mz"], ["mq"], domain=MS, name="scale_mul"),
             helper.make_node("Reshape", ["mq", "shape"], ["fq"]),
             helper.make_node("QLinearMatMul", ["fq", "ms", "mz", "wq", "ws", "wz", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(MS, 1)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "mul.onnx")
    return tmp_path / "mul.onnx"


@pytest.mark.parametrize("const_shape", [(4, 1, 1), (1, 4, 1, 1), (1,), (4, 3, 3)])
def test_qlinear_mul_by_a_constant_matches_onnxruntime(tmp_path, const_shape):
    """Per-channel, per-tensor and element-wise constants: every output code equals onnxruntime's."""
    path = mul_model(tmp_path, const_shape)
    net = load_onnx(path)
    assert any(isinstance(o, MulConst) for o in net.ops)
    codes, argmax = agreement(path, inputs())
    assert codes == 1.0 and argmax == 1.0, (codes, argmax)


def test_qlinear_mul_of_two_activations_is_refused_in_one_line(tmp_path):
    with pytest.raises(ModelError, match=r"node 'scale_mul' \(QLinearMul\): both operands are activations") as err:
        load_onnx(mul_model(tmp_path, both_activations=True))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("fmt, op", [("QOperator", "QLinearMul"), ("QDQ", "Mul")])
def test_quantize_static_per_channel_mul_matches_onnxruntime(tmp_path, fmt, op):
    """Conv -> Mul by a per-channel constant -> Relu -> MatMul through quantize_static: QOperator writes
    QLinearConv, QLinearMul (com.microsoft) and QLinearMatMul; QDQ a Mul between DequantizeLinear of the
    activation and of the quantized constant. Measured: 100 % of output codes equal onnxruntime's."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    rng = np.random.default_rng(2)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (8, 4, 2, 2)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.uniform(0.2, 2.0, (8, 1, 1)).astype(np.float32), "s"),
             numpy_helper.from_array(rng.normal(0, 0.2, (32, 10)).astype(np.float32), "W2")]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"]), helper.make_node("Mul", ["c", "s"], ["m"]),
             helper.make_node("Relu", ["m"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("MatMul", ["f", "W2"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 3, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "f.onnx")
    x = inputs(600)
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(x[:100]), quant_format=getattr(QuantFormat, fmt),
                    op_types_to_quantize=["Conv", "Mul", "Relu", "MatMul"], per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    assert op in [n.op_type for n in onnx.load(tmp_path / "q.onnx").graph.node]
    assert any(isinstance(o, MulConst) for o in load_onnx(tmp_path / "q.onnx").ops)
    codes, argmax = agreement(tmp_path / "q.onnx", x[100:], x[:100])
    assert codes >= 0.999 and argmax == 1.0, (codes, argmax)

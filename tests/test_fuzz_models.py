"""Fuzzing the importer and the flow with mutated small models (hypothesis).

Valid small models (an MLP and a CNN) are mutated: tensor dimensions, attributes, data types, op types,
removed nodes, and truncated or corrupted bytes. Every outcome must be a success (a complete layout)
or one line ``error: ...`` with exit 1: never a traceback, an internal error, a hang or a file left
behind. A bounded, derandomized number of examples keeps the run to about a minute."""
from __future__ import annotations

import resource
import signal
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from conftest import mlp_model
from test_hardening_models import _cnn_for_opset

from weightfab.cli.main import main
from weightfab.flow.outputs import check_layout_file

EXAMPLES = 120
HANG_SECONDS = 60

DTYPES = [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.INT8, TensorProto.UINT8,
          TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL, TensorProto.STRING, TensorProto.BFLOAT16]
ATTRS = ["kernel_shape", "strides", "pads", "dilations", "group", "axis", "transA", "transB", "alpha", "beta",
         "perm", "epsilon", "auto_pad", "ceil_mode", "min", "max", "keepdims", "to"]
OPS = ["Gemm", "MatMul", "Conv", "Relu", "Add", "MaxPool", "AveragePool", "Flatten", "Reshape", "Softmax",
       "Transpose", "BatchNormalization", "Clip", "Sigmoid", "Identity", "GlobalAveragePool", "Mul", "Squeeze"]


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    d = tmp_path_factory.mktemp("bases")
    mlp = onnx.load(mlp_model(d / "mlp.onnx", sizes=(8, 6, 3)))
    cnn = helper.make_model(_cnn_for_opset(13), opset_imports=[helper.make_opsetid("", 13)])
    rng = np.random.default_rng(0)
    np.savez(d / "mlp.npz", x=rng.normal(size=(8, 8)).astype(np.float32))
    np.savez(d / "cnn.npz", x=rng.normal(size=(8, 1, 4, 4)).astype(np.float32))
    return {"mlp": (mlp, d / "mlp.npz"), "cnn": (cnn, d / "cnn.npz")}


@st.composite
def mutation(draw):
    kind = draw(st.sampled_from(["dims", "input_dims", "attribute", "dtype", "op", "drop", "truncate", "flip"]))
    return kind, draw(st.integers(0, 10**6)), draw(st.integers(-3, 70)), draw(st.integers(0, 10**6))


def mutate(model: onnx.ModelProto, kind: str, pick: int, value: int, extra: int) -> bytes:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    if kind == "dims" and g.initializer:
        t = g.initializer[pick % len(g.initializer)]
        arr = numpy_helper.to_array(t)
        if arr.ndim and extra % 2:  # a consistent tensor of another shape (passes the checker)
            shape = list(arr.shape)
            shape[extra % arr.ndim] = max(value % 12, 0)
            new = numpy_helper.from_array(np.random.default_rng(extra).normal(size=shape).astype(arr.dtype), t.name)
            t.CopyFrom(new)
        elif t.dims:  # declared dims that do not match the data
            t.dims[extra % len(t.dims)] = max(value, 0)
    elif kind == "input_dims":
        dims = g.input[0].type.tensor_type.shape.dim
        d = dims[pick % len(dims)]
        if extra % 4 == 0:
            d.dim_param = "S"
        else:
            d.dim_value = max(value, 0)
    elif kind == "attribute" and extra % 3 and any(n.attribute for n in g.node):
        nodes = [n for n in g.node if n.attribute]  # an existing attribute, same type, another value
        a = nodes[pick % len(nodes)].attribute[extra % len(nodes[pick % len(nodes)].attribute)]
        if a.type == onnx.AttributeProto.INT:
            a.i = value
        elif a.type == onnx.AttributeProto.INTS:
            a.ints[extra % max(1, len(a.ints))] = value
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = float(value) / 7 if extra % 5 else float("nan")
    elif kind == "attribute":
        node = g.node[pick % len(g.node)]
        name = ATTRS[extra % len(ATTRS)]
        keep = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend(keep)
        form = extra % 3
        node.attribute.append(helper.make_attribute(name, value if form == 0 else [value] * (1 + extra % 4)
                                                    if form == 1 else float(value) / 7))
    elif kind == "dtype":
        if extra % 3 == 1 and g.initializer:  # declared type changed, data kept
            g.initializer[pick % len(g.initializer)].data_type = DTYPES[value % len(DTYPES)]
        elif extra % 3 == 2 and g.initializer:  # the data converted to another numeric type
            t = g.initializer[pick % len(g.initializer)]
            arr = numpy_helper.to_array(t)
            to = [np.float64, np.float16, np.int8, np.int64, np.uint8, np.int32][value % 6]
            t.CopyFrom(numpy_helper.from_array(arr.astype(to), t.name))
        else:
            g.input[0].type.tensor_type.elem_type = DTYPES[value % len(DTYPES)]
    elif kind == "op":
        g.node[pick % len(g.node)].op_type = OPS[value % len(OPS)]
    elif kind == "drop":
        del g.node[pick % len(g.node)]
    data = m.SerializeToString()
    if kind == "truncate":
        data = data[: pick % len(data)]
    elif kind == "flip":
        b = bytearray(data)
        for i in range(1 + extra % 8):
            b[(pick + i * 7919) % len(b)] ^= 1 << (value % 8)
        data = bytes(b)
    return data


def _mapped_bytes() -> int:
    """The process's virtual size now (VmSize in /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.fixture
def limits():
    """An address-space limit (a mutation may ask for huge tensors) and an alarm against hangs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    # 6 GiB on top of what this process already maps: after hundreds of tests (onnxruntime arenas,
    # KLayout, thread stacks) a fixed 6 GiB cap left the interpreter itself without memory
    limit = _mapped_bytes() + (6 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))

    def hang(*_):
        raise TimeoutError(f"no result within {HANG_SECONDS} s")
    old = signal.signal(signal.SIGALRM, hang)
    yield
    signal.signal(signal.SIGALRM, old)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(base=st.sampled_from(["mlp", "cnn"]), mut=mutation())
def test_mutated_models_succeed_or_fail_in_one_line(tmp_path_factory, bases, limits, base, mut):
    model, calib = bases[base]
    d = tmp_path_factory.mktemp("fuzz")
    path, out = d / "m.onnx", d / "chip.gds"
    path.write_bytes(mutate(model, *mut))
    signal.alarm(HANG_SECONDS)
    try:
        r = CliRunner().invoke(main, ["compile", str(path), "-o", str(out), "--calib", str(calib), "--no-drc"],
                               prog_name="weightfab")
    finally:
        signal.alarm(0)
    assert r.exception is None or isinstance(r.exception, SystemExit), (mut, repr(r.exception))
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, (mut, r.stderr)
    left = [p.name for p in d.iterdir() if p.name.startswith(".")]
    assert not left, (mut, left)
    if r.exit_code == 0:
        assert check_layout_file(out, ".gds") > 0 and "verified:" in r.stdout, (mut, r.stdout)
    else:
        assert r.exit_code == 1, (mut, r.exit_code, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (mut, r.stderr)
        assert not out.exists(), mut

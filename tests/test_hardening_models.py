"""Hostile and odd models, each built with onnx.helper: every one compiles or fails with one line
naming the file (and node), exit 1; none gives a traceback, eats the machine's memory or leaves a file.

The command runs with its address space limited (``RLIMIT_AS``), so a model that makes the compiler
allocate tens of gigabytes fails here instead of starving the machine."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import mlp_model, one_line_error

MEM_LIMIT = 3 << 30  # bytes of address space for the compiler under test


def run_limited(*args, timeout=240, mem=MEM_LIMIT):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    env = dict(os.environ)
    env.pop("WEIGHTFAB_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "weightfab", *map(str, args)], capture_output=True, text=True,
                          env=env, preexec_fn=limit, timeout=timeout)


def save(model, path, opset=13, ir=None):
    m = helper.make_model(model, opset_imports=[helper.make_opsetid("", opset)])
    if ir is not None:
        m.ir_version = ir
    onnx.save(m, path)
    return path


def vi(name, dims, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, dims)


def calib_for(path, n_in, shape=None):
    c = path.with_suffix(".calib.npz")
    rng = np.random.default_rng(0)
    np.savez(c, x=rng.normal(size=(16, *(shape or (n_in,)))).astype(np.float32))
    return c


def dense(i, a, b, rng, zero=False, cur="x", out=None):
    w = np.zeros((b, a), np.float32) if zero else rng.normal(0, 1 / np.sqrt(a), (b, a)).astype(np.float32)
    inits = [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(b, np.float32), f"b{i}")]
    node = helper.make_node("Gemm", [cur, f"w{i}", f"b{i}"], [out or f"h{i}"], transB=1, name=f"fc{i}")
    return node, inits


def chain(sizes, zero_layer=None, seed=0):
    rng = np.random.default_rng(seed)
    nodes, inits, cur = [], [], "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        n, ini = dense(i, a, b, rng, zero=i == zero_layer, cur=cur, out="y" if last else None)
        nodes.append(n)
        inits += ini
        cur = n.output[0]
        if not last:
            nodes.append(helper.make_node("Relu", [cur], [f"r{i}"], name=f"relu{i}"))
            cur = f"r{i}"
    return helper.make_graph(nodes, "chain", [vi("x", ["N", sizes[0]])], [vi("y", ["N", sizes[-1]])], inits)


def compile_ok(tmp_path, model, *extra):
    out, rep = tmp_path / "out.gds", tmp_path / "r.json"
    r = run_limited("compile", model, "-o", out, "--report", rep, *extra)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    return r, json.loads(rep.read_text())


def no_files_left(tmp_path, keep):
    left = sorted(p.name for p in tmp_path.iterdir() if p.name not in keep)
    assert not left, left


# -- huge sizes ---------------------------------------------------------------------------------------

def test_huge_declared_input(tmp_path):
    """An input of 10^10 values per sample: refused by its size before anything is allocated."""
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                           helper.make_node("Flatten", ["r"], ["f"], name="flat"),
                           helper.make_node("Gemm", ["f", "w"], ["y"], transB=1, name="fc")], "g",
                          [vi("x", ["N", 100000, 100000])], [vi("y", ["N", 2])],
                          [numpy_helper.from_array(np.ones((2, 4), np.float32), "w")])
    model = save(g, tmp_path / "huge_in.onnx")
    r = run_limited("compile", model, "-o", tmp_path / "o.gds")
    one_line_error(r, "huge_in.onnx", "input 'x'", "10,000,000,000 values")
    no_files_left(tmp_path, {"huge_in.onnx"})


def test_huge_declared_initializer_without_data(tmp_path):
    """Initializers that declare 10^10 values (holding 2), or 6 values while holding 2."""
    for dims in ([100000, 100000], [2, 3]):
        w = onnx.TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims, raw_data=b"\0" * 8)
        g = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1, name="fc")], "g",
                              [vi("x", ["N", dims[1]])], [vi("y", ["N", dims[0]])], [w])
        model = save(g, tmp_path / "huge_w.onnx")
        r = run_limited("compile", model, "-o", tmp_path / "o.gds")
        one_line_error(r, "huge_w.onnx", "tensor name: w", "raw_data size (8 bytes) is too small")


def constant_fill_model(path, dims, fill_name):
    """y = fc(x) + the sum of a ConstantOfShape(``dims``) node named ``fill_name``, with calibration beside it."""
    shape = numpy_helper.from_array(np.array(dims, np.int64), "shp")
    nodes = [helper.make_node("ConstantOfShape", ["shp"], ["big"], name=fill_name,
                              value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
             helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0, name="sum"),
             helper.make_node("Gemm", ["x", "w"], ["g"], transB=1, name="fc"),
             helper.make_node("Add", ["g", "s"], ["y"], name="add")]
    g = helper.make_graph(nodes, "g", [vi("x", ["N", 4])], [vi("y", ["N", 2])],
                          [shape, numpy_helper.from_array(np.ones((2, 4), np.float32), "w")])
    model = save(g, path)
    calib_for(model, 4)
    return model


def test_huge_constant_subgraph(tmp_path):
    """A ConstantOfShape that would expand to 4·10^10 bytes is refused by its declared size, naming the node."""
    model = constant_fill_model(tmp_path / "bigconst.onnx", [4, 100000, 100000], "expand_me")
    r = run_limited("compile", model, "-o", tmp_path / "o.gds")
    one_line_error(r, "bigconst.onnx", "'expand_me'", "ConstantOfShape", "40,000,000,000 values")


def test_out_of_memory_says_so_with_the_size(tmp_path):
    """A MemoryError is reported as out of memory with the size asked for, not as an internal error
    (it used to read 'internal error: IndexError: list index out of range')."""
    model = constant_fill_model(tmp_path / "oom.onnx", [16000, 16000], "fill")  # 1 GB, under the size limit
    r = run_limited("compile", model, "-o", tmp_path / "o.gds", mem=900 << 20)
    line = one_line_error(r, "out of memory")
    assert "Unable to allocate 977. MiB" in line and "'fill'" in line, line


@pytest.mark.parametrize("fan", ["in", "out", "out-32768-bitlines"])  # the last: more than one GDSII AREF holds
def test_huge_fan_in_and_fan_out(tmp_path, fan):
    """One output from 8192 inputs, 2048 (and 4096) outputs from 2 inputs: compiled and read back."""
    sizes = {"in": (8192, 1), "out": (2, 2048), "out-32768-bitlines": (2, 4096)}[fan]
    model = save(chain(sizes), tmp_path / "fan.onnx")
    calib_for(model, sizes[0])
    r, rep = compile_ok(tmp_path, model, "--no-drc")
    assert rep["verify"]["ok"] and (rep["layers"][0]["outputs"], rep["layers"][0]["inputs"]) == sizes[::-1]


def test_one_input_and_one_output_layers(tmp_path):
    model = save(chain((1, 3, 1)), tmp_path / "ones.onnx")
    calib_for(model, 1)
    r, rep = compile_ok(tmp_path, model)
    assert rep["drc"]["clean"] and rep["verify"]["ok"]
    assert [(l["outputs"], l["inputs"]) for l in rep["layers"]] == [(3, 1), (1, 3)]


def test_all_zero_layer_compiles_and_says_it_stores_no_bits(tmp_path):
    model = save(chain((6, 5, 3), zero_layer=1), tmp_path / "zero.onnx")
    calib_for(model, 6)
    r, rep = compile_ok(tmp_path, model)
    assert "warning: layer 'fc1' stores no bits: all its weights quantize to zero" in r.stderr
    assert [l["stores_bits"] for l in rep["layers"]] == [True, False]
    assert rep["layers"][1]["programmed_vias"] == 0 and rep["verify"]["ok"] and rep["drc"]["clean"]
    assert any("stores no bits" in w for w in rep["warnings"])


# -- malformed graphs ---------------------------------------------------------------------------------

def test_duplicated_node_names_get_distinct_layer_names(tmp_path):
    g = chain((6, 5, 3))
    for n in g.node:
        n.name = "same"
    model = save(g, tmp_path / "dup.onnx")
    calib_for(model, 6)
    r, rep = compile_ok(tmp_path, model, "--no-drc")
    names = [l["name"] for l in rep["layers"]]
    assert len(set(names)) == 2 and rep["verify"]["ok"], names


def test_duplicated_output_names_are_refused(tmp_path):
    g = chain((6, 5, 3))
    g.node[1].output[0] = "h0"  # the Relu writes the Gemm's output again
    g.node[2].input[0] = "h0"
    model = save(g, tmp_path / "ssa.onnx")
    r = run_limited("compile", model, "-o", tmp_path / "o.gds")
    one_line_error(r, "ssa.onnx", "h0")


def test_cycle_is_refused(tmp_path):
    g = chain((6, 5, 5, 3))
    g.node[0].input[0] = "r1"  # fc0 reads relu1, which depends on fc0
    model = save(g, tmp_path / "cycle.onnx")
    r = run_limited("compile", model, "-o", tmp_path / "o.gds")
    one_line_error(r, "cycle.onnx", "r1")


def test_initializer_that_is_also_a_graph_input_is_a_constant(tmp_path):
    """Old IR versions list every weight as a graph input too; unless fed, they are constants."""
    g = chain((6, 5, 3))
    g.input.extend([vi(t.name, list(t.dims)) for t in g.initializer])
    model = save(g, tmp_path / "ir3.onnx", opset=9, ir=4)
    calib_for(model, 6)
    r, rep = compile_ok(tmp_path, model, "--no-drc")
    assert [(l["outputs"], l["inputs"]) for l in rep["layers"]] == [(5, 6), (3, 5)] and rep["verify"]["ok"]


def test_missing_external_data_file_is_named(tmp_path):
    model = mlp_model(tmp_path / "ext.onnx", sizes=(64, 32, 3))
    m = onnx.load(model)
    onnx.save(m, model, save_as_external_data=True, all_tensors_to_one_file=True, location="ext.weights",
              size_threshold=0)
    (tmp_path / "ext.weights").unlink()
    r = run_limited("compile", model, "-o", tmp_path / "o.gds")
    one_line_error(r, "ext.onnx", "ext.weights")


# -- opsets 7 to 21 -----------------------------------------------------------------------------------

def _cnn_for_opset(opset: int) -> onnx.GraphProto:
    """Conv + BatchNormalization + Clip + MaxPool + Flatten + Gemm + Softmax in the form each opset takes."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "cw"),
             numpy_helper.from_array(np.zeros(4, np.float32), "cb"),
             numpy_helper.from_array(np.ones(4, np.float32), "g"), numpy_helper.from_array(np.zeros(4, np.float32), "be"),
             numpy_helper.from_array(np.zeros(4, np.float32), "mu"), numpy_helper.from_array(np.ones(4, np.float32), "var"),
             numpy_helper.from_array(rng.normal(0, 0.3, (3, 16)).astype(np.float32), "fw"),
             numpy_helper.from_array(np.zeros(3, np.float32), "fb")]
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("BatchNormalization", ["c", "g", "be", "mu", "var"], ["bn"], name="bn")]
    if opset < 11:
        nodes.append(helper.make_node("Clip", ["bn"], ["cl"], min=0.0, max=6.0, name="clip"))
    else:
        inits += [numpy_helper.from_array(np.array(0, np.float32), "lo"), numpy_helper.from_array(np.array(6, np.float32), "hi")]
        nodes.append(helper.make_node("Clip", ["bn", "lo", "hi"], ["cl"], name="clip"))
    nodes += [helper.make_node("MaxPool", ["cl"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
              helper.make_node("Flatten", ["p"], ["f"], axis=1, name="flat"),
              helper.make_node("Gemm", ["f", "fw", "fb"], ["logits"], transB=1, name="fc"),
              helper.make_node("Softmax", ["logits"], ["y"], axis=1, name="softmax")]
    inputs = [vi("x", ["N", 1, 4, 4])]
    if opset < 9:  # IR 3 lists every initializer as a graph input too
        inputs += [vi(t.name, list(t.dims)) for t in inits]
    return helper.make_graph(nodes, "cnn", inputs, [vi("y", ["N", 3])], inits)


def test_opsets_7_to_21_import_alike():
    """The same network written in every opset from 7 to 21 imports to the same ops and outputs."""
    from weightfab.frontend.onnx_import import load_onnx
    import tempfile
    from pathlib import Path
    x = np.random.default_rng(1).normal(size=(5, 1, 4, 4)).astype(np.float32)
    ref = None
    with tempfile.TemporaryDirectory() as d:
        for opset in range(7, 22):
            g = _cnn_for_opset(opset)
            ir = max(3, onnx.helper.find_min_ir_version_for([helper.make_opsetid("", opset)]))
            path = save(g, Path(d) / f"cnn{opset}.onnx", opset=opset, ir=ir)
            net = load_onnx(path)
            kinds = [type(o).__name__ for o in net.ops]
            out = net.forward(x)
            if ref is None:
                ref = (kinds, out)
            assert kinds == ref[0], (opset, kinds)
            np.testing.assert_allclose(out, ref[1], rtol=1e-5, atol=1e-6, err_msg=f"opset {opset}")

"""ONNX -> Network. The only module that imports onnx.

The graph is shape-inferred, constant subgraphs are folded with the ONNX reference
evaluator, and the remaining nodes must form one chain of supported ops on the input.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from .errors import ModelError
from .network import Dense, Network

SUPPORTED_OPS = ("Add", "Constant", "Flatten", "Gemm", "Identity", "MatMul", "Relu", "Reshape", "Softmax")


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _fold(node, consts: dict[str, np.ndarray], opset: int) -> list[np.ndarray]:
    """Evaluate one node whose inputs are all constants."""
    from onnx.reference import ReferenceEvaluator

    if node.op_type == "Constant":
        a = node.attribute[0]
        if a.name == "value":
            return [numpy_helper.to_array(a.t)]
        return [np.asarray(onnx.helper.get_attribute_value(a))]
    inputs = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.input if n]
    graph = onnx.helper.make_graph([node], "fold", inputs,
                                   [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    feeds = {n: consts[n] for n in node.input if n}
    return list(ReferenceEvaluator(model).run(None, feeds))


def load_onnx(path: str | Path) -> Network:
    """Read, check and convert an ONNX file; every failure is a one-line ModelError."""
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except Exception as exc:  # protobuf raises several types on garbage
        raise ModelError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    try:
        onnx.checker.check_model(model)
        model = shape_inference.infer_shapes(model)
    except Exception as exc:
        raise ModelError(f"{path}: invalid ONNX model: {str(exc).splitlines()[0]}") from None
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)

    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise ModelError(f"{path}: expected one graph input, found {len(inputs)}")
    inp = inputs[0]
    dims = inp.type.tensor_type.shape.dim
    if len(dims) < 2:
        raise ModelError(f"{path}: input '{inp.name}' needs a batch dimension and at least one feature dimension")
    sample_shape = []
    for d in dims[1:]:
        if not d.HasField("dim_value"):
            raise ModelError(f"{path}: input '{inp.name}' has a symbolic non-batch dimension '{d.dim_param}'")
        sample_shape.append(int(d.dim_value))
    if len(g.output) != 1:
        raise ModelError(f"{path}: expected one graph output, found {len(g.output)}")

    layers: list[Dense] = []
    current = inp.name          # the one dynamic tensor flowing through the chain
    last_op = "input"            # what produced ``current``: "input", "dense", "relu", "reshape"
    softmax = False
    features = int(np.prod(sample_shape))

    def fail(node, why):
        raise ModelError(f"{path}: node '{node.name or node.output[0]}' ({node.op_type}): {why}")

    def weight(node, name) -> np.ndarray:
        if name not in consts:
            fail(node, f"input '{name}' must be a constant (weights computed at run time are not supported)")
        arr = np.asarray(consts[name])
        if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
            fail(node, f"constant '{name}' has unsupported type {arr.dtype}")
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            fail(node, f"constant '{name}' holds NaN or infinite values")
        return arr

    for node in g.node:
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS:
            fail(node, f"op is not supported; supported ops: {', '.join(SUPPORTED_OPS)}")
        if all((n in consts) for n in node.input if n):
            for name, value in zip(node.output, _fold(node, consts, opset)):
                consts[name] = np.asarray(value)
            continue
        dyn = [n for n in node.input if n and n not in consts]
        if dyn != [current]:
            fail(node, "only a single chain of layers on the model input is supported")
        softmax_after = softmax
        if softmax_after:
            fail(node, "Softmax must be the last node")
        a = _attrs(node)
        if op == "Identity":
            pass
        elif op == "Flatten":
            if a.get("axis", 1) != 1:
                fail(node, f"only axis=1 is supported, got axis={a.get('axis')}")
            last_op = "reshape"
        elif op == "Reshape":
            shape = consts.get(node.input[1])
            if shape is None:
                fail(node, "the target shape must be constant")
            shape = [int(s) for s in np.asarray(shape).ravel()]
            rest = [s for s in shape[1:]]
            if not shape or shape[0] not in (0, -1) and -1 not in rest and int(np.prod(rest)) != features:
                fail(node, f"target shape {shape} must keep the batch dimension first")
            if -1 not in rest and rest and int(np.prod(rest)) != features:
                fail(node, f"target shape {shape} does not hold {features} features per sample")
            last_op = "reshape"
        elif op == "Gemm":
            if a.get("transA", 0):
                fail(node, "transA=1 on the activation is not supported")
            b = weight(node, node.input[1])
            if b.ndim != 2:
                fail(node, f"weight must be 2-D, got shape {b.shape}")
            w = (b if a.get("transB", 0) else b.T) * float(a.get("alpha", 1.0))
            bias = np.zeros(w.shape[0], np.float32)
            if len(node.input) > 2 and node.input[2]:
                c = weight(node, node.input[2]) * float(a.get("beta", 1.0))
                try:
                    bias = np.broadcast_to(c.reshape(-1) if c.size == w.shape[0] else c, (w.shape[0],)).astype(np.float32)
                except ValueError:
                    fail(node, f"bias of shape {c.shape} does not broadcast to {w.shape[0]} outputs")
            if w.shape[1] != features:
                fail(node, f"expects {w.shape[1]} inputs but receives {features}")
            layers.append(Dense(node.name or node.output[0], np.ascontiguousarray(w, np.float32), bias.copy()))
            features = w.shape[0]
            last_op = "dense"
        elif op == "MatMul":
            b = weight(node, node.input[1])
            if node.input[0] != current or b.ndim != 2:
                fail(node, "only activation @ constant 2-D weight is supported")
            if b.shape[0] != features:
                fail(node, f"expects {b.shape[0]} inputs but receives {features}")
            layers.append(Dense(node.name or node.output[0], np.ascontiguousarray(b.T, np.float32),
                                np.zeros(b.shape[1], np.float32)))
            features = b.shape[1]
            last_op = "dense"
        elif op == "Add":
            if last_op != "dense":
                fail(node, "Add is supported only as the bias right after Gemm or MatMul")
            c = weight(node, next(n for n in node.input if n in consts)).reshape(-1)
            if c.size not in (1, features):
                fail(node, f"bias of {c.size} values does not match {features} outputs")
            prev = layers[-1]
            layers[-1] = Dense(prev.name, prev.weight, (prev.bias + c).astype(np.float32), prev.relu)
        elif op == "Relu":
            if last_op != "dense" or layers[-1].relu:
                fail(node, "Relu is supported only right after a Gemm or MatMul(+Add)")
            prev = layers[-1]
            layers[-1] = Dense(prev.name, prev.weight, prev.bias, True)
            last_op = "relu"
        elif op == "Softmax":
            axis = a.get("axis", -1 if opset >= 13 else 1)
            if axis not in (-1, 1):
                fail(node, f"only softmax over the class axis is supported, got axis={axis}")
            softmax = True
        current = node.output[0]

    if current != g.output[0].name:
        raise ModelError(f"{path}: graph output '{g.output[0].name}' is not the end of the layer chain")
    if not layers:
        raise ModelError(f"{path}: the model has no Gemm or MatMul layer to compile")
    name = Path(path).stem
    return Network(name, inp.name, tuple(sample_shape), tuple(layers), softmax)

"""ONNX -> Network. The only module that imports onnx.

The model is checked and shape-inferred; nodes whose inputs are all constant are folded
with the ONNX reference evaluator (Shape of a dynamic tensor is a constant with batch 1);
each remaining node goes through an op table to a typed op. Weights of QDQ models keep
their integers and scales; QuantizeLinear/DequantizeLinear pairs on activations become
QuantPoint ops that carry the model's own scale, zero point and clamp.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from ..errors import ModelError
from .network import Act, Add, Conv, Dense, Network, Pool, QuantPoint, Reshape, Transpose, float_op

SUPPORTED_OPS = ("Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Constant", "ConstantOfShape",
                 "Conv", "DequantizeLinear", "Flatten", "Gemm", "GlobalAveragePool", "Identity", "MatMul",
                 "MaxPool", "QuantizeLinear", "Relu", "Reshape", "Shape", "Sigmoid", "Softmax", "Transpose",
                 "Gather", "Unsqueeze", "Concat", "Squeeze")


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
    ins = [n for n in node.input]
    inputs = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in ins if n]
    graph = onnx.helper.make_graph([node], "fold", inputs,
                                   [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    return list(ReferenceEvaluator(model).run(None, {n: consts[n] for n in ins if n}))


def _pads(node, a, kernel, in_hw, strides, dilations, fail):
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        p = list(a.get("pads", [0, 0, 0, 0]))
        return (p[0], p[1], p[2], p[3])
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for i in range(2):
            o = -(-in_hw[i] // strides[i])
            total = max(0, (o - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_hw[i])
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return (out[0][0], out[1][0], out[0][1], out[1][1])
    fail(node, f"auto_pad={auto} is not supported")


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

    def fail(node, why):
        raise ModelError(f"{path}: node '{node.name or node.output[0]}' ({node.op_type}): {why}")

    consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    qinfo: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}  # folded DequantizeLinear: q, scale, axis
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

    consumers: dict[str, int] = {}
    for node in g.node:
        for n in node.input:
            consumers[n] = consumers.get(n, 0) + 1
    consumers[g.output[0].name] = consumers.get(g.output[0].name, 0) + 1

    ops: list = []
    alias: dict[str, str] = {}
    dummy = {inp.name: np.zeros((1, *sample_shape), np.float32)}  # batch-1 probe for shapes
    producer: dict[str, object] = {}
    pending_q: dict[str, tuple] = {}   # QuantizeLinear outputs waiting for their DequantizeLinear
    weight_quant: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    softmax = False
    softmax_out = None
    names: set[str] = set()

    def real(n):
        while n in alias:
            n = alias[n]
        return n

    def emit(op):
        env_in = [dummy[i] for i in op.inputs]
        dummy[op.output] = float_op(op, env_in)
        ops.append(op)
        producer[op.output] = op
        return op

    def const(node, name, what="weight") -> np.ndarray:
        if name not in consts:
            fail(node, f"{what} '{name}' must be a constant (computed at run time is not supported)")
        arr = np.asarray(consts[name])
        if arr.dtype.kind not in "fiub":
            fail(node, f"constant '{name}' has unsupported type {arr.dtype}")
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            fail(node, f"constant '{name}' holds NaN or infinite values")
        return arr

    def uniq(node):
        n = node.name or node.output[0]
        base, i = n, 1
        while n in names:
            i += 1
            n = f"{base}_{i}"
        names.add(n)
        return n

    def record_qdq(node, op_name, weight_name, out_axis_len, orient):
        """Keep the integers of a QDQ weight: per output channel scales, zero points must be 0."""
        info = qinfo.get(weight_name)
        if info is None:
            return
        q, scale, axis, zp = info
        if np.any(zp != 0):
            fail(node, "weight zero points other than 0 are not supported")
        qo = orient(q.astype(np.float32))
        s = np.asarray(scale, np.float64).reshape(-1)
        if s.size == 1:
            s = np.full(out_axis_len, s[0])
        elif s.size != out_axis_len:
            fail(node, f"weight scales per axis {axis} do not match the {out_axis_len} output channels")
        if qo.min(initial=0) < -128 or qo.max(initial=0) > 127:
            fail(node, "weight integers exceed int8")
        weight_quant[op_name] = (qo.astype(np.int8), s)

    for node in g.node:
        op_t = node.op_type
        if node.domain not in ("", "ai.onnx") or op_t not in SUPPORTED_OPS:
            fail(node, f"op is not supported; supported ops: {', '.join(SUPPORTED_OPS)}")
        if softmax and not (op_t in ("Identity", "Cast") and node.input and real(node.input[0]) == softmax_out):
            fail(node, "Softmax must be the last node")
        a = _attrs(node)
        ins = [real(n) if n else n for n in node.input]
        if op_t == "Shape" and ins[0] in dummy:
            full = dummy[ins[0]].shape
            start, end = a.get("start", 0), a.get("end", len(full))
            consts[node.output[0]] = np.asarray(full[slice(start, end)], np.int64)
            continue
        if op_t == "DequantizeLinear" and ins[0] in consts:
            q = np.asarray(consts[ins[0]]).astype(np.int64)
            scale = np.asarray(consts[ins[1]], np.float64)
            zp = np.asarray(consts[ins[2]]).astype(np.int64) if len(ins) > 2 and ins[2] else np.zeros(1, np.int64)
            axis = a.get("axis", 1)
            if scale.size > 1:
                shp = [1] * q.ndim
                shp[axis] = -1
                scale_b, zp_b = scale.reshape(shp), (zp.reshape(shp) if zp.size > 1 else zp.reshape(-1)[0])
            else:
                scale_b, zp_b = scale.reshape(-1)[0], zp.reshape(-1)[0]
            consts[node.output[0]] = ((q - zp_b) * scale_b).astype(np.float32)
            qinfo[node.output[0]] = (q, scale, axis, zp)
            continue
        if all((n in consts) for n in ins if n):
            try:
                folded = _fold(onnx.helper.make_node(op_t, ins, list(node.output), **a), consts, opset)
            except Exception as exc:
                fail(node, f"cannot fold constant subgraph: {str(exc).splitlines()[0][:100]}")
            for name, value in zip(node.output, folded):
                consts[name] = np.asarray(value)
            if op_t == "Identity" and ins[0] in qinfo:
                qinfo[node.output[0]] = qinfo[ins[0]]
            continue
        dyn = [n for n in ins if n and n not in consts]
        x = dyn[0]
        if x in pending_q and op_t in ("Identity", "Cast"):
            pending_q[node.output[0]] = pending_q[x]  # the integer code's type changes, not its value
            continue
        if x not in dummy and x not in pending_q:
            fail(node, f"input '{x}' is not produced by a supported node")
        out = node.output[0]
        if op_t in ("Identity", "Cast"):
            if op_t == "Cast" and a.get("to") not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE):
                fail(node, "casts of activations to non-float types are not supported")
            alias[out] = x
            continue
        name = uniq(node)
        if op_t == "QuantizeLinear":
            s = const(node, ins[1], "scale").reshape(-1)
            zp_arr = consts.get(ins[2]) if len(ins) > 2 and ins[2] else np.zeros(1, np.uint8)
            if s.size != 1:
                fail(node, "per-channel activation quantization is not supported")
            dt = np.asarray(zp_arr).dtype
            info = np.iinfo(dt if dt.kind in "iu" else np.uint8)
            pending_q[out] = (x, float(s[0]), int(np.asarray(zp_arr).reshape(-1)[0]), int(info.min), int(info.max))
            continue
        if op_t == "DequantizeLinear":
            if x not in pending_q:
                fail(node, "DequantizeLinear of a run-time tensor must follow its QuantizeLinear")
            src, s, zp, qmin, qmax = pending_q[x]
            if src not in dummy:
                fail(node, "QuantizeLinear input not available")
            emit(QuantPoint(name, (src,), out, s, zp, qmin, qmax))
            continue
        if x in pending_q:
            fail(node, "a QuantizeLinear output must go to a DequantizeLinear")
        if len(dyn) > 1 and op_t != "Add":
            fail(node, "only one run-time input is supported for this op")
        shape = dummy[x].shape[1:]
        if op_t == "Gemm":
            if a.get("transA", 0):
                fail(node, "transA=1 on the activation is not supported")
            b = const(node, ins[1])
            if b.ndim != 2:
                fail(node, f"weight must be 2-D, got shape {b.shape}")
            w = (b if a.get("transB", 0) else b.T) * float(a.get("alpha", 1.0))
            bias = np.zeros(w.shape[0], np.float32)
            if len(ins) > 2 and ins[2]:
                c = const(node, ins[2], "bias") * float(a.get("beta", 1.0))
                if c.size not in (1, w.shape[0]):
                    fail(node, f"bias of shape {c.shape} does not broadcast to {w.shape[0]} outputs")
                bias = np.broadcast_to(c.reshape(-1), (w.shape[0],)).astype(np.float32)
            if w.shape[1] != int(np.prod(shape)):
                fail(node, f"expects {w.shape[1]} inputs but receives {int(np.prod(shape))}")
            alpha = float(a.get("alpha", 1.0))
            record_qdq(node, name, ins[1], w.shape[0], lambda q: q if a.get("transB", 0) else q.T)
            if name in weight_quant and alpha != 1.0:
                q, s = weight_quant[name]
                weight_quant[name] = (q, s * alpha)
            emit(Dense(name, (x,), out, np.ascontiguousarray(w, np.float32), bias.copy()))
        elif op_t == "MatMul":
            b = const(node, ins[1])
            if ins[0] != x or b.ndim != 2 or len(shape) != 1:
                fail(node, "only [batch, features] @ constant 2-D weight is supported")
            if b.shape[0] != shape[0]:
                fail(node, f"expects {b.shape[0]} inputs but receives {shape[0]}")
            record_qdq(node, name, ins[1], b.shape[1], lambda q: q.T)
            emit(Dense(name, (x,), out, np.ascontiguousarray(b.T, np.float32), np.zeros(b.shape[1], np.float32)))
        elif op_t == "Conv":
            w = const(node, ins[1])
            if w.ndim != 4 or len(shape) != 3:
                fail(node, f"only 2-D convolution on [N, C, H, W] is supported (weight {w.shape}, input {shape})")
            group = int(a.get("group", 1))
            co, cig, kh, kw = w.shape
            if shape[0] != cig * group or co % group:
                fail(node, f"{shape[0]} input channels do not match weight {w.shape} with group={group}")
            strides = tuple(a.get("strides", [1, 1]))
            dil = tuple(a.get("dilations", [1, 1]))
            pads = _pads(node, a, (kh, kw), shape[1:], strides, dil, fail)
            bias = const(node, ins[2], "bias").reshape(-1) if len(ins) > 2 and ins[2] else np.zeros(co, np.float32)
            conv = Conv(name, (x,), out, w.astype(np.float32), bias.astype(np.float32), strides, pads, dil, group)
            record_qdq(node, name, ins[1], co, lambda q: q.transpose(0, 2, 3, 1).reshape(co, -1))
            emit(conv)
        elif op_t == "Add":
            cst = [n for n in ins if n in consts]
            prev = producer.get(x)
            if cst and isinstance(prev, (Dense, Conv)) and consumers.get(x, 0) == 1 and ops[-1] is prev:
                c_full = const(node, cst[0], "bias")
                nout = prev.weight.shape[0]
                per_channel = {(nout,), (1, nout)} if isinstance(prev, Dense) else {(nout, 1, 1), (1, nout, 1, 1)}
                if c_full.size != 1 and c_full.shape not in per_channel:
                    fail(node, f"constant of shape {c_full.shape} does not broadcast per output channel "
                               f"(expected one of {sorted(per_channel)} or a scalar)")
                c = c_full.reshape(-1)
                fused = type(prev)(**{**prev.__dict__, "output": out, "bias": (prev.bias + c).astype(np.float32)})
                ops.pop()
                emit(fused)
            elif len(dyn) == 2:
                if dummy[dyn[0]].shape != dummy[dyn[1]].shape:
                    fail(node, f"Add of shapes {dummy[dyn[0]].shape[1:]} and {dummy[dyn[1]].shape[1:]} (broadcast) is not supported")
                emit(Add(name, (dyn[0], dyn[1]), out))
            else:
                fail(node, "Add of a constant is supported only as the bias right after Conv, Gemm or MatMul")
        elif op_t == "BatchNormalization":
            prev = producer.get(x)
            if not (isinstance(prev, (Dense, Conv)) and consumers.get(x, 0) == 1 and ops[-1] is prev):
                fail(node, "BatchNormalization is supported only right after Conv, Gemm or MatMul (it is folded)")
            gamma, beta, mean, var = (const(node, n, "BN parameter").astype(np.float64) for n in ins[1:5])
            k = gamma / np.sqrt(var + float(a.get("epsilon", 1e-5)))
            w = prev.weight * k.reshape(-1, *([1] * (prev.weight.ndim - 1)))
            b = (prev.bias - mean) * k + beta
            ops.pop()
            weight_quant.pop(prev.name, None)
            emit(type(prev)(**{**prev.__dict__, "output": out, "weight": w.astype(np.float32), "bias": b.astype(np.float32)}))
        elif op_t == "Relu":
            emit(Act(name, (x,), out, "relu", 0.0, float("inf")))
        elif op_t == "Clip":
            lo = a.get("min", -np.inf)
            hi = a.get("max", np.inf)
            if len(ins) > 1 and ins[1]:
                lo = float(const(node, ins[1], "min").reshape(-1)[0])
            if len(ins) > 2 and ins[2]:
                hi = float(const(node, ins[2], "max").reshape(-1)[0])
            emit(Act(name, (x,), out, "clip", float(lo), float(hi)))
        elif op_t == "Sigmoid":
            emit(Act(name, (x,), out, "sigmoid"))
        elif op_t in ("MaxPool", "AveragePool"):
            if len(shape) != 3:
                fail(node, "only 2-D pooling on [N, C, H, W] is supported")
            if a.get("ceil_mode", 0):
                fail(node, "ceil_mode=1 is not supported")
            if any(d != 1 for d in a.get("dilations", [1, 1])):
                fail(node, "pooling dilations are not supported")
            k = tuple(a["kernel_shape"])
            strides = tuple(a.get("strides", [1, 1]))
            pads = _pads(node, a, k, shape[1:], strides, (1, 1), fail)
            emit(Pool(name, (x,), out, "max" if op_t == "MaxPool" else "avg", k, strides, pads,
                      bool(a.get("count_include_pad", 0))))
        elif op_t == "GlobalAveragePool":
            if len(shape) != 3:
                fail(node, "only [N, C, H, W] is supported")
            emit(Pool(name, (x,), out, "avg", None))
        elif op_t in ("Squeeze", "Unsqueeze"):
            axes = a.get("axes")
            if axes is None and len(ins) > 1 and ins[1]:
                axes = [int(v) for v in np.asarray(consts.get(ins[1], [])).reshape(-1)]
            if axes is None or any(ax % (len(shape) + 1 + (op_t == "Unsqueeze")) == 0 for ax in axes):
                fail(node, "axes must be constant and must not include the batch dimension")
            probe = np.squeeze(dummy[x], axis=tuple(axes)) if op_t == "Squeeze" else np.expand_dims(dummy[x], tuple(axes))
            emit(Reshape(name, (x,), out, tuple(probe.shape[1:])))
        elif op_t == "Flatten":
            axis = a.get("axis", 1)
            if axis not in (1, -len(shape)):
                fail(node, f"only axis=1 is supported, got axis={axis}")
            emit(Reshape(name, (x,), out, (int(np.prod(shape)),)))
        elif op_t == "Reshape":
            target = [int(v) for v in np.asarray(consts.get(ins[1], [])).reshape(-1)]
            if ins[1] not in consts or not target:
                fail(node, "the target shape must be constant")
            per = int(np.prod(shape))
            rest = target[1:]
            if target[0] not in (0, -1, 1) or (-1 not in rest and int(np.prod(rest)) != per):
                fail(node, f"target shape {target} must keep the batch dimension first and hold {per} values per sample")
            rest = [shape[i] if v == 0 else v for i, v in enumerate(rest)]
            if -1 in rest:
                known = int(np.prod([v for v in rest if v != -1]))
                rest[rest.index(-1)] = per // known
            emit(Reshape(name, (x,), out, tuple(rest)))
        elif op_t == "Transpose":
            perm = tuple(a.get("perm", list(range(len(shape) + 1))[::-1]))
            if perm[0] != 0:
                fail(node, f"perm {perm} moves the batch dimension")
            emit(Transpose(name, (x,), out, perm))
        elif op_t == "Softmax":
            axis = a.get("axis", -1 if opset >= 13 else 1)
            if axis not in (-1, len(shape)) or len(shape) != 1:
                fail(node, f"only softmax over the class axis of [N, classes] is supported, got axis={axis}")
            if real(g.output[0].name) != out and g.output[0].name != out:
                fail(node, "Softmax must produce the graph output")
            softmax = True
            softmax_out = x
            alias[out] = x
        else:
            fail(node, f"op is not supported on run-time tensors; supported ops: {', '.join(SUPPORTED_OPS)}")

    final = real(g.output[0].name)
    if final not in dummy or final == inp.name:
        raise ModelError(f"{path}: graph output '{g.output[0].name}' is not computed from the input by supported ops")
    if not any(isinstance(o, (Dense, Conv)) for o in ops):
        raise ModelError(f"{path}: the model has no Conv, Gemm or MatMul layer to compile")
    if len(dummy[final].shape) != 2:
        raise ModelError(f"{path}: the output has shape {dummy[final].shape[1:]} per sample; expected [classes]")
    return Network(Path(path).stem, inp.name, tuple(sample_shape), tuple(ops), final, softmax, weight_quant)

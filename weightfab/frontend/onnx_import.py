"""ONNX -> Network. The only place (with ``frontend/ops``) that imports onnx.

The model is checked and shape-inferred; nodes whose inputs are all constant are folded
with the ONNX reference evaluator (Shape of a dynamic tensor is a constant with batch 1);
each remaining node goes through the handler table (``frontend/ops``) to a typed op. Weights of
QDQ models keep their integers and scales; QuantizeLinear/DequantizeLinear pairs on activations
become QuantPoint ops that carry the model's own scale, zero point and clamp.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from ..errors import ModelError
from .network import Conv, Dense, Network, QuantPoint, float_op
from .ops import FOLDABLE, HANDLERS, ON_CODES
from .ops.weights import kind_of, weight_codes

SUPPORTED_OPS = tuple(sorted(set(HANDLERS) | set(FOLDABLE)))
MAX_VALUES = 1 << 28  # values in one tensor (1 GiB of float32): larger declared tensors are refused unread
AFTER_SOFTMAX = ("Identity", "Cast", "QuantizeLinear", "DequantizeLinear")


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


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def read_model(path: Path) -> onnx.ModelProto:
    """Load, check and shape-infer; every failure is a one-line ModelError."""
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except FileNotFoundError as exc:  # an external-data file named by the model
        raise ModelError(f"{path}: external data file {exc.filename or _first_line(exc)} does not exist") from None
    except MemoryError:
        raise
    except Exception as exc:  # protobuf raises several types on garbage; onnx names a missing external file
        why = _first_line(exc) if "external" in str(exc) or "should be stored in" in str(exc) else type(exc).__name__
        raise ModelError(f"{path}: not a readable ONNX model ({why})") from None
    try:
        onnx.checker.check_model(model)
        return shape_inference.infer_shapes(model)
    except Exception as exc:
        raise ModelError(f"{path}: invalid ONNX model: {str(exc).splitlines()[0]}") from None


@dataclass
class NodeCtx:
    """What a handler needs of one node: resolved inputs, the run-time input and the names."""

    node: onnx.NodeProto
    ins: list[str]       # inputs after aliases ('' for omitted optional inputs)
    dyn: list[str]       # the run-time (non-constant) inputs
    x: str               # the first run-time input
    out: str             # the first output
    name: str = ""       # unique op name (handlers registered with named=True)
    shape: tuple = ()    # per-sample shape of x (when x is a float tensor)

    def has(self, i: int) -> bool:
        return len(self.ins) > i and bool(self.ins[i])


class Importer:
    """The state of one import: constants, the ops emitted so far and the tensors they compute."""

    def __init__(self, path: Path, model: onnx.ModelProto):
        self.path, self.graph = path, model.graph
        g = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.consts: dict[str, np.ndarray] = {t.name: self.initializer(t) for t in g.initializer}
        self.declared = {v.name: v.type.tensor_type.shape for v in [*g.value_info, *g.output]}  # inferred shapes
        self.qinfo: dict[str, tuple] = {}        # folded DequantizeLinear: q, scale, axis, zero point, type
        self.ops: list = []
        self.alias: dict[str, str] = {}
        self.dummy: dict[str, np.ndarray] = {}   # batch-1 probe of every float tensor, for shapes
        self.producer: dict[str, object] = {}
        self.pending_q: dict[str, tuple] = {}    # integer codes: tensor -> (source, scale, zero point, qmin, qmax)
        self.real_of: dict[str, str] = {}        # integer codes -> the float tensor holding their real values
        self.dynamic: dict[str, tuple] = {}      # DynamicQuantizeLinear outputs: name -> (what, float source, factor)
        self.weight_quant: dict = {}             # op name -> WeightCodes (the model's own integer weights)
        self.softmax = False
        self.softmax_out = None
        self.names: set[str] = set()
        self.consumers: dict[str, int] = {}
        for node in g.node:
            for n in node.input:
                self.consumers[n] = self.consumers.get(n, 0) + 1
        self.output_name = self.pick_output()
        if self.output_name:
            self.consumers[self.output_name] = self.consumers.get(self.output_name, 0) + 1

    def initializer(self, t) -> np.ndarray:
        size = int(np.prod([int(d) for d in t.dims], dtype=object))
        if size > MAX_VALUES:
            raise ModelError(f"{self.path}: initializer '{t.name}' declares {size:,} values, more than the "
                             f"{MAX_VALUES:,} the compiler handles")
        try:
            return numpy_helper.to_array(t)
        except MemoryError:
            raise
        except Exception as exc:
            raise ModelError(f"{self.path}: initializer '{t.name}' of shape {list(t.dims)} cannot be read "
                             f"({_first_line(exc)})") from None

    def check_size(self, node) -> None:
        """Refuse a node whose inferred output is too large before computing it (a huge constant subgraph)."""
        for name in node.output:
            shape = self.declared.get(name)
            if shape is None or not shape.dim or not all(d.HasField("dim_value") for d in shape.dim):
                continue
            size = int(np.prod([d.dim_value for d in shape.dim], dtype=object))
            if size > MAX_VALUES:
                self.fail(node, f"computes '{name}' of {size:,} values, more than the {MAX_VALUES:,} the compiler handles")

    # -- helpers the handlers use ------------------------------------------------------------------
    def fail(self, node, why):
        raise ModelError(f"{self.path}: node '{node.name or node.output[0]}' ({node.op_type}): {why}")

    def real(self, n: str) -> str:
        while n in self.alias:
            n = self.alias[n]
        return n

    def emit(self, op):
        self.dummy[op.output] = float_op(op, [self.dummy[i] for i in op.inputs])
        self.ops.append(op)
        self.producer[op.output] = op
        return op

    def const(self, node, name, what="weight") -> np.ndarray:
        if name not in self.consts:
            self.fail(node, f"{what} '{name}' must be a constant (computed at run time is not supported)")
        arr = np.asarray(self.consts[name])
        if arr.dtype.kind not in "fiub":
            self.fail(node, f"constant '{name}' has unsupported type {arr.dtype}")
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            self.fail(node, f"constant '{name}' holds NaN or infinite values")
        return arr

    def uniq(self, node) -> str:
        n = node if isinstance(node, str) else (node.name or node.output[0])
        base, i = n, 1
        while n in self.names:
            i += 1
            n = f"{base}_{i}"
        self.names.add(n)
        return n

    def last_weighted(self, x: str):
        """The Dense/Conv that produced ``x`` when nothing else reads ``x`` (so a bias Add, a
        BatchNormalization or a scale can be folded into it), else None."""
        prev = self.producer.get(x)
        if isinstance(prev, (Dense, Conv)) and self.consumers.get(x, 0) == 1 \
                and not any(x in o.inputs for o in self.ops):
            return prev
        return None

    def replace_last(self, op):
        """Put ``op`` in the place of the op of the same name (a fold into a weighted op)."""
        i = next(k for k, o in enumerate(self.ops) if o.name == op.name)
        del self.ops[i]
        self.emit(op)
        self.ops.insert(i, self.ops.pop())
        return op

    def record_qdq(self, node, op_name, weight_name, out_axis, orient):
        """Keep the integers of a QDQ weight (``out_axis``: its output-channel axis; ``orient`` maps
        it to the [N, M] ROM layout), see ops/weights.py."""
        info = self.qinfo.get(weight_name)
        if info is not None:
            q, scale, axis, zp, kind = info
            self.weight_quant[op_name] = weight_codes(self, node, q, scale, zp, axis, out_axis, orient, kind)

    # -- the walk --------------------------------------------------------------------------------
    def graph_input(self):
        g = self.graph
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise ModelError(f"{self.path}: expected one graph input, found {len(inputs)}")
        inp = inputs[0]
        dims = inp.type.tensor_type.shape.dim
        if len(dims) < 2:
            raise ModelError(f"{self.path}: input '{inp.name}' needs a batch dimension and at least one feature dimension")
        sample_shape = []
        for d in dims[1:]:
            if not d.HasField("dim_value"):
                raise ModelError(f"{self.path}: input '{inp.name}' has a symbolic non-batch dimension '{d.dim_param}'")
            sample_shape.append(int(d.dim_value))
        per = int(np.prod(sample_shape, dtype=object))
        if per > MAX_VALUES:
            raise ModelError(f"{self.path}: input '{inp.name}' declares {per:,} values per sample, more than the "
                             f"{MAX_VALUES:,} the compiler handles")
        if not self.output_name:
            for node in g.node:  # an unsupported op says more than the number of outputs
                if node.op_type not in SUPPORTED_OPS or node.domain not in ("", "ai.onnx", getattr(HANDLERS.get(node.op_type), "domain", "")):
                    self.visit(node)
            raise ModelError(f"{self.path}: expected one graph output, found {len(g.output)}")
        return inp.name, tuple(sample_shape)

    def pick_output(self) -> str | None:
        """The graph output the chip computes: the only one, or a classic-ML classifier's scores
        (its label output, and what only reads the scores, such as ZipMap, is left out)."""
        g = self.graph
        if len(g.output) == 1:
            return g.output[0].name
        lc = [n for n in g.node if n.op_type == "LinearClassifier" and len(n.output) > 1]
        return lc[0].output[1] if len(lc) == 1 else None

    def needed(self) -> list:
        """The nodes the chosen output depends on, in graph order."""
        want, keep = {self.output_name}, []
        for node in reversed(self.graph.node):
            if want & set(node.output):
                keep.append(node)
                want |= {i for i in node.input if i}
        return keep[::-1]

    def run(self) -> Network:
        in_name, sample_shape = self.graph_input()
        self.dummy[in_name] = np.zeros((1, *sample_shape), np.float32)
        nodes = self.graph.node if len(self.graph.output) == 1 else self.needed()
        for node in nodes:
            try:
                self.visit(node)
            except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError) as exc:
                # values no handler check foresaw (shapes that do not broadcast, empty tensors):
                # still one line naming the node
                self.fail(node, f"cannot be imported ({type(exc).__name__}: {_first_line(exc)})")
        return self.finish(in_name, sample_shape)

    def visit(self, node) -> None:
        op_t = node.op_type
        h = HANDLERS.get(op_t)
        domain = "" if node.domain == "ai.onnx" else node.domain
        if op_t not in SUPPORTED_OPS or (h.domain if h else "") != domain:
            where = f" of domain '{domain}'" if domain else ""
            self.fail(node, f"op{where} is not supported; supported ops: {', '.join(SUPPORTED_OPS)}")
        self.check_size(node)
        a = _attrs(node)
        ins = [self.real(n) if n else n for n in node.input]
        if self.softmax:
            # after the final Softmax only type changes and a quantizer of the probabilities may follow;
            # the chip's output is the logits (the class order is the same)
            if op_t not in AFTER_SOFTMAX or not ins or ins[0] != self.softmax_out:
                self.fail(node, "Softmax must be the last node")
            self.alias[node.output[0]] = self.softmax_out
            return
        if op_t == "DequantizeLinear" and ins[0] in self.consts:
            self.dequantize_constant(node, ins, **a)
            return
        if all((n in self.consts) for n in ins if n):
            self.fold(node, ins, a)
            return
        if h is None:
            self.fail(node, f"op is not supported on run-time tensors; supported ops: {', '.join(SUPPORTED_OPS)}")
        dyn = [n for n in ins if n and n not in self.consts]
        x = dyn[0]
        if x in self.pending_q and op_t in ("Identity", "Cast"):
            self.pending_q[node.output[0]] = self.pending_q[x]  # the integer code's type changes, not its value
            if x in self.real_of:
                self.real_of[node.output[0]] = self.real_of[x]
            return
        if x not in self.dummy and x not in self.pending_q and x not in self.dynamic:
            self.fail(node, f"input '{x}' is not produced by a supported node")
        n = NodeCtx(node, ins, dyn, x, node.output[0])
        if h.named:
            n.name = self.uniq(node)
        if not h.codes:
            if x in self.pending_q and op_t in ON_CODES:
                self.on_codes(h, n, a)
                return
            if x in self.pending_q:
                self.fail(node, "integer codes (a QuantizeLinear or QLinear op output) must go to a "
                                "DequantizeLinear, a QLinear op or a layout op")
            if len(dyn) > h.inputs:
                self.fail(node, "only one run-time input is supported for this op")
        if x in self.dummy:
            n.shape = self.dummy[x].shape[1:]
        unknown = sorted(set(a) - h.attributes)
        if unknown:
            self.fail(node, f"attribute {unknown[0]} is not supported")
        h.fn(self, n, **a)

    def realize(self, node, c: str) -> str:
        """The float tensor holding the real values of integer codes ``c`` (a QuantPoint, made once)."""
        if c in self.real_of:
            return self.real_of[c]
        src, s, zp, qmin, qmax = self.pending_q[c]
        if src not in self.dummy:
            self.fail(node, f"input '{c}' is not produced by a supported node")
        out = f"{c}:real"
        self.emit(QuantPoint(self.uniq(f"{c}:dequantize"), (src,), out, s, zp, qmin, qmax))
        self.real_of[c] = out
        return out

    def mark_codes(self, c: str, real: str, scale: float, zp: int, qmin: int, qmax: int) -> None:
        """``c`` holds integer codes whose real values the float tensor ``real`` carries."""
        self.pending_q[c] = (real, scale, zp, qmin, qmax)
        self.real_of[c] = real

    def on_codes(self, h, n, a) -> None:
        """A layout op on integer codes runs on their real values; its output keeps the codes' grid."""
        real = self.realize(n.node, n.x)
        _, s, zp, qmin, qmax = self.pending_q[n.x]
        n.ins = [real if i == n.x else i for i in n.ins]
        n.dyn = [real if i == n.x else i for i in n.dyn]
        n.x, n.shape = real, self.dummy[real].shape[1:]
        code, n.out = n.out, f"{n.out}:real"
        h.fn(self, n, **a)
        self.mark_codes(code, self.real(n.out), s, zp, qmin, qmax)

    def fold(self, node, ins, a) -> None:
        try:
            folded = _fold(onnx.helper.make_node(node.op_type, ins, list(node.output), **a), self.consts, self.opset)
        except MemoryError as exc:
            self.fail(node, f"out of memory folding a constant subgraph ({_first_line(exc)})")
        except Exception as exc:
            self.fail(node, f"cannot fold constant subgraph: {_first_line(exc)[:100]}")
        for name, value in zip(node.output, folded):
            self.consts[name] = np.asarray(value)
        if node.op_type == "Identity" and ins[0] in self.qinfo:
            self.qinfo[node.output[0]] = self.qinfo[ins[0]]

    def dequantize_constant(self, node, ins, axis=1, block_size=0, **_) -> None:
        """A quantized weight: keep its float value as a constant and its integers for record_qdq."""
        if block_size:
            self.fail(node, f"blocked quantization (block_size={block_size}) is not supported; "
                            "per-tensor or per-output-channel scales are")
        kind = kind_of(self.consts[ins[0]])
        q = np.asarray(self.consts[ins[0]]).astype(np.int64)
        scale = np.asarray(self.consts[ins[1]], np.float64)
        zp = np.asarray(self.consts[ins[2]]).astype(np.int64) if len(ins) > 2 and ins[2] else np.zeros(1, np.int64)
        if scale.size > 1:
            shp = [1] * q.ndim
            shp[axis] = -1
            scale_b, zp_b = scale.reshape(shp), (zp.reshape(shp) if zp.size > 1 else zp.reshape(-1)[0])
        else:
            scale_b, zp_b = scale.reshape(-1)[0], zp.reshape(-1)[0]
        self.consts[node.output[0]] = ((q - zp_b) * scale_b).astype(np.float32)
        self.qinfo[node.output[0]] = (q, scale, axis if axis >= 0 else axis + q.ndim, zp, kind)

    def finish(self, in_name, sample_shape) -> Network:
        g = self.graph
        final = self.real(self.output_name)
        if self.softmax and final != self.softmax_out:
            raise ModelError(f"{self.path}: Softmax must produce the graph output")
        if final not in self.dummy or final == in_name:
            raise ModelError(f"{self.path}: graph output '{self.output_name}' is not computed from the input by supported ops")
        if not any(isinstance(o, (Dense, Conv)) for o in self.ops):
            raise ModelError(f"{self.path}: the model has no Conv, Gemm or MatMul layer to compile")
        if len(self.dummy[final].shape) != 2:
            raise ModelError(f"{self.path}: the output has shape {self.dummy[final].shape[1:]} per sample; expected [classes]")
        return Network(Path(self.path).stem, in_name, sample_shape, tuple(self.ops), final, self.softmax,
                       self.weight_quant)


def load_onnx(path: str | Path) -> Network:
    """Read, check and convert an ONNX file; every failure is a one-line ModelError."""
    path = Path(path)
    return Importer(path, read_model(path)).run()

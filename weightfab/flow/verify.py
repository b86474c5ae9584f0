"""verify(): a layout file and a model in, readback and bit-accurate simulation out."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .inputs import check_scale, resolve_inputs
from ..errors import LayoutReadError, UsageError, WeightfabError
from ..frontend.onnx_import import load_onnx
from ..tech.pdk import load_pdk
from .compile import apply_merge, check_merge_options
from ..quant.quantize import OPTIMIZED, WEIGHT_BITS, quantize, run_integer
from ..signoff.drc import read_layout
from ..rom.viastack import program
from ..signoff.readback import VerifyResult, find_arrays, verify_layout
from ..faults.protect import checked_weights, parse_protect, with_shadows


@dataclass
class VerifyRun:
    readback: VerifyResult
    weights: str
    accuracy: dict | None
    electrical: list | None = None  # ElectricalResult per engine, when asked for
    warnings: list = None           # e.g. calibrated on --data (flow.inputs)
    protect: int = 0                # N of the msb:N shadow arrays found on the layout (0: none)


def layout_arrays(path, pdk, net) -> tuple[list, int]:
    """The layout's ROM arrays, checked against the model's layers, and N when the layout holds the
    msb:N shadow arrays of ``--protect`` (one after the main arrays per layer; 0 when none)."""
    layout, top = read_layout(path)
    arrays = find_arrays(layout, top, pdk, path)
    if not arrays:
        raise LayoutReadError(f"{path}: no ROM arrays found")
    n_layers = len(net.layers)
    shadows = len(arrays) == 2 * n_layers and arrays[n_layers].cols % net.layers[0].shape[0] == 0
    protect = arrays[n_layers].cols // net.layers[0].shape[0] if shadows else 0
    check_shapes(path, arrays[:n_layers] if shadows else arrays, net)
    for i, (a, l) in enumerate(zip(arrays[n_layers:] if shadows else [], net.layers)):
        if a.cols != l.shape[0] * protect:
            raise LayoutReadError(f"{path}: array {n_layers + i} is {a.cols} bitlines, not the msb:{protect} "
                                  f"shadow of layer '{l.name}' ({l.shape[0]} outputs): it is not a layout of this model")
    return arrays, protect


def infer_weights(path, pdk, net, arrays=None) -> str:
    """The weight format from the layout: bitlines per output channel of the first array."""
    arrays = arrays if arrays is not None else layout_arrays(path, pdk, net)[0]
    bits = arrays[0].cols // net.layers[0].shape[0]
    fmt = {8: "int8", 4: "int4"}.get(bits)
    if fmt is None:
        raise WeightfabError(f"{path}: {arrays[0].cols} bitlines for {net.layers[0].shape[0]} channels: "
                             "give --weights (2-bit layouts may be int2 or ternary)")
    return fmt


def check_shapes(path, arrays, net) -> None:
    """A layout of another model (other layer count or shapes) is said to be one, not a format question."""
    layers = net.layers
    if len(arrays) != len(layers):
        raise LayoutReadError(f"{path}: the layout holds {len(arrays)} ROM arrays, the model has {len(layers)} "
                              "layers: it is not a layout of this model")
    for i, (a, l) in enumerate(zip(arrays, layers)):
        n, m = l.shape
        bits = a.cols // n if a.cols % n == 0 else 0
        if bits not in set(WEIGHT_BITS.values()) or not m <= a.rows < m + 256:
            raise LayoutReadError(f"{path}: array {i} is {a.cols} bitlines x {a.rows} wordlines, which no weight "
                                  f"format of layer '{l.name}' ({n} outputs x {m} inputs) gives: it is not a "
                                  "layout of this model")


def _ort_outputs(ort, model: Path, x: np.ndarray) -> np.ndarray:
    """The float oracle: onnxruntime on the original model (one sample at a time when its batch is fixed)."""
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) else None
    step = fixed or 1024
    dtype = {"tensor(float16)": np.float16, "tensor(double)": np.float64}.get(inp.type, np.float32)  # the model's own
    outs = []
    for s in range(0, len(x), step):
        chunk = x[s:s + step].astype(dtype)
        if fixed and len(chunk) != fixed:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - len(chunk), 0)])
        out = sess.run(None, {inp.name: chunk})[0]
        outs.append(out.reshape(len(out), -1)[: min(step, len(x) - s)])
    return np.concatenate(outs)


def verify(layout: str | Path, model: str | Path, *, pdk="sky130", weights: str | None = None,
           rounding: str = "optimized", calib=None,
           data=None, input_scale: float = 1.0, input_offset: float = 0.0, electrical: bool = False,
           block: int = 4, merge_tol: int | None = None, merge_budget: float | None = None,
           program_layer: str | None = None, protect: str | None = None) -> VerifyRun:
    """program_layer: the via the layout must be programmed on (checked; the readback finds it alone).
    protect: ``msb:N`` as compiled (checked; the shadow arrays are found on the layout without it)."""
    layout, model = Path(layout), Path(model)
    if weights is not None and weights not in WEIGHT_BITS:
        raise UsageError(f"unknown weight format '{weights}'")
    check_merge_options(merge_tol, merge_budget, data is not None)
    check_scale(input_scale, input_offset)
    pdk_ = load_pdk(pdk)
    net = load_onnx(model)
    inputs = resolve_inputs(model, net, calib, data, input_scale, input_offset, required=False)
    data_x, data_y = inputs.data_x, inputs.data_y
    # weight bits do not depend on activation scales: without calibration inputs any input will do
    calib_x = inputs.calib_x if inputs.calib_x is not None else np.ones((1, *net.input_shape), np.float32)
    arrays, n_prot = layout_arrays(layout, pdk_, net)
    if protect is not None and parse_protect(protect) != n_prot:
        raise LayoutReadError(f"{layout}: the layout holds " + (f"msb:{n_prot} shadow arrays" if n_prot else
                              "no shadow arrays") + f", not the --protect {protect} given")
    inferred = weights is None
    weights = weights or infer_weights(layout, pdk_, net, arrays)
    if inputs.calib_x is None and rounding == "optimized" and weights in OPTIMIZED:
        raise UsageError(f"{model}: {weights} weights with optimized rounding depend on the calibration inputs: "
                         "give --calib as compiled (or --rounding nearest if it was compiled so)")

    def reference(fmt):
        q = quantize(net, calib_x, fmt, rounding)
        merged = apply_merge(q, block, merge_tol, merge_budget, calib_x, data_x, data_y)
        q = q if merged is None else merged.apply(q)  # the layout holds the merged weights
        return with_shadows(q, n_prot)                # and, with --protect, their high bits again

    qnet = reference(weights)
    result = verify_layout(layout, qnet, pdk_)
    if program_layer is not None and program(pdk_, program_layer).programming_layer != result.program_layer:
        raise LayoutReadError(f"{layout}: the weights are programmed on {result.program_layer}, "
                              f"not on {program_layer} (--program-layer)")
    if inferred and not result.ok and f"{weights}-mse" in WEIGHT_BITS:
        # the bit width does not tell max from MSE clipping: a layout of the other one matches it
        alt = reference(f"{weights}-mse")
        if result.weights is not None and all(np.array_equal(a, l.weight) for a, l in zip(result.weights, alt.layers)):
            weights, qnet, result = f"{weights}-mse", alt, verify_layout(layout, alt, pdk_)
    accuracy = None
    if data_x is not None:
        ref = run_integer(qnet, data_x)
        chip = run_integer(qnet.with_weights(_as_read(result.weights, qnet, n_prot)), data_x)
        accuracy = {"samples": int(len(data_y)),
                    "float": float(np.mean(np.concatenate([np.argmax(net.forward(data_x[s:s + 256]), 1)
                                                          for s in range(0, len(data_x), 256)]) == data_y)),
                    "quantized": float(np.mean(np.argmax(ref, 1) == data_y)),
                    "chip": float(np.mean(np.argmax(chip, 1) == data_y)),
                    "chip_equals_reference": bool(np.array_equal(ref, chip))}
        try:
            import onnxruntime as ort
        except ImportError:
            ort = None
        if ort is not None:
            accuracy["onnxruntime"] = float(np.mean(np.argmax(_ort_outputs(ort, model, data_x), 1) == data_y))
    checks = None
    if electrical:
        from ..signoff.electrical import electrical_check
        # every engine, on its default window (whole engine up to 8192 bits, else 64 x 64)
        checks = [electrical_check(layout, pdk_, engine=i, expected=qnet, geometric=False)
                  for i in range(len(result.arrays))]
    return VerifyRun(result, weights, accuracy, checks, inputs.warnings, n_prot)


def _as_read(weights: list, qnet, n_prot: int) -> list:
    """The weights the chip computes with: with shadow arrays, a word whose high bits differ from its
    copy reads 0 (faults/protect.py)."""
    if not n_prot:
        return weights
    n = len(weights) // 2
    main, _ = checked_weights(weights[:n], weights[n:], [l.bits for l in qnet.layers[:n]], n_prot)
    return main + list(weights[n:])

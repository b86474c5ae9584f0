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
from ..frontend.network import Conv, Dense
from ..mapping.dedup import from_bits, to_bits
from ..quant.quantize import WEIGHT_BITS, QuantizedNetwork, quantize, run_integer
from ..signoff.readback import read_bits
from ..tech.pdk import Pdk, load_pdk
from .protect import checked_weights, with_shadows


@dataclass
class Chip:
    layout: Path
    pdk: Pdk
    qnet: QuantizedNetwork       # requantization from the model; weights as read back
    bits: list[np.ndarray]       # per engine [cols, rows] uint8, as read back: the layers' arrays, then
                                 # (with --protect msb:N) one shadow array per layer
    arrays: list                 # readback's measured arrays (pitch, origin) per engine
    differing_bits: int          # bits where the layout differs from the model's own quantization
    protect: int = 0             # N of --protect msb:N found on the layout (0: none)

    @property
    def layers(self) -> int:
        return len(self.qnet.layers)

    @property
    def nbits(self) -> list[int]:
        return [l.bits for l in self.qnet.layers]

    def engine_layer(self, e: int) -> int:
        return e % self.layers

    def column_bit(self, e: int) -> np.ndarray:
        """The weight bit position (0 = LSB, b-1 = sign) each column of engine ``e`` holds."""
        layer = self.qnet.layers[self.engine_layer(e)]
        cols = np.arange(self.bits[e].shape[0])
        if e < self.layers:
            return cols % layer.bits
        return cols % self.protect + layer.bits - self.protect

    def weights(self, bits: list[np.ndarray] | None = None) -> list[np.ndarray]:
        """Integer weights [N, M] per layer from engine bit arrays (default: as read back), through
        the protection check when the layout has one."""
        bits = self.bits if bits is None else bits
        main = weights_from_bits(bits[:self.layers], self.qnet)
        if not self.protect:
            return main
        shadow = [weights_from_bits([b], self.qnet, self.protect, i)[0] for i, b in enumerate(bits[self.layers:])]
        return checked_weights(main, shadow, self.nbits, self.protect)[0]

    def outputs(self, x: np.ndarray, bits: list[np.ndarray] | None = None) -> np.ndarray:
        return run_integer(self.qnet.with_weights(self.weights(bits)), x)


def weights_from_bits(bits: list[np.ndarray], qnet: QuantizedNetwork, nbits: int | None = None,
                      first: int = 0) -> list[np.ndarray]:
    """Signed weights from engine bits (layers from ``first``; ``nbits`` overrides the width)."""
    out = []
    for b, layer in zip(bits, qnet.layers[first:]):
        n, m = layer.shape
        nb = nbits or layer.bits
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


def load_chip(layout, model, net, *, pdk="sky130", weights: str | None = None, calib_x=None, data_x=None,
              rounding: str = "optimized") -> Chip:
    """The die's bits from ``layout`` and the integer model of ``net`` (loaded from ``model``),
    quantized on ``calib_x`` (else ``data_x``) with ``rounding``, as it was compiled."""
    layout, model = Path(layout), Path(model)
    pdk_ = load_pdk(pdk)
    arrays, bits, stray, _ = read_bits(layout, pdk_)
    weighted = [o for o in net.ops if isinstance(o, (Dense, Conv))]
    n_prot, L = 0, len(weighted)
    if len(arrays) == 2 * L:                      # compiled with --protect msb:N: a shadow array per layer
        n_prot = arrays[L].cols // weighted[0].matrix().shape[0]
    elif len(arrays) != L:
        raise WeightfabError(f"{layout}: the layout holds {len(arrays)} ROM arrays, the model {model} has "
                             f"{len(weighted)} weighted layers")
    if weights is None:
        n0 = weighted[0].matrix().shape[0]
        weights = {8: "int8", 4: "int4"}.get(arrays[0].cols // n0 if arrays[0].cols % n0 == 0 else 0)
        if weights is None:
            raise WeightfabError(f"{layout}: {arrays[0].cols} bitlines for {n0} channels: give --weights")
    if weights not in WEIGHT_BITS:
        raise WeightfabError(f"unknown weight format '{weights}'")
    cx = calib_x if calib_x is not None else data_x
    if cx is None:
        raise WeightfabError(f"{model}: no calibration inputs: give --calib or --data")
    qnet = quantize(net, cx, weights, rounding)
    for i, (a, layer) in enumerate(zip(arrays, [*qnet.layers, *qnet.layers][:len(arrays)])):
        n, m = layer.shape
        if a.cols != n * (layer.bits if i < L else n_prot) or a.rows < m:
            raise WeightfabError(f"{layout}: array {i} is {a.cols} bitlines x {a.rows} wordlines; layer "
                                 f"'{layer.name}' needs {n * layer.bits} x {m}: compiled for another model or --weights")
    ref = with_shadows(qnet, n_prot)
    ref_bits = bits_from_weights([l.weight for l in ref.layers], ref, [a.rows for a in arrays])
    differing = sum(int(np.count_nonzero(a != b)) for a, b in zip(ref_bits, bits)) + len(stray)
    chip = Chip(layout, pdk_, qnet, bits, list(arrays), differing, n_prot)
    chip.qnet = qnet.with_weights(chip.weights())
    return chip

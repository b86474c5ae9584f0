"""FOUND.json: the faulty bits of one die, as a test of the die that reads its ROM would find them.

{"format": "weightfab-found-faults/1", "layout", "model", "pdk", "weights", "calib", "input_scale",
 "input_offset", "source": {how the die was made, e.g. kind, rate, seed},
 "faults": [{"layer", "name", "channel", "input", "bit", "reads"}, ...]}
Only bits that hold a weight are listed (a fault on a padding wordline changes no weight).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import WeightfabError
from .chip import Chip

FORMAT = "weightfab-found-faults/1"


def diff_faults(chip: Chip, bits: list[np.ndarray]) -> list[dict]:
    """Every bit of a weight that reads otherwise than the layout holds; ``array`` is "main", or
    "protect" for the shadow copy of the high bits (then ``bit`` counts within the copy)."""
    out = []
    for e, (a, b) in enumerate(zip(chip.bits, bits)):
        i = chip.engine_layer(e)
        layer = chip.qnet.layers[i]
        m, nb = layer.shape[1], layer.bits if e < chip.layers else chip.protect
        c, r = np.nonzero(a != b)
        keep = r < m
        for cc, rr in zip(c[keep], r[keep]):
            out.append({"layer": i, "name": layer.name, "array": "main" if e < chip.layers else "protect",
                        "channel": int(cc // nb), "input": int(rr), "bit": int(cc % nb), "reads": int(b[cc, rr])})
    return out


def write_found(path, chip: Chip, bits, meta: dict) -> int:
    faults = diff_faults(chip, bits)
    doc = {"format": FORMAT, **meta, "faults": faults}
    Path(path).write_text(json.dumps(doc, indent=1) + "\n")
    return len(faults)


def read_found(path) -> dict:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise WeightfabError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise WeightfabError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise WeightfabError(f"{path}: not a faults file (expected \"format\": \"{FORMAT}\")")
    for key in ("layout", "model", "faults"):
        if key not in doc:
            raise WeightfabError(f"{path}: missing key '{key}'")
    return doc


def apply_found(chip: Chip, faults: list[dict], where="faults file") -> list[np.ndarray]:
    """The die's bits: the read-back bits with every listed bit set to what it reads."""
    bits = [b.copy() for b in chip.bits]
    for j, f in enumerate(faults):
        try:
            i, n, m, t, v = (int(f[k]) for k in ("layer", "channel", "input", "bit", "reads"))
        except (KeyError, TypeError, ValueError):
            raise WeightfabError(f"{where}: fault {j} needs integer layer, channel, input, bit, reads") from None
        if not 0 <= i < len(bits):
            raise WeightfabError(f"{where}: fault {j}: layer {i} does not exist ({len(bits)} layers)")
        layer = chip.qnet.layers[i]
        shadow = f.get("array", "main") == "protect"
        if shadow and not chip.protect:
            raise WeightfabError(f"{where}: fault {j} is on a protection array; the layout has none")
        nb, e = (chip.protect, i + chip.layers) if shadow else (layer.bits, i)
        if not (0 <= n < layer.shape[0] and 0 <= m < layer.shape[1] and 0 <= t < nb and v in (0, 1)):
            raise WeightfabError(f"{where}: fault {j}: channel {n}, input {m}, bit {t}, reads {v} is outside "
                                 f"layer {i} '{layer.name}' ({layer.shape[0]} x {layer.shape[1]}, {nb} bits)")
        bits[e][n * nb + t, m] = v
    return bits

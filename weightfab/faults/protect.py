"""Selective protection: a shadow copy of the sign and high-order bits, checked on every read.

``--protect msb:N`` gives every weighted layer a second ROM array (a "shadow" engine) holding the
N highest bits of each weight (the sign and the N-1 bits below it), i.e. the N-bit two's
complement value w >> (b - N). It is an ordinary ROM array, drawn, checked and read back like the
others; the floorplan puts the shadow engines after the main ones, so the shadow of a word sits on
its own wordlines, decoder and bitlines: a single wordline or bitline fault cannot hit a bit and
its copy at once.

Read rule (the check logic, modelled, not drawn): a word is used when its N high bits equal the
shadow's; when they differ, the fault is detected and the word is read as 0 (the weight drops
out of the sum). Two copies can tell that a bit is wrong, not which copy; a dropped weight costs
far less than a flipped sign or MSB, which is where faults hurt (see the sensitivity). Faults
in the unprotected low bits pass unchanged. Per read of an output channel the check costs N
XOR2 gates, an (N-1)-input OR and b AND2 gates to zero the word; per channel of every layer,
counted in the report, not drawn.

Why not triplication (majority vote): it corrects instead of dropping, but costs 2N columns per
channel instead of N; the sweep shows a dropped weight costs almost nothing.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import WeightfabError

SHADOW_SUFFIX = "/protect"


def parse_protect(spec: str | None) -> int:
    """``msb:N`` -> N (0 for None)."""
    if spec is None or spec == "":
        return 0
    kind, _, n = str(spec).partition(":")
    if kind != "msb" or not n.isdigit() or int(n) < 1:
        raise WeightfabError(f"--protect {spec!r}: expected msb:N with N >= 1 (the sign and N-1 high bits)")
    return int(n)


def high_bits(weight: np.ndarray, bits: int, n: int) -> np.ndarray:
    """The n highest of ``bits`` two's-complement bits of each weight, as an n-bit signed value."""
    return (np.asarray(weight).astype(np.int16) >> (bits - n)).astype(np.int8)


def with_shadows(qnet, n: int):
    """The quantized network with one shadow layer per weighted layer appended (the integer model
    ignores them: no op refers to their names); their arrays are drawn after the main ones."""
    if n <= 0:
        return qnet
    shadows = []
    for l in qnet.layers:
        if n > l.bits:
            raise WeightfabError(f"--protect msb:{n}: layer '{l.name}' has only {l.bits}-bit weights")
        shadows.append(replace(l, name=l.name + SHADOW_SUFFIX, weight=high_bits(l.weight, l.bits, n), bits=n))
    return replace(qnet, layers=tuple(qnet.layers) + tuple(shadows))


def checked_weights(main: list[np.ndarray], shadow: list[np.ndarray], bits: list[int], n: int
                    ) -> tuple[list[np.ndarray], int]:
    """Weights as the checked read gives them (a mismatched word reads 0), and how many dropped."""
    out, dropped = [], 0
    for w, s, b in zip(main, shadow, bits):
        bad = high_bits(w, b, n) != s
        dropped += int(np.count_nonzero(bad))
        out.append(np.where(bad, 0, w).astype(np.int8))
    return out, dropped


def check_gates(qnet, n: int) -> dict:
    """Gate count of the check logic (modelled): per output channel lane of every layer."""
    lanes = sum(l.shape[0] for l in qnet.layers if not l.name.endswith(SHADOW_SUFFIX))
    per = {"xor2": n, "or_inputs": max(n - 1, 0), "and2": max(l.bits for l in qnet.layers)}
    return {"lanes": lanes, "per_lane": per, "total_gates": lanes * (per["xor2"] + per["and2"] + (1 if n > 1 else 0))}

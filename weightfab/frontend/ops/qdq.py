"""QuantizeLinear / DequantizeLinear on run-time tensors: a pair becomes one QuantPoint."""
from __future__ import annotations

import numpy as np

from ..network import QuantPoint
from . import handler


@handler("QuantizeLinear", codes=True)
def quantize_linear(im, n, *, axis=1, saturate=1, block_size=0, output_dtype=0):
    s = im.const(n.node, n.ins[1], "scale").reshape(-1)
    zp_arr = im.consts.get(n.ins[2]) if n.has(2) else np.zeros(1, np.uint8)
    if s.size != 1:
        im.fail(n.node, "per-channel activation quantization is not supported")
    dt = np.asarray(zp_arr).dtype
    info = np.iinfo(dt if dt.kind in "iu" else np.uint8)
    im.pending_q[n.out] = (n.x, float(s[0]), int(np.asarray(zp_arr).reshape(-1)[0]), int(info.min), int(info.max))


@handler("DequantizeLinear", codes=True)
def dequantize_linear(im, n, *, axis=1, block_size=0):
    if n.x not in im.pending_q:
        im.fail(n.node, "DequantizeLinear of a run-time tensor must follow its QuantizeLinear")
    if n.x in im.real_of:  # dequantized before (or computed by a QLinear op): the same tensor
        im.alias[n.out] = im.real_of[n.x]
        return
    src, s, zp, qmin, qmax = im.pending_q[n.x]
    if src not in im.dummy:
        im.fail(n.node, "QuantizeLinear input not available")
    im.emit(QuantPoint(n.name, (src,), n.out, s, zp, qmin, qmax))
    im.real_of[n.x] = n.out

"""Readback: recover every weight bit from the layout geometry alone, and compare.

No cell names, properties, labels or side files are used. The arrays are found from the
implant (nsdm) areas; each array's column pitch, island pitch and origin are measured on
the diffusion, and the drain-contact rows on the contacts of the first island. The
programming shapes of the whole file are flattened with numpy, one transformation per
instance group, and mapped to (column, wordline) sites. Only readback and DRC use KLayout.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import klayout.db as kdb
import numpy as np

from ..mapping.dedup import from_bits, to_bits
from .drc import read_layout
from ..errors import LayoutReadError
from ..tech.pdk import Pdk
from ..quant.quantize import QuantizedNetwork
from ..rom.geometry import RomGeometry
from ..rom.viastack import program, program_layers


@dataclass(frozen=True)
class Array:
    """One engine as measured on the layout (database units)."""

    x0: int       # centre x of column 0
    y0: int       # bottom y of island 0
    px: int
    py: int
    cols: int
    rows: int     # wordlines = 2 · islands
    drains: tuple[int, int]  # drain-contact centre offsets of wordline 2r and 2r+1
    bbox: tuple[int, int, int, int]
    program_layer: str = ""  # the PDK layer the bits are programmed on, found on the layout


@dataclass(frozen=True)
class Mismatch:
    layer: int
    layer_name: str
    channel: int
    weight: int
    bit: int
    kind: str          # "missing" (expected 1, no shape), "extra" (shape on a 0), "stray" (off-site)
    x_um: float
    y_um: float

    def __str__(self) -> str:
        where = f"at ({self.x_um:.3f}, {self.y_um:.3f}) µm"
        if self.kind == "stray":
            return f"stray programming shape {where} (not on a bit site)"
        return (f"layer {self.layer} '{self.layer_name}' channel {self.channel} weight {self.weight} bit {self.bit}: "
                f"{'missing programming shape' if self.kind == 'missing' else 'extra programming shape'} {where}")


@dataclass
class VerifyResult:
    file: str
    total_bits: int
    matched: int
    mismatches: list[Mismatch]
    weights: list[np.ndarray] | None   # integer weights read back, per layer
    arrays: list[Array]
    seconds: float
    program_layer: str = ""  # found on the layout (the via under the bitline metal)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def summary(self) -> dict:
        return {"ok": self.ok, "program_layer": self.program_layer, "bits": self.total_bits, "matched": self.matched,
                "mismatches": [m.__dict__ for m in self.mismatches[:100]], "mismatch_count": len(self.mismatches),
                "seconds": round(self.seconds, 4)}


def _boxes(it: kdb.RecursiveShapeIterator) -> np.ndarray:
    out = []
    while not it.at_end():
        b = it.shape().bbox().transformed(it.trans())
        out.append((b.left, b.bottom, b.right, b.top))
        it.next()
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def flat_centres(layout: kdb.Layout, top: kdb.Cell, layer: int) -> np.ndarray:
    """Centres (×2, to stay integral) of every shape on ``layer`` under ``top``, [P, 2] int64.

    Cells are visited bottom-up; a cell's points are its own shapes plus each child's
    points moved by every placement of that child, done as one numpy broadcast per
    (child, orientation) group.
    """
    pts: dict[int, np.ndarray] = {}
    wanted = set(top.called_cells()) | {top.cell_index()}
    for ci in layout.each_cell_bottom_up():
        if ci not in wanted:
            continue
        cell = layout.cell(ci)
        own = []
        for s in cell.shapes(layer).each():
            b = s.bbox()
            own.append((b.left + b.right, b.bottom + b.top))
        parts = [np.array(own, np.int64).reshape(-1, 2)]
        groups: dict[tuple[int, int], list] = {}
        for inst in cell.each_inst():
            child = inst.cell_index
            if pts[child].size == 0:
                continue
            ct = inst.cplx_trans
            if not ct.is_ortho() or ct.is_mag():
                raise LayoutReadError(f"cell '{cell.name}': instance with a non-orthogonal or magnified "
                                      "transformation is not a weightfab layout")
            t = inst.trans
            disp = np.array([[2 * t.disp.x, 2 * t.disp.y]], np.int64)
            if inst.is_regular_array():
                ia, ib = np.meshgrid(np.arange(inst.na), np.arange(inst.nb), indexing="ij")
                a, b = inst.a, inst.b
                disp = disp + 2 * np.stack([ia.ravel() * a.x + ib.ravel() * b.x, ia.ravel() * a.y + ib.ravel() * b.y], 1)
            groups.setdefault((child, t.rot), []).append(disp)
        for (child, rot), disps in groups.items():
            m = kdb.Trans(rot, False, 0, 0) if rot < 4 else kdb.Trans(rot - 4, True, 0, 0)
            ex, ey = m * kdb.Point(1, 0), m * kdb.Point(0, 1)
            mat = np.array([[ex.x, ey.x], [ex.y, ey.y]], np.int64)
            local = pts[child] @ mat.T
            d = np.concatenate(disps)
            parts.append((local[None, :, :] + d[:, None, :]).reshape(-1, 2))
        pts[ci] = np.concatenate(parts) if len(parts) > 1 else parts[0]
    return pts[top.cell_index()]


def find_arrays(layout: kdb.Layout, top: kdb.Cell, pdk: Pdk, path) -> list[Array]:
    """Locate the ROM arrays and measure their grids on the base layers."""
    idx = {n: layout.find_layer(*pdk.role_gds(n)) for n in ("diff", "licon")}
    marker = "nsdm" if pdk.has("nsdm") else "diff"
    mark_idx = layout.find_layer(*pdk.role_gds(marker))
    if mark_idx is None or idx["diff"] is None:
        raise LayoutReadError(f"{path}: no ROM arrays found (no {marker} {pdk.role_gds(marker)} or diffusion "
                              f"{pdk.role_gds('diff')} shapes): not a weightfab layout for PDK {pdk.name}")
    if marker == "nsdm":
        implants = kdb.Region(top.begin_shapes_rec(mark_idx)).merged()
    else:
        # n+ is implicit on this PDK (no implant drawn): an array is its diffusion islands grown
        # by half the largest island gap, merged into one shape
        # (the largest over the programming layers the PDK offers: the pitch grows with the via stack)
        grow = max(max(g.px - g.d.diff_width, g.py - g.island) // 2 + 1
                   for g in (RomGeometry.from_pdk(program(pdk, p)) for p in program_layers(pdk)))
        implants = kdb.Region(top.begin_shapes_rec(mark_idx)).sized(grow).merged()
    arrays = []
    for poly in implants.each():
        bb = poly.bbox()
        # the corner island, then the diffusion along the bottom island row and up the first column
        probe = 8_000  # dbu window at the implant's lower-left corner
        corner = _boxes(top.begin_shapes_rec_touching(idx["diff"], kdb.Box(bb.left, bb.bottom, bb.left + probe, bb.bottom + probe)))
        if len(corner) == 0:
            raise LayoutReadError(f"{path}: implant area at ({bb.left * layout.dbu:.3f}, {bb.bottom * layout.dbu:.3f}) µm "
                                  "holds no diffusion at its corner: not a weightfab ROM array")
        yb0 = int(corner[:, 1].min())
        row = _boxes(top.begin_shapes_rec_touching(idx["diff"], kdb.Box(bb.left, yb0, bb.right, yb0 + 1)))
        row = row[np.argsort(row[:, 0])]
        yb = row[0, 1]
        xs = (row[:, 0] + row[:, 2]) // 2
        x0 = int(xs[0])
        col_strip = _boxes(top.begin_shapes_rec_touching(idx["diff"], kdb.Box(x0, bb.bottom, x0 + 1, bb.top)))
        col_strip = col_strip[np.argsort(col_strip[:, 1])]
        ys = col_strip[:, 1]
        px = int(xs[1] - xs[0]) if len(xs) > 1 else 1
        py = int(ys[1] - ys[0]) if len(ys) > 1 else 1
        if (len(xs) > 1 and np.any(np.diff(xs) != px)) or (len(ys) > 1 and np.any(np.diff(ys) != py)):
            raise LayoutReadError(f"{path}: array at ({bb.left * layout.dbu:.3f}, {bb.bottom * layout.dbu:.3f}) µm "
                                  "has an irregular diffusion grid: not a weightfab ROM array")
        island = col_strip[0]
        lic = _boxes(top.begin_shapes_rec_touching(idx["licon"], kdb.Box(*(int(v) for v in island)))) if idx["licon"] is not None else np.zeros((0, 4))
        cy = np.sort((lic[:, 1] + lic[:, 3]) // 2 - yb)
        if len(cy) != 3:
            raise LayoutReadError(f"{path}: first island of the array at ({bb.left * layout.dbu:.3f}, "
                                  f"{bb.bottom * layout.dbu:.3f}) µm has {len(cy)} contacts, a bit pair has 3")
        prog = _program_layer(layout, top, pdk, x0, int(yb) + int(cy[0]), py)
        arrays.append(Array(x0, int(yb), px, py, len(xs), 2 * len(ys), (int(cy[0]), int(cy[2])),
                            (bb.left, bb.bottom, bb.right, bb.top), prog))
    arrays.sort(key=lambda a: (a.bbox[0], a.bbox[1]))
    return arrays


def _program_layer(layout: kdb.Layout, top: kdb.Cell, pdk: Pdk, x: int, y: int, py: int) -> str:
    """The programming layer of an array, from its first bit site (x, y): the bitline is the
    highest metal of the PDK's via stack with a shape over the site at least an island pitch
    tall (the stack's pads are shorter); the programming layer is the via below it."""
    stack = pdk.stack
    for j in range(len(stack) - 1, 1, -2):          # metals from the top, down to the first above li
        idx = layout.find_layer(*pdk.gds(stack[j]))
        if idx is not None and np.any(np.diff(_boxes(top.begin_shapes_rec_touching(
                idx, kdb.Box(x, y, x + 1, y + 1)))[:, 1::2], axis=1) >= py):
            return stack[j - 1]
    return program_layers(pdk)[0]


def read_bits(path: str | Path, pdk: Pdk) -> tuple[list[Array], list[np.ndarray], list[tuple[int, int]], float]:
    """Bits of every array ([cols, rows] uint8) and the stray shapes (µm·2 integer centres)."""
    layout, top = read_layout(path)
    arrays = find_arrays(layout, top, pdk, path)
    found = sorted({a.program_layer for a in arrays})
    if len(found) > 1:
        raise LayoutReadError(f"{path}: the arrays are programmed on different layers ({', '.join(found)})")
    prog = layout.find_layer(*pdk.gds(found[0] if found else pdk.programming_layer))
    pts = flat_centres(layout, top, prog) if prog is not None else np.zeros((0, 2), np.int64)
    bits = []
    pts = pts[np.argsort(pts[:, 0], kind="stable")]   # sorted by x: each array takes a slice
    claimed = np.zeros(len(pts), bool)
    for a in arrays:
        s0, s1 = np.searchsorted(pts[:, 0], [2 * a.bbox[0], 2 * a.bbox[2] + 1])
        x, y = pts[s0:s1, 0], pts[s0:s1, 1]
        inside = (y >= 2 * a.bbox[1]) & (y <= 2 * a.bbox[3])
        col, rx = np.divmod(x - 2 * a.x0, 2 * a.px)
        isl, ry = np.divmod(y - 2 * a.y0, 2 * a.py)
        row = np.where(ry == 2 * a.drains[0], 2 * isl, np.where(ry == 2 * a.drains[1], 2 * isl + 1, -1))
        ok = inside & (rx == 0) & (row >= 0) & (col >= 0) & (col < a.cols) & (row < a.rows)
        b = np.zeros((a.cols, a.rows), np.uint8)
        b[col[ok], row[ok]] = 1
        claimed[s0:s1] |= ok
        bits.append(b)
        del x, y, inside, col, rx, isl, ry, row, ok
    stray = [(int(px), int(py)) for px, py in pts[~claimed][:1000]]
    return arrays, bits, stray, layout.dbu


def verify_layout(path: str | Path, qnet: QuantizedNetwork, pdk: Pdk) -> VerifyResult:
    """Compare the bits of ``path`` with the quantized weights of ``qnet``."""
    t0 = time.perf_counter()
    arrays, bits, stray, dbu = read_bits(path, pdk)
    layers = qnet.layers
    if len(arrays) != len(layers):
        raise LayoutReadError(f"{path}: the layout holds {len(arrays)} ROM arrays, the model has {len(layers)} layers")
    mismatches: list[Mismatch] = []
    weights = []
    total = matched = 0
    for i, (a, b, layer) in enumerate(zip(arrays, bits, layers)):
        n, m = layer.shape
        nb = layer.bits
        if a.cols != n * nb or not m <= a.rows < m + 256:
            raise LayoutReadError(f"{path}: array {i} is {a.cols} bitlines x {a.rows} wordlines; layer '{layer.name}' "
                                  f"needs {n * nb} x {m} (+padding): the layout was made for another model shape")
        expect = np.zeros((n, a.rows, nb), np.uint8)
        expect[:, :m, :] = to_bits(layer.weight, nb)
        got = b.reshape(n, nb, a.rows).transpose(0, 2, 1)     # column n·bits + t, wordline m
        diff = np.argwhere(expect != got)
        total += expect.size
        matched += expect.size - len(diff)
        for ch, w, t in diff[:1000]:
            x = a.x0 + (ch * nb + t) * a.px
            y = a.y0 + (w // 2) * a.py + a.drains[w % 2]
            mismatches.append(Mismatch(i, layer.name, int(ch), int(w), int(t),
                                       "missing" if expect[ch, w, t] else "extra", x * dbu, y * dbu))
        weights.append(from_bits(got[:, :m, :], nb))
    for sx, sy in stray:
        mismatches.append(Mismatch(-1, "", -1, -1, -1, "stray", sx / 2 * dbu, sy / 2 * dbu))
    return VerifyResult(str(path), total, matched, mismatches, weights, arrays, time.perf_counter() - t0,
                        arrays[0].program_layer if arrays else "")

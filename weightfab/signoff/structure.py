"""The hierarchy of a layout file as numpy arrays: regular arrays, shapes per layer, placements.

Readback and the fast DRC need three things from a file: where the regular arrays are (a cell
repeated on a grid by one reference), every shape of one layer flattened to top coordinates, and
everything else flattened per layer. KLayout's reader expands an OASIS placement repetition into
one instance per placement (2.56 million Python-visible instances for ten million int4 weights),
so this module reads the file with gdstk, which keeps a repetition as one numpy array of offsets,
and flattens with one numpy broadcast per (reference, parent placement group). No Python loop
runs per placement or per bit; a GDSII file, which has no irregular repetitions, is read the same
way but holds one reference per placement.

Coordinates are integers in the file's database units. Orientations are the eight orthogonal
ones; a magnified or non-orthogonal reference makes the file unreadable here (``read_structure``
returns None and callers use their general path).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gdstk
import numpy as np

IDENT = (1, 0, 0, 1)  # 2x2 matrix (a, b, c, d): x' = a x + b y, y' = c x + d y


@dataclass(frozen=True)
class ArrayRef:
    """A regular array placement of ``cell`` in top coordinates (identity orientation)."""

    cell: str
    x: int
    y: int
    nx: int
    ny: int
    dx: int
    dy: int

    @property
    def x_end(self) -> int:
        return self.x + self.nx * self.dx

    @property
    def y_end(self) -> int:
        return self.y + self.ny * self.dy


@dataclass
class Structure:
    path: str
    dbu_um: float
    top: str
    cells: dict                      # name -> gdstk.Cell
    arrays: list[ArrayRef]           # every regular-array reference, in top coordinates
    places: dict = field(repr=False)  # cell name -> list of (matrix, [K, 2] int64 origins), arrays excluded
    scale: float = 1000.0            # file units -> database units

    def cell_boxes(self, name: str, layer: tuple[int, int]) -> np.ndarray:
        """Boxes [N, 4] of ``layer`` in cell ``name`` and below, cell coordinates (bounding boxes)."""
        polys = self.cells[name].get_polygons(layer=layer[0], datatype=layer[1])
        return np.array([self._box(p.points) for p in polys], np.int64).reshape(-1, 4)

    def _box(self, pts) -> tuple[int, int, int, int]:
        q = np.rint(np.asarray(pts) * self.scale).astype(np.int64)
        return int(q[:, 0].min()), int(q[:, 1].min()), int(q[:, 0].max()), int(q[:, 1].max())

    def cell_layers(self, name: str) -> set[tuple[int, int]]:
        """Layers with shapes in cell ``name`` or below."""
        return {(p.layer, p.datatype) for p in self.cells[name].get_polygons()}

    def flat_polygons(self, layer: tuple[int, int], skip: set[str] = frozenset()):
        """Every polygon of ``layer`` outside the regular arrays, in top coordinates, as a list of
        [V, 2] int64 point arrays (one per placement), and whether each is an axis-aligned box."""
        out = []
        for name, groups in self.places.items():
            if name in skip or layer not in self._by_layer(name):
                continue
            for pts in self._own(name, layer):
                for m, org in groups:
                    local = pts @ np.array(m, np.int64).reshape(2, 2).T
                    for o in org:
                        out.append(local + o)
        return out

    def _by_layer(self, name: str) -> dict:
        """The cell's own polygons (and paths) per layer: [(points int64, offsets [R, 2])], cached."""
        cache = self.__dict__.setdefault("_layer_cache", {})
        if name not in cache:
            cell = self.cells[name]
            polys = list(cell.polygons)
            for path in list(cell.paths):
                polys += path.to_polygons()
            out: dict = {}
            for p in polys:
                out.setdefault((p.layer, p.datatype), []).append(
                    (np.rint(p.points * self.scale).astype(np.int64), _offsets(p.repetition, self.scale)))
            cache[name] = out
        return cache[name]

    def _own(self, name: str, layer: tuple[int, int]) -> list[np.ndarray]:
        """The cell's own polygons on ``layer``, repetitions applied, cell coordinates."""
        return [pts + o for pts, offs in self._by_layer(name).get(layer, ()) for o in offs]

    def flat_centres(self, layer: tuple[int, int], sizes: bool = False):
        """Centres x2 (integral) [P, 2] int64 of every shape on ``layer`` outside the regular
        arrays; with ``sizes``, also the shapes' sizes [P, 2] (dbu; (-1, -1) for a non-box)."""
        parts, total = [], 0
        for name, groups in self.places.items():
            c2, sz = self._own_centres(name, layer)
            if len(c2):
                parts.append((c2, sz, groups))
                total += len(c2) * sum(len(org) for _, org in groups)
        cen = np.empty((total, 2), np.int64)
        size = np.empty((total if sizes else 0, 2), np.int64)
        at = 0
        for c2, sz, groups in parts:
            for m, org in groups:
                n = len(c2) * len(org)
                local = c2 if m == IDENT else c2 @ np.array(m, np.int64).reshape(2, 2).T
                out = cen[at:at + n].reshape(len(org), len(c2), 2)
                np.add(local[None, :, :], 2 * org[:, None, :], out=out)
                if sizes:
                    s = sz if m == IDENT else np.abs(sz @ np.array(m, np.int64).reshape(2, 2).T)
                    s[sz[:, 0] < 0] = -1
                    size[at:at + n].reshape(len(org), len(c2), 2)[:] = s[None]
                at += n
        return (cen, size) if sizes else cen

    def _own_centres(self, name: str, layer: tuple[int, int]):
        """Centres x2 [Q, 2] and sizes [Q, 2] ((-1, -1): not a box) of the cell's own shapes on
        ``layer``, repetitions applied, cell coordinates; cached."""
        cache = self.__dict__.setdefault("_centre_cache", {})
        key = (name, layer)
        if key not in cache:
            c2, sz = [], []
            for pts, offs in self._by_layer(name).get(layer, ()):
                x0, y0 = pts.min(axis=0)
                x1, y1 = pts.max(axis=0)
                box = len(pts) == 4 and set(pts[:, 0].tolist()) == {x0, x1} and set(pts[:, 1].tolist()) == {y0, y1}
                c2.append(np.array([[x0 + x1, y0 + y1]], np.int64) + 2 * offs)
                sz.append(np.repeat(np.array([[x1 - x0, y1 - y0] if box else [-1, -1]], np.int64), len(offs), axis=0))
            if not c2:
                cache[key] = (np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64))
            else:
                cache[key] = (np.concatenate(c2), np.concatenate(sz))
        return cache[key]


def _offsets(rep, scale: float) -> np.ndarray:
    """Offsets [R, 2] int64 of a gdstk repetition (one zero offset when there is none)."""
    if rep is None or rep.size == 0:
        return np.zeros((1, 2), np.int64)
    return np.rint(np.asarray(rep.get_offsets()) * scale).astype(np.int64).reshape(-1, 2)


def _matrix(ref) -> tuple[int, int, int, int] | None:
    """The 2x2 integer matrix of a reference's orientation, None if not orthogonal or magnified."""
    if abs(ref.magnification - 1.0) > 1e-12:
        return None
    q = ref.rotation / (np.pi / 2)
    k = int(round(q))
    if abs(q - k) > 1e-9:
        return None
    c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][k % 4]
    my = -1 if ref.x_reflection else 1           # reflect y first, then rotate
    return (c, -s * my, s, c * my)


def _mul(m, n) -> tuple[int, int, int, int]:
    a, b, c, d = m
    e, f, g, h = n
    return (a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h)


def _regular(rep, scale: float) -> tuple[int, int, int, int] | None:
    """(nx, ny, dx, dy) of an axis-aligned regular repetition, else None."""
    if rep is None or rep.size == 0 or rep.columns is None or rep.rows is None:
        return None
    if rep.spacing is not None:
        dx, dy = rep.spacing
    elif rep.v1 is not None and rep.v2 is not None and abs(rep.v1[1]) < 1e-12 and abs(rep.v2[0]) < 1e-12:
        dx, dy = rep.v1[0], rep.v2[1]
    else:
        return None
    dx, dy = int(round(dx * scale)), int(round(dy * scale))
    if (rep.columns > 1 and dx <= 0) or (rep.rows > 1 and dy <= 0):
        return None
    return int(rep.columns), int(rep.rows), dx, dy


def read_structure(path: str | Path, dbu_um: float) -> Structure | None:
    """The file's hierarchy, or None where this reader cannot stand in for KLayout's (another
    database unit, several top cells, magnified or non-orthogonal references, an unreadable file)."""
    path = Path(path)
    try:
        lib = gdstk.read_oas(str(path)) if path.suffix.lower() == ".oas" else gdstk.read_gds(str(path))
    except Exception:  # noqa: BLE001 -- any failure: the caller's general path reports it
        return None
    if not lib.unit or abs(lib.precision / 1e-6 - dbu_um) > 1e-12 * max(1.0, dbu_um):
        return None
    tops = lib.top_level()
    if len(tops) != 1 or not isinstance(tops[0], gdstk.Cell):
        return None
    scale = lib.unit / lib.precision
    cells = {c.name: c for c in lib.cells}
    places: dict[str, list] = {}
    arrays: list[ArrayRef] = []
    pending = {tops[0].name: [(IDENT, np.zeros((1, 2), np.int64))]}
    order = _top_down(tops[0])
    for cell in order:
        groups = pending.pop(cell.name, None)
        if not groups:
            continue
        places[cell.name] = groups
        for ref in cell.references:
            if not isinstance(ref.cell, gdstk.Cell):
                return None
            m = _matrix(ref)
            if m is None:
                return None
            o = np.rint(np.asarray(ref.origin) * scale).astype(np.int64)
            reg = _regular(ref.repetition, scale)
            if reg is not None and m == IDENT and all(g[0] == IDENT for g in groups):
                for _, org in groups:
                    for p in org:
                        arrays.append(ArrayRef(ref.cell.name, int(p[0] + o[0]), int(p[1] + o[1]), *reg))
                continue
            offs = _offsets(ref.repetition, scale) + o
            dest = pending.setdefault(ref.cell.name, [])
            for pm, org in groups:
                if pm == IDENT and len(org) == 1:
                    dest.append((m, offs + org[0]))
                    continue
                mat = np.array(pm, np.int64).reshape(2, 2)
                new = (org[:, None, :] + (offs @ mat.T)[None, :, :]).reshape(-1, 2)
                dest.append((_mul(pm, m), new))
    for name, groups in places.items():   # one (matrix, origins) group per orientation
        merged: dict = {}
        for m, org in groups:
            merged.setdefault(m, []).append(org)
        places[name] = [(m, np.concatenate(v)) for m, v in merged.items()]
    return Structure(str(path), dbu_um, tops[0].name, cells, _join(arrays), places, scale)


def _join(arrays: list[ArrayRef]) -> list[ArrayRef]:
    """Abutting tiles of one array (a writer splits arrays longer than a GDSII AREF holds) as one."""
    out = sorted(arrays, key=lambda r: (r.cell, r.dx, r.dy, r.y, r.x))
    changed = True
    while changed:
        changed = False
        for i, a in enumerate(out):
            for j, b in enumerate(out):
                if i == j or (a.cell, a.dx, a.dy) != (b.cell, b.dx, b.dy):
                    continue
                if a.y == b.y and a.ny == b.ny and b.x == a.x_end:
                    m = ArrayRef(a.cell, a.x, a.y, a.nx + b.nx, a.ny, a.dx, a.dy)
                elif a.x == b.x and a.nx == b.nx and b.y == a.y_end:
                    m = ArrayRef(a.cell, a.x, a.y, a.nx, a.ny + b.ny, a.dx, a.dy)
                else:
                    continue
                out = [r for k, r in enumerate(out) if k not in (i, j)] + [m]
                changed = True
                break
            if changed:
                break
    return out


def _top_down(top) -> list:
    """Cells reachable from ``top``, every parent before its children."""
    seen, post = set(), []
    stack = [(top, False)]
    while stack:
        cell, done = stack.pop()
        if done:
            post.append(cell)
            continue
        if cell.name in seen:
            continue
        seen.add(cell.name)
        stack.append((cell, True))
        for child in {r.cell.name: r.cell for r in cell.references if isinstance(r.cell, gdstk.Cell)}.values():
            if child.name not in seen:
                stack.append((child, False))
    return post[::-1]

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
_EMPTY = (np.zeros((0, 4), np.int64), [])
_ORIGIN = np.zeros((1, 2))   # the offsets of a shape or reference without a repetition


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

    def without(self, skip) -> "Structure":
        """The same file with the top cell's references to the cells ``skip`` left out (their
        subtrees unplaced); the shapes read so far are shared (they are in cell coordinates)."""
        walked = _traverse(self.cells[self.top], self.scale, frozenset(skip))
        out = Structure(self.path, self.dbu_um, self.top, self.cells, *walked, self.scale)
        for k in ("_shape_cache", "_prefilled", "_prefilled_on", "_own_layers", "_centre_cache"):
            out.__dict__[k] = self.__dict__.setdefault(k, {} if k != "_prefilled" else set())
        return out

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

    def own_layers(self, name: str) -> set[tuple[int, int]]:
        """Layers of the cell's own shapes (not below)."""
        self._ensure(name)
        return self.__dict__.get("_own_layers", {}).get(name, set())

    def _ensure(self, name: str) -> None:
        """A cell not read yet: read every placed cell at once (callers visit them all)."""
        if name not in self.__dict__.get("_prefilled", ()):
            self.prefill([name, *self.places])

    def _unread(self, names, layer: tuple[int, int]) -> list[str]:
        """The cells of ``names`` whose own shapes on ``layer`` are not in the cache yet."""
        done, part = self.__dict__.get("_prefilled", ()), self.__dict__.get("_prefilled_on", {}).get(layer, ())
        return [n for n in names if n not in done and n not in part]

    def prefill(self, names, layers=None) -> None:
        """Read the own shapes of cells ``names`` into the cache, every layer (or only ``layers``,
        a set of (layer, datatype): a reader that needs a few layers skips the rest), all cells at
        once: one pass over their polygons (repetitions kept as numpy offsets, not one gdstk
        polygon per repeated shape), one numpy conversion for all four-point polygons."""
        cache = self.__dict__.setdefault("_shape_cache", {})
        done = self.__dict__.setdefault("_prefilled", set())
        part = self.__dict__.setdefault("_prefilled_on", {})     # layer -> cells read on it
        names = [n for n in dict.fromkeys(names) if n not in done]
        wanted = None if layers is None else set(layers)
        if wanted is not None:
            missing = set().union(*(set(names) - part.get(ly, set()) for ly in wanted))
            names = [n for n in names if n in missing]
        if not names:
            return
        polys, counts = [], []
        for n in names:
            cell = self.cells[n]
            ps = cell.polygons
            if wanted is not None and len(ps) > 256:   # filtered by gdstk, repetitions kept: no
                ps = [q for ly, dt in sorted(wanted) for q in  # Python object per shape of another layer
                      cell.get_polygons(apply_repetitions=False, include_paths=True, depth=0, layer=ly, datatype=dt)]
            else:
                for path in cell.paths:
                    ps += path.to_polygons()
                if wanted is not None:
                    ps = [q for q in ps if (q.layer, q.datatype) in wanted]
            polys += ps
            counts.append(len(ps))
        off, item = self._offsets(polys)
        pts = [p.points for p in polys]
        lens = np.fromiter(map(len, pts), np.int64, len(pts))
        first = np.cumsum(lens) - lens                         # each polygon's first point in ``every``
        every = np.rint(np.concatenate(pts) * self.scale).astype(np.int64) if pts else np.zeros((0, 2), np.int64)
        four = np.flatnonzero(lens == 4)
        q = every.reshape(-1, 4, 2) if len(four) == len(polys) else every[first[four, None] + np.arange(4)]
        boxes = np.zeros((len(polys), 4), np.int64)
        is_box = np.zeros(len(polys), bool)
        boxes[four], is_box[four] = _rectangles(q)
        ly = np.fromiter((p.layer for p in polys), np.int64, len(polys))
        dt = np.fromiter((p.datatype for p in polys), np.int64, len(polys))
        keys, code = np.unique((ly << 16) | dt, return_inverse=True)
        code = code.ravel()
        layers = [(int(k) >> 16, int(k) & 0xFFFF) for k in keys]
        cell = np.repeat(np.arange(len(names)), counts)[item]
        box_e = is_box[item]
        order = np.lexsort((~box_e, code[item], cell))      # per (cell, layer): boxes first
        flat = boxes[item[order]] + np.tile(off[order], 2)
        gkey = cell[order] * len(layers) + code[item[order]]
        starts = np.flatnonzero(np.diff(gkey, prepend=-1))
        ends = np.append(starts[1:], len(order))
        nbox = np.add.reduceat(box_e[order].astype(np.int64), starts) if len(starts) else starts
        own = self.__dict__.setdefault("_own_layers", {})
        for s0, s1, nb in zip(starts.tolist(), ends.tolist(), nbox.tolist()):
            j = order[s0]
            n, ly = names[cell[j]], layers[code[item[j]]]
            other = [every[first[item[i]]:first[item[i]] + lens[item[i]]] + off[i]
                     for i in order[s0 + nb:s1]] if s1 > s0 + nb else []
            cache[(n, ly)] = (flat[s0:s0 + nb], other)
            own.setdefault(n, set()).add(ly)
        if wanted is None:                                     # every layer read: the cells are done
            done.update(names)
        else:
            for ly in wanted:
                part.setdefault(ly, set()).update(names)

    def _offsets(self, polys) -> tuple[np.ndarray, np.ndarray]:
        """The offsets (dbu) [E, 2] of every placement of the polygons' repetitions (one zero
        offset for a polygon without one) and the polygon of each [E]; a GDSII file has none, and
        only the polygons with a repetition are asked for their offsets."""
        if not self.path.lower().endswith(".oas"):     # GDSII has no repetitions of shapes
            return np.zeros((len(polys), 2), np.int64), np.arange(len(polys))
        reps = [p.repetition for p in polys]
        size = np.fromiter((0 if r is None else r.size for r in reps), np.int64, len(reps))
        nrep = np.maximum(size, 1)
        item = np.repeat(np.arange(len(polys)), nrep)
        off = np.zeros((len(item), 2), np.int64)
        has = np.flatnonzero(size)
        if len(has):
            at = (np.cumsum(nrep) - nrep)[has]
            raw = np.rint(np.concatenate([reps[i].get_offsets() for i in has.tolist()]) * self.scale).astype(np.int64)
            off[np.repeat(at, size[has]) + _ramp(size[has])] = raw
        return off, item

    def own_shapes(self, name: str, layer: tuple[int, int]):
        """The cell's own shapes on ``layer``, repetitions applied, cell coordinates: boxes [B, 4]
        int64 (x0, y0, x1, y1) and the other polygons (a list of [V, 2] int64); cached."""
        if name not in self.__dict__.get("_prefilled", ()) and self._unread([name], layer):
            self._ensure(name)
        return self._shape_cache.get((name, layer), _EMPTY)

    def _own(self, name: str, layer: tuple[int, int]) -> list[np.ndarray]:
        """The cell's own polygons on ``layer``, repetitions applied, cell coordinates."""
        boxes, polys = self.own_shapes(name, layer)
        return [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.int64) for x0, y0, x1, y1 in boxes] + polys

    def flat_polygons(self, layer: tuple[int, int], skip: set[str] = frozenset()):
        """Every polygon of ``layer`` outside the regular arrays, in top coordinates, as a list of
        [V, 2] int64 point arrays (one per placement)."""
        boxes, polys = self.flat_shapes(layer, [n for n in self.places if n not in skip])
        return [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.int64) for x0, y0, x1, y1 in boxes] + polys

    def flat_shapes(self, layer: tuple[int, int], names=None):
        """The shapes of ``layer`` of cells ``names`` (default: all outside the regular arrays),
        every placement, top coordinates: boxes [N, 4] int64 (one numpy broadcast per cell and
        orientation) and the other polygons (a list of [V, 2] int64)."""
        names = list(self.places) if names is None else list(names)
        self.prefill(self._unread(names, layer))
        out, polys = [np.zeros((0, 4), np.int64)], []
        for name in names:
            b, ps = self.own_shapes(name, layer)
            if not len(b) and not ps:
                continue
            for m, org in self.places[name]:
                if len(b):
                    t = box_transform(b, m)
                    out.append((t[None, :, :] + np.tile(org, 2)[:, None, :]).reshape(-1, 4))
                for p in ps:
                    local = p if m == IDENT else p @ np.array(m, np.int64).reshape(2, 2).T
                    polys += [local + o for o in org]
        return np.concatenate(out), polys

    def flat_centres(self, layer: tuple[int, int], sizes: bool = False):
        """Centres x2 (integral) [P, 2] int64 of every shape on ``layer`` outside the regular
        arrays; with ``sizes``, also the shapes' sizes [P, 2] (dbu; (-1, -1) for a non-box)."""
        parts, total = [], 0
        self.prefill(self._unread(list(self.places), layer))
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
            b, polys = self.own_shapes(name, layer)
            bb = np.array([[p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()] for p in polys],
                          np.int64).reshape(-1, 4)
            c2 = np.concatenate([b[:, :2] + b[:, 2:], bb[:, :2] + bb[:, 2:]])
            sz = np.concatenate([b[:, 2:] - b[:, :2], np.full((len(bb), 2), -1, np.int64)])
            cache[key] = (c2, sz)
        return cache[key]


def _rectangles(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Four-point polygons [N, 4, 2]: their bounding boxes [N, 4] and whether each is a rectangle
    (every edge along x or along y, none of length 0)."""
    x, y = q[:, :, 0], q[:, :, 1]
    lo = np.stack([x.min(axis=1), y.min(axis=1)], 1)
    hi = np.stack([x.max(axis=1), y.max(axis=1)], 1)
    dx, dy = x - np.roll(x, -1, axis=1), y - np.roll(y, -1, axis=1)
    rect = ((dx == 0) ^ (dy == 0)).all(axis=1)
    return np.concatenate([lo, hi], axis=1), rect


def _ramp(n: np.ndarray) -> np.ndarray:
    """0..n[0]-1, 0..n[1]-1, ... concatenated."""
    return np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)


def box_transform(b: np.ndarray, m) -> np.ndarray:
    """Boxes [N, 4] under the orthogonal matrix ``m`` (a, b, c, d), as boxes again."""
    if m == IDENT:
        return b
    mat = np.array(m, np.int64).reshape(2, 2)
    p0, p1 = b[:, :2] @ mat.T, b[:, 2:] @ mat.T
    return np.concatenate([np.minimum(p0, p1), np.maximum(p0, p1)], axis=1)


def _matrix(ref) -> tuple[int, int, int, int] | None:
    """The 2x2 integer matrix of a reference's orientation, None if not orthogonal or magnified."""
    if ref.rotation == 0 and not ref.x_reflection and ref.magnification == 1:
        return IDENT
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
    walked = _traverse(tops[0], scale)
    if walked is None:
        return None
    return Structure(str(path), dbu_um, tops[0].name, cells, *walked, scale)


def _traverse(top, scale: float, skip: frozenset = frozenset()):
    """(arrays, places) of every cell below ``top``, leaving out the subtrees of the references
    of ``top`` to the cells named in ``skip``; None where a reference cannot be read here."""
    places: dict[str, list] = {}
    arrays: list[ArrayRef] = []
    pending = {top.name: [(IDENT, np.zeros((1, 2), np.int64))]}
    for cell in _top_down(top, skip):
        groups = pending.pop(cell.name, None)
        if not groups:
            continue
        places[cell.name] = groups
        refs = cell.references
        if cell is top and skip:
            refs = [r for r in refs if not (isinstance(r.cell, gdstk.Cell) and r.cell.name in skip)]
        if not refs:
            continue
        plain, rest = _plain(refs, scale)
        if plain is not None:
            _place_plain(*plain, groups, pending)
        if not _place_refs(rest, scale, groups, pending, arrays):
            return None
    for name, groups in places.items():   # one (matrix, origins) group per orientation
        merged: dict = {}
        for m, org in groups:
            merged.setdefault(m, []).append(org)
        places[name] = [(m, np.concatenate(v)) for m, v in merged.items()]
    return _join(arrays), places


def _place_refs(refs, scale: float, groups, pending: dict, arrays: list) -> bool:
    """Place the references ``refs`` (other than plain ones) of a cell placed at ``groups``: a
    regular array of a cell placed unrotated in unrotated parents is an ArrayRef, any other
    reference is expanded from its repetition, the offsets of all of them scaled and rounded in one
    numpy pass (a block cell's reference is one of tens of thousands). False where a reference
    cannot be read here (not a cell, magnified or non-orthogonal)."""
    if not refs:
        return True
    kids = [r.cell for r in refs]
    if not all(isinstance(c, gdstk.Cell) for c in kids):
        return False
    ms = [_matrix(r) for r in refs]
    if any(m is None for m in ms):
        return False
    o = np.rint(np.array([r.origin for r in refs], np.float64).reshape(-1, 2) * scale).astype(np.int64)
    ident = all(g[0] == IDENT for g in groups)
    raw, take = [], []
    for i, rep in enumerate([r.repetition for r in refs]):     # one read each: gdstk copies it per read
        reg = _regular(rep, scale)
        if reg is not None and ms[i] == IDENT and ident:
            for _, org in groups:
                for p in org:
                    arrays.append(ArrayRef(kids[i].name, int(p[0] + o[i, 0]), int(p[1] + o[i, 1]), *reg))
            continue
        raw.append(rep.get_offsets() if rep is not None and rep.size else _ORIGIN)
        take.append(i)
    if take:
        n = np.fromiter(map(len, raw), np.int64, len(raw))
        offs = np.rint(np.concatenate(raw).reshape(-1, 2) * scale).astype(np.int64) + np.repeat(o[take], n, axis=0)
        once = len(groups) == 1 and groups[0][0] == IDENT and len(groups[0][1]) == 1
        if once:                          # the parent placed once, unrotated: its origin added here
            offs += groups[0][1][0]
        a = 0
        for i, b in zip(take, np.cumsum(n).tolist()):
            if once:
                pending.setdefault(kids[i].name, []).append((ms[i], offs[a:b]))
            else:
                _place(pending.setdefault(kids[i].name, []), ms[i], offs[a:b], groups)
            a = b
    return True


def _place(dest: list, m, offs: np.ndarray, groups) -> None:
    """Add the placements of a child at ``offs`` (orientation ``m``) in every parent placement."""
    for pm, org in groups:
        if pm == IDENT and len(org) == 1:
            dest.append((m, offs + org[0]))
            continue
        mat = np.array(pm, np.int64).reshape(2, 2)
        new = (org[:, None, :] + (offs @ mat.T)[None, :, :]).reshape(-1, 2)
        dest.append((_mul(pm, m), new))


def _plain(refs, scale: float):
    """The references placed once, unrotated, unmagnified, of a cell in the library: (child
    names, origins [R, 2] int64) read with one attribute pass (a block cell is one of tens of
    thousands), and the other references."""
    simple = [isinstance(r.cell, gdstk.Cell) and r.rotation == 0 and not r.x_reflection and r.magnification == 1
              and r.repetition.size == 0 for r in refs]
    if not any(simple):
        return None, refs
    chosen = [r for r, k in zip(refs, simple) if k]
    org = np.rint(np.array([r.origin for r in chosen], np.float64).reshape(-1, 2) * scale).astype(np.int64)
    return ([r.cell.name for r in chosen], org), [r for r, k in zip(refs, simple) if not k]


def _place_plain(names: list[str], org: np.ndarray, groups, pending: dict) -> None:
    """Place each child of ``names`` at its origin in every parent placement (one numpy pass when
    the parent is placed once, unrotated)."""
    if len(groups) == 1 and groups[0][0] == IDENT and len(groups[0][1]) == 1:
        pos = org + groups[0][1][0]
        for name, i in zip(names, range(len(names))):
            pending.setdefault(name, []).append((IDENT, pos[i:i + 1]))
        return
    for name, i in zip(names, range(len(names))):
        _place(pending.setdefault(name, []), IDENT, org[i:i + 1], groups)


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


def _top_down(top, skip: frozenset = frozenset()) -> list:
    """Cells reachable from ``top`` (not through its references to ``skip``), every parent
    before its children."""
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
        refs = cell.references
        if not refs:      # most cells (the weight blocks) place none
            continue
        for child in {r.cell.name: r.cell for r in refs if isinstance(r.cell, gdstk.Cell)}.values():
            if child.name not in seen and not (cell is top and child.name in skip):
                stack.append((child, False))
    return post[::-1]

"""Cells and the file writer. The only module that imports gdstk.

Hierarchy: top cell (named after the model) -> one engine cell per layer -> the bit-pair cell
(one regular array reference) and one cell per unique non-zero weight block (one reference
per block with an explicit repetition over all of its uses). A block cell holds a single
programming rectangle repeated at its 1-bits. No Python loop runs per bit or per via. A macro
cell (an engine with its periphery) places its periphery as one cell, ``<model>_periphery_<cols>x<rows>``,
shared by every engine of that shape; the macro cell keeps its array, pins and labels.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import re
import tempfile
from pathlib import Path

import gdstk
import numpy as np

from ..mapping.dedup import BlockLibrary, LayerBlocks, to_bits
from ..errors import WeightfabError
from ..tech.pdk import Pdk
from .geometry import Placement, RomGeometry, Shape

TIMESTAMP = datetime.datetime(2000, 1, 1)


def cell_prefix(name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "model"
    return clean if clean[0].isalpha() else "m_" + clean


# zlib level of OASIS cell compression: levels 1-3 (zlib's fast deflate) take 1.8-2.7x less CPU than
# gdstk's default 6 here and, on these files (a few cells of long repetitions), compress as well:
# level 2 writes the 100M synthetic file in 3.6 s CPU (91.61 MB) against 9.7 s (91.64 MB), the 10M one
# in 0.73 s (13.51 MB) against 1.28 s (13.58 MB)
OAS_COMPRESSION = 2
AREF_MAX = 32767  # GDSII AREF columns/rows are 16-bit signed integers: larger arrays are written as tiles


def _add(cell: gdstk.Cell, s: Shape, pdk: Pdk, um: float, cells: dict[str, gdstk.Cell]):
    x0, y0, x1, y1 = s.box
    if s.layer in cells:  # a sub-cell: regular array reference(s), tiles of at most AREF_MAX per axis
        for i in range(0, s.nx, AREF_MAX):
            for j in range(0, s.ny, AREF_MAX):
                cell.add(gdstk.Reference(cells[s.layer], ((x0 + i * s.dx) * um, (y0 + j * s.dy) * um),
                                         columns=min(AREF_MAX, s.nx - i), rows=min(AREF_MAX, s.ny - j),
                                         spacing=(s.dx * um, s.dy * um)))
        return
    layer, dtype = pdk.gds(s.layer[6:]) if s.layer.startswith("layer:") else pdk.role_gds(s.layer)
    rect = gdstk.rectangle((x0 * um, y0 * um), (x1 * um, y1 * um), layer=layer, datatype=dtype)
    if s.nx > 1 or s.ny > 1:
        rect.repetition = gdstk.Repetition(columns=s.nx, rows=s.ny, spacing=(s.dx * um, s.dy * um))
    cell.add(rect)


def build_library(top: str, blocks: BlockLibrary, placement: Placement, pdk: Pdk, macros: list | None = None) -> gdstk.Library:
    """macros: per engine, a rom.periphery Macro (its cell is ``<engine>_macro``: the folded array
    and its periphery) or None (the array alone, as ``<model>_engine<i>``)."""
    geom = RomGeometry.from_pdk(pdk)
    um = pdk.dbu_um
    prefix = cell_prefix(top)
    lib = gdstk.Library(name=prefix, unit=1e-6, precision=pdk.dbu_um * 1e-6)
    pair = gdstk.Cell(f"{prefix}_bitpair")
    for s in geom.bitpair():
        _add(pair, s, pdk, um, {})
    tie_cells: dict[str, gdstk.Cell] = {}
    top_cell = gdstk.Cell(prefix)
    block_cells: dict[str, gdstk.Cell] = {}
    engine_cells = []
    prog_layer, prog_dtype = pdk.role_gds("mcon")
    lib_cells: dict[str, gdstk.Cell] = {}
    periphery: dict[tuple[int, int], list] = {}   # (cols, rows) -> [(shapes, refs, cell)]: shared by same-shape engines
    for i, (lb, place) in enumerate(zip(blocks.layers, placement.engines)):
        macro = macros[i] if macros else None
        eng = gdstk.Cell(macro.name if macro is not None else f"{prefix}_engine{i}")
        taps = macro.taps if macro is not None else geom.tap_plan(place.rows // 2)
        subcells = {"bitpair": pair, **_tie_cells(geom, place.cols, prefix, pdk, um, tie_cells)}
        if macro is not None:
            fill_macro(eng, macro, pdk, um, subcells, lib_cells, geom, (periphery, prefix))
        else:
            for s in geom.engine(place.cols, place.rows, taps=taps):
                _add(eng, s, pdk, um, subcells)
        _add_blocks(eng, lb, geom, prefix, block_cells, um, (prog_layer, prog_dtype), taps, geom.columns(place.cols))
        top_cell.add(gdstk.Reference(eng, (place.origin[0] * um, place.origin[1] * um)))
        engine_cells.append(eng)
    x0, y0, x1, y1 = placement.die
    bl, bd = pdk.role_gds("boundary")
    top_cell.add(gdstk.rectangle((x0 * um, y0 * um), (x1 * um, y1 * um), layer=bl, datatype=bd))
    for c in [top_cell, *engine_cells, *(c for k in sorted(periphery) for *_, c in periphery[k]), pair,
              *(tie_cells[k] for k in sorted(tie_cells)),
              *(block_cells[k] for k in sorted(block_cells)),
              *(lib_cells[k] for k in sorted(lib_cells))]:
        lib.add(c)
    return lib


def _tie_cells(geom: RomGeometry, cols: int, prefix: str, pdk: Pdk, um: float, made: dict) -> dict:
    """The tie cells (wordline straps, rom/ties.py) of a ``cols``-column array by their role,
    made once per library (the same for every strapped array)."""
    out = {}
    for role, shapes in geom.tie_cells(cols).items():
        if role not in made:
            made[role] = gdstk.Cell(f"{prefix}_{role}")
            for s in shapes:
                _add(made[role], s, pdk, um, {})
        out[role] = made[role]
    return out


def _add_blocks(eng, lb: LayerBlocks, geom: RomGeometry, prefix: str, block_cells: dict, um: float, prog, taps,
                cplan):
    """One cell per unique non-zero block (per phase: where the block straddles a tap row its
    sites stand one slot further from that row on), one reference repeated over its uses (a
    block's columns never straddle a tie column: ``cplan.every`` is a multiple of its width)."""
    k, b = lb.block, lb.bits
    if cplan.strapped and cplan.every % b:
        raise WeightfabError(f"tie columns every {cplan.every} bitlines cut {b}-bit weights")
    bits = to_bits(lb.unique, b)                           # [U, K, b]
    phases, phase_j, slot_j = _phases(lb.index.shape[1], k, taps)
    if not lb.index.size:
        return
    key, order = _use_order(lb.index, phase_j, len(phases))
    n_o, j_o = np.divmod(order, lb.index.shape[1])
    xy = np.stack([cplan.x(n_o * b), slot_j[j_o] * geom.py], 1)      # every use's origin, in key order
    ko = key[order]
    bounds = np.flatnonzero(ko[1:] != ko[:-1]) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(order)]
    u_s, ph_s = np.divmod(ko[starts].astype(np.int64), len(phases))
    drawn = bits.reshape(len(bits), -1).any(axis=1)[u_s]              # an all-zero block draws nothing
    origin = (xy[starts] * um).tolist()
    uu, row, col = np.nonzero(bits)                                   # every block's bit sites, block by block
    site_x, site_y = geom.site_xy(col, row)
    first = np.searchsorted(uu, np.arange(len(bits) + 1)).tolist()
    for i in np.flatnonzero(drawn).tolist():
        a, z = int(starts[i]), int(ends[i])
        u = int(u_s[i])
        s = slice(first[u], first[u + 1])
        cell = _block_cell(bits[u], (row[s], site_x[s], site_y[s]), k, b, phases[ph_s[i]], geom, prefix,
                           block_cells, um, prog)
        ref = gdstk.Reference(cell, origin[i])
        if z - a > 1:
            ref.repetition = gdstk.Repetition(offsets=(xy[a + 1:z] - xy[a]) * um)
        eng.add(ref)


def _phases(n_cols: int, k: int, taps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A block's phase hangs on its column (island) alone: the distinct phases (rows of slot
    shifts, sorted), each block column's phase and the slot of its first island."""
    isl0 = np.arange(n_cols, dtype=np.int64) * (k // 2)
    slot_j = taps.slot(isl0)
    shift = taps.slot(isl0[:, None] + np.arange(k // 2)[None, :]) - slot_j[:, None] - np.arange(k // 2)
    phases, phase_j = np.unique(shift, axis=0, return_inverse=True)
    return phases, phase_j.ravel(), slot_j


def _use_order(index: np.ndarray, phase_j: np.ndarray, n_phases: int) -> tuple[np.ndarray, np.ndarray]:
    """Every use's key (unique block x phase, in the narrowest integer that holds it) and the uses
    in key order, ties in use order (a stable sort: radix for 16-bit keys)."""
    top = (int(index.max()) + 1) * n_phases if index.size else 1
    dt = np.uint16 if top <= 1 << 16 else np.uint32 if top <= 1 << 32 else np.int64
    key = index.astype(dt)
    if n_phases > 1:
        key *= dt(n_phases)
        key += phase_j.astype(dt)[None, :]
    key = key.ravel()
    return key, np.argsort(key, kind="stable")


def _block_cell(bits_u: np.ndarray, sites, k: int, b: int, shift: np.ndarray, geom: RomGeometry, prefix: str,
                block_cells: dict, um: float, prog):
    """The cell of one block's bits [K, b] (``sites``: the rows and centres of its 1-bits, island i
    in slot i) whose island i stands ``shift[i]`` slots further up."""
    tag = bytes([k, b]) + (shift.astype(np.int64).tobytes() if shift.any() else b"")
    name = f"{prefix}_blk_{hashlib.sha256(np.ascontiguousarray(bits_u).tobytes() + tag).hexdigest()[:12]}"
    cell = block_cells.get(name)
    if cell is None:
        cell = gdstk.Cell(name)
        row, px, py = sites
        py = py + shift[row // 2] * geom.py
        x0, y0, x1, y1 = geom.prog_box(int(px[0]), int(py[0]))
        rect = gdstk.rectangle((x0 * um, y0 * um), (x1 * um, y1 * um), layer=prog[0], datatype=prog[1])
        if len(px) > 1:
            rect.repetition = gdstk.Repetition(offsets=np.stack([px[1:] - px[0], py[1:] - py[0]], 1) * um)
        cell.add(rect)
        block_cells[name] = cell
    return cell


def write_library(lib: gdstk.Library, path: str | Path) -> int:
    """Write GDSII (.gds) or OASIS (.oas) atomically; returns the file size in bytes."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gds", ".oas"):
        raise WeightfabError(f"{path}: output must end in .gds or .oas")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise WeightfabError(f"cannot write {path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        os.close(fd)
    except OSError as exc:
        raise WeightfabError(f"cannot write {path}: {exc.strerror}") from None
    try:
        if suffix == ".gds":
            lib.write_gds(tmp, timestamp=TIMESTAMP)
        else:
            # CRC32: flow/outputs.py checks the whole file against it
            lib.write_oas(tmp, compression_level=OAS_COMPRESSION, validation="crc32")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise WeightfabError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path.stat().st_size


# -- macros: the folded array plus its periphery (rom/periphery) -------------------------------
def _layer(pdk: Pdk, name: str) -> tuple[int, int]:
    """A periphery drawing layer: a layer of the interconnect stack by its own name (the periphery
    is wired on physical layers whatever the programming layer), else a ROM role, else a layer of
    the PDK's [layers] table."""
    if f"stack:{name}" in pdk.roles:
        name = f"stack:{name}"
    if name in pdk.roles:
        return pdk.role_gds(name)
    if name not in pdk.layers:
        raise WeightfabError(f"{pdk.path}: the macro periphery draws layer '{name}', which [layers] does not define")
    return pdk.gds(name)


def std_cell(lib_cells: dict[str, gdstk.Cell], name: str) -> gdstk.Cell:
    """The foundry cell ``name`` (read once from the PDK package's GDS, unchanged)."""
    if name not in lib_cells:
        from .periphery.stdcells import load
        src = gdstk.read_gds(str(load(name).gds))
        for c in src.cells:
            lib_cells.setdefault(c.name, c)
    return lib_cells[name]


PIN_SUFFIXES = ("_pin", "_label")   # a pin's shapes stay in the macro cell, beside its label (views/lef.py)


def fill_macro(cell: gdstk.Cell, macro, pdk: Pdk, um: float, subcells: dict, lib_cells: dict[str, gdstk.Cell],
               geom: RomGeometry, shared: tuple[dict, str] | None = None):
    """Draw a macro's array (folded) and periphery into ``cell`` (engine coordinates). With
    ``shared`` (a dict kept across the macros of one library, the cell-name prefix), the periphery
    but its pins is one cell of its own, placed once, that every macro with the same periphery
    places: the layout then holds each distinct periphery once (the checks read it once)."""
    for s in geom.engine(macro.cols, macro.rows, fold=True, taps=macro.taps):
        _add(cell, s, pdk, um, subcells)
    if shared is None:
        _draw(cell, macro.drawing.shapes, macro.drawing.refs, pdk, um, lib_cells)
    else:
        pins = [(ly, b) for ly, b in macro.drawing.shapes if ly.endswith(PIN_SUFFIXES)]
        cell.add(gdstk.Reference(_periphery_cell(macro, pdk, um, lib_cells, *shared)))
        _draw(cell, pins, [], pdk, um, lib_cells)
    for lab in macro.drawing.labels:
        ly, dt = _layer(pdk, lab.layer)
        cell.add(gdstk.Label(lab.text, (lab.x * um, lab.y * um), layer=ly, texttype=dt))


def _periphery_cell(macro, pdk: Pdk, um: float, lib_cells: dict, shared: dict, prefix: str) -> gdstk.Cell:
    """The cell holding ``macro``'s periphery but its pins: an earlier one with the same shapes
    and references, or a new one named after the macro's size."""
    shapes = [(ly, b) for ly, b in macro.drawing.shapes if not ly.endswith(PIN_SUFFIXES)]
    seen = shared.setdefault((macro.cols, macro.rows), [])
    for old_shapes, old_refs, c in seen:
        if old_shapes == shapes and old_refs == macro.drawing.refs:
            return c
    name = f"{prefix}_periphery_{macro.cols}x{macro.rows}" + (f"_{len(seen)}" if seen else "")
    c = gdstk.Cell(name)
    _draw(c, shapes, macro.drawing.refs, pdk, um, lib_cells)
    seen.append((shapes, list(macro.drawing.refs), c))
    return c


def _draw(cell: gdstk.Cell, shapes, refs, pdk: Pdk, um: float, lib_cells: dict):
    """Rectangles (by layer, sorted: the file does not depend on drawing order) and standard-cell references."""
    by_layer: dict[tuple[int, int], list] = {}
    for layer, box in shapes:
        by_layer.setdefault(_layer(pdk, layer), []).append(box)
    for (ly, dt), boxes in sorted(by_layer.items()):
        for x0, y0, x1, y1 in sorted(boxes):
            cell.add(gdstk.rectangle((x0 * um, y0 * um), (x1 * um, y1 * um), layer=ly, datatype=dt))
    for r in refs:
        cell.add(gdstk.Reference(std_cell(lib_cells, r.cell), (r.x * um, r.y * um), rotation=np.pi * r.rot / 180,
                                 x_reflection=r.mirror))


def macro_library(macro, pdk: Pdk, bits: np.ndarray | None = None, geom: RomGeometry | None = None) -> gdstk.Library:
    """A library holding one macro cell (programmed with ``bits`` [cols, rows], one via per 1);
    ``geom``: the array's geometry, when the macro was built with another than the PDK's own."""
    geom = RomGeometry.from_pdk(pdk) if geom is None else geom
    um = pdk.dbu_um
    lib = gdstk.Library(name=macro.name, unit=1e-6, precision=pdk.dbu_um * 1e-6)
    pair = gdstk.Cell(f"{macro.name}_bitpair")
    for s in geom.bitpair():
        _add(pair, s, pdk, um, {})
    cell = gdstk.Cell(macro.name)
    lib_cells: dict[str, gdstk.Cell] = {}
    ties: dict[str, gdstk.Cell] = {}
    fill_macro(cell, macro, pdk, um, {"bitpair": pair, **_tie_cells(geom, macro.cols, macro.name, pdk, um, ties)},
               lib_cells, geom)
    if bits is not None:
        col, row = np.nonzero(bits)
        sx, sy = geom.site_xy(col, row, macro.taps, geom.columns(macro.cols))
        ly, dt = pdk.role_gds("mcon")
        for x, y in zip(sx.tolist(), sy.tolist()):
            x0, y0, x1, y1 = geom.prog_box(x, y)
            cell.add(gdstk.rectangle((x0 * um, y0 * um), (x1 * um, y1 * um), layer=ly, datatype=dt))
    for c in [cell, pair, *(ties[k] for k in sorted(ties)), *(lib_cells[k] for k in sorted(lib_cells))]:
        lib.add(c)
    return lib

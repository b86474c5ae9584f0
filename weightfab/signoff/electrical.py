"""Electrical readback: extract the transistors and nets of a ROM window with KLayout, and check them.

The geometric readback (readback.py) finds programming shapes on bit sites. This module asks
the circuit question instead: in a window of one engine (a range of bitlines × wordlines,
whole islands), the layout's shapes are clipped into flat regions and handed to KLayout's
netlist extractor shared with LVS (``extract.extract``: ``kdb.LayoutToNetlist`` in flat mode).
NMOS devices come from the diffusion and poly inside the n implant: gate = diff & poly & nsdm,
source/drain = (diff & nsdm) - poly. Conductors: source/drain - licon - li - mcon - met1,
poly - licon - li.

The window keeps the nets' terminals: every wordline in it is followed on poly (and only
poly) to its contact pad left of the array, every ground line on li (and only li) to the
ground rail right of the array. Bitlines are the met1 lines over the window's columns.

For every transistor of the window the check then asks:

* its gate is its wordline's net, that net reaches exactly one wordline pad, and no two
  wordlines share a net;
* its source is the ground net (the net of the rail);
* its drain (the source/drain diffusion at the bit site) is on that column's bitline net
  for a 1-bit, and floating (a net with that one device terminal and no bitline, ground or
  wordline on it) for a 0-bit.

The electrical bits (drain on its own bitline) are compared with the expected bits (given
by the caller, or the geometric readback when none are given) and with the geometric bits.
Nothing from cell names, properties or the generator is used: the grid comes from
``readback.find_arrays``; the bit a transistor stores is located by its extracted gate.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import klayout.db as kdb
import numpy as np

from ..mapping.dedup import to_bits
from .drc import read_layout
from ..errors import LayoutReadError, WeightfabError
from ..tech.pdk import Pdk, load_pdk
from ..quant.quantize import QuantizedNetwork
from . import extract as ex
from .readback import Array, find_arrays, read_bits
from .taprows import island_slots, site_y
from .tiecols import col_of_x, col_x
from ..rom.viastack import program, stack_roles

LAYERS = ("diff", "poly", "licon", "li", "mcon", "met1", "nsdm", "pimplant")
DEFAULT_MAX_BITS = 8192        # a whole engine up to this many bits, else a 64 × 64 window
DEFAULT_WINDOW = 64
MAX_ERRORS = 200               # error strings kept (error_count has them all)


@dataclass
class ElectricalResult:
    file: str
    engine: int
    window: tuple[int, int, int, int]    # col0, ncols, row0, nrows (wordlines)
    devices: int                          # transistors found on the window's bit sites
    ones: int                             # expected 1-bits in the window
    ones_connected: int                   # ... whose drain is on the column's bitline
    zeros: int
    zeros_floating: int                   # expected 0-bits whose drain floats
    bits: np.ndarray                      # [ncols, nrows] electrical: drain on its bitline
    floating: np.ndarray                  # [ncols, nrows] bool: drain floats (a 0 read electrically)
    geometric: np.ndarray | None          # [ncols, nrows] readback.read_bits of the window
    expected: np.ndarray                  # [ncols, nrows] what was checked against
    nets: int
    errors: list[str]
    error_count: int
    seconds: float
    timings: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def summary(self) -> dict:
        return {"ok": self.ok, "engine": self.engine, "window": list(self.window), "devices": self.devices,
                "ones": self.ones, "ones_connected": self.ones_connected, "zeros": self.zeros,
                "zeros_floating": self.zeros_floating, "nets": self.nets, "error_count": self.error_count,
                "errors": self.errors[:100], "seconds": round(self.seconds, 4),
                "timings_s": {k: round(v, 4) for k, v in self.timings.items()}}


def expected_bits(qnet: QuantizedNetwork, engine: int, rows: int) -> np.ndarray:
    """The bits layer ``engine`` of ``qnet`` puts in its array, [columns, wordlines] uint8
    (column n·bits + t holds bit t of output n; wordlines past the inputs are 0)."""
    layer = qnet.layers[engine]
    n, m = layer.shape
    nb = layer.bits
    if rows < m:
        raise WeightfabError(f"layer '{layer.name}' has {m} inputs but the array only {rows} wordlines")
    e = np.zeros((n, rows, nb), np.uint8)
    e[:, :m, :] = to_bits(layer.weight, nb)
    return e.transpose(0, 2, 1).reshape(n * nb, rows)


def _inside_point(poly: kdb.Polygon) -> kdb.Point:
    """A point strictly inside ``poly`` (centre of its first trapezoid)."""
    return poly.decompose_trapezoids()[0].bbox().center()


def _engine_limits(arrays: list[Array], i: int, outer: kdb.Box) -> tuple[int, int]:
    """x range that belongs to array i: half way to its left / right neighbours."""
    a = arrays[i]
    left, right = outer.left, outer.right
    for j, b in enumerate(arrays):
        if j == i or b.bbox[3] < a.bbox[1] or b.bbox[1] > a.bbox[3]:
            continue
        if b.bbox[2] <= a.bbox[0]:
            left = max(left, (b.bbox[2] + a.bbox[0]) // 2)
        elif b.bbox[0] >= a.bbox[2]:
            right = min(right, (a.bbox[2] + b.bbox[0]) // 2)
    return left, right


def _island_length(layout: kdb.Layout, top: kdb.Cell, diff: int, a: Array) -> int:
    it = top.begin_shapes_rec_touching(diff, kdb.Box(a.x0, a.y0, a.x0 + 1, a.y0 + 1))
    hs = []
    while not it.at_end():
        b = it.shape().bbox().transformed(it.trans())
        if b.bottom == a.y0:
            hs.append(b.height())
        it.next()
    if not hs:
        raise LayoutReadError(f"no diffusion at the first island ({a.x0 * layout.dbu:.3f}, {a.y0 * layout.dbu:.3f}) µm")
    return max(hs)


@dataclass
class Window:
    """One engine's window as extracted: the layout, the measured array and its limits (dbu)."""

    layout: kdb.Layout
    top: kdb.Cell
    arrays: list[Array]
    engine: int
    array: Array
    window: tuple[int, int, int, int]     # col0, ncols, row0, nrows
    ylo: int
    yhi: int
    arr_left: int
    arr_right: int
    lim_left: int
    lim_right: int
    extraction: ex.Extraction
    rail: kdb.Region                      # the ground rail's li (right of the array)


def extract_window(path: str | Path, pdk: Pdk, engine: int | None = None,
                   window: tuple[int, int, int, int] | None = None, lap=lambda stage: None) -> Window:
    """Clip one engine's window (see electrical_check) and extract it with ``extract.extract``."""
    layout, top = read_layout(path)
    arrays = find_arrays(layout, top, pdk, path)
    if engine is None:
        engine = min(range(len(arrays)), key=lambda i: (arrays[i].cols * arrays[i].rows, i))
    if not 0 <= engine < len(arrays):
        raise WeightfabError(f"{path}: engine {engine} out of range: the layout holds {len(arrays)} ROM arrays")
    a = arrays[engine]
    pdk = program(pdk, a.program_layer or None)   # the layer found on the layout, with its via stack
    layers = LAYERS + stack_roles(pdk)
    if window is None:
        if a.cols * a.rows <= DEFAULT_MAX_BITS:
            window = (0, a.cols, 0, a.rows)
        else:
            window = (0, min(a.cols, DEFAULT_WINDOW), 0, min(a.rows, DEFAULT_WINDOW))
    col0, ncols, row0, nrows = (int(v) for v in window)
    if ncols < 1 or nrows < 1 or col0 < 0 or row0 < 0 or col0 + ncols > a.cols or row0 + nrows > a.rows:
        raise WeightfabError(f"window (col0={col0}, ncols={ncols}, row0={row0}, nrows={nrows}) does not fit "
                             f"engine {engine} of {a.cols} bitlines x {a.rows} wordlines")
    idx = ex.layer_indices(layout, pdk)
    missing = [n for n in ("diff", "poly", "licon", "li", "met1") if idx[n] is None]
    if missing:
        raise LayoutReadError(f"{path}: no {', '.join(missing)} shapes: nothing to extract")
    lap("read")

    # -- the window: core (all layers), wordlines to their pads (poly; pads: licon, li), ground to the rail (li)
    px, py = a.px, a.py
    isl0, isl1 = row0 // 2, (row0 + nrows - 1) // 2 + 1
    island = _island_length(layout, top, idx["diff"], a)
    gap = (py - island) // 2
    slot = island_slots(a)                          # tap rows stand in slots of their own
    ylo, yhi = a.y0 + int(slot[isl0]) * py - gap, a.y0 + int(slot[isl1 - 1]) * py + island + gap
    xc0, xc1 = int(col_x(a, col0)) - px // 2, int(col_x(a, col0 + ncols - 1)) + px // 2
    arr_left, arr_right = a.x0 - px // 2, int(col_x(a, a.cols - 1)) + px // 2
    if a.tie_every:      # the edge tie columns (wordline straps) belong to the array, not to its pad zones
        from ..rom.geometry import RomGeometry
        reach = (px + a.tie_width) // 2 + RomGeometry.from_pdk(pdk).tie.li_x + 1
        arr_left, arr_right = a.x0 - reach, int(col_x(a, a.cols - 1)) + reach
    lim_left, lim_right = _engine_limits(arrays, engine, top.bbox())
    core = kdb.Box(xc0, ylo, xc1, yhi)
    boxes = {n: [core] for n in layers}
    # the wordlines, followed on poly to their pads (left; a folded array's odd ones right of the
    # rail): the poly polygons that run into the window's gates, which also bound the pad zones
    poly_all = ex.clip(layout, top, idx["poly"], kdb.Box(lim_left, ylo, lim_right, yhi)).merged()
    wl_poly = poly_all.interacting(ex.clip(layout, top, idx["poly"], core))
    zone = wl_poly.bbox() if not wl_poly.is_empty() else kdb.Box(arr_left, ylo, arr_right, yhi)
    pad_left, pad_right = min(zone.left, arr_left), max(zone.right, arr_right)
    boxes["poly"] = []
    boxes["licon"] += [kdb.Box(pad_left, ylo, arr_left, yhi), kdb.Box(arr_right, ylo, pad_right, yhi)]
    boxes["li"].append(kdb.Box(pad_left, ylo, arr_left, yhi))
    regs: dict[str, kdb.Region] = {}
    for n in layers:
        regs[n] = kdb.Region()
        for b in boxes[n]:
            regs[n] += ex.clip(layout, top, idx[n], b)
    regs["poly"] = wl_poly
    # ground lines right of the window: only the li that touches the rail (not the drain pads of
    # the columns in between); the rail is the li the source lines run into at the array's edge
    right_li = ex.clip(layout, top, idx["li"], kdb.Box(arr_right, ylo, lim_right, yhi)).merged()
    lines = ex.clip(layout, top, idx["li"], kdb.Box(arr_right - 1, ylo, arr_right + 1, yhi))
    rail_li = right_li.interacting(lines)
    pads_right = ex.clip(layout, top, idx["li"], kdb.Box(arr_right, ylo, pad_right, yhi)).merged() - rail_li
    regs["li"] += ex.clip(layout, top, idx["li"], kdb.Box(xc1, ylo, arr_right, yhi)).merged().interacting(rail_li) \
        + rail_li + pads_right
    lap("clip")
    extraction = ex.extract(regs, layout.dbu, pdk, "WINDOW")     # flat, detached: the shared extractor
    lap("extract")
    return Window(layout, top, arrays, engine, a, (col0, ncols, row0, nrows), ylo, yhi,
                  arr_left, arr_right, lim_left, lim_right, extraction, rail_li)


class _Checker:
    """The extracted window's nets and the error list of one check (``err`` counts them all)."""

    def __init__(self, win: Window):
        self.win, self.a, self.engine = win, win.array, win.engine
        self.col0, self.ncols, self.row0, self.nrows = win.window
        self.um = win.layout.dbu
        self.l2n, self.regs = win.extraction.l2n, win.extraction.regions
        self.regs["sd"] = self.regs["sd_n"]
        self.circuit = win.extraction.circuit
        self.errors: list[str] = []
        self.count = 0

    def err(self, msg: str):
        self.count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(msg)

    def probe(self, layer: str, x: int, y: int):
        net = self.l2n.probe_net(self.regs[layer], kdb.Point(x, y))
        return None if net is None else net.cluster_id

    def probe_polys(self, layer: str, box: kdb.Box) -> list[tuple[int | None, kdb.Polygon]]:
        inside = self.regs[layer] & kdb.Region(box)
        out = []
        for poly in inside.each():
            p = _inside_point(poly)
            out.append((self.probe(layer, p.x, p.y), poly))
        return out

    def at(self, col: int, w: int) -> str:
        a, um = self.a, self.um
        x = int(col_x(a, col))
        y = site_y(a, w)
        return f"engine {self.engine} wordline {w} column {col} ({x * um:.3f}, {y * um:.3f}) µm"


def _check_extraction(c: _Checker):
    """Errors the extractor logged, and diffusion outside the n implant."""
    for log in c.l2n.each_error():
        c.err(f"extraction: {log}")
    stray_diff = c.win.extraction.stray_diff
    if not stray_diff.is_empty():
        b = stray_diff.bbox()
        c.err(f"{stray_diff.count()} diffusion shapes outside the n implant "
              f"(around ({b.center().x * c.um:.3f}, {b.center().y * c.um:.3f}) µm)")


def _terminals(c: _Checker):
    """The ground net (or None), wordline pads per net, and each window column's bitline net (-1: none)."""
    win, a, engine, col0, ncols, um = c.win, c.a, c.engine, c.col0, c.ncols, c.um
    ylo, yhi = win.ylo, win.yhi
    rail = [(c.probe("li", p.x, p.y), poly) for poly in win.rail.each() for p in [_inside_point(poly)]]
    ground_nets = {n for n, _ in rail if n is not None}
    if not ground_nets:
        c.err(f"engine {engine}: no ground rail (li right of the array) in the window")
    elif len(ground_nets) > 1:
        c.err(f"engine {engine}: the li right of the array forms {len(ground_nets)} separate nets, not one ground rail")
    ground = min(ground_nets) if len(ground_nets) == 1 else None
    pad_count: dict[int, int] = {}
    right_pads = [(n, q) for n, q in c.probe_polys("li", kdb.Box(win.arr_right, ylo, win.lim_right, yhi))
                  if n not in ground_nets]
    for n, _ in c.probe_polys("li", kdb.Box(win.lim_left, ylo, win.arr_left, yhi)) + right_pads:
        if n is not None:
            pad_count[n] = pad_count.get(n, 0) + 1
    bitline = np.full(ncols, -1, np.int64)
    for i in range(ncols):
        x = int(col_x(a, col0 + i))
        lo, hi = c.probe("met1", x, ylo + 1), c.probe("met1", x, yhi - 1)
        if lo is None:
            c.err(f"engine {engine} column {col0 + i}: no met1 bitline at ({x * um:.3f}, {(ylo + 1) * um:.3f}) µm")
            continue
        if hi != lo:
            c.err(f"engine {engine} column {col0 + i}: the met1 bitline is broken inside the window")
        bitline[i] = lo
    bl_index = {int(n): i for i, n in enumerate(bitline) if n >= 0}
    if len(bl_index) < int(np.count_nonzero(bitline >= 0)):
        c.err(f"engine {engine}: bitlines shorted together ({int(np.count_nonzero(bitline >= 0))} columns on {len(bl_index)} nets)")
    if ground is not None and ground in bl_index:
        c.err(f"engine {engine} column {col0 + bl_index[ground]}: bitline shorted to ground")
    return ground, pad_count, bitline, bl_index


def _sites(c: _Checker):
    """The window's transistors by bit site (col, wordline), and the S, G, D terminal ids."""
    a, px, py, um = c.a, c.a.px, c.a.py, c.um
    t_s = t_g = t_d = None
    dev_by_site: dict[tuple[int, int], list] = {}
    for dev in c.circuit.each_device():
        if t_s is None:
            dc = dev.device_class()
            t_s, t_g, t_d = dc.terminal_id("S"), dc.terminal_id("G"), dc.terminal_id("D")
        d = dev.trans.disp                          # µm: centre of the gate
        x, y = int(round(d.x / um)), int(round(d.y / um))
        col, rx = col_of_x(a, x)
        isl, ry = divmod(y - a.y0, py)
        isl = _island_of_slot(a, isl)
        w = 2 * isl + (1 if ry > (a.drains[0] + a.drains[1]) / 2 else 0) if isl >= 0 else -1
        if rx != 0 or not 0 <= col < a.cols or not 0 <= w < a.rows:
            c.err(f"engine {c.engine}: transistor at ({d.x:.3f}, {d.y:.3f}) µm is not on a bit site")
            continue
        if c.col0 <= col < c.col0 + c.ncols and c.row0 <= w < c.row0 + c.nrows:
            dev_by_site.setdefault((col, w), []).append(dev)
    return dev_by_site, (t_s, t_g, t_d)


def _island_of_slot(a: Array, slot: int) -> int:
    """The island standing in ``slot`` of array ``a`` (-1: a tap row's slot, or outside)."""
    slots = island_slots(a)
    i = int(np.searchsorted(slots, slot))
    return i if i < len(slots) and slots[i] == slot else -1


def _check_devices(c: _Checker, dev_by_site, terms, ground, pad_count, bitline, bl_index):
    """Each site's transistor: drain on its bitline (a 1) or floating (a 0), source on ground.
    Returns the electrical bits, the floating drains, the gate nets per wordline and the device count."""
    a, col0, row0, ncols, nrows = c.a, c.col0, c.row0, c.ncols, c.nrows
    t_s, t_g, t_d = terms
    ebits = np.zeros((ncols, nrows), np.uint8)
    floating = np.zeros((ncols, nrows), bool)
    gate_of_wl: dict[int, set] = {}
    devices = 0
    for (col, w), devs in dev_by_site.items():
        devices += len(devs)
        if len(devs) > 1:
            c.err(f"{c.at(col, w)}: {len(devs)} transistors on one bit site")
        dev = devs[0]
        i, j = col - col0, w - row0
        g = dev.net_for_terminal(t_g)
        gate_of_wl.setdefault(w, set()).add(None if g is None else g.cluster_id)
        s_net, d_net = dev.net_for_terminal(t_s), dev.net_for_terminal(t_d)
        sd = {None if s_net is None else s_net.cluster_id, None if d_net is None else d_net.cluster_id}
        drain = c.probe("sd", int(col_x(a, col)), site_y(a, w))
        if drain is None or drain not in sd:
            c.err(f"{c.at(col, w)}: the drain diffusion is not a terminal of the site's transistor")
            continue
        rest = sd - {drain}
        source = rest.pop() if rest else drain
        if ground is not None and source != ground:
            c.err(f"{c.at(col, w)}: source is not on the ground net")
        if drain == bitline[i]:
            ebits[i, j] = 1
        elif drain in bl_index:
            c.err(f"{c.at(col, w)}: drain is on the bitline of column {col0 + bl_index[drain]}")
        elif drain == ground:
            c.err(f"{c.at(col, w)}: drain is shorted to ground")
        elif drain in pad_count:
            c.err(f"{c.at(col, w)}: drain is shorted to a wordline")
        else:
            net = c.circuit.net_by_cluster_id(drain)
            if net is not None and net.terminal_count() == 1:
                floating[i, j] = True
            else:
                c.err(f"{c.at(col, w)}: drain is not on a bitline but joins {net.terminal_count() - 1 if net else '?'} other device terminals")
    for i in range(ncols):
        for j in range(nrows):
            if (col0 + i, row0 + j) not in dev_by_site:
                c.err(f"{c.at(col0 + i, row0 + j)}: no transistor")
    return ebits, floating, gate_of_wl, devices


def _check_wordlines(c: _Checker, gate_of_wl, ground, pad_count, bl_index):
    """Wordlines: one net each, reaching one pad, distinct."""
    engine = c.engine
    owner: dict[int, int] = {}
    for w in sorted(gate_of_wl):
        nets_w = gate_of_wl[w]
        if len(nets_w) != 1 or None in nets_w:
            c.err(f"engine {engine} wordline {w}: the gates of its transistors are on {len(nets_w)} nets (broken wordline)")
            continue
        n = next(iter(nets_w))
        if pad_count.get(n, 0) != 1:
            c.err(f"engine {engine} wordline {w}: reaches {pad_count.get(n, 0)} wordline contact pads, not 1")
        if n == ground or n in bl_index:
            c.err(f"engine {engine} wordline {w}: shorted to {'ground' if n == ground else 'a bitline'}")
        if n in owner:
            c.err(f"engine {engine} wordlines {owner[n]} and {w} are shorted")
        owner.setdefault(n, w)


def _reference_bits(c: _Checker, path, pdk: Pdk, expected, geometric: bool):
    """The window's geometric bits (or None) and the bits to check against."""
    a, col0, ncols, row0, nrows = c.a, c.col0, c.ncols, c.row0, c.nrows
    geo = None
    if geometric or expected is None:
        _, gbits, _, _ = read_bits(path, pdk)
        geo = gbits[c.engine][col0:col0 + ncols, row0:row0 + nrows].astype(np.uint8)
    if expected is None:
        return geo, geo
    if isinstance(expected, QuantizedNetwork):
        expected = expected_bits(expected, c.engine, a.rows)
    expected = np.asarray(expected, np.uint8)
    if expected.shape == (a.cols, a.rows):
        return geo, expected[col0:col0 + ncols, row0:row0 + nrows]
    if expected.shape == (ncols, nrows):
        return geo, expected
    raise WeightfabError(f"expected bits have shape {expected.shape}: need the engine's "
                         f"({a.cols}, {a.rows}) or the window's ({ncols}, {nrows})")


def _compare(c: _Checker, ebits, exp, geo, with_expected: bool):
    """Electrical bits vs the expected ones (and vs the geometric readback when both are given)."""
    col0, row0 = c.col0, c.row0
    ones = exp == 1
    for i, j in np.argwhere(ones & (ebits == 0)):
        c.err(f"{c.at(col0 + i, row0 + j)}: expected 1, but the drain does not reach bitline {col0 + i}")
    for i, j in np.argwhere(~ones & (ebits == 1)):
        c.err(f"{c.at(col0 + i, row0 + j)}: expected 0, but the drain is connected to bitline {col0 + i}")
    if geo is not None and with_expected:
        for i, j in np.argwhere(geo != ebits):
            c.err(f"{c.at(col0 + i, row0 + j)}: geometric readback reads {geo[i, j]}, electrical reads {ebits[i, j]}")
    return ones


def electrical_check(path: str | Path, pdk: Pdk | str = "sky130", engine: int | None = None,
                     window: tuple[int, int, int, int] | None = None,
                     expected: np.ndarray | QuantizedNetwork | None = None,
                     geometric: bool = True) -> ElectricalResult:
    """Extract one engine's window of ``path`` and check every bit transistor's connections.

    engine: index in ``find_arrays`` order (left to right: the model's layer order); default
    the smallest engine. window: (col0, ncols, row0, nrows) in bitlines and wordlines; default
    the whole engine when it holds at most 8192 bits, else 64 × 64 at the origin. The
    extraction takes whole islands (wordline pairs); devices of the island partner outside
    the window are ignored. expected: [cols, rows] bits of the engine, or [ncols, nrows] of
    the window, or the quantized network (bits of layer ``engine``); default the geometric
    readback (then ``geometric`` is forced on).
    """
    t0 = clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(stage):
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    pdk = pdk if isinstance(pdk, Pdk) else load_pdk(pdk)
    # -- clip and extract
    win = extract_window(path, pdk, engine, window, lap)
    c = _Checker(win)
    nets = sum(1 for _ in c.circuit.each_net())
    _check_extraction(c)
    # -- terminals: ground rail, wordline pads, bitlines; then the devices on bit sites
    ground, pad_count, bitline, bl_index = _terminals(c)
    dev_by_site, terms = _sites(c)
    lap("terminals")
    ebits, floating, gate_of_wl, devices = _check_devices(c, dev_by_site, terms, ground, pad_count,
                                                          bitline, bl_index)
    _check_wordlines(c, gate_of_wl, ground, pad_count, bl_index)
    # -- bits: electrical vs expected (and vs geometric)
    geo, exp = _reference_bits(c, path, pdk, expected, geometric)
    ones = _compare(c, ebits, exp, geo, expected is not None)
    lap("check")
    return ElectricalResult(str(path), c.engine, win.window, devices,
                            int(ones.sum()), int((ones & (ebits == 1)).sum()),
                            int((~ones).sum()), int((~ones & floating).sum()),
                            ebits, floating, geo, exp, nets, c.errors, c.count, time.perf_counter() - t0, timings)

"""A reduced netlist of a ROM macro for reads of a few rows: the layout's circuit on the read paths.

A flat simulation of a large macro does not finish (the sample's 64 x 256 fc1: 18,444 devices, over
15 minutes of ngspice), yet a read switches only the addressed wordline. :func:`reduce_rows` takes
the extracted netlist (extract + parasitics: devices, wire C, RC ladders) and keeps, unchanged:

* every device that is not a bit device: address buffers, decoders, every wordline driver, clock
  and enable gating, precharge and sense of every bitline;
* the wordlines of the rows to read, each with its full RC ladder and all its bit devices;
* every bitline, with its wire C and R (its ladder merged into at most ``bitline_segments``
  sections of at least ``min_section_ohm`` each, the resistance between two section nodes being
  the ladder's between their middles; a bitline of less than that resistance is one node).

The other rows' bit devices leave the netlist: one on a bitline (a programmed 1) is off during a
read of another row (gate on its low wordline) and only loads the bitline with its drain junction,
overlap and leakage, so all of them on one bitline section become one device of the same W, L and
drain geometry with a multiplier ``m`` (gate and source on VSS): the same load and leakage. One
whose drain is not on a bitline (a 0) has a floating drain: it leaves with its drain net. Their
wordlines keep driver and wire capacitance (collapsed to one node: they do not switch). The wire
capacitors of the nets joined into one are summed into one.

The netlist is read once into arrays (:class:`Table`: per device its class, id, value and terminal
nets; per net its name) and everything that does not depend on the rows read is found once
(:func:`array_map`: wires, wordlines, bitlines, the bitlines' sections and the folded loads of all
rows). A reduction then costs numpy passes over those arrays plus KLayout calls for the devices it
keeps only: the Keras MLP's dense_1 (300 x 400, 236,424 devices) 2.8 s CPU for the map, then 0.2 s
per deck (a Python pass over every device took 1.9 s plus 1.2 s per deck); dense (784 x 2,400,
3,613,885 devices) 45 s for the map, 1.2-1.4 s per deck of 4 rows.

Nothing here knows the drawing: nets joined by the ladders' resistors form wires; a wordline is a
wire whose gates are all on NMOS devices with source or drain on VSS (at least ``MIN_WL_GATES``);
those are the bit devices. Rows are ordered along the axis across the wordlines (wordline 0
lowest) and checked against the stored bits when they are given.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import klayout.db as kdb
import numpy as np

from ..errors import WeightfabError

MIN_WL_GATES = 4
MOS = ("NMOS", "PMOS", "PMOS_HVT")
FOLD_PARAMS = ("W", "L", "AS", "AD", "PS", "PD")
MAX_TERMINALS = 4


class Table:
    """A flat circuit as arrays, in one pass over its nets and devices: per net its key (its
    expanded name), name and cluster id; per device its id, class, value (C of a CWIRE, R of an
    RWIRE) and the nets on its terminals (-1: none), and for MOS devices their position."""

    def __init__(self, circuit: kdb.Circuit):
        self.circuit = circuit
        self.keys: list[str] = []
        self.names: list[str] = []
        cluster = []
        for n in circuit.each_net():
            name = n.name or ""
            self.names.append(name)
            self.keys.append(name or n.expanded_name())
            cluster.append(n.cluster_id)
        self.cluster = np.array(cluster, np.uint64)
        self.index = {k: i for i, k in enumerate(self.keys)}
        self.class_names: list[str] = []
        self.classes: list[kdb.DeviceClass] = []
        self.terminal: list[dict[str, int]] = []
        self._read_devices(circuit)

    def _read_devices(self, circuit: kdb.Circuit) -> None:
        code_of: dict[str, int] = {}
        ids, cls, value, terms, xy = [], [], [], [], []
        index = self.index
        for d in circuit.each_device():
            dc = d.device_class()
            code = code_of.get(dc.name)
            if code is None:
                code = code_of[dc.name] = len(self.class_names)
                self.class_names.append(dc.name)
                self.classes.append(dc)
                self.terminal.append({t.name: t.id() for t in dc.terminal_definitions()})
            row = [-1] * MAX_TERMINALS
            for tid in range(len(self.terminal[code])):
                n = d.net_for_terminal(tid)
                if n is not None:
                    row[tid] = index[n.name or n.expanded_name()]
            name = dc.name
            value.append(d.parameter("C") if name == "CWIRE" else d.parameter("R") if name == "RWIRE" else 0.0)
            if name in MOS:
                p = d.trans.disp
                xy.append((len(ids), p.x, p.y))
            ids.append(d.id())
            cls.append(code)
            terms.append(row)
        self.ids = np.array(ids, np.int64)
        self.cls = np.array(cls, np.int16)
        self.value = np.array(value, float)
        self.terms = np.array(terms, np.int64).reshape(-1, MAX_TERMINALS)
        self.xy = np.full((len(ids), 2), np.nan)
        if xy:
            at = np.array(xy)
            self.xy[at[:, 0].astype(np.int64)] = at[:, 1:]

    def __len__(self) -> int:
        return len(self.ids)

    def is_class(self, *names: str) -> np.ndarray:
        codes = [k for k, n in enumerate(self.class_names) if n in names]
        return np.isin(self.cls, codes)

    def net_on(self, terminal: str) -> np.ndarray:
        """Per device the net on its terminal ``terminal`` (-1 where its class has none or it is open)."""
        tid = np.array([t.get(terminal, -1) for t in self.terminal] or [-1], np.int64)[self.cls]
        out = self.terms[np.arange(len(self)), np.maximum(tid, 0)]
        return np.where(tid >= 0, out, -1)

    def device(self, i: int) -> kdb.Device:
        return self.circuit.device_by_id(int(self.ids[i]))


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of n nodes joined by the edges (a, b): each node's lowest member."""
    lab = np.arange(n, dtype=np.int64)
    while a.size:
        m = np.minimum(lab[a], lab[b])
        new = lab.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        while True:                                  # pointer jumping to each chain's root
            nxt = new[new]
            if np.array_equal(nxt, new):
                break
            new = nxt
        if np.array_equal(new, lab):
            break
        lab = new
    return lab


class Wires:
    """Nets joined through RWIRE resistors (one physical wire): each net's wire is its lowest member
    net index; per wire its resistors and member nets."""

    def __init__(self, table: Table):
        self.table = table
        rw = np.nonzero(table.is_class("RWIRE"))[0]
        a, b = table.terms[rw, 0], table.terms[rw, 1]
        both = (a >= 0) & (b >= 0)
        self.label = _components(len(table.keys), a[both], b[both])
        self.res = rw[a >= 0]                                   # resistors by wire
        self.res_wire = self.label[table.terms[self.res, 0]]
        order = np.argsort(self.res_wire, kind="stable")
        self.res, self.res_wire = self.res[order], self.res_wire[order]
        self._net_order = np.argsort(self.label, kind="stable")
        self._net_sorted = self.label[self._net_order]

    def find(self, key: str) -> int:
        """The wire of the net named ``key`` (its expanded name)."""
        return int(self.label[self.table.index[key]])

    def members(self, g: int) -> np.ndarray:
        """The nets of wire ``g`` (net indices, ascending)."""
        lo, hi = np.searchsorted(self._net_sorted, [g, g + 1])
        return self._net_order[lo:hi]

    def resistors(self, g: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.res_wire, [g, g + 1])
        return self.res[lo:hi]

    def resistor_devices(self, g: int) -> list[kdb.Device]:
        """The RWIRE devices of wire ``g``."""
        return [self.table.device(i) for i in self.resistors(g)]

    def net(self, k: int) -> kdb.Net:
        t = self.table
        return t.circuit.net_by_name(t.names[k]) if t.names[k] else t.circuit.net_by_cluster_id(int(t.cluster[k]))

    def chain(self, g: int) -> list[int]:
        """The wire's nets in ladder order (from the end whose key sorts first), or its members when
        it is not a chain."""
        t = self.table
        adj: dict[int, list[int]] = defaultdict(list)
        for i in self.resistors(g):
            a, b = int(t.terms[i, 0]), int(t.terms[i, 1])
            adj[a].append(b)
            adj[b].append(a)
        members = [int(k) for k in self.members(g)]
        ends = sorted((k for k in members if len(adj[k]) == 1), key=lambda k: t.keys[k])
        if len(ends) != 2 or any(len(v) > 2 for v in adj.values()):
            return members
        out, prev, cur = [ends[0]], None, ends[0]
        while True:
            nxt = [n for n in adj[cur] if n != prev]
            if not nxt:
                return out
            prev, cur = cur, nxt[0]
            out.append(cur)


@dataclass
class ArrayMap:
    """What does not depend on the rows read: the wordlines (bit devices by row), the bitlines, their
    sections (``root``: each net's node after the bitlines are cut into sections; ``r_new``/``r_drop``:
    the section resistors' values and the ladder resistors merged away) and the folded loads of all
    rows (``group``: per bit device on a bitline its (section, geometry) load, -1 otherwise)."""
    table: Table
    wires: Wires
    rows: list[np.ndarray]              # bit devices (table indices) per wordline, wordline 0 first
    wordlines: list[int]                # wire of each wordline
    bitlines: np.ndarray                # wires that bit devices' drains sit on, with other devices
    bit: np.ndarray                     # per device: its wordline (row), -1 for other devices
    drain: np.ndarray                   # per device: a bit device's drain net, -1 otherwise
    vss: int                            # the VSS net
    root: np.ndarray = None             # per net: its node with the bitlines in sections
    r_new: dict = field(default_factory=dict)            # section resistor (table index) -> ohm
    r_drop: np.ndarray = None                            # per device: a bitline resistor merged away
    group: np.ndarray = None                             # per device: its folded load, -1 if none
    groups: list = field(default_factory=list)           # per load: (node, geometry)
    collapse: np.ndarray = None                          # per wordline: the net it collapses onto
    sections: tuple = ()                                 # (bitline_segments, min_section_ohm) of root

    def row_devices(self, r: int) -> list[kdb.Device]:
        return [self.table.device(i) for i in self.rows[r]]

    def on_bitline(self, i: np.ndarray) -> np.ndarray:
        d = self.drain[i]
        return (d >= 0) & np.isin(self.wires.label[np.maximum(d, 0)], self.bitlines)


def array_map(circuit: kdb.Circuit, vss: str = "VSS", bitline_segments: int = 4, min_section_ohm: float = 50.0) -> ArrayMap:
    t = Table(circuit)
    w = Wires(t)
    v = t.index.get(vss, -2)
    s, g, d = t.net_on("S"), t.net_on("G"), t.net_on("D")
    mos = t.is_class(*MOS) & (g >= 0)
    gw = np.where(mos, w.label[np.maximum(g, 0)], -1)
    bitlike = t.is_class("NMOS") & ((s == v) | (d == v))
    n = len(t.keys)
    count = np.bincount(gw[mos & bitlike], minlength=n)
    other = np.bincount(gw[mos & ~bitlike], minlength=n)
    wl = (count >= MIN_WL_GATES) & (other == 0)
    for name in ("VDD", vss):
        if name in t.index:
            wl[w.label[t.index[name]]] = False
    is_bit = mos & wl[np.maximum(gw, 0)]
    if not is_bit.any():
        raise WeightfabError(f"circuit '{circuit.name}': no wordlines found (no wire gates only NMOS devices tied to {vss})")
    drain = np.where(is_bit, np.where(s == v, d, s), -1)
    has = drain >= 0
    on_wire = np.zeros(n, bool)
    on_wire[w.label[drain[has]]] = True
    others = t.terms[mos & ~is_bit].ravel()
    others = w.label[others[others >= 0]]
    bitlines = np.unique(others[on_wire[others]])
    wls = np.unique(gw[is_bit])
    order = _row_order(t.xy, gw, is_bit, wls)
    row_of = np.full(n, -1, np.int64)
    row_of[order] = np.arange(len(order))
    bit = np.where(is_bit, row_of[np.maximum(gw, 0)], -1)
    by_row = np.argsort(bit, kind="stable")
    starts = np.searchsorted(bit[by_row], np.arange(len(order) + 1))
    rows = [by_row[a:b] for a, b in zip(starts, starts[1:])]
    amap = ArrayMap(t, w, rows, [int(x) for x in order], bitlines, bit, drain, v)
    _sections(amap, bitline_segments, min_section_ohm)
    return amap


def _row_order(xy: np.ndarray, gw: np.ndarray, is_bit: np.ndarray, wls: np.ndarray) -> np.ndarray:
    """Wordlines sorted across their length (the mean position of their devices on the other axis)."""
    k = np.searchsorted(wls, gw[is_bit])
    p = xy[is_bit]
    cnt = np.bincount(k, minlength=len(wls))
    lo = np.stack([np.full(len(wls), np.inf), np.full(len(wls), np.inf)], 1)
    hi = -lo
    for ax in (0, 1):
        np.minimum.at(lo[:, ax], k, p[:, ax])
        np.maximum.at(hi[:, ax], k, p[:, ax])
    spread = (hi - lo).mean(axis=0)
    across = 1 if spread[0] >= spread[1] else 0
    mean = np.bincount(k, weights=p[:, across], minlength=len(wls)) / cnt
    return wls[np.lexsort((wls, mean.round(3)))]


def _sections(amap: ArrayMap, sections: int, min_section_ohm: float) -> None:
    """The row-independent part of every reduction: the bitlines cut into sections, each bit device
    on a bitline given its folded load (section, geometry), each wordline the net it collapses onto."""
    t, w = amap.table, amap.wires
    root = np.arange(len(t.keys), dtype=np.int64)
    r_drop = np.zeros(len(t), bool)
    r_new: dict[int, float] = {}
    for g in amap.bitlines:
        _coarsen(root, r_new, r_drop, w, int(g), sections, min_section_ohm)
    amap.root, amap.r_new, amap.r_drop, amap.sections = root, r_new, r_drop, (sections, min_section_ohm)
    folded = np.nonzero(amap.bit >= 0)[0]
    folded = folded[amap.on_bitline(folded)]
    geo = np.array([[t.device(i).parameter(p) for p in FOLD_PARAMS] for i in folded], float).reshape(-1, len(FOLD_PARAMS))
    geos, gk = np.unique(geo.round(6), axis=0, return_inverse=True)
    node = root[amap.drain[folded]]
    keys, group = np.unique(np.stack([node, gk.reshape(-1)], 1), axis=0, return_inverse=True)
    amap.group = np.full(len(t), -1, np.int64)
    amap.group[folded] = group.reshape(-1)
    amap.groups = [(int(n), tuple(float(x) for x in geos[k])) for n, k in keys]
    # an idle wordline becomes the member net whose key sorts first
    amap.collapse = np.array([min(w.members(g), key=lambda k: t.keys[k]) for g in amap.wordlines], np.int64)


def _coarsen(root: np.ndarray, r_new: dict, r_drop: np.ndarray, w: Wires, g: int, sections: int,
             min_section_ohm: float) -> None:
    """Merge a ladder into ``sections`` sections (fewer, down to one, when a section would hold less
    than ``min_section_ohm``); the resistance between two sections is the ladder's between their middles."""
    chain = w.chain(g)
    t = w.table
    res = {frozenset((int(t.terms[i, 0]), int(t.terms[i, 1]))): int(i) for i in w.resistors(g)}
    if len(chain) < 2 or len(res) != len(chain) - 1:
        return
    r_of = np.array([t.value[res[frozenset((a, b))]] for a, b in zip(chain, chain[1:])])
    sections = max(1, min(sections, int(r_of.sum() // min_section_ohm)))
    if len(chain) <= sections:
        return
    cuts = np.linspace(0, len(chain), sections + 1).round().astype(int)
    chunks = [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]
    inner = [float(r_of[a:b - 1].sum()) for a, b in chunks]
    for i, ((a, b), (c, _)) in enumerate(zip(chunks, chunks[1:])):
        r_new[res[frozenset((chain[b - 1], chain[c]))]] = inner[i] / 2 + float(r_of[b - 1]) + inner[i + 1] / 2
    for i in res.values():
        if i not in r_new:
            r_drop[i] = True
    for a, b in chunks:
        root[chain[a:b]] = chain[a]


def check_rows(amap: ArrayMap, bits: np.ndarray, douts_of_bitline: dict[str, int] | None = None) -> None:
    """The number of wordlines found equals the stored words' (bits: [columns, rows]), and each
    wordline has as many bit devices on bitlines as its word has ones."""
    if len(amap.rows) < bits.shape[1]:
        raise WeightfabError(f"{len(amap.rows)} wordlines found in the netlist, the array holds {bits.shape[1]} words")
    ones = bits.sum(axis=0)
    on = np.bincount(amap.bit[amap.group >= 0], minlength=len(amap.rows))
    bad = np.nonzero(on[:bits.shape[1]] != ones)[0]
    if bad.size:
        r = int(bad[0])
        raise WeightfabError(f"wordline {r}: {on[r]} bit devices on bitlines, the stored word has {ones[r]} ones")


@dataclass
class Reduction:
    netlist: kdb.Netlist
    rows: list[int]
    devices_before: int
    devices_after: int
    merged: int                 # off bit devices folded into multiplied devices


def reduce_rows(netlist: kdb.Netlist, rows, bitline_segments: int = 4, bits: np.ndarray | None = None,
                vss: str = "VSS", min_section_ohm: float = 50.0, amap: ArrayMap | None = None) -> Reduction:
    """A copy of ``netlist`` (flat, one circuit) reduced to reads of ``rows`` (wordline indices).
    A bitline keeps at most ``bitline_segments`` RC sections of at least ``min_section_ohm`` each
    (a section's resistance against the kilohms of the bit device and precharge that drive it).
    ``amap``: the netlist's array_map when the caller reduces it more than once."""
    top = netlist.top_circuit()
    if amap is None or amap.sections != (bitline_segments, min_section_ohm):
        amap = array_map(top, vss, bitline_segments, min_section_ohm)
    if bits is not None:
        check_rows(amap, bits)
    keep = sorted({int(r) for r in rows})
    if keep and not (0 <= keep[0] and keep[-1] < len(amap.rows)):
        bad = keep[-1] if keep[-1] >= len(amap.rows) else keep[0]
        raise WeightfabError(f"row {bad} out of range: the netlist has {len(amap.rows)} wordlines")
    t, w = amap.table, amap.wires
    read = np.zeros(len(amap.rows) + 1, bool)        # index -1 (not a bit device): False
    read[keep] = True
    idle = np.zeros(len(t.keys), bool)
    idle[np.array(amap.wordlines, np.int64)[~read[:-1]]] = True
    root = amap.root.copy()
    rep = np.full(len(t.keys), -1, np.int64)
    rep[np.array(amap.wordlines, np.int64)] = amap.collapse
    sleeping = idle[w.label]
    root[sleeping] = rep[w.label[sleeping]]
    cap = t.is_class("CWIRE")
    res = t.is_class("RWIRE")
    a = np.maximum(t.terms[:, 0], 0)
    idle_res = res & (t.terms[:, 0] >= 0) & idle[w.label[a]]
    copy = ~cap & ~amap.r_drop & ~idle_res & ((amap.bit < 0) | read[amap.bit])
    off = (amap.bit >= 0) & ~read[amap.bit]
    loads = np.bincount(amap.group[off & (amap.group >= 0)], minlength=len(amap.groups))
    nl = _copy(netlist, top, amap, root, np.nonzero(copy)[0], loads, vss)
    return Reduction(nl, keep, len(t), sum(1 for _ in nl.top_circuit().each_device()), int(loads.sum()))


def _copy(netlist: kdb.Netlist, top: kdb.Circuit, amap: ArrayMap, root: np.ndarray, kept: np.ndarray,
          loads: np.ndarray, vss: str) -> kdb.Netlist:
    """The reduced circuit, built anew (removing devices one by one from a KLayout circuit is linear
    in its size): pins, the kept devices on their joined nets, the folded loads, one wire capacitor
    per node (the sum of its nets' capacitors); nodes left with capacitors only are left out."""
    t = amap.table
    nl = kdb.Netlist()            # built anew (a dup would copy every device first)
    classes = {}
    for x in netlist.each_device_class():
        classes[x.name] = x.dup()
        nl.add(classes[x.name])
    c = kdb.Circuit()
    c.name = top.name
    nl.add(c)
    nets: dict[int, kdb.Net] = {}

    def net(k: int) -> kdb.Net:
        k = int(root[k])
        if k not in nets:
            nets[k] = c.create_net(t.names[k])
            nets[k].cluster_id = int(t.cluster[k])       # unnamed nets keep their $<id> names
        return nets[k]

    for pin in top.each_pin():
        p = c.create_pin(pin.name())
        n = top.net_for_pin(pin)
        if n is not None:
            c.connect_pin(p, net(t.index[n.expanded_name()]))
    for i in kept:
        d = t.device(i)
        dc = classes[t.class_names[t.cls[i]]]
        nd = c.create_device(dc, d.name)
        for k, _ in enumerate(dc.parameter_definitions()):
            nd.set_parameter(k, d.parameter(k))
        if int(i) in amap.r_new:
            nd.set_parameter("R", amap.r_new[int(i)])
        nd.trans = d.trans
        for tid, k in enumerate(t.terms[i]):
            if k >= 0:
                nd.connect_terminal(tid, net(k))
    _fold(c, classes["NMOS"], amap, loads, net, t.index[vss])
    _caps(c, classes.get("CWIRE"), t, root, nets, net(t.index[vss]))
    return nl


def _fold(c: kdb.Circuit, nmos: kdb.DeviceClass, amap: ArrayMap, loads: np.ndarray, net, vss: int) -> None:
    """One NMOS per (bitline section, geometry) for the folded bit devices: gate and source on VSS,
    drain on the section, multiplier m = their count."""
    keys = amap.table.keys
    order = sorted((k for k in range(len(loads)) if loads[k]), key=lambda k: (keys[amap.groups[k][0]], amap.groups[k][1]))
    vss_net = net(vss)
    for j, k in enumerate(order):
        node, geo = amap.groups[k]
        d = c.create_device(nmos, f"moff{j}")
        for p, v in zip(FOLD_PARAMS, geo):
            d.set_parameter(p, v)
        d.connect_terminal("G", vss_net)
        d.connect_terminal("S", vss_net)
        d.connect_terminal("D", net(node))
        d.set_property("m", int(loads[k]))


def _caps(c: kdb.Circuit, cap_class, t: Table, root: np.ndarray, nets: dict[int, kdb.Net], vss_net: kdb.Net) -> None:
    """One capacitor to VSS per node the reduced circuit holds: the sum of its nets' wire capacitors."""
    cap = np.nonzero(t.is_class("CWIRE") & (t.terms[:, 0] >= 0))[0]
    if not cap.size:
        return
    total = np.bincount(root[t.terms[cap, 0]], weights=t.value[cap], minlength=len(root))
    order = sorted((k for k in nets if total[k] != 0 and nets[k] is not vss_net), key=lambda k: t.keys[k])
    for j, k in enumerate(order):
        d = c.create_device(cap_class, f"cw{j}")
        d.connect_terminal("A", nets[k])
        d.connect_terminal("B", vss_net)
        d.set_parameter("C", float(total[k]))

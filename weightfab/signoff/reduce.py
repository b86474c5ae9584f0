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

The reduced circuit is built anew from the kept devices (removing thousands of devices one by one
from a KLayout circuit costs a linear search each: the sample's fc1 took 19 s that way, 3 s now).

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


def _key(net: kdb.Net) -> str:
    return net.expanded_name()


class _Snap:
    """One pass over a circuit's devices (the KLayout calls of a large netlist dominate): per device
    its object, class name, id and the keys of the nets on its terminals (terminal id order)."""

    def __init__(self, circuit: kdb.Circuit):
        self.devices: list[kdb.Device] = []
        self.cls: list[str] = []
        self.ids: list[int] = []
        self.nets: list[tuple] = []
        self.terminal: dict[str, dict[str, int]] = {}      # class -> terminal name -> index
        self.classes: dict[str, kdb.DeviceClass] = {}
        for d in circuit.each_device():
            dc = d.device_class()
            name = dc.name
            if name not in self.terminal:
                self.classes[name] = dc
                self.terminal[name] = {t.name: t.id() for t in dc.terminal_definitions()}
            nets = []
            for tid in range(len(self.terminal[name])):
                n = d.net_for_terminal(tid)
                nets.append(None if n is None else n.expanded_name())
            self.devices.append(d)
            self.cls.append(name)
            self.ids.append(d.id())
            self.nets.append(tuple(nets))

    def of(self, i: int, terminal: str) -> str | None:
        return self.nets[i][self.terminal[self.cls[i]][terminal]]


class _Wires:
    """Nets joined through RWIRE resistors (one physical wire), union-find on net names."""

    def __init__(self, circuit: kdb.Circuit, snap: _Snap):
        self.parent: dict[str, str] = {}
        self.snap = snap
        self.nets: dict[str, kdb.Net] = {_key(n): n for n in circuit.each_net()}
        self.resistors: dict[str, list[int]] = defaultdict(list)          # wire -> snapshot indices
        rw = [i for i, c in enumerate(snap.cls) if c == "RWIRE"]
        for i in rw:
            a, b = snap.nets[i][0], snap.nets[i][1]
            if a is not None and b is not None:
                self._union(a, b)
        for i in rw:
            if snap.nets[i][0] is not None:
                self.resistors[self.find(snap.nets[i][0])].append(i)
        self.members: dict[str, list[str]] = defaultdict(list)
        for k in sorted(self.nets):
            self.members[self.find(k)].append(k)

    def resistor_devices(self, g: str) -> list[kdb.Device]:
        """The RWIRE devices of wire ``g``."""
        return [self.snap.devices[i] for i in self.resistors.get(g, [])]

    def find(self, k: str) -> str:
        root = k
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(k, k) != root:
            self.parent[k], k = root, self.parent[k]
        return root

    def _union(self, a: str, b: str):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def chain(self, g: str) -> list[str]:
        """The group's nets in ladder order (from one end), or its members when it is not a chain."""
        adj: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for i in self.resistors.get(g, []):
            a, b = self.snap.nets[i][0], self.snap.nets[i][1]
            adj[a].append((b, i))
            adj[b].append((a, i))
        ends = sorted(k for k in self.members[g] if len(adj[k]) == 1)
        if len(ends) != 2 or any(len(v) > 2 for v in adj.values()):
            return list(self.members[g])
        out, prev, cur = [ends[0]], None, ends[0]
        while True:
            nxt = [n for n, _ in adj[cur] if n != prev]
            if not nxt:
                return out
            prev, cur = cur, nxt[0]
            out.append(cur)


@dataclass
class ArrayMap:
    wires: _Wires
    rows: list[list[kdb.Device]]        # bit devices per wordline, wordline 0 first
    wordlines: list[str]                # wire (group) of each wordline
    bitlines: set[str]                  # wires that bit devices' drains sit on, with other devices
    drains: dict[int, str]              # bit device id -> its drain net name
    geometry: dict[int, tuple] = field(default_factory=dict)   # bit device id -> FOLD_PARAMS (filled on use)


def array_map(circuit: kdb.Circuit, vss: str = "VSS") -> ArrayMap:
    snap = _Snap(circuit)
    w = _Wires(circuit, snap)
    gate_stats: dict[str, list] = defaultdict(lambda: [0, True])     # wire -> [NMOS gates, all bit-like]
    mos = [i for i, c in enumerate(snap.cls) if c in MOS]
    gate = {}
    for i in mos:
        g = snap.of(i, "G")
        if g is None:
            continue
        g = gate[i] = w.find(g)
        st = gate_stats[g]
        if snap.cls[i] == "NMOS" and vss in (snap.of(i, "S"), snap.of(i, "D")):
            st[0] += 1
        else:
            st[1] = False
    wl = {g for g, (n, ok) in gate_stats.items() if ok and n >= MIN_WL_GATES and w.nets[g].name not in ("VDD", vss)}
    by_wl: dict[str, list[int]] = defaultdict(list)
    for i, g in gate.items():
        if g in wl:
            by_wl[g].append(i)
    if not by_wl:
        raise WeightfabError(f"circuit '{circuit.name}': no wordlines found (no wire gates only NMOS devices tied to {vss})")
    drains: dict[int, str] = {}
    on_wire: dict[str, int] = defaultdict(int)
    for devs in by_wl.values():
        for i in devs:
            dn = snap.of(i, "D") if snap.of(i, "S") == vss else snap.of(i, "S")
            if dn is not None:
                drains[snap.ids[i]] = dn
                on_wire[w.find(dn)] += 1
    bit_ids = set(drains)
    bitlines = set()
    for i in mos:
        if snap.ids[i] in bit_ids:
            continue
        for n in snap.nets[i]:
            if n is not None and w.find(n) in on_wire:
                bitlines.add(w.find(n))
    order = _row_order(snap, by_wl)
    return ArrayMap(w, [[snap.devices[i] for i in by_wl[g]] for g in order], order, bitlines, drains)


def _row_order(snap: _Snap, by_wl: dict[str, list[int]]) -> list[str]:
    """Wordlines sorted across their length (the mean position of their devices on the other axis)."""
    pos = {}
    for g, devs in by_wl.items():
        disp = [snap.devices[i].trans.disp for i in devs]
        pos[g] = np.array([[p.x, p.y] for p in disp])
    spread = np.mean([np.ptp(p, axis=0) for p in pos.values()], axis=0)
    across = 1 if spread[0] >= spread[1] else 0
    return sorted(pos, key=lambda g: (round(float(pos[g][:, across].mean()), 3), g))


def check_rows(amap: ArrayMap, bits: np.ndarray, douts_of_bitline: dict[str, int] | None = None) -> None:
    """The number of wordlines found equals the stored words' (bits: [columns, rows])."""
    if len(amap.rows) < bits.shape[1]:
        raise WeightfabError(f"{len(amap.rows)} wordlines found in the netlist, the array holds {bits.shape[1]} words")
    ones = bits.sum(axis=0)
    for r in range(bits.shape[1]):
        on = sum(1 for d in amap.rows[r] if amap.wires.find(amap.drains.get(d.id(), "")) in amap.bitlines)
        if on != ones[r]:
            raise WeightfabError(f"wordline {r}: {on} bit devices on bitlines, the stored word has {ones[r]} ones")


@dataclass
class _Plan:
    """What the reduced circuit keeps: net joins, resistor values, dropped and folded devices."""
    rep: dict[str, str] = field(default_factory=dict)        # net key -> the key of the net it joins
    r_new: dict[int, float] = field(default_factory=dict)    # kept resistor id -> its new value
    drop: set[int] = field(default_factory=set)              # device ids not copied
    folded: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))   # (net key, geometry) -> m

    def join(self, keys: list[str]) -> None:
        for k in keys[1:]:
            self.rep[k] = keys[0]

    def root(self, k: str) -> str:
        while k in self.rep:
            k = self.rep[k]
        return k


def _coarsen(plan: _Plan, w: _Wires, g: str, sections: int, min_section_ohm: float) -> None:
    """Merge a ladder into ``sections`` sections (fewer, down to one, when a section would hold less
    than ``min_section_ohm``); the resistance between two sections is the ladder's between their middles."""
    chain = w.chain(g)
    sn = w.snap
    res = {frozenset(sn.nets[i][:2]): i for i in w.resistors.get(g, [])}
    if len(chain) < 2 or len(res) != len(chain) - 1:
        return
    r_of = np.array([sn.devices[res[frozenset((a, b))]].parameter("R") for a, b in zip(chain, chain[1:])])
    sections = max(1, min(sections, int(r_of.sum() // min_section_ohm)))
    if len(chain) <= sections:
        return
    cuts = np.linspace(0, len(chain), sections + 1).round().astype(int)
    chunks = [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]
    inner = [float(r_of[a:b - 1].sum()) for a, b in chunks]
    for i, ((a, b), (c, _)) in enumerate(zip(chunks, chunks[1:])):
        plan.r_new[sn.ids[res[frozenset((chain[b - 1], chain[c]))]]] = inner[i] / 2 + float(r_of[b - 1]) + inner[i + 1] / 2
    for i in res.values():
        if sn.ids[i] not in plan.r_new:
            plan.drop.add(sn.ids[i])
    for a, b in chunks:
        plan.join(chain[a:b])


def _collapse(plan: _Plan, w: _Wires, g: str) -> None:
    """A wordline that does not switch: one node, its resistors gone."""
    plan.drop.update(w.snap.ids[i] for i in w.resistors.get(g, []))
    plan.join(list(w.members[g]))


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
    amap = amap or array_map(top, vss)
    if bits is not None:
        check_rows(amap, bits)
    keep = sorted({int(r) for r in rows})
    if keep and not (0 <= keep[0] and keep[-1] < len(amap.rows)):
        bad = keep[-1] if keep[-1] >= len(amap.rows) else keep[0]
        raise WeightfabError(f"row {bad} out of range: the netlist has {len(amap.rows)} wordlines")
    w, plan = amap.wires, _Plan()
    for g in sorted(amap.bitlines):
        _coarsen(plan, w, g, bitline_segments, min_section_ohm)
    merged = 0
    for r in sorted(set(range(len(amap.rows))) - set(keep)):
        for d in amap.rows[r]:
            did = d.id()
            plan.drop.add(did)
            dn = amap.drains.get(did)
            if dn is not None and w.find(dn) in amap.bitlines:
                geo = amap.geometry.get(did)
                if geo is None:
                    geo = amap.geometry[did] = tuple(round(d.parameter(p), 6) for p in FOLD_PARAMS)
                plan.folded[(dn, geo)] += 1
                merged += 1
        _collapse(plan, w, amap.wordlines[r])
    nl = _copy(netlist, top, plan, vss, w)
    before = len(w.snap.devices)
    after = sum(1 for _ in nl.top_circuit().each_device())
    return Reduction(nl, keep, before, after, merged)


def _copy(netlist: kdb.Netlist, top: kdb.Circuit, plan: _Plan, vss: str, w: _Wires) -> kdb.Netlist:
    """The reduced circuit, built anew (removing devices one by one from a KLayout circuit is linear
    in its size): pins, kept devices on their joined nets, the folded bit devices, one wire
    capacitor per net (the sum of its parts); nets left with capacitors only are left out."""
    nl = kdb.Netlist()            # built anew (a dup would copy every device first)
    classes = {}
    for x in netlist.each_device_class():
        classes[x.name] = x.dup()
        nl.add(classes[x.name])
    by_key, sn = w.nets, w.snap
    c = kdb.Circuit()
    c.name = top.name
    nl.add(c)
    nets: dict[str, kdb.Net] = {}
    used: set[str] = set()

    def net(key: str) -> kdb.Net:
        k = plan.root(key)
        if k not in nets:
            nets[k] = c.create_net(by_key[k].name or "")
            nets[k].cluster_id = by_key[k].cluster_id       # unnamed nets keep their $<id> names
        used.add(k)
        return nets[k]

    for pin in top.each_pin():
        p = c.create_pin(pin.name())
        n = top.net_for_pin(pin)
        if n is not None:
            c.connect_pin(p, net(_key(n)))
    caps: dict[str, float] = defaultdict(float)
    for i, d in enumerate(sn.devices):
        if sn.ids[i] in plan.drop:
            continue
        dc = classes[sn.cls[i]]
        if dc.name == "CWIRE":
            caps[plan.root(sn.nets[i][0])] += d.parameter("C")
            continue
        nd = c.create_device(dc, d.name)
        for k, _ in enumerate(dc.parameter_definitions()):
            nd.set_parameter(k, d.parameter(k))
        if dc.name == "RWIRE" and sn.ids[i] in plan.r_new:
            nd.set_parameter("R", plan.r_new[sn.ids[i]])
        nd.trans = d.trans
        for tid, key in enumerate(sn.nets[i]):
            if key is not None:
                nd.connect_terminal(tid, net(key))
    _fold(c, classes["NMOS"], plan, net, vss)
    vss_net = nets[plan.root(vss)]
    cap_class = classes.get("CWIRE")
    for k, (key, value) in enumerate(sorted(caps.items())):
        if key in used and nets[key] is not vss_net:
            d = c.create_device(cap_class, f"cw{k}")
            d.connect_terminal("A", nets[key])
            d.connect_terminal("B", vss_net)
            d.set_parameter("C", value)
    return nl


def _fold(c: kdb.Circuit, nmos: kdb.DeviceClass, plan: _Plan, net, vss: str) -> None:
    """One NMOS per (bitline section, geometry) for the folded bit devices: gate and source on VSS,
    drain on the section, multiplier m = their count."""
    groups: dict[tuple, int] = defaultdict(int)
    for (dn, geo), m in plan.folded.items():
        groups[(plan.root(dn), geo)] += m
    vss_net = net(vss)
    for k, ((key, geo), m) in enumerate(sorted(groups.items())):
        d = c.create_device(nmos, f"moff{k}")
        for p, v in zip(FOLD_PARAMS, geo):
            d.set_parameter(p, v)
        d.connect_terminal("G", vss_net)
        d.connect_terminal("S", vss_net)
        d.connect_terminal("D", net(key))
        d.set_property("m", m)

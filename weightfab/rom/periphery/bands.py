"""Logic bands: two rotated foundry standard cells per row pitch, pitch-matched to the array.

A band is one logic stage of the row periphery: cell c1 (inv_1, nand2_1 or nand3_1) takes its
inputs from vertical met1 bus lines, cell c2 (inv_2) inverts c1's output, so a band computes
AND (or a buffer). Cells are rotated by 90° so that their 1.38 µm width (1.84 µm for nand3)
fits one island pitch (two wordlines, 1.42 µm on SKY130; nand3 bands take two pitches), and
the cells of a column share vertical power rails: VGND at c1's outer edge and c2's inner edge,
VPWR (and one n-well) between them. Each column carries a p-tap strip beside c1 and an n-tap
strip between c1 and c2 over its whole height.

Band-local coordinates (flow to the right, ``s = +1``): x = 0 is c2's outer (VGND) edge, the
band spans x in [-7440, 0]; y = 0 is the band's bottom. A band that flows to the left is the
mirror image (``s = -1``). Wiring: met2 stubs from the bus to via stacks on the pins; the link
c1.Y -> c2.A runs at y = 700 (985 for the address buffer, whose c1.Y is also an output).
"""
from __future__ import annotations

from dataclasses import dataclass

from .draw import M1_W, Drawing, Ref
from .stdcells import load

PITCH = 1420             # band pitch (one island of the array), dbu
GAP = 1000               # tap gap beside and between the cells
X1 = -2720 - GAP - 2720  # c1 origin (its VGND edge)
XL = X1 - GAP            # band's outer end
Y0 = 20                  # cell origin above the band bottom
# the standard-cell row template (sky130_fd_sc_hd, µm x 1000): y-bands spanning each cell's width
TEMPLATE = {"nwell": (1305, 2910), "psdm": (1355, 2910), "nsdm": (-190, 1015), "hvtp": (1250, 2720),
            "npc": (975, 1345), "areaid_sc": (0, 2720)}
LI_RAILS = ((-85, 85), (2635, 2805))
M1_RAILS = ((-240, 240), (2480, 2960))
INPUT_Y = {"inv_1": {"A": 505}, "nand2_1": {"A": 1180, "B": 200}, "nand3_1": {"A": 1690, "B": 1072, "C": 240}}
LINK_Y, LINK_Y_BUF, OUT_Y, OUT_Y_BUF = 700, 985, 700, 630
C2_A = (-1200, 290)
PTAP = (X1 - 760, X1 - 460)
NTAP = (-3370, -3070)


@dataclass(frozen=True)
class Band:
    c1: str                       # inv_1, nand2_1, nand3_1
    inputs: tuple[str, ...]       # nets of c1's inputs, in pin order A, B, C
    out: str                      # net of c2.Y
    mid: str                      # net of c1.Y (a bus line for the address buffer)
    mid_out: bool = False         # c1.Y is also an output onto the bus

    @property
    def slots(self) -> int:
        return 2 if self.c1 == "nand3_1" else 1


def pins(c1: str) -> tuple[str, ...]:
    return tuple(p for p in ("A", "B", "C") if p in INPUT_Y[c1])


def _x_pin(cell: str, pin: str, mirror_r90: bool) -> int:
    """x of a pin's largest li rectangle after the band transform (band-local, s = +1)."""
    r = max(load(cell).pins[pin], key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    return X1 + (r[1] + r[3]) // 2 if mirror_r90 else -(r[1] + r[3]) // 2


def c1_y_x(c1: str) -> int:
    """x of c1.Y's landing: its rectangle nearest c2 (upper y rectangle of the cell)."""
    rects = load(c1).pins["Y"]
    r = max(rects, key=lambda b: (b[3], b[2] - b[0]))
    return X1 + (r[1] + r[3]) // 2


def draw_band(dw: Drawing, band: Band, x0: int, y: int, s: int, bus_x: dict[str, int],
              out_to: tuple[int, int] | None = None, out_x: int | None = None):
    """One band at (x0 = c2's outer edge, y = band bottom), flowing in direction s (+1: right).
    bus_x: x of the bus line of each input (and output) net. out_to: (x, y) of a via-stack
    landing for c2.Y (a wordline pad); otherwise c2.Y goes to bus line ``out_x``."""
    X = lambda lx: x0 + s * lx                       # noqa: E731
    # cells: c1 mirror+R90 (flow right) / R90 (flow left); c2 the opposite
    dw.refs.append(Ref(load(band.c1).name, X(X1), y + Y0, 90, s > 0))
    dw.refs.append(Ref(load("inv_2").name, x0, y + Y0, 90, s < 0))
    ckt = dw.circuit
    p = pins(band.c1)
    ckt.instances.append((load(band.c1).name, {**dict(zip(p, band.inputs)), "Y": band.mid, "VPWR": "VDD", "VPB": "VDD",
                                               "VGND": "VSS", "VNB": "VSS"}))
    ckt.instances.append((load("inv_2").name, {"A": band.mid, "Y": band.out, "VPWR": "VDD", "VPB": "VDD",
                                               "VGND": "VSS", "VNB": "VSS"}))
    # inputs: met2 stub from the bus line to a via stack on the pin
    for pin, net in zip(p, band.inputs):
        px, py = X(_x_pin(band.c1, pin, True)), y + INPUT_Y[band.c1][pin]
        dw.stack(px, py)
        bx = bus_x[net]
        dw.stack(bx, py, li=False)
        dw.wire("met2", bx, py, px, py)
    # link c1.Y -> c2.A
    ly = y + (LINK_Y_BUF if band.mid_out or band.c1 == "inv_1" else LINK_Y)
    yx = X(c1_y_x(band.c1))
    ax, ay = X(C2_A[0]), y + C2_A[1]
    dw.stack(yx, ly)
    dw.stack(ax, ay)
    dw.path("met2", [(yx, ly), (ax, ly), (ax, ay)])
    if band.mid_out:
        bx = bus_x[band.mid]
        dw.stack(bx, ly, li=False)
        dw.wire("met2", ax, ly, bx, ly)
    # output c2.Y
    oy = y + (OUT_Y_BUF if band.mid_out else OUT_Y)
    ox = X(-570)
    dw.stack(ox, oy)
    if out_to is not None:
        tx, ty = out_to
        dw.stack(tx, ty)
        dw.path("met2", [(ox, oy), (tx, oy), (tx, ty)], 260)
    else:
        dw.stack(out_x, oy, li=False)
        dw.wire("met2", ox, oy, out_x, oy)


def draw_column_fill(dw: Drawing, x0: int, s: int, y0: int, y1: int, cells: list[tuple[int, int]]):
    """Implants, wells, rails and taps of a column of bands spanning [y0, y1] (the gaps between
    stacked cells filled, as abutting standard cells would be). cells: (y, height) of each
    placed band cell pair, for the tap contacts."""
    X = lambda lx: x0 + s * lx                       # noqa: E731

    def vband(layer, a, b):
        dw.rect(layer, X(a), y0, X(b), y1)

    for layer, (a, b) in TEMPLATE.items():
        vband(layer, X1 + a, X1 + b)                  # c1: orig y -> X1 + y
        vband(layer, -b, -a)                          # c2: orig y -> -y
    dw.rect("nwell", X(X1 + TEMPLATE["nwell"][0]), y0 - 200, X(-TEMPLATE["nwell"][0]), y1 + 200)  # past the cells' own
    (g0, g1), (p0, p1) = LI_RAILS
    vband("li", PTAP[0], X1 + g1)                    # VGND of c1, over the p-tap
    vband("li", X1 + p0, -p0)                        # VPWR of c1 and c2, over the n-tap
    vband("li", -g1, -g0)                            # VGND of c2
    (m0, m1), (q0, q1) = M1_RAILS
    vband("met1", X1 + m0, X1 + m1)
    vband("met1", X1 + q0, -q0)
    vband("met1", -m1, -m0)
    for (a, b), implant in ((PTAP, "psdm"), (NTAP, "nsdm")):   # tap strips, inside wells and implants
        dw.rect("tap", X(a), y0 + 300, X(b), y1 - 300)
        dw.rect(implant, X(a - 125), y0 + 175, X(b + 125), y1 - 175)
    for yc, h in cells:                               # one tap contact of each kind per band
        for a, b in (PTAP, NTAP):
            dw.box("licon", X((a + b) // 2), yc + h // 2, 170, 170)


def rails_x(x0: int, s: int) -> dict[str, list[int]]:
    """Centre x of the column's met1 power rails."""
    X = lambda lx: x0 + s * lx                       # noqa: E731
    return {"VSS": [X(X1), X(-150)], "VDD": [X(X1 // 2)]}


BUS_PITCH = 340
BUS_W = M1_W

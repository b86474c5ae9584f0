"""Drawing primitives of the periphery: rectangles on PDK layers, via stacks, cell references,
labels, and the logical circuit drawn alongside (for LVS). Integer database units throughout.

Via stacks use the SKY130 periphery rules (µm): mcon 0.17 enclosed by met1 0.03 (0.06 on two
adjacent sides, m1.4/m1.5), via 0.15 enclosed by met1 0.055/0.085 (via.4a/via.5a) and by met2
0.055/0.085 (m2.4/m2.5); every pad reaches its metal's minimum area (m1.6, m2.6).
"""
from __future__ import annotations

from dataclasses import dataclass, field

MCON, VIA = 170, 150
M1_PAD = (320, 290)      # x, y: encloses an mcon (0.075/0.06) and a via (0.085/0.07)
M2_PAD = (320, 260)      # via enclosed 0.085 along x, 0.055 along y
M2_W = 140               # met2 wire width (m2.1)
M1_W = 140


@dataclass(frozen=True)
class Ref:
    cell: str            # standard-cell name
    x: int
    y: int
    rot: int = 0         # degrees, counter-clockwise, applied after the mirror
    mirror: bool = False  # mirror about the x axis (y -> -y) first


@dataclass(frozen=True)
class Label:
    text: str
    layer: str
    x: int
    y: int


@dataclass
class Circuit:
    """The logical circuit: standard-cell instances and single transistors, by net name."""

    instances: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    devices: list[tuple[str, str, str, str, float, float]] = field(default_factory=list)  # kind, d, g, s, w, l


@dataclass
class Drawing:
    shapes: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    circuit: Circuit = field(default_factory=Circuit)

    def rect(self, layer: str, x0: int, y0: int, x1: int, y1: int):
        self.shapes.append((layer, (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))))

    def box(self, layer: str, x: int, y: int, w: int, h: int):
        self.rect(layer, x - w // 2, y - h // 2, x + w - w // 2, y + h - h // 2)

    def stack(self, x: int, y: int, top: str = "met2", li: bool = True):
        """A via stack centred at (x, y): li -> mcon -> met1 (-> via -> met2). Without li (a
        met1 line to met2): the met1 pad is narrow in x, as on a bus of 0.34 µm pitch."""
        if li:
            self.box("mcon", x, y, MCON, MCON)
        self.box("met1", x, y, *(M1_PAD if li else (260, 320)))
        if top == "met2":
            self.box("via", x, y, VIA, VIA)
            self.box("met2", x, y, *M2_PAD)

    def wire(self, layer: str, x0: int, y0: int, x1: int, y1: int, w: int = M2_W):
        """A straight horizontal or vertical wire from (x0, y0) to (x1, y1), centred on the line."""
        h = w // 2
        if y0 == y1:
            self.rect(layer, min(x0, x1) - h, y0 - h, max(x0, x1) + h, y0 + h)
        elif x0 == x1:
            self.rect(layer, x0 - h, min(y0, y1) - h, x0 + h, max(y0, y1) + h)
        else:
            raise ValueError("wires are horizontal or vertical")

    def path(self, layer: str, pts: list[tuple[int, int]], w: int = M2_W):
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            self.wire(layer, x0, y0, x1, y1, w)

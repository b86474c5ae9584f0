"""Programming on an upper via: the via stack that carries every bit's drain up to it.

The PDK's ``[stack]`` lists its interconnect bottom up from the ROM's first routing layer (role
``li``): metal M0, via V0, metal M1, via V1, ... The default programming layer is V0 (SKY130 mcon,
GF180MCU and SG13G2 Via1) and the bitlines are M1: the bitcell of geometry.py as it always was.
With V_k (k >= 1) as the programming layer, each bit site also holds, in the regular base array:
the vias V0 .. V(k-1) stacked on the drain contact and a metal pad on each of M1 .. Mk; the
programming via V_k, drawn only at the 1-bits, joins the Mk pad to the bitline on M(k+1). Only
V_k depends on the model, so a wafer can be made up to V_k before any model is known.

Every size comes from the PDK's rules: a via is its exact size; a pad encloses the via below and
the via above by the larger of the metal's enclosure and adjacent-side enclosure on all four
sides, is at least the metal's width and reaches its minimum area; a bitline is the metal's width
or the via plus its enclosure. The bit pitch then grows until pads, vias and bitlines keep their
spacings; of the pitches that do, the one of least area per bit is taken (``plan``).

The drawing roles of the stack are ``stack:<layer>``; ``program(pdk, layer)`` returns the PDK
with the programming role (``mcon``) on V_k, the bitline role (``met1``) on M(k+1), and a
``stack:<layer>`` role for every stack layer, so that the writer and the DRC need nothing else.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import PdkError
from ..tech.pdk import Pdk

SEARCH_UM = 8.0   # how far beyond the base column pitch the pitch search looks (µm)


def program_layers(pdk: Pdk) -> tuple[str, ...]:
    """The vias that can be the programming layer, densest first (the first is the default)."""
    return tuple(pdk.stack[1::2]) if pdk.stack else (pdk.programming_layer,)


def level(pdk: Pdk) -> int:
    """Index of the PDK's programming layer among ``program_layers`` (0: the default)."""
    layers = program_layers(pdk)
    if pdk.programming_layer not in layers:
        raise PdkError(f"{pdk.path}: programming layer '{pdk.programming_layer}' is not a via of [stack]")
    return layers.index(pdk.programming_layer)


def program(pdk: Pdk, layer: str | None) -> Pdk:
    """The PDK with ``layer`` (a via of its stack) as the programming layer; None keeps the default."""
    layers = program_layers(pdk)
    if layer is None:
        layer = layers[0]
    if layer not in layers:
        raise PdkError(f"programming layer '{layer}' is not a via of PDK {pdk.name} "
                       f"(choices, densest first: {', '.join(layers)})")
    if not pdk.stack:
        return pdk
    k = layers.index(layer)
    roles = {r: n for r, n in pdk.roles.items() if not r.startswith("stack:")}
    roles.update({f"stack:{n}": n for n in pdk.stack})
    roles["mcon"], roles["met1"] = layer, pdk.stack[2 * k + 2]
    return dataclasses.replace(pdk, programming_layer=layer, roles=roles)


def upper_rules(pdk: Pdk) -> tuple:
    """The rules on the stack's layers above the default bitline metal (the via above it and up):
    in every layout's deck, they can only find shapes where an upper programming layer is drawn."""
    upper = set(pdk.stack[3:])

    def base(name: str) -> set[str]:
        if name in pdk.derived:
            a, _, b = pdk.derived[name]
            return base(a) | base(b)
        return {name} if name else set()
    return tuple(r for r in pdk.rules if (base(r.layer) | base(r.other) | base(r.edges_on)) & upper)


def stack_roles(pdk: Pdk) -> tuple[str, ...]:
    """The drawing roles between li and the programming via, bottom up: V0, M1, ..., V(k-1), Mk
    (none at the default level). A conductor chain: li, these, mcon (the programming via), met1."""
    return tuple(f"stack:{n}" for n in pdk.stack[1:2 * level(pdk) + 1]) if pdk.stack else ()


@dataclass(frozen=True)
class StackPlan:
    """The via stack of one programming level, in database units (all boxes centred on the site)."""

    level: int
    program_layer: str
    bitline_layer: str
    px: int                   # column pitch
    px0: int                  # the base cell's column pitch (the wordline pads keep their distance to the cell edge)
    din: int                  # distance of the two drain sites of an island
    dout: int                 # distance of a drain site to the nearest one of the next island
    vias: tuple[tuple[str, int], ...]        # (role, size) of V0 .. V(k-1), on every site
    pads: tuple[tuple[str, int, int], ...]   # (role, width x, height y) on M1 .. Mk, on every site
    via: int                  # the programming via's size
    bitline: int              # bitline width on M(k+1)

    def site_shapes(self) -> list[tuple[str, tuple[int, int, int, int]]]:
        """The stack's shapes at one bit site, relative to the site centre."""
        out = [(role, (-v // 2, -v // 2, v // 2, v // 2)) for role, v in self.vias]
        out += [(role, (-wx // 2, -wy // 2, wx // 2, wy // 2)) for role, wx, wy in self.pads]
        return out


def _rule(pdk: Pdk, kind: str, layer: str, other: str = "", required: bool = False) -> float:
    for r in pdk.rules:
        if r.kind == kind and r.layer == layer and r.other == other:
            return r.value
    if required:
        raise PdkError(f"{pdk.path}: [stack] layer '{layer}' needs a {kind} rule"
                       + (f" against '{other}'" if other else "") + " to draw the via stack")
    return 0.0


def _up(x: float, step: int) -> int:
    """x (dbu) rounded up to a multiple of step."""
    return int(math.ceil(round(x, 6) / step)) * step


def plan(pdk: Pdk, px0: int, din0: int, dout0: int) -> StackPlan | None:
    """The stack for the PDK's programming layer, given the base cell's column pitch and drain-site
    distances (dbu); None at the default level (no stack)."""
    k = level(pdk)
    if k == 0:
        return None
    s = pdk.stack
    dbu = pdk.dbu_um
    g2 = 2 * round(pdk.grid_um / dbu)          # boxes are centred: half sizes stay on the grid
    d = lambda um: round(um / dbu)              # noqa: E731
    vias, need_px, need_d = [], [], []
    for j in range(k + 1):                      # V0 .. Vk
        v = s[2 * j + 1]
        size = d(_rule(pdk, "exact_size", v, required=True))
        gap = d(_rule(pdk, "spacing", v, required=True))
        vias.append((v, size))
        need_px.append(size + gap)
        need_d.append(size + gap)
    pads = []                                   # M1 .. Mk: (role, side a, spacing, area in dbu²)
    for j in range(1, k + 1):
        m = s[2 * j]
        lo, hi = vias[j - 1], vias[j]           # the via below the pad (it lands on it) and above it
        a = max(d(_rule(pdk, "width", m, required=True)),
                lo[1] + 2 * d(max(_rule(pdk, "enclosure", m, lo[0]), _rule(pdk, "enclosure_adjacent", m, lo[0]))),
                hi[1] + 2 * d(max(_rule(pdk, "enclosure", m, hi[0]), _rule(pdk, "enclosure_adjacent", m, hi[0]))))
        area = _rule(pdk, "area", m) / dbu / dbu
        pads.append((m, _up(a, g2), d(_rule(pdk, "spacing", m, required=True)), area))
    top, pv = s[2 * k + 2], vias[k]
    bitline = _up(max(d(_rule(pdk, "width", top, required=True)),
                      pv[1] + 2 * d(_rule(pdk, "enclosure", top, pv[0]))), g2)
    need_px.append(bitline + d(_rule(pdk, "spacing", top, required=True)))
    # a bitline ends half an island gap beyond its last drain site: that must enclose the via
    need_d.append(pv[1] + 2 * d(_rule(pdk, "enclosure", top, pv[0])))
    best = None
    for px in range(px0, px0 + d(SEARCH_UM) + 1, g2):
        if px < max(need_px):
            continue
        dims, dist = [], max(need_d)
        for m, a, gap, area in pads:
            wx = max(a, min(px - gap, _up(area / a, g2)))
            if wx > px - gap:
                break
            wy = max(a, _up(area / wx, g2))
            dims.append((f"stack:{m}", wx, wy))
            dist = max(dist, wy + gap)
        else:
            din = din0 + _up(max(0, dist - din0), g2)
            dout = max(dout0, dist)
            cost = px * (din + dout)
            if best is None or cost < best[0]:
                best = (cost, px, din, dout, tuple(dims))
    if best is None:
        raise PdkError(f"{pdk.path}: no bit pitch within {SEARCH_UM} µm of the base cell fits the "
                       f"via stack up to '{pdk.programming_layer}'")
    _, px, din, dout, dims = best
    return StackPlan(k, pdk.programming_layer, top, px, px0, din, dout,
                     tuple((f"stack:{v}", size) for v, size in vias[:k]), dims, pv[1], bitline)


def programming_report(pdk: Pdk, sizes: list[tuple[int, int]], drawn: set[tuple[int, int]] = frozenset()) -> dict:
    """The report's programming section: the layer, the masks a model changes (one) and those it
    shares with every other model of the same shape (of ``drawn``, the GDS layers in the layout;
    the placement boundary is no mask), and the bitcell and die area of the same arrays for each
    programming layer the PDK offers (floorplanned, not drawn)."""
    from .geometry import RomGeometry, floorplan
    by_gds = {l.gds: name for name, l in pdk.layers.items()}
    boundary = pdk.roles.get("boundary")
    shared = sorted(by_gds.get(g, f"{g[0]}/{g[1]}") for g in drawn)
    shared = [n for n in shared if n not in (pdk.programming_layer, boundary)]
    um = pdk.dbu_um
    choices, base = [], None
    for layer in program_layers(pdk):
        g = RomGeometry.from_pdk(program(pdk, layer))
        die = floorplan(sizes, g).die
        cell = g.px * g.py / 2 * um * um
        area = (die[2] - die[0]) * (die[3] - die[1]) * um * um / 1e6
        base = area if base is None else base
        choices.append({"layer": layer, "bitline_layer": pdk.stack[2 * len(choices) + 2] if pdk.stack else pdk.roles["met1"],
                        "bitcell_um": [round(g.px * um, 4), round(g.py / 2 * um, 4)],
                        "bitcell_area_um2": round(cell, 6), "bits_per_um2": round(1 / cell, 4),
                        "die_um": [round((die[2] - die[0]) * um, 3), round((die[3] - die[1]) * um, 3)],
                        "die_area_mm2": round(area, 6), "relative_to_densest": round(area / base, 4)})
    return {"layer": pdk.programming_layer, "masks_changing": [pdk.programming_layer],
            "masks_shared": shared, "choices": choices,
            "choices_die": "the ROM arrays alone, floorplanned (no periphery), so that the choices compare"}

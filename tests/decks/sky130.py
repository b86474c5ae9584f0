"""SKY130 deck cases (role names are SKY130's own layers). Rules on derived layers (gate,
poly_field, diff_licon, poly_licon) are drawn explicitly; the standard-cell values (inside
areaid.sc) have cases of their own. Each case's legal layout is clean, one grid step (0.005 µm)
off it fires the rule; some cases add gross violations (inner shape sticking out of the outer,
poly endcap 0, overlap where "no overlap" is required).
"""
from __future__ import annotations

from typing import Callable

from .common import Case, Rect, extras

PDK_NAME = "sky130"
# The SKY130 cases draw a contact or tap without every cover the other rules want (li over a licon,
# implant over a tap): at the legal value the case's own rule must be silent, not the whole deck.
LEGAL_SILENT = "rule"
CT = 0.17  # licon / mcon size (licon.1, ct.1)


def implanted(rects: list[Rect]) -> list[Rect]:
    """Add the nsdm implant (nsd.5a: 0.125 around all diff) so the diff cases stay quiet."""
    diffs = [r for r in rects if r[0] == "diff"]
    if not diffs:
        return rects
    e = 0.125
    return rects + [("nsdm", min(r[1] for r in diffs) - e, min(r[2] for r in diffs) - e,
                     max(r[3] for r in diffs) + e, max(r[4] for r in diffs) + e)]


def contact(layer: str, x: float = 0.0, y: float = 0.0, side: float = CT) -> Rect:
    return (layer, x, y, x + side, y + side)


def transistor(w: float = 0.42, endcap: float = 0.13, drain: float = 0.5, source: float = 0.5) -> list[Rect]:
    """NMOS: vertical diff from y=0 (w wide), horizontal 0.15 poly gate at y = source .. source + 0.15."""
    return implanted([("diff", 0.0, 0.0, w, source + 0.15 + drain),
                      ("poly", -endcap, source, w + endcap, source + 0.15)])


# -- case families: each returns draw(d) -> rectangles, d the rule's critical dimension ------------
def too_narrow(layer: str):
    return lambda w: [(layer, 0.0, 0.0, w, 2.0)]


def too_close(layer: str, width: float = 1.0):
    return lambda s: [(layer, 0.0, 0.0, width, 2.0), (layer, width + s, 0.0, 2 * width + s, 2.0)]


def too_small(layer: str, width: float):
    """Area: a ``width`` × d rectangle."""
    return lambda h: [(layer, 0.0, 0.0, width, h)]


def contact_size(layer: str):
    return lambda s: [contact(layer, side=s)]


def contact_space(layer: str):
    return lambda s: [contact(layer), contact(layer, x=CT + s)]


def enclosed(outer: str, inner: str, vary: str = "left", extra: tuple[Rect, ...] = (), implant: bool = False,
             **margins: float):
    """A 0.17 µm ``inner`` contact inside ``outer`` with the given margins (left, bottom, right,
    top; 0 if not given); d replaces the ``vary`` margin, a negative d pushes the contact out."""
    def draw(d):
        m = {"left": 0.0, "bottom": 0.0, "right": 0.0, "top": 0.0, **margins, vary: d}
        rects = [contact(inner), (outer, -m["left"], -m["bottom"], CT + m["right"], CT + m["top"]), *extra]
        return implanted(rects) if implant else rects
    return draw


def fixed(draw: Callable[[float], list[Rect]], d: float) -> Callable[[], list[Rect]]:
    return lambda: draw(d)


# rules on derived layers (gate, poly_field, diff_licon, poly_licon), drawn explicitly
def in_std_cell(rects: list[Rect]) -> list[Rect]:
    """The rectangles under a standard-cell identifier (areaid.sc), which has its own rule values."""
    return rects + [("areaid_sc", -1.0, -1.0, 2.0, 3.0)]


def poly_field_to_diff(d):  # poly.4: a poly line on field d right of a diff
    return implanted([("diff", 0.0, 0.0, 0.5, 1.0), ("poly", 0.5 + d, 0.0, 1.0 + d, 1.0)])


def diff_extension(d):  # poly.7: the diff reaches d beyond the gate (drain side)
    return transistor(drain=d)


def poly_endcap(d):  # poly.8: endcap d on the right (0.13 on the left)
    return implanted([("diff", 0.0, 0.0, 0.42, 1.15), ("poly", -0.13, 0.5, 0.42 + d, 0.65)])


def npc_to_gate(d):  # npc.4: an npc d above the gate (negative: overlapping it)
    return transistor() + [("npc", -0.3, 0.65 + d, 0.72, 1.15 + d)]


def licon_to_gate(d):  # licon.11: drain contact d below the gate (negative: overlapping it)
    return transistor(drain=0.6, source=0.6) + [contact("licon", 0.125, 0.6 - d - CT)]


def poly_licon_to_diff(d):  # licon.14: a poly pad whose licon is d left of a diff
    return implanted([("diff", 0.0, 0.0, 0.42, 1.0), contact("licon", -d - CT, 0.4),
                      ("poly", -d - CT - 0.08, 0.35, -d + 0.08, 0.4 + CT + 0.05)])


def diff_licon_margins(left, bottom, right, top):  # licon.5c: fixed margins around a diff contact
    return fixed(enclosed("diff", "licon", implant=True, left=left, bottom=bottom, right=right, top=top), left)


def no_licon_cover():
    return [contact("licon")]


def no_mcon_cover():
    return [contact("mcon")]


def no_nsdm():
    return [("diff", 0.0, 0.0, 0.5, 0.5)]


def licon_not_square():
    return [("licon", 0.0, 0.0, CT, 0.2)]


def mcon_not_square():
    return [("mcon", 0.0, 0.0, 0.2, CT)]


CASES: dict[str, Case] = {
    # diff
    "difftap.1": Case(lambda w: implanted(too_narrow("diff")(w))),
    "difftap.2": Case(lambda w: transistor(w=w)),                           # diff 0.415 under the gate
    "difftap.2b": Case(lambda w: in_std_cell(transistor(w=w))),            # same, inside areaid.sc
    "difftap.3": Case(lambda s: implanted(too_close("diff", 0.5)(s))),
    # poly
    "poly.1a": Case(too_narrow("poly")),
    "poly.2": Case(too_close("poly", 0.5)),
    "poly.4": Case(poly_field_to_diff),
    "poly.7": Case(diff_extension, beyond=(0.0,)),                          # diff ends at the gate
    "poly.8": Case(poly_endcap, beyond=(0.0,)),                             # endcap exactly 0
    # implant
    "nsd.1": Case(too_narrow("nsdm")),
    "nsd.2": Case(too_close("nsdm")),
    "nsd.5a": Case(enclosed("nsdm", "diff", bottom=0.2, right=0.2, top=0.2), beyond=(-0.05,), extra=extras(no_nsdm,)),
    "nsd.10a": Case(too_small("nsdm", 0.5), legal=0.53),                    # 0.5 x 0.53 = 0.265 µm²
    # npc
    "npc.1": Case(too_narrow("npc")),
    "npc.2": Case(too_close("npc")),
    "npc.4": Case(npc_to_gate, beyond=(-0.05,)),                            # npc over the gate
    # licon
    "licon.1": Case(contact_size("licon"), extra=extras(licon_not_square,)),
    "licon.2": Case(contact_space("licon")),
    "licon.4": Case(enclosed("li", "licon", bottom=0.08, right=0.08, top=0.08), beyond=(-0.05,),
                    extra=extras(no_licon_cover,)),
    "licon.5a": Case(enclosed("diff", "licon", implant=True, bottom=0.06, right=0.06, top=0.06)),
    "licon.5c": Case(enclosed("diff", "licon", vary="bottom", implant=True, left=0.04, right=0.04, top=0.06),
                     extra=extras(diff_licon_margins(0.04, 0.04, 0.04, 0.04),     # short on all four sides
                            diff_licon_margins(0.04, 0.1, 0.1, 0.04),       # short on left + top
                            diff_licon_margins(0.1, 0.04, 0.04, 0.1))),     # short on right + bottom
    "licon.8": Case(enclosed("poly", "licon", vary="bottom", left=0.08, right=0.08, top=0.05)),
    "licon.8a": Case(enclosed("poly", "licon", bottom=0.05, right=0.08, top=0.05)),
    "licon.11": Case(licon_to_gate, beyond=(-0.02,)),                       # licon over poly and diff
    "licon.11a": Case(lambda d: in_std_cell(licon_to_gate(d)), beyond=(-0.02,)),
    "licon.14": Case(poly_licon_to_diff, beyond=(-0.05,)),                  # poly licon over diff
    "licon.15": Case(enclosed("npc", "licon", bottom=0.1, right=0.1, top=0.1,
                              extra=(("poly", -0.08, -0.05, CT + 0.08, CT + 0.05),)), beyond=(-0.05,)),
    # li
    "li.1": Case(too_narrow("li")),
    "li.3": Case(too_close("li")),
    "li.5": Case(enclosed("li", "licon", vary="bottom", top=0.08)),
    "li.6": Case(too_small("li", 0.17), legal=0.33),                        # 0.17 x 0.33 = 0.0561 µm²
    # mcon
    "ct.1": Case(contact_size("mcon"), extra=extras(mcon_not_square,)),
    "ct.2": Case(contact_space("mcon")),
    "ct.4": Case(enclosed("li", "mcon", bottom=0.08, right=0.08, top=0.08), beyond=(-0.05,),
                 extra=extras(no_mcon_cover,)),
    # met1
    "m1.1": Case(too_narrow("met1")),
    "m1.2": Case(too_close("met1")),
    "m1.4": Case(enclosed("met1", "mcon", bottom=0.06, right=0.03, top=0.06), beyond=(-0.05,)),
    "m1.5": Case(enclosed("met1", "mcon", vary="bottom", left=0.03, right=0.03, top=0.06)),
    "m1.6": Case(too_small("met1", 0.2), legal=0.415),                      # 0.2 x 0.415 = 0.083 µm²
    # wells, taps and p implant (the macro periphery)
    "nwell.1": Case(too_narrow("nwell")),
    "nwell.2a": Case(too_close("nwell")),
    "difftap.1t": Case(too_narrow("tap")),
    "difftap.3t": Case(too_close("tap", 0.5)),
    "difftap.8": Case(enclosed("nwell", "diff", extra=(("psdm", -1.0, -1.0, 2.0, 2.0),),
                               bottom=0.3, right=0.3, top=0.3), beyond=(-0.05,)),
    "difftap.9": Case(lambda d: implanted([("diff", 0.0, 0.0, 0.5, 1.0)]) + [("nwell", 0.5 + d, -0.5, 2.0 + d, 1.5)],
                      beyond=(-0.05,)),                                     # ndiff inside the well
    "difftap.10": Case(enclosed("nwell", "tap", extra=(("nsdm", -1.0, -1.0, 2.0, 2.0),),
                                bottom=0.3, right=0.3, top=0.3), beyond=(-0.05,)),
    "difftap.11": Case(lambda d: [("tap", 0.0, 0.0, 0.5, 1.0), ("nwell", 0.5 + d, -0.5, 2.0 + d, 1.5)],
                       beyond=(-0.05,)),                                    # p-tap inside the well
    "psd.5a": Case(enclosed("psdm", "diff", bottom=0.2, right=0.2, top=0.2), beyond=(-0.05,)),
    "psd.5b": Case(enclosed("psdm", "tap", bottom=0.2, right=0.2, top=0.2), beyond=(-0.05,)),
    "nsd.5b": Case(enclosed("nsdm", "tap", extra=(("nwell", -1.0, -1.0, 2.0, 2.0),),
                            bottom=0.2, right=0.2, top=0.2), beyond=(-0.05,)),
    # weightfab's own tap distance: an n diffusion whose far end is d from a p-tap; fails past 15 µm
    "latchup.15": Case(lambda d: [("tap", 0.0, 0.0, 0.5, 1.0), ("psdm", -0.2, -0.2, 0.7, 1.2)]
                       + implanted([("diff", 1.0, 0.0, round(0.5 + d, 6), 1.0)]), off=(15.005,), beyond=(20.0,),
                       extra_legal=(lambda: [("tap", 14.75, 0.0, 15.25, 1.0), ("psdm", 14.55, -0.2, 15.45, 1.2)]
                                    + implanted([("diff", 0.0, 0.0, 14.25, 1.0)])     # 14.75 µm both sides
                                    + implanted([("diff", 15.75, 0.0, 29.99, 1.0)]),)),
}



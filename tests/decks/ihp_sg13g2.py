"""IHP SG13G2 deck cases, drawn with the ROM role names (diff, poly, licon, li, mcon, met1) mapped
to SG13G2 layers: clean at the rule's value, the rule fires one 0.005 µm grid step on the wrong side;
``extra`` cases (gross violations) must fire it and ``extra_legal`` ones must stay clean.
"""
from __future__ import annotations

from .common import Case, extras, r6

PDK_NAME = "ihp-sg13g2"
CT, VIA = 0.16, 0.19
LEGAL_SILENT = "deck"   # at the legal value the whole deck is silent


# -- fixtures ------------------------------------------------------------------------------
def transistor(L=0.13, w=0.5, drain=0.5, source=0.5, endcap=0.18, far=0.5, extra=()):
    """vertical Activ w wide, horizontal gate L at y = source; endcap on the right, far on the left."""
    return [("diff", 0, 0, w, source + L + drain), ("poly", -far, source, w + endcap, source + L), *extra]

def cont_m1(x, y, s=CT, l=0.0, b=0.05, r=0.0, t=0.45):
    """Cont s x s at (x, y) with a Metal1 pad (margins; default line-end style, area >= 0.09)."""
    return [("licon", x, y, x + s, y + s), ("li", x - l, y - b, x + s + r, y + s + t)]

def via_stack(x, y, s=VIA, m1=(0.01, 0.05, 0.01, 0.30), m2=(0.005, 0.05, 0.005, 0.55)):
    l, b, r, t = m1; L2, B2, R2, T2 = m2
    return [("mcon", x, y, x + s, y + s), ("li", x - l, y - b, x + s + r, y + s + t),
            ("met1", x - L2, y - B2, x + s + R2, y + s + T2)]

_TABLE = {
 "Act.a": dict(draw=lambda w: [("diff", 0, 0, w, 2.0)]),
 "Act.b": dict(draw=lambda s: [("diff", 0, 0, 1, 2), ("diff", 1 + s, 0, 2 + s, 2)]),
 "Act.c": dict(draw=lambda d: transistor(drain=d), beyond=[0.0]),
 "Act.d": dict(draw=lambda h: [("diff", 0, 0, 0.4, h)], legal=0.305),
 "Gat.a": dict(draw=lambda w: [("poly", 0, 0, w, 2.0)]),
 "Gat.a1": dict(draw=lambda L: transistor(L=L)),
 "Gat.a2": dict(draw=lambda L: transistor(L=L, extra=[("psd", -1, -0.5, 1.5, 1.6)])),
 "Gat.a3": dict(draw=lambda L: transistor(L=L, extra=[("thickgateox", -1, -0.5, 1.5, 1.6)])),
 "Gat.a4": dict(draw=lambda L: transistor(L=L, extra=[("thickgateox", -1, -0.5, 1.5, 1.6), ("psd", -1, -0.5, 1.5, 1.6)])),
 "Gat.b": dict(draw=lambda s: [("poly", 0, 0, 0.5, 2), ("poly", 0.5 + s, 0, 1 + s, 2)]),
 "Gat.c": dict(draw=lambda e: transistor(endcap=e), beyond=[0.0]),
 "Gat.d": dict(draw=lambda s: [("diff", 0, 0, 0.5, 1.0), ("poly", 0.5 + s, 0, 1.0 + s, 1.0)]),
 "Gat.e": dict(draw=lambda h: [("poly", 0, 0, 0.2, h)], legal=0.45),
 "Cnt.a": dict(draw=lambda s: cont_m1(0, 0, s=s, l=0.05, r=0.05), extra=[[("licon", 0, 0, 0.16, 0.2), ("li", -0.05, -0.05, 0.21, 0.6)]]),
 "Cnt.b": dict(draw=lambda s: [("licon", 0, 0, CT, CT), ("licon", CT + s, 0, 2 * CT + s, CT), ("li", -0.05, -0.05, 2 * CT + s + 0.05, CT + 0.3)]),
 "Cnt.c": dict(draw=lambda d: [("diff", -d, -0.2, CT + 0.2, CT + 0.2)] + cont_m1(0, 0, b=0.05, t=0.45), beyond=[-0.05]),
 "Cnt.c.digibnd": dict(draw=lambda d: [("digibnd", -1, -1, 1, 1.5), ("diff", -d, -0.2, CT + 0.2, CT + 0.2)] + cont_m1(0, 0, b=0.05, t=0.45)),
 "Cnt.d": dict(draw=lambda d: [("poly", -d, -0.07, CT + 0.3, CT + 0.07)] + cont_m1(0, 0, b=0.05, t=0.45), beyond=[-0.05]),
 "Cnt.e": dict(draw=lambda d: [("diff", CT + d, -0.3, CT + d + 0.5, 0.6), ("poly", -0.3, -0.07, CT + 0.07, CT + 0.07)] + cont_m1(0, 0, b=0.05, t=0.45), beyond=[0.0]),
 "Cnt.f": dict(draw=lambda d: transistor(drain=d + CT + 0.07) + cont_m1(0.17, 0.5 + 0.13 + d, b=0.0, t=0.26, l=0.0, r=0.0) if False else
                             transistor(drain=d + CT + 0.07) + [("licon", 0.17, 0.63 + d, 0.33, 0.79 + d), ("li", 0.17, 0.63 + d - 0.05, 0.33, 0.79 + d + 0.45)],
               beyond=[-0.02]),
 "Cnt.h": dict(draw=lambda d: [("licon", 0, 0, CT, CT), ("li", -d, -0.05, CT + 0.05, CT + 0.5)], legal=0.0, extra=[[("licon", 0, 0, CT, CT)]]),
 "M1.a": dict(draw=lambda w: [("li", 0, 0, w, 2.0)]),
 "M1.b": dict(draw=lambda s: [("li", 0, 0, 1, 2), ("li", 1 + s, 0, 2 + s, 2)]),
 "M1.c1": dict(draw=lambda d: cont_m1(0, 0, l=0, r=0, b=d, t=0.45),
               extra=[cont_m1(0, 0, l=0, b=0, r=0.3, t=0.3),            # two adjacent sides flush
                      cont_m1(0, 0, l=0.045, b=0.045, r=0.045, t=0.045) + [("li", 0.4, -0.5, 0.8, 0.5)]],  # all four short
               extra_legal=[cont_m1(0, 0, l=0, b=0.05, r=0, t=0.45),     # two opposite sides flush
                            cont_m1(0, 0, l=0.0, b=0.1, r=0.1, t=0.3)]),  # one side flush
 "M1.d": dict(draw=lambda h: [("li", 0, 0, 0.2, h)], legal=0.45),
 "V1.a": dict(draw=lambda s: via_stack(0, 0, s=s, m1=(0.05, 0.05, 0.05, 0.3), m2=(0.05, 0.05, 0.05, 0.3)),
              extra=[[("mcon", 0, 0, 0.19, 0.24), ("li", -0.05, -0.05, 0.24, 0.29), ("met1", -0.05, -0.05, 0.24, 0.6)]]),
 "V1.b": dict(draw=lambda s: [("mcon", 0, 0, VIA, VIA), ("mcon", VIA + s, 0, 2 * VIA + s, VIA),
                              ("li", -0.05, -0.05, 2 * VIA + s + 0.05, VIA + 0.05), ("met1", -0.05, -0.05, 2 * VIA + s + 0.05, VIA + 0.3)]),
 "V1.c": dict(draw=lambda d: via_stack(0, 0, m1=(d, 0.05, 0.05, 0.3)), beyond=[-0.05]),
 "V1.c1": dict(draw=lambda d: via_stack(0, 0, m1=(0.01, d, 0.01, 0.3))),
 "M2.a": dict(draw=lambda w: [("met1", 0, 0, w, 2.0)]),
 "M2.b": dict(draw=lambda s: [("met1", 0, 0, 1, 2), ("met1", 1 + s, 0, 2 + s, 2)]),
 "M2.c": dict(draw=lambda d: via_stack(0, 0, m2=(d, 0.05, 0.05, 0.55)), beyond=[-0.05]),
 "M2.c1": dict(draw=lambda d: via_stack(0, 0, m2=(0.005, d, 0.005, 0.55))),
 "M2.d": dict(draw=lambda h: [("met1", 0, 0, 0.2, h)], legal=0.72),
 # NWell and pSD (the macro periphery): activ without pSD is N+, with pSD P+
 "NW.a": dict(draw=lambda w: [("nwell", 0, 0, w, 2.0)]),
 "NW.b": dict(draw=lambda s: [("nwell", 0, 0, 1, 2), ("nwell", 1 + s, 0, 2 + s, 2)]),
 "NW.c": dict(draw=lambda d: [("diff", 0, 0, 0.5, 1), ("psd", -0.2, -0.2, 0.7, 1.2), ("nwell", -d, -1, 1.5, 2)]),
 "NW.d": dict(draw=lambda s: [("nwell", 0, 0, 1, 1), ("diff", 1 + s, 0, 1.5 + s, 1)], beyond=[0.0]),
 "NW.e": dict(draw=lambda d: [("diff", 0, 0, 0.5, 1), ("nwell", -d, -1, 1.5, 2)]),
 "NW.f": dict(draw=lambda s: [("nwell", 0, 0, 1, 1), ("diff", 1 + s, 0, 1.5 + s, 1), ("psd", 0.97 + s, -0.03, 1.53 + s, 1.03)]),
 "pSD.a": dict(draw=lambda w: [("psd", 0, 0, w, 2.0)]),
 "pSD.b": dict(draw=lambda s: [("psd", 0, 0, 1, 2), ("psd", 1 + s, 0, 2 + s, 2)]),
 "pSD.c": dict(draw=lambda d: [("nwell", -1, -1, 2, 2), ("diff", 0, 0, 0.5, 1), ("psd", -d, -0.2, 0.7, 1.2)]),
 "pSD.c1": dict(draw=lambda d: [("diff", 0, 0, 0.5, 1), ("psd", -d, -0.05, 0.55, 1.05)]),
 "pSD.d": dict(draw=lambda s: [("psd", 0, 0, 1, 1), ("diff", 1 + s, 0, 1.5 + s, 1)]),
 "pSD.d1": dict(draw=lambda s: [("nwell", -1, -1, 3, 2), ("psd", 0, 0, 1, 1), ("diff", 1 + s, 0, 1.5 + s, 1)]),
 # a maximum: N+Activ whose far end is s from a substrate tie; fails one grid step past 20 µm
 "LU.b": dict(draw=lambda s: [("diff", 0, 0, 0.5, 1), ("psd", -0.2, -0.2, 0.7, 1.2), ("diff", 1, 0, round(0.5 + s, 6), 1)],
              off=(20.005,), beyond=(25,)),
}


CASES = {name: Case(c["draw"], legal=c.get("legal"), off=c.get("off"), beyond=tuple(c.get("beyond", ())),
                    extra=extras(*c.get("extra", [])), extra_legal=tuple(c.get("extra_legal", [])))
         for name, c in _TABLE.items()}

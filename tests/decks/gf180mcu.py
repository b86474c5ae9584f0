"""GF180MCU deck cases (drawn on the PDK's own layer names): for every rule a small layout that
is DRC clean at the rule's value and, one 0.005 µm grid step on the wrong side, fires that rule
and no other (``EXPECT`` lists the rules that fire together by construction, with the reason);
some rules add gross cases (``GROSS``).
"""
from __future__ import annotations

from .common import Case, Extra, r6

PDK_NAME = "gf180mcu"
LEGAL_SILENT = "deck"   # at the legal value the whole deck is silent


def implanted(rects, m=0.23, layer="nplus"):
    cs = [r for r in rects if r[0] == "comp"]
    return rects + [(layer, r6(min(r[1] for r in cs) - m), r6(min(r[2] for r in cs) - m),
                     r6(max(r[3] for r in cs) + m), r6(max(r[4] for r in cs) + m))]


def box(layer, x0, y0, x1, y1):
    return (layer, r6(x0), r6(y0), r6(x1), r6(y1))


def around(layer, cut, l, b, r, t):
    _, x0, y0, x1, y1 = cut
    return box(layer, x0 - l, y0 - b, x1 + r, y1 + t)


def cut(layer, x=0.0, y=0.0, w=None, h=None):
    s = 0.22 if layer == "contact" else 0.26
    return box(layer, x, y, x + (w or s), y + (h or s))


def m1pad(c):  # Metal1 0.06 on the sides, 0.12 at the ends (CO.6/CO.6b, V1.3a/V1.3d, M1.3)
    return around("metal1", c, 0.06, 0.12, 0.06, 0.12) if c[0] == "contact" else around("metal1", c, 0.07, 0.1, 0.07, 0.1)


def dcontact(x, y):  # contact on COMP with its Metal1 pad (COMP drawn by the caller)
    c = cut("contact", x, y)
    return [c, m1pad(c)]


def nmos(w=0.36, l=0.28, endl=0.22, endr=0.22, src=0.44, drn=0.44, m=0.23):
    """Vertical COMP x 0..w, y 0..src+l+drn; horizontal gate src..src+l; Nplus m around."""
    return implanted([box("comp", 0, 0, w, src + l + drn), box("poly2", -endl, src, w + endr, src + l)], m)


# -- cases: draw(d) -> rects ------------------------------------------------------------------
def DF1a(d): return implanted([box("comp", 0, 0, d, 2.0)])
def DF2a(d): return nmos(w=d)
def DF3a(d): return implanted([box("comp", 0, 0, 0.5, 1.0), box("comp", 0.5 + d, 0, 1.0 + d, 1.0)])
def DF6(d): return nmos(drn=d)
def DF9(d): return implanted([box("comp", 0, 0, 0.45, d)])
def DF12(d):  # Nplus edge d beyond the COMP's left edge (d < 0: a sliver of COMP is bare)
    return [box("comp", 0, 0, 0.5, 1.0), box("nplus", -d, -0.16, 0.66, 1.16)]
def DF16(d): return implanted([box("comp", 0, 0, 0.5, 1.0)], 0.16) + [box("nwell", 0.5 + d, -1, 3, 2)]
def PL1(d): return [box("poly2", 0, 0, d, 2.0)]
def PL2(d): return nmos(l=d)
def PL3a(d): return [box("poly2", 0, 0, 0.5, 2.0), box("poly2", 0.5 + d, 0, 1.0 + d, 2.0)]
def PL4(d): return nmos(endr=d)
def PL5a(d): return implanted([box("comp", 0, 0, 0.5, 1.0)]) + [box("poly2", 0.5 + d, 0, 1.0 + d, 1.0)]
def NP1(d): return [box("nplus", 0, 0, d, 2.0)]
def NP2(d): return [box("nplus", 0, 0, 1.0, 2.0), box("nplus", 1.0 + d, 0, 2.0 + d, 2.0)]
def pcomp(nw=True):
    r = [box("comp", 0, 0, 0.5, 0.8), box("pplus", -0.16, -0.16, 0.66, 0.96)]
    return r + ([box("nwell", -2, -2, 0.5 + 0.5, 3)] if nw else [])
def NP3a(d): return pcomp() + [box("nplus", 0.5 + d, 0, 1.5 + d, 0.8)]
def NP3c(d): return pcomp(False) + [box("nplus", 0.5 + d, 0, 1.5 + d, 0.8)]
def NP5a(d): return nmos(m=0.3)[:-1] + [box("nplus", -d, -0.3, 0.66, 1.46)]
def NP5b(d): return [box("comp", 0, 0, 0.5, 1.0), box("nplus", -d, -0.16, 0.66, 1.16)]
def NP8a(d): return [box("nplus", 0, 0, 0.5, d)]
def PP1(d): return [box("pplus", 0, 0, d, 2.0)]
def PP2(d): return [box("pplus", 0, 0, 1.0, 2.0), box("pplus", 1.0 + d, 0, 2.0 + d, 2.0)]
def PP3a(d): return implanted([box("comp", 0, 0, 0.5, 1.0)], 0.16) + [box("pplus", 0.5 + d, 0, 1.5 + d, 1.0)]
def PP5a(d):
    r = nmos()[:-1] + [box("pplus", -d, -0.3, 0.66, 1.46), box("nwell", -2, -2, 3, 3)]
    return r
def PP5b(d): return [box("comp", 0, 0, 0.5, 1.0), box("pplus", -d, -0.16, 0.66, 1.16), box("nwell", -2, -2, 3, 3)]
def PP8a(d): return [box("pplus", 0, 0, 0.5, d)]
def CO1(d):
    c = cut("contact", 0.1, 0.1, d, d)
    return implanted([box("comp", 0, 0, 0.5, 0.6), c, around("metal1", c, 0.06, 0.06, 0.12, 0.12)])
def CO2a(d):
    c1, c2 = cut("contact", 0.07, 0.07), cut("contact", 0.07, 0.29 + d)
    top = 0.29 + d + 0.22 + 0.07
    return implanted([box("comp", 0, 0, 0.36, top), c1, c2, box("metal1", 0.01, 0.01, 0.35, top - 0.01)])
def CO3(d):  # poly pad: Poly2 d left of the contact, 0.07 elsewhere
    c = cut("contact")
    return [c, around("poly2", c, d, 0.07, 0.07, 0.07), m1pad(c)]
def CO4(d):
    c = cut("contact")
    return implanted([c, around("comp", c, d, 0.07, 0.07, 0.5), m1pad(c)])
def CO6(d):
    c = cut("contact")
    return implanted([c, around("comp", c, 0.07, 0.07, 0.07, 0.5), around("metal1", c, d, 0.06, 0.06, 0.3)])
def CO6b(d):
    c = cut("contact")
    return implanted([c, around("comp", c, 0.07, 0.07, 0.07, 0.5), around("metal1", c, 0.005, d, 0.005, 0.4)])
def CO7(d):  # drain contact d below the gate (0.44 + 0.28 + 0.44 transistor; gate y 0.44..0.72)
    c = cut("contact", 0.07, 0.44 - d - 0.22)
    return nmos() + [c, m1pad(c)]
def CO8(d):  # poly contact d left of the COMP, on a 0.36 poly line that is the gate
    c = cut("contact", -d - 0.22, 0.51)
    return implanted([box("comp", 0, 0, 0.36, 1.38), box("poly2", -d - 0.29, 0.44, 0.58, 0.80), c,
                      around("metal1", c, 0.12, 0.06, 0.12, 0.06)])
def CO11(d):  # contact on Poly2 with its left 0.07 beyond... d: Poly2 margin on the left
    return CO3(d)
def M11(d): return [box("metal1", 0, 0, d, 2.0)]
def M12a(d): return [box("metal1", 0, 0, 0.5, 2.0), box("metal1", 0.5 + d, 0, 1.0 + d, 2.0)]
def M13(d): return [box("metal1", 0, 0, 0.38, d)]
def V11(d):
    v = cut("via1", 0, 0, d, d)
    return [v, box("metal1", -0.07, -0.07, 0.34, 0.34), box("metal2", -0.07, -0.07, 0.34, 0.34)]
def V11_rect(): 
    v = cut("via1", 0, 0, 0.26, 0.3)
    return [v, box("metal1", -0.07, -0.07, 0.34, 0.38), box("metal2", -0.07, -0.07, 0.34, 0.38)]
def CO1_rect():
    c = cut("contact", 0.1, 0.1, 0.22, 0.25)
    return implanted([box("comp", 0, 0, 0.5, 0.6), c, around("metal1", c, 0.06, 0.06, 0.12, 0.12)])
def V12a(d):
    v1, v2 = cut("via1"), cut("via1", 0.0, 0.26 + d)
    top = 0.52 + d
    return [v1, v2, box("metal1", -0.07, -0.07, 0.33, top + 0.07), box("metal2", -0.07, -0.07, 0.33, top + 0.07)]
def via_in(m1, m2):
    v = cut("via1")
    return [v, around("metal1", v, *m1), around("metal2", v, *m2)]
def V13a(d): return via_in((d, 0.1, 0.07, 0.1), (0.07, 0.1, 0.07, 0.1))
def V13d(d): return via_in((0.0, d, 0.0, 0.3), (0.07, 0.1, 0.07, 0.1))
def V14a(d): return via_in((0.07, 0.1, 0.07, 0.1), (d, 0.1, 0.07, 0.1))
def V14c(d): return via_in((0.07, 0.1, 0.07, 0.1), (0.01, d, 0.01, 0.3))
# wells and taps (the macro periphery): a 0.5 x 0.8 COMP, its implant 0.16 around, an Nwell
def tap(n=True, imp=(0.16, 0.16, 0.16, 0.16)):
    l, b, r, t = imp
    return [box("comp", 0, 0, 0.5, 0.8), box("nplus" if n else "pplus", -l, -b, 0.5 + r, 0.8 + t)]
def NW1a(d): return [box("nwell", 0, 0, d, 2.0)]
def NW2a(d): return [box("nwell", 0, 0, 1.0, 2.0), box("nwell", 1.0 + d, 0, 2.0 + d, 2.0)]
def DF4c(d): return tap(False) + [box("nwell", -d, -1, 1.5, 2)]       # PMOS diffusion in Nwell
def DF4d(d): return tap() + [box("nwell", -d, -1, 1.5, 2)]            # Nwell tap
def DF17(d): return tap(False) + [box("nwell", 0.5 + d, -1, 2.0, 2)]  # substrate tap beside an Nwell
def NP5d(d): return tap(imp=(d, 0.16, 0.16, 0.16)) + [box("nwell", -1, -1, 2, 2)]
def PP3c(d): return tap() + [box("nwell", -1, -1, 3, 2), box("pplus", 0.5 + d, 0, 1.5 + d, 0.8)]
def PP5d(d): return tap(False, imp=(d, 0.16, 0.16, 0.16))
def DF14(d): return tap(False) + [box("comp", 1.0, 0, 0.5 + d, 0.8), box("nplus", 0.84, -0.16, 0.66 + d, 0.96)]
def M21(d): return [box("metal2", 0, 0, d, 2.0)]
def M22a(d): return [box("metal2", 0, 0, 0.5, 2.0), box("metal2", 0.5 + d, 0, 1.0 + d, 2.0)]
def M23(d): return [box("metal2", 0, 0, 0.38, d)]

_TABLE = {
    "DF.1a": (DF1a, None), "DF.2a": (DF2a, None), "DF.3a": (DF3a, None), "DF.6": (DF6, None),
    "DF.9": (DF9, 0.45), "DF.12": (DF12, 0.16), "DF.16": (DF16, None),
    "PL.1": (PL1, None), "PL.2": (PL2, None), "PL.3a": (PL3a, None), "PL.4": (PL4, None), "PL.5a": (PL5a, None),
    "NP.1": (NP1, None), "NP.2": (NP2, None), "NP.3a": (NP3a, None), "NP.3c": (NP3c, None), "NP.5a": (NP5a, None),
    "NP.5b": (NP5b, None), "NP.8a": (NP8a, 0.7),
    "PP.1": (PP1, None), "PP.2": (PP2, None), "PP.3a": (PP3a, None), "PP.5a": (PP5a, None), "PP.5b": (PP5b, None),
    "PP.8a": (PP8a, 0.7),
    "CO.1": (CO1, None), "CO.2a": (CO2a, None), "CO.3": (CO3, None), "CO.4": (CO4, None), "CO.6": (CO6, None),
    "CO.6b": (CO6b, None), "CO.7": (CO7, None), "CO.8": (CO8, None), "CO.11": (CO11, 0.07),
    "M1.1": (M11, None), "M1.2a": (M12a, None), "M1.3": (M13, 0.38),
    "V1.1": (V11, None), "V1.2a": (V12a, None), "V1.3a": (V13a, None), "V1.3d": (V13d, None),
    "V1.4a": (V14a, None), "V1.4c": (V14c, None),
    "M2.1": (M21, None), "M2.2a": (M22a, None), "M2.3": (M23, 0.38),
    "NW.1a": (NW1a, None), "NW.2a": (NW2a, None), "DF.4c": (DF4c, None), "DF.4d": (DF4d, None),
    "DF.14": (DF14, None), "DF.17": (DF17, None), "NP.5d": (NP5d, None), "PP.3c": (PP3c, None), "PP.5d": (PP5d, None),
}
# the d on the failing side, when it is not one grid step below the legal value
STEP_OFF = {"DF.12": (-0.005,), "CO.11": (-0.005,), "DF.14": (20.005,)}   # DF.14: a maximum
# rules that, by construction, fire together with the seeded one at one grid step (reason in the report)
EXPECT = {
    "DF.2a": {"DF.1a", "DF.2a"},      # a channel < 0.22 wide is COMP < 0.22 wide (same value at 3.3V)
    "DF.12": {"DF.12", "NP.5b"},      # Nplus edge inside the COMP: NP.5b sees the flush/short Nplus
    "V1.3a": {"V1.3a", "V1.3d"},      # value 0: the step pushes the via out, which enclosure_adjacent also flags
    "CO.11": {"CO.11", "CO.3"},       # a contact sticking out of its Poly2 pad also lacks CO.3's 0.07
}
GROSS = {  # (label, rects, expected set)
    "DF.12": [("bare COMP", [box("comp", 0, 0, 0.5, 1.0)], {"DF.12"})],
    # the NCOMP's part inside the Nwell is also a tap the Nwell does not enclose (DF.4d)
    "DF.16": [("NCOMP overlapping Nwell", DF16(-0.05), {"DF.16", "DF.4d"})],
    "DF.17": [("PCOMP overlapping Nwell", DF17(-0.05), None)],
    "DF.4d": [("Nwell tap half out of the Nwell", DF4d(-0.25), None)],
    "DF.6": [("COMP ends at the gate", nmos(drn=0.0) , None)],
    "PL.4": [("endcap 0", nmos(endr=0.0), None)],
    "CO.1": [("0.22 x 0.25 contact", CO1_rect(), {"CO.1"})],
    "V1.1": [("0.26 x 0.30 via", V11_rect(), {"V1.1"})],
    "CO.7": [("contact on the gate", CO7(-0.05), None)],
    "CO.8": [("poly contact over COMP", CO8(-0.05), None)],
    "CO.11": [("contact on field, Metal1 only", [cut("contact"), m1pad(cut("contact"))], {"CO.11"})],
    "NP.5a": [("gate without Nplus", nmos()[:-1] + [box("nplus", 0.5, 0, 1.5, 1.16)], None)],
}


def _case(name: str, draw, legal) -> Case:
    gross = tuple(Extra(label, rects, frozenset(exp) if exp is not None else None)
                  for label, rects, exp in GROSS.get(name, []))
    return Case(draw, legal=legal, off=STEP_OFF.get(name), extra=gross,
                fires=frozenset(EXPECT.get(name, {name})))


# at one grid step off, every GF180MCU case fires exactly its rule (or the set in EXPECT)
CASES = {name: _case(name, draw, legal) for name, (draw, legal) in _TABLE.items()}

"""How each PDK layer is drawn in pictures, and the KLayout layer-properties (.lyp) files made from it.

The shipped ``pdk/<name>/<name>.lyp`` files are written by this module (``python -m
weightfab.report.layerstyle`` rewrites them from each ``pdk.toml``), so that every PDK follows one
scheme:

- implants, wells, NPC, boundaries and marker layers are outlines only (no fill), so they never
  hide the devices under them;
- the devices and wires are hatched in distinct colours and directions (diffusion green, poly red,
  first routing tan, contacts white crossed boxes, metals blue and violet);
- the programming layer is solid yellow and drawn last (KLayout draws the list in order, the last
  entry on top), so each programmed site is one bright square, a 0-bit an empty site.

A layer is styled by its ROM role (``[roles]`` in pdk.toml) when it has one, else by its name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..tech.pdk import Pdk


@dataclass(frozen=True)
class Style:
    color: str      # frame and fill colour, #rrggbb
    dither: str     # KLayout pattern: I0 solid, I1 hollow (outline only), others hatched/dotted
    xfill: bool     # a cross in each box (contacts, vias)
    rank: int       # drawing order: higher is drawn later (on top)

    @property
    def outline(self) -> bool:
        return self.dither == "I1" and not self.xfill


STYLES = {
    "well":      Style("#8c8c00", "I1", False, 0),
    "marker":    Style("#707070", "I1", False, 1),
    "implant_p": Style("#e6a100", "I1", False, 2),
    "implant_n": Style("#b060ff", "I1", False, 3),
    "npc":       Style("#00a0a0", "I1", False, 4),
    "boundary":  Style("#a0a0a0", "I1", False, 5),
    "diff":      Style("#00d070", "I5", False, 10),
    "tap":       Style("#60a0a0", "I5", False, 11),
    "poly":      Style("#ff3030", "I9", False, 12),
    "li":        Style("#c8a870", "I3", False, 13),
    "contact":   Style("#e8e8e8", "I1", True, 14),
    "metal1":    Style("#4090ff", "I7", False, 15),
    "via":       Style("#ff80c0", "I1", True, 16),
    "metal2":    Style("#d080ff", "I11", False, 17),
    "metal":     Style("#80c0ff", "I11", False, 18),
    "prog":      Style("#ffff00", "I0", False, 30),
    "text":      Style("#ffffff", "I1", False, 31),
}

ROLE_STYLE = {"diff": "diff", "poly": "poly", "licon": "contact", "li": "li", "met1": "metal1",
              "nsdm": "implant_n", "npc": "npc", "boundary": "boundary"}

_NAME_RULES = [  # (regex on the lower-case layer name, style); first match wins
    (r"label|pin|text", "text"),
    (r"bndry|boundary", "boundary"),
    (r"well", "well"),
    (r"psd|pplus|pimp", "implant_p"),
    (r"nsd|nplus|nimp", "implant_n"),
    (r"npc", "npc"),
    (r"^tap", "tap"),
    (r"^(diff|comp|activ)", "diff"),
    (r"poly", "poly"),
    (r"^li", "li"),
    (r"con", "contact"),
    (r"via", "via"),
    (r"^(met|metal)1$", "metal1"),
    (r"^(met|metal)2$", "metal2"),
    (r"^(met|metal)", "metal"),
]


def layer_style(pdk: Pdk, layer: str) -> tuple[str, Style]:
    """(style name, Style) of one layer of ``pdk``."""
    if layer == pdk.programming_layer:
        return "prog", STYLES["prog"]
    for role, name in pdk.roles.items():
        if name == layer and role in ROLE_STYLE:
            key = ROLE_STYLE[role]
            return key, STYLES[key]
    low = layer.lower()
    for pattern, key in _NAME_RULES:
        if re.search(pattern, low):
            return key, STYLES[key]
    return "marker", STYLES["marker"]


ROLE_WORDS = {"diff": "diffusion", "poly": "wordline poly", "licon": "contact", "li": "drain pads, ground lines",
              "met1": "bitlines", "nsdm": "n implant", "npc": "poly contact cut", "boundary": "boundary"}


def _role_of(pdk: Pdk, layer: str) -> str:
    if layer == pdk.programming_layer:
        return "programming"
    roles = [ROLE_WORDS.get(r, r) for r, n in pdk.roles.items() if n == layer and not r.startswith("stack:")]
    return ", ".join(roles)


def styled_layers(pdk: Pdk) -> list[tuple[str, tuple[int, int], str, Style]]:
    """(layer name, (layer, datatype), display name, style) in drawing order."""
    rows = []
    for name, l in pdk.layers.items():
        key, st = layer_style(pdk, name)
        role = _role_of(pdk, name)
        label = f"{name} {l.gds[0]}/{l.gds[1]}" + (f" ({role})" if role else "")
        rows.append((name, tuple(l.gds), label, st))
    rows.sort(key=lambda r: (r[3].rank, r[1]))
    return rows


def _hidden(name: str, st: Style) -> bool:
    """Markers that say nothing about the ROM (standard-cell, thick-oxide, block markers) start hidden."""
    return st is STYLES["marker"]


def lyp_text(pdk: Pdk, extra: list[tuple[int, int]] = ()) -> str:
    """The KLayout layer-properties file for ``pdk``, as text (deterministic); ``extra`` layers (not in
    the PDK) come first, as grey outlines."""
    rows = [(f"{ln}/{dt} (not in the PDK)", (ln, dt), STYLES["marker"], True) for ln, dt in extra]
    rows += [(label, gds, st, not _hidden(name, st)) for name, gds, label, st in styled_layers(pdk)]
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f"<!-- {pdk.name}: written by weightfab.report.layerstyle from pdk.toml. List order is drawing order,",
           "     the last entry on top. Implants, wells and markers are outlines only; the programming layer",
           "     is solid yellow and drawn last, so each programmed site is one bright square. -->",
           "<layer-properties>"]
    for label, (ln, dt), st, visible in rows:
        out += ["  <properties>",
                f"    <frame-color>{st.color}</frame-color>",
                f"    <fill-color>{st.color}</fill-color>",
                "    <frame-brightness>0</frame-brightness>",
                "    <fill-brightness>0</fill-brightness>",
                f"    <dither-pattern>{st.dither}</dither-pattern>",
                "    <valid>true</valid>",
                f"    <visible>{'true' if visible else 'false'}</visible>",
                "    <transparent>false</transparent>",
                "    <width>1</width>",
                "    <marked>false</marked>",
                f"    <xfill>{'true' if st.xfill else 'false'}</xfill>",
                "    <animation>0</animation>",
                f"    <name>{label}</name>",
                f"    <source>{ln}/{dt}@1</source>",
                "  </properties>"]
    out.append("</layer-properties>")
    return "\n".join(out) + "\n"


def main() -> None:  # python -m weightfab.report.layerstyle [PDK_DIR ...]: rewrite the .lyp files
    import sys
    from ..tech.pdk import list_pdks, load_pdk
    for name in sys.argv[1:] or list_pdks():
        p = load_pdk(name)
        path = p.path / f"{p.name}.lyp"
        path.write_text(lyp_text(p), encoding="utf-8")
        print(f"{path}: {len(p.layers)} layers")


if __name__ == "__main__":
    main()

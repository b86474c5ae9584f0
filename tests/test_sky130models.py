"""The SKY130 model cards at the deck's top level (signoff/sky130models.py): primitive M devices on
them simulate as the PDK's subcircuits do, at every corner, and expand far faster."""
from __future__ import annotations

import pytest

from weightfab.errors import WeightfabError
from weightfab.signoff import spice
from weightfab.signoff.sky130models import INSTANCE, _strip_mismatch, model_cards, model_name

# an inverter of each PMOS kind into a NAND-like load: every device kind, a multiplier, drain geometry
STAGES = [("sky130_fd_pr__pfet_01v8", "sky130_fd_pr__nfet_01v8", 1), ("sky130_fd_pr__pfet_01v8_hvt", "sky130_fd_pr__nfet_01v8", 3)]


def _deck(primitive: bool) -> str:
    lines = ["Vdd vdd 0 1.8", "Vin in 0 pulse(0 1.8 100p 50p 50p 1n 2n)"]
    for k, (p, n, m) in enumerate(STAGES):
        for name, model, d, s, b, w in (("p", p, f"out{k}", "vdd", "vdd", 1.0), ("n", n, f"out{k}", "0", "0", 0.65)):
            geo = f"w={w} l=0.15 ad={w * 0.29:.4g} as={w * 0.29:.4g} pd={2 * w + 0.58:.4g} ps={2 * w + 0.58:.4g}"
            mult = f" m={m}" if m > 1 else ""
            if primitive:
                lines.append(f"M{name}{k} {d} in {s} {b} {model_name(model)} {geo} {INSTANCE}{mult}")
            else:
                lines.append(f"X{name}{k} {d} in {s} {b} {model} {geo}{mult}")
        lines.append(f"Cl{k} out{k} 0 10f")
        lines.append(f".measure tran tphl{k} trig v(in) val=0.9 rise=1 targ v(out{k}) val=0.9 fall=1")
        lines.append(f".measure tran tplh{k} trig v(in) val=0.9 fall=1 targ v(out{k}) val=0.9 rise=1")
    lines += [".measure tran q integ i(vdd) from=0 to=2.5n", ".tran 5p 2.5n"]
    return "\n".join(lines)


@pytest.mark.parametrize("corner", spice.CORNERS)
def test_primitive_devices_simulate_as_the_subcircuits(corner):
    names = ["q"] + [f"tp{e}{k}" for k in range(len(STAGES)) for e in ("hl", "lh")]
    sub = spice.run(spice.model_header(corner) + _deck(False)).measures
    full = spice.model_header(corner, primitive=True)
    sizes = {(d, w, 0.15) for p, n, _ in STAGES for d, w in ((p, 1.0), (n, 0.65))}
    few = full.replace(str(model_cards(corner)), str(model_cards(corner, sizes)))
    assert few != full and len(model_cards(corner, sizes).read_text()) < 0.1 * len(model_cards(corner).read_text())
    for header in (full, few):           # every bin, and only the bins of these sizes
        prim = spice.run(header + _deck(True)).measures
        for k in names:
            v = sub[k]
            assert prim[k] == pytest.approx(v, rel=1e-4, abs=1e-16), (corner, k, v, prim[k])


def test_cards_lose_only_the_mismatch_term():
    card = ("+ vth0 = {0.5190093+MC_MM_SWITCH*AGAUSS(0,1.0,1)*(sky130_fd_pr__nfet_01v8__vth0_slope/sqrt(l*w*mult))}"
            " lvth0 = -3.6e-09\n+ toxe = {4.148e-09+MC_MM_SWITCH*AGAUSS(0,1.0,1)*(4.148e-09*1.0*(a/sqrt(l*w*mult)))}"
            "\n+ kvth0 = {0+sky130_fd_pr__pfet_01v8__kvth0_diff}")
    assert _strip_mismatch(card) == ("+ vth0 = 0.5190093 lvth0 = -3.6e-09\n+ toxe = 4.148e-09\n"
                                     "+ kvth0 = {0+sky130_fd_pr__pfet_01v8__kvth0_diff}")
    with pytest.raises(WeightfabError, match="depends on its instance"):
        _strip_mismatch("+ u0 = {0.03*sqrt(w)}")
    text = model_cards("tt").read_text()
    assert ".subckt" not in text.lower() and "MC_MM_SWITCH*AGAUSS" not in text
    assert text.count(".model sky130_fd_pr__nfet_01v8__model.") > 50

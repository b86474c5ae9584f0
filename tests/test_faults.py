"""Fault injection, critical area, yield formulas and trims (issue 16)."""
from __future__ import annotations

import json
import math

import klayout.db as kdb
import numpy as np
import pytest

from conftest import SAMPLE, SAMPLES, run_cli
from weightfab.faults import inject as I
from weightfab.faults.critical_area import SizeDistribution, cover_area, open_area, short_area, touch_area
from weightfab.faults.yield_model import count_pmf, functional_yield, negbin_yield, poisson_yield

SAMPLE_DATA = SAMPLES / "digits_mlp.test.npz"
SAMPLE_CALIB = SAMPLES / "digits_mlp.calib.npz"


# -- injection --------------------------------------------------------------------------------
def _reference(b: np.ndarray, kind: str, ev: np.ndarray) -> np.ndarray:
    """The fault semantics written out one event and one bit at a time (slow, obvious)."""
    out = b.copy()
    nc, nr = b.shape
    if kind in ("via-open", "via-short", "flip"):
        for c, r in ev:
            out[c, r] = {"via-open": 0, "via-short": 1, "flip": 1 - b[c, r]}[kind]
    elif kind == "bitline-open":
        for c, r in ev:
            for rr in range(r, nr):
                out[c, rr] = 0
    elif kind == "wordline-open":
        for c, r in ev:
            for cc in range(c, nc):
                out[cc, r] = 0
    elif kind == "bitline-stuck":
        for c, _ in ev:
            out[c, :] = 1
    else:  # shorts: join lines into groups, every line of a group reads the OR of the group
        lines = b if kind == "bitline-short" else b.T
        n = lines.shape[0]
        joined = {int(c if kind == "bitline-short" else r) for c, r in ev}
        res = lines.copy()
        i = 0
        while i < n:
            j = i
            while j in joined:
                j += 1
            res[i:j + 1] = lines[i:j + 1].max(axis=0)
            i = j + 1
        out = res if kind == "bitline-short" else res.T.copy()
    return out


@pytest.mark.parametrize("kind", [k for k in I.KINDS])
def test_injection_is_exact(kind):
    rng = np.random.default_rng(7)
    bits = [rng.integers(0, 2, (24, 10)).astype(np.uint8), rng.integers(0, 2, (8, 6)).astype(np.uint8)]
    for rate in (0.02, 0.1):
        out, injs = I.inject_rate(bits, kind, rate, np.random.default_rng(3))
        for b, o, inj in zip(bits, out, injs):
            assert np.array_equal(o, _reference(b, kind, inj.events))
            ev = inj.events
            if kind == "via-open":       # exactly the drawn programmed sites turn 0
                assert np.all(b[ev[:, 0], ev[:, 1]] == 1)
                assert set(map(tuple, np.argwhere(o != b))) == set(map(tuple, ev))
            if kind == "via-short":
                assert np.all(b[ev[:, 0], ev[:, 1]] == 0)
                assert set(map(tuple, np.argwhere(o != b))) == set(map(tuple, ev))
            if kind in ("via-open", "bitline-open", "wordline-open"):
                assert np.all(o <= b)    # opens only ever lose programmed bits
            if kind in ("via-short", "bitline-short", "wordline-short", "bitline-stuck"):
                assert np.all(o >= b)
    assert any(len(i.events) for i in injs)


def test_bitline_open_beyond_break_only():
    b = np.ones((3, 8), np.uint8)
    o = I.apply(b, I.Injection("bitline-open", np.array([[1, 5], [1, 6]])))
    assert o[1].tolist() == [1, 1, 1, 1, 1, 0, 0, 0] and o[0].all() and o[2].all()   # sensed at row 0
    o = I.apply(b, I.Injection("wordline-open", np.array([[2, 3]])))
    assert o[:, 3].tolist() == [1, 1, 0] and o.sum() == b.sum() - 1                       # driven from column 0


def test_inject_count_and_determinism():
    rng = np.random.default_rng(0)
    bits = [rng.integers(0, 2, (40, 20)).astype(np.uint8) for _ in range(3)]
    for kind in I.KINDS:
        a, ia = I.inject_count(bits, kind, 17, np.random.default_rng(5))
        b, ib = I.inject_count(bits, kind, 17, np.random.default_rng(5))
        assert sum(len(i.events) for i in ia) == 17
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(Exception, match="unknown fault kind"):
        I.check_kinds(["via-opne"])


# -- critical area ----------------------------------------------------------------------------
L, W, D = 200_000, 200, 300          # dbu (1 nm): two lines 200 µm long, 0.2 µm wide, 0.3 µm apart


def _two_lines() -> kdb.Region:
    r = kdb.Region()
    r.insert(kdb.Box(0, 0, L, W))
    r.insert(kdb.Box(0, W + D, L, 2 * W + D))
    return r


def test_critical_area_two_parallel_lines_per_size():
    r = _two_lines()
    for s in (100, 300, 400, 650, 1000, 3000):
        assert short_area(r, s) == (L + s) * max(0, s - D)          # square defects, ends included
    for s in (100, 200, 350, 600):                                   # below the size where the bands join
        assert open_area(r, s) == 2 * L * max(0, s - W)
    assert cover_area(kdb.Region(kdb.Box(0, 0, 170, 170)), 300) == 130 ** 2
    assert touch_area(kdb.Region(kdb.Box(0, 0, 170, 170)), 100) == 270 ** 2


def test_critical_area_integral_matches_closed_form():
    x0, smax = 0.15, 3.0                      # µm
    dist = SizeDistribution(x0, smax)
    sizes = dist.grid(200)
    r = _two_lines()
    ca = np.array([short_area(r, int(round(s * 1000 / 2)) * 2) for s in sizes]) * 1e-6   # µm²
    Lu, d = L / 1000, D / 1000
    # integral over d < s < smax of (L + s)(s - d) x0^2 / s^3 ds (d >= x0)
    exact = x0 ** 2 * (Lu * (1 / d - 1 / smax) - Lu * d / 2 * (1 / d ** 2 - 1 / smax ** 2)
                       + math.log(smax / d) - d * (1 / d - 1 / smax))
    assert dist.mean(sizes, ca) == pytest.approx(exact, rel=0.01)
    # with a far size cut-off, the textbook long-line result L x0^2 / (2 d)
    far = SizeDistribution(x0, 30.0)
    sz = far.grid(200)
    ca = np.array([short_area(r, int(round(s * 1000 / 2)) * 2) for s in sz]) * 1e-6
    assert far.mean(sz, ca) == pytest.approx(Lu * x0 ** 2 / (2 * d), rel=0.03)
    # the distribution integrates to 1 (up to the mass beyond s_max)
    assert dist.mean(sizes, np.ones_like(sizes)) == pytest.approx(1 - x0 ** 2 / (2 * smax ** 2), rel=2e-3)


# -- yield formulas ---------------------------------------------------------------------------
def test_yield_formulas_at_known_points():
    assert poisson_yield(1.0) == pytest.approx(math.exp(-1))
    assert negbin_yield(1.0, 1.0) == pytest.approx(0.5)
    assert negbin_yield(2.0, 2.0) == pytest.approx(0.25)
    assert negbin_yield(0.5, 1e7) == pytest.approx(math.exp(-0.5), rel=1e-6)
    p = count_pmf(60, 2.0)
    assert p[0] == pytest.approx(math.exp(-2)) and p[3] == pytest.approx(math.exp(-2) * 8 / 6)
    assert p.sum() == pytest.approx(1.0)
    q = count_pmf(400, 2.0, alpha=1.0)        # alpha = 1: geometric, P(n) = (1/3)(2/3)^n
    assert q[0] == pytest.approx(1 / 3) and q[4] == pytest.approx((1 / 3) * (2 / 3) ** 4)
    assert q.sum() == pytest.approx(1.0)
    # functional yield: every fault kills -> zero-defect yield; no fault matters -> 1 (minus the tail)
    ns = [1, 2, 4, 8, 16, 32]
    fy, tail = functional_yield(0.7, ns, [0.0] * 6, 1.0)
    assert fy == pytest.approx(poisson_yield(0.7))
    fy, tail = functional_yield(0.7, ns, [1.0] * 6, 1.0, alpha=2.0)
    assert fy + tail == pytest.approx(1.0) and tail < 1e-6
    fy, _ = functional_yield(0.7, [1, 2], [0.5, 0.0], 1.0)     # exact sum with the pass curve
    assert fy == pytest.approx(math.exp(-0.7) * (1 + 0.7 * 0.5))


# -- on a compiled chip -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def chip_gds(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "digits.gds"
    r = run_cli("compile", SAMPLE, "-o", out, "--no-drc")
    assert r.returncode == 0, r.stderr
    return out


def test_layout_critical_area_per_site(chip_gds):
    """On the drawn array: a bitline open of size s is the band (s - w) along the half-island pitch
    of every site; the via-open area per via is (s - v)²."""
    from weightfab.faults.critical_area import engine_curves
    from weightfab.rom.geometry import RomGeometry
    from weightfab.signoff.drc import read_layout
    from weightfab.signoff.readback import find_arrays
    from weightfab.tech.pdk import load_pdk

    pdk = load_pdk("sky130")
    g = RomGeometry.from_pdk(pdk)
    layout, top = read_layout(chip_gds)
    a = find_arrays(layout, top, pdk, chip_gds)[0]
    s = np.array([300, 400])
    curves, sites, vias = engine_curves(layout, top, pdk, a, s)
    w = g.d.met1_bitline_width if g.stack is None else g.stack.bitline
    v = g.prog_box(0, 0)[2] * 2
    assert curves["bitline-open"] == pytest.approx((a.py / 2) * (s - w))
    assert vias > 0 and curves["via-open"] == pytest.approx((s - v) ** 2)
    assert curves["bitline-short"][0] == 0       # 0.3 µm < the bitline spacing


def test_trims_never_lower_accuracy_on_fitted_data(chip_gds):
    from weightfab.faults.chip import accuracy, load_chip
    from weightfab.faults.trims import apply_trims, fit_candidate, fit_trims, zero_trims
    from weightfab.quant.quantize import run_integer
    from dataclasses import replace

    from weightfab.cli.faults import load_inputs

    net, x, y, cx = load_inputs(SAMPLE, SAMPLE_DATA, SAMPLE_CALIB, 1.0, 0.0)
    chip = load_chip(chip_gds, SAMPLE, net, calib_x=cx)
    ref = chip.qnet
    # zero trims change nothing; a known bias error is undone exactly by the fitted bias trim
    assert np.array_equal(run_integer(apply_trims(ref, zero_trims(ref, 16, 8)), x), run_integer(ref, x))
    shifted = replace(ref, layers=(replace(ref.layers[0], bias=ref.layers[0].bias + 37), *ref.layers[1:]))
    trims = fit_candidate(ref, shifted, x, False, 16, 0)
    assert np.all(trims.bias[0] == -37) and not any(b.any() for b in trims.bias[1:])
    assert np.array_equal(run_integer(apply_trims(shifted, trims), x), run_integer(ref, x))
    for seed in range(4):
        for kind, rate in (("via-open", 0.01), ("flip", 0.005), ("bitline-open", 0.001)):
            bits, _ = I.inject_rate(chip.bits, kind, rate, np.random.default_rng(seed))
            faulty = ref.with_weights(chip.weights(bits))
            trims, fit = fit_trims(ref, faulty, x, y, 16, 8)
            before = accuracy(run_integer(faulty, x), y)
            after = accuracy(run_integer(apply_trims(faulty, trims), x), y)
            assert after >= before
            assert fit["calibration_accuracy"]["none"] == pytest.approx(before)


@pytest.mark.slow
def test_faults_and_calibrate_cli(chip_gds, tmp_path):
    args = ["faults", chip_gds, "--model", SAMPLE, "--data", SAMPLE_DATA, "--calib", SAMPLE_CALIB, "--trials", "3",
            "--rate", "1e-3,1e-2", "--yield-trials", "3", "--die-mm2", "100", "--s-max", "1.5", "--die", "via-open:0.01",
            "--found-out", tmp_path / "found.json"]
    r1 = run_cli(*args, "--report", tmp_path / "a.json")
    assert r1.returncode == 0, r1.stderr
    r2 = run_cli(*args, "--report", tmp_path / "b.json")
    a, b = json.loads((tmp_path / "a.json").read_text()), json.loads((tmp_path / "b.json").read_text())
    a.pop("die"), b.pop("die")
    assert a == b                                            # deterministic per seed
    assert {r["kind"] for r in a["sweep"]["table"]} == set(I.DEFAULT_KINDS)
    assert [r["label"] for r in a["sensitivity"]["per_bit"]][-1] == "sign"
    yt = a["yield"]["table"]
    assert all(r["functional_poisson"] >= r["zero_defect_poisson"] - 1e-12 for r in yt)
    assert "faulty weight bits" in r1.stdout
    r = run_cli("calibrate", "--faults", tmp_path / "found.json", "--data", SAMPLE_DATA,
                "--heldout", SAMPLE_DATA, "--report", tmp_path / "cal.json")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "cal.json").read_text())
    assert rep["trim_registers"]["modelled_not_drawn"] is True
    assert rep["calibration_accuracy"]["trimmed"] >= rep["calibration_accuracy"]["faulty"]
    assert "modelled, not drawn" in r.stdout
    bad = run_cli("faults", chip_gds, "--model", SAMPLE, "--data", SAMPLE_DATA, "--kinds", "via-opne")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "unknown fault kind" in bad.stderr


# -- selective protection ---------------------------------------------------------------------
@pytest.mark.slow
def test_protect_layout_is_drc_clean_read_back_and_checked(tmp_path):
    from weightfab.cli.faults import load_inputs
    from weightfab.faults.chip import load_chip
    from weightfab.faults.protect import high_bits

    out = tmp_path / "p.gds"
    r = run_cli("compile", SAMPLE, "-o", out, "--protect", "msb:2")
    assert r.returncode == 0, r.stderr
    assert "DRC: clean" in r.stdout and "verified: 27200 of 27200 bits match" in r.stdout   # 21760 + 2/8 of them
    assert "fc1/protect" in r.stdout
    net, x, y, cx = load_inputs(SAMPLE, SAMPLE_DATA, SAMPLE_CALIB, 1.0, 0.0)
    chip = load_chip(out, SAMPLE, net, calib_x=cx)
    assert chip.protect == 2 and len(chip.bits) == 6 and chip.differing_bits == 0
    w = chip.weights()[0]
    assert np.array_equal(high_bits(w, 8, 2), (w.astype(np.int16) >> 6))
    # channel 0, input i: a weight with a non-zero value; flip its sign bit (column 7), its LSB (column 0),
    # and the shadow copy of the sign of another weight
    i, j = np.flatnonzero(w[0])[:2]
    bits = [b.copy() for b in chip.bits]
    bits[0][7, i] ^= 1
    bits[0][0, j] ^= 1
    k = np.flatnonzero(w[1])[0]
    bits[3][1 * 2 + 1, k] ^= 1          # shadow of layer 0: channel 1, copy bit 1 (the sign)
    got = chip.weights(bits)[0]
    assert got[0, i] == 0                               # sign fault detected: the word drops out
    assert got[0, j] == w[0, j] ^ 1                     # a low bit is not protected: the fault passes
    assert got[1, k] == 0                               # a fault on the copy is detected too
    changed = np.argwhere(got != w)
    assert {tuple(c) for c in changed} <= {(0, i), (0, j), (1, k)}
    # verify finds the shadow arrays on the layout by itself, and checks --protect when given
    r = run_cli("verify", out, "--model", SAMPLE, "--data", SAMPLE_DATA)
    assert r.returncode == 0, r.stderr
    assert "verified: 27200 of 27200 bits match" in r.stdout and "msb:2 shadow arrays" in r.stdout
    assert "chip == quantized reference on every input: True" in r.stdout
    r = run_cli("verify", out, "--model", SAMPLE, "--protect", "msb:1")
    assert r.returncode == 1 and "holds msb:2 shadow arrays, not the --protect msb:1 given" in r.stderr, r.stderr
    # the faults command finds the protection on the layout by itself
    r = run_cli("faults", out, "--model", SAMPLE, "--data", SAMPLE_DATA, "--trials", "2", "--rate", "1e-2",
                "--kinds", "via-open", "--no-sensitivity", "--no-yield", "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["protect"] == "msb:2"


def test_wilson_lower_bound():
    from weightfab.faults.yield_model import wilson_low
    assert wilson_low(1.0, 20) == pytest.approx(0.8389, abs=1e-3)     # 20 of 20 dies passed
    assert wilson_low(0.5, 100) == pytest.approx(0.4038, abs=1e-3)
    assert wilson_low(0.0, 10) == 0.0

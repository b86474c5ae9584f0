"""Readback from geometry alone: every bit recovered, every single-shape edit caught and named."""
from __future__ import annotations

import gdstk
import numpy as np
import pytest

import weightfab
from conftest import MODELS, SAMPLE, SAMPLES, mlp_model, run_cli
from weightfab.mapping.dedup import to_bits
from weightfab.errors import LayoutReadError
from weightfab.tech.pdk import load_pdk
from weightfab.signoff.readback import read_bits
from weightfab.flow.verify import verify

PDK = load_pdk("sky130")
UM = PDK.dbu_um
PROG = PDK.role_gds("mcon")


@pytest.fixture(scope="module")
def chip(tmp_path_factory):
    out = tmp_path_factory.mktemp("rb") / "chip.gds"
    res = weightfab.compile(SAMPLE, out, drc=False, verify=False)
    return out, res


from weightfab.signoff.tiecols import col_x  # noqa: E402


def site(array, layer_bits, ch, w, t):
    """Centre (µm) of the programming site of channel ch, weight w, bit t."""
    x = col_x(array, int(ch * layer_bits + t))     # a strapped array's tie columns (tiecols.py)
    y = array.y0 + (w // 2) * array.py + array.drains[w % 2]
    return x * UM, y * UM


def flat_copy(src, dst):
    lib = gdstk.read_gds(str(src))
    top = lib.top_level()[0]
    top.flatten()
    for c in [c for c in lib.cells if c is not top]:
        lib.remove(c)
    lib.write_gds(str(dst))
    return lib, top


def find_prog(top, x, y):
    for p in top.polygons:
        if (p.layer, p.datatype) == PROG:
            (x0, y0), (x1, y1) = p.bounding_box()
            if abs((x0 + x1) / 2 - x) < 1e-4 and abs((y0 + y1) / 2 - y) < 1e-4:
                return p
    return None


def expected_bits(res, layer):
    return to_bits(res.qnet.layers[layer].weight, res.qnet.layers[layer].bits)  # [N, M, bits]


def test_every_bit_reads_back(chip):
    path, res = chip
    run = verify(path, SAMPLE)
    v = run.readback
    assert v.ok and v.total_bits == v.matched == 21760 and run.weights == "int8"
    for got, layer in zip(v.weights, res.qnet.layers):
        assert np.array_equal(got, layer.weight)


def test_chip_simulation_equals_reference_exactly_on_the_sample_data(chip):
    path, _ = chip
    run = verify(path, SAMPLE, data=SAMPLES / "digits_mlp.test.npz")
    a = run.accuracy
    assert a["chip_equals_reference"] is True
    assert a["chip"] == a["quantized"] and abs(a["onnxruntime"] - a["float"]) < 1e-9


def pick(res, layer, value, rng_seed=0, need_zero_right=False):
    bits = expected_bits(res, layer)
    n, m, b = bits.shape
    cand = np.argwhere(bits == value)
    if need_zero_right:
        cand = [c for c in cand if c[2] + 1 < b and bits[c[0], c[1], c[2] + 1] == 0]
    return tuple(int(v) for v in cand[np.random.default_rng(rng_seed).integers(len(cand))])


@pytest.mark.parametrize("layer", [0, 2])
def test_removed_shape_is_named(chip, tmp_path, layer):
    path, res = chip
    arrays, *_ = read_bits(path, PDK)
    ch, w, t = pick(res, layer, 1)
    lib, top = flat_copy(path, tmp_path / "f.gds")
    x, y = site(arrays[layer], res.qnet.layers[layer].bits, ch, w, t)
    poly = find_prog(top, x, y)
    assert poly is not None
    top.remove(poly)
    lib.write_gds(str(tmp_path / "m.gds"))
    v = verify(tmp_path / "m.gds", SAMPLE).readback
    assert [(m.layer, m.channel, m.weight, m.bit, m.kind) for m in v.mismatches] == [(layer, ch, w, t, "missing")]
    assert abs(v.mismatches[0].x_um - x) < 1e-6 and abs(v.mismatches[0].y_um - y) < 1e-6
    r = run_cli("verify", tmp_path / "m.gds", "--model", SAMPLE)
    assert r.returncode == 3 and f"channel {ch} weight {w} bit {t}" in r.stdout


def test_added_shape_is_named(chip, tmp_path):
    path, res = chip
    arrays, *_ = read_bits(path, PDK)
    ch, w, t = pick(res, 1, 0)
    x, y = site(arrays[1], 8, ch, w, t)
    lib = gdstk.read_gds(str(path))
    top = lib.top_level()[0]
    h = PDK.bitcell["via"] / 2
    top.add(gdstk.rectangle((x - h, y - h), (x + h, y + h), layer=PROG[0], datatype=PROG[1]))
    lib.write_gds(str(tmp_path / "m.gds"))
    v = verify(tmp_path / "m.gds", SAMPLE).readback
    assert [(m.layer, m.channel, m.weight, m.bit, m.kind) for m in v.mismatches] == [(1, ch, w, t, "extra")]


def test_shape_moved_by_one_pitch_is_named_twice(chip, tmp_path):
    path, res = chip
    arrays, *_ = read_bits(path, PDK)
    ch, w, t = pick(res, 0, 1, need_zero_right=True)
    lib, top = flat_copy(path, tmp_path / "f.gds")
    x, y = site(arrays[0], 8, ch, w, t)
    find_prog(top, x, y).translate(arrays[0].px * UM, 0)
    lib.write_gds(str(tmp_path / "m.gds"))
    v = verify(tmp_path / "m.gds", SAMPLE).readback
    got = sorted((m.layer, m.channel, m.weight, m.bit, m.kind) for m in v.mismatches)
    assert got == sorted([(0, ch, w, t, "missing"), (0, ch, w, t + 1, "extra")])


def test_off_site_shape_is_stray(chip, tmp_path):
    path, res = chip
    a = read_bits(path, PDK)[0][0]
    x, y = (a.x0 + a.px // 2) * PDK.dbu_um, (a.y0 + a.py) * PDK.dbu_um   # inside the array, between columns
    lib = gdstk.read_gds(str(path))
    top = lib.top_level()[0]
    top.add(gdstk.rectangle((x, y), (x + 0.17, y + 0.17), layer=PROG[0], datatype=PROG[1]))
    lib.write_gds(str(tmp_path / "m.gds"))
    v = verify(tmp_path / "m.gds", SAMPLE).readback
    assert [m.kind for m in v.mismatches] == ["stray"]


def test_not_a_weightfab_layout(tmp_path):
    lib = gdstk.Library()
    lib.new_cell("TOP").add(gdstk.rectangle((0, 0), (5, 5), layer=1))
    lib.write_gds(str(tmp_path / "other.gds"))
    with pytest.raises(LayoutReadError, match="not a weightfab layout"):
        verify(tmp_path / "other.gds", SAMPLE, weights="int8")
    (tmp_path / "junk.gds").write_bytes(b"not a layout at all")
    r = run_cli("verify", tmp_path / "junk.gds", "--model", SAMPLE)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_layout_of_another_model_shape(chip, tmp_path):
    path, _ = chip
    other = mlp_model(tmp_path / "other.onnx", (64, 20, 10))
    r = run_cli("verify", path, "--model", other, "--weights", "int8")
    assert r.returncode == 1 and ("another model shape" in r.stderr or "arrays" in r.stderr), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_keras_mlp_accuracy_int8_int4_int2(tmp_path, mnist, capsys):
    """Shared MNIST test set (10,000 images): chip (read back) vs onnxruntime float."""
    calib, test = mnist
    model = MODELS / "mnist_mlp_keras2onnx.onnx"
    figures = {}
    for weights in ("int8", "int4", "int2"):
        out = tmp_path / f"k_{weights}.oas"
        weightfab.compile(model, out, weights=weights, calib=calib, drc=False, verify=False)
        run = verify(out, model, weights=weights, calib=calib, data=test)
        assert run.readback.ok
        a = run.accuracy
        assert a["chip_equals_reference"] is True
        figures[weights] = a
    assert abs(figures["int8"]["onnxruntime"] - 0.9804) < 1e-4
    assert figures["int8"]["chip"] >= figures["int8"]["onnxruntime"] - 0.005
    with capsys.disabled():
        for k, a in figures.items():
            print(f"\nkeras MLP {k}: onnxruntime {a['onnxruntime']:.4f} quantized {a['quantized']:.4f} chip {a['chip']:.4f}")


def test_verify_electrical_option(chip):
    path, _ = chip
    r = run_cli("verify", path, "--model", SAMPLE, "--electrical")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith("electrical:")]
    assert len(lines) == 3 and all("errors" not in l for l in lines)
    assert "674/674 ones on their bitline, 606/606 zeros floating" in lines[2]


def test_every_mismatch_is_counted_and_the_list_is_capped(chip):
    """More than MAX_LISTED bits differ in one layer: all are counted, only the list is capped."""
    from weightfab.signoff.readback import MAX_LISTED, verify_layout
    path, res = chip
    moved = [np.clip(l.weight.astype(np.int64) + 1, -128, 127).astype(l.weight.dtype) if i == 0 else l.weight
             for i, l in enumerate(res.qnet.layers)]
    other = res.qnet.with_weights(moved)
    expect = int(sum(np.count_nonzero(to_bits(a.weight, a.bits) != to_bits(b.weight, b.bits))
                     for a, b in zip(res.qnet.layers, other.layers)))
    assert expect > MAX_LISTED
    v = verify_layout(path, other, PDK)
    assert v.mismatch_count == expect == v.total_bits - v.matched and not v.ok
    assert len(v.mismatches) == MAX_LISTED and v.capped
    s = v.summary()
    assert s["mismatch_count"] == s["bits_differ"] == expect and s["mismatches_listed"] == 100


def test_structural_and_geometric_readback_agree(chip, tmp_path):
    """The fast path (the file's regular arrays, read with gdstk) and the geometric path (KLayout,
    diffusion and implant measured) find the same arrays and the same programming shapes."""
    from weightfab.signoff import readback as rb
    from weightfab.signoff.drc import read_layout
    path, _ = chip
    st = rb._structure(path, PDK)
    fast = rb.structural_arrays(st, PDK)
    layout, top = read_layout(path)
    slow = rb.find_arrays(layout, top, PDK, path)
    assert fast == slow and len(fast) == 3
    prog = layout.find_layer(*PROG)
    a, b = rb.flat_centres(layout, top, prog), st.flat_centres(PROG)
    # fc1 is strapped: its tie cells (arrays of one island's tie) hold mcon the structure does not
    # flatten (fixed geometry, as the bit pair's); the geometric path's are taken out as readback does
    from weightfab.signoff.taprows import island_slots
    from weightfab.signoff.tiecols import drop_ties
    a = drop_ties(a, fast, rb._tie_ys(PDK, "mcon"), island_slots)
    assert np.array_equal(a[np.lexsort(a.T)], b[np.lexsort(b.T)])
    _, bits_fast, _, n_fast, _ = rb._read_bits(path, PDK)
    _, bits_slow, _, _ = rb.read_bits(tmp_path / "f.gds" if flat_copy(path, tmp_path / "f.gds") else None, PDK)
    assert n_fast == 0 and all(np.array_equal(x, y) for x, y in zip(bits_fast, bits_slow))

"""weightfab render (KLayout's renderer, headless), the layer styles, the reuse map and the plots."""
from __future__ import annotations


import numpy as np
import pytest

import weightfab
from conftest import SAMPLE, cli, run_cli
from weightfab.mapping.dedup import to_bits
from weightfab.report.layerstyle import STYLES, lyp_text, styled_layers
from weightfab.report.plots import png_bytes, tradeoff_figure
from weightfab.report.reuse import block_counts
from weightfab.tech.pdk import list_pdks, load_pdk


def read_png(path):
    import matplotlib.image as mpimg
    return (mpimg.imread(path)[..., :3] * 255).round().astype(int)


def is_yellow(rgb):
    return (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 80)


@pytest.fixture(scope="module")
def chip(tmp_path_factory):
    d = tmp_path_factory.mktemp("render")
    res = weightfab.compile(SAMPLE, d / "chip.gds", weights="int4", drc=False)
    assert res.verify.ok
    return d, res


def test_whole_die_at_its_aspect_ratio(chip):
    d, res = chip
    r = run_cli("render", d / "chip.gds", "-o", d / "die.png", "--width", "1200")
    assert r.returncode == 0, r.stderr
    die = res.report()["die"]
    px = read_png(d / "die.png")
    h, w = px.shape[:2]
    assert w == 1200 and abs((h - 4) - (w - 4) * die["height_um"] / die["width_um"]) < 1  # die + 2 px margins
    # the die boundary outline is drawn two pixels inside each edge of the picture
    lit = px.sum(axis=2) > 60
    for edge in (lit[:, :4].any(axis=1), lit[:, -4:].any(axis=1), lit[:4].any(axis=0), lit[-4:].any(axis=0)):
        assert edge.mean() > 0.95
    assert not lit[:, :1].any() and not lit[:1].any()
    # each array is drawn where the floorplan put it, and the space between engines (the top cell's
    # child cells: arrays, or macros with their periphery) is empty
    import klayout.db as kdb
    scale = (w - 4) / die["width_um"]
    dbu = res.pdk.dbu_um
    for a in res.verify.arrays:
        x0, y0, x1, y1 = (round(2 + v * dbu * scale) for v in a.bbox)
        assert lit[h - y1 + 2:h - y0 - 2, x0 + 2:x1 - 2].mean() > 0.9
    ly = kdb.Layout()
    ly.read(str(d / "chip.gds"))
    cells = sorted((b.left, b.bottom, b.right, b.top) for b in (i.dbbox() for i in ly.top_cell().each_inst()))
    assert len(cells) >= len(res.verify.arrays)
    for (_, b0, a1, b1), (n0, c0, _, c1) in zip(cells, cells[1:]):
        g0, g1 = round(2 + a1 * scale), round(2 + n0 * scale)
        top, bottom = h - round(2 + max(b1, c1) * scale), h - round(2 + min(b0, c0) * scale)
        third = (g1 - g0) // 3
        assert third > 2 and not lit[top:bottom, g0 + third:g1 - third].any()


def site_pixels(a, dbu, window, size, cols, rows):
    """Pixel (row, column) of the centre of every bit site (column c, wordline m)."""
    x0, y0, x1, y1 = window
    w, h = size
    c, m = np.meshgrid(np.arange(cols), np.arange(rows), indexing="ij")
    x = (a.x0 + c * a.px) * dbu
    y = (a.y0 + (m // 2) * a.py + np.where(m % 2, a.drains[1], a.drains[0])) * dbu
    return np.round((y1 - y) / (y1 - y0) * h - 0.5).astype(int), np.round((x - x0) / (x1 - x0) * w - 0.5).astype(int)


@pytest.mark.parametrize("layers", [None, "mcon"])
def test_programmed_sites_are_distinct_pixels_in_the_zoom(chip, layers):
    d, res = chip
    a, dbu = res.verify.arrays[0], res.pdk.dbu_um
    cols, rows = 16, 8
    window = ((a.x0 - a.px) * dbu, (a.y0 - a.py // 4) * dbu, (a.x0 + cols * a.px) * dbu, (a.y0 + rows // 2 * a.py) * dbu)
    out = d / f"zoom_{layers}.png"
    args = ["--layers", layers] if layers else []
    r = run_cli("render", d / "chip.gds", "-o", out, "--window", ",".join(f"{v:.3f}" for v in window), "--width", "900",
                "--no-ruler", *args)
    assert r.returncode == 0, r.stderr
    px = read_png(out)
    h, w = px.shape[:2]
    layer = res.qnet.layers[0]
    # column n·bits + t is bit t of output channel n; wordline m is input m
    expect = to_bits(layer.weight, layer.bits).transpose(0, 2, 1).reshape(-1, layer.shape[1])[:cols, :rows]
    pr, pc = site_pixels(a, dbu, window, (w, h), cols, rows)
    yellow = is_yellow(px)
    seen = np.array([[yellow[r - 1:r + 2, c - 1:c + 2].all() for r, c in zip(rr, cc)] for rr, cc in zip(pr, pc)])
    assert expect.any() and not expect.all()
    assert np.array_equal(seen, expect.astype(bool))
    if layers == "mcon":  # only the programming layer: yellow squares on black, nothing else
        other = ~yellow & (px.sum(axis=2) > 60)
        assert other.mean() < 0.01


def test_render_bad_input_is_one_line(chip, tmp_path):
    d, _ = chip
    for args, message in [(("--window", "1,2,0,4"), "--window '1,2,0,4'"), (("--layers", "diff,nope"), "unknown layer 'nope'"),
                          (("--width", "5"), "each side must be 16 to")]:
        code, _, err = cli("render", d / "chip.gds", "-o", tmp_path / "x.png", *args)
        assert code == 1 and message in err and len(err.splitlines()) == 1, err
    (tmp_path / "bad.gds").write_bytes(b"not a layout")
    code, _, err = cli("render", tmp_path / "bad.gds", "-o", tmp_path / "x.png")
    assert code == 1 and "not a readable GDSII/OASIS layout" in err
    code, _, err = cli("render", d / "chip.gds", "-o", tmp_path / "x.jpg")
    assert code == 1 and "must end in .png" in err


@pytest.mark.parametrize("name", list_pdks())
def test_shipped_layer_properties_follow_the_scheme(name):
    p = load_pdk(name)
    assert p.lyp.read_text(encoding="utf-8") == lyp_text(p), \
        f"{p.lyp} is out of date: python -m weightfab.report.layerstyle rewrites it from pdk.toml"
    rows = styled_layers(p)
    # the programming layer is drawn over every device and wire layer; only pin and label outlines follow it
    last = [r[0] for r in rows].index(p.programming_layer)
    assert rows[last][3] is STYLES["prog"] and all(r[3] is STYLES["text"] for r in rows[last + 1:])
    for layer, _, _, st in rows:
        if layer in (p.roles.get("nsdm"), p.roles.get("npc"), p.roles.get("boundary")) or "well" in layer:
            assert st.outline, f"{name}: {layer} would hide the devices under it"


def test_block_reuse_counts():
    rng = np.random.default_rng(1)
    outputs, nb, k, j = 3, 2, 4, 5
    blocks = rng.integers(0, 2, (j, outputs, nb, k)).astype(np.uint8)
    blocks[1, 2] = blocks[0, 0]          # a repeat
    blocks[4, 1] = blocks[0, 0]          # and another
    blocks[3, 0] = 0                     # an all-zero block: no cell
    bits = blocks.transpose(1, 2, 0, 3).reshape(outputs * nb, j * k)
    counts = block_counts(bits, outputs, nb, k)
    assert counts.shape == (j, outputs)
    assert counts[0, 0] == counts[1, 2] == counts[4, 1] == 3 and counts[3, 0] == 0
    assert np.count_nonzero(counts == 1) == j * outputs - 4


def test_tradeoff_plot_of_nothing_merging_is_one_labelled_point():
    rows = [{"level": t, "total": 680, "accuracy": 0.98, "unique": [512, 128, 40]} for t in range(5)]
    fig = tradeoff_figure(rows)
    ax = fig.axes[0]
    assert "no merge level changes anything" in ax.get_title()
    assert [t.get_text() for t in ax.texts] == ["tol 0-4"]
    assert png_bytes(fig).startswith(b"\x89PNG")
    rows = [{"level": 0, "total": 671, "accuracy": 0.98}, {"level": 1, "total": 328, "accuracy": 0.976},
            {"level": 2, "total": 140, "accuracy": 0.932}, {"level": 3, "total": 140, "accuracy": 0.932}]
    ax = tradeoff_figure(rows).axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["tol 0", "tol 1", "tol 2,3"]


def test_inspect_plot_when_nothing_merges(tmp_path):
    """int8 blocks of the sample never merge at tolerances 0-4: one labelled point, said in the title."""
    from conftest import SAMPLES
    out = tmp_path / "curve.png"
    r = run_cli("inspect", SAMPLE, "--data", SAMPLES / "digits_mlp.test.npz", "--levels", "0,2,4", "--plot", out)
    assert r.returncode == 0, r.stderr
    totals = {line.split()[1] for line in r.stdout.splitlines()[2:5]}
    assert totals == {"680"}
    assert read_png(out).shape[1] > 400

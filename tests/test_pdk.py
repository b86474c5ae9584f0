"""The PDK as validated data: every malformed file names the file and the key."""
from __future__ import annotations

import shutil

import pytest

from weightfab.errors import PdkError
from weightfab.tech.pdk import BUILTIN_DIR, list_pdks, load_pdk
from weightfab.rom.geometry import RomGeometry

SRC = BUILTIN_DIR / "sky130" / "pdk.toml"


def test_sky130_loads_with_published_numbers():
    p = load_pdk("sky130")
    assert "sky130" in list_pdks()
    assert p.gds("diff") == (65, 20) and p.gds("poly") == (66, 20) and p.gds("mcon") == (67, 44)
    assert p.gds("met1") == (68, 20) and p.gds("boundary") == (235, 4)
    rules = {r.name: r for r in p.rules}
    assert rules["poly.1a"].value == 0.15 and rules["ct.2"].value == 0.19 and rules["li.6"].value == 0.0561
    assert all(r.source for r in p.rules) and p.programming_layer == "mcon"
    g = RomGeometry.from_pdk(p)
    assert (g.px, g.py) == (690, 1420)  # dbu: 0.69 µm columns, 0.71 µm per bit row


def variant(tmp_path, old, new):
    d = tmp_path / "pdk"
    d.mkdir()
    text = SRC.read_text()
    assert old in text
    (d / "pdk.toml").write_text(text.replace(old, new, 1))
    return d


@pytest.mark.parametrize("old, new, message", [
    ('grid_um = 0.005', 'grid_um = 0.005\nfoundry = "x"', "unknown key 'foundry'"),
    ('name = "difftap.1"\nkind = "width"', 'name = "difftap.1"\nkind = "widht"', "unknown kind 'widht'"),
    ('layer = "diff"\nvalue = 0.15', 'layer = "dif"\nvalue = 0.15', "unknown layer 'dif'"),
    ('value = 0.15\nsource = "periphery-rules.rst difftap.1', 'value = -1\nsource = "periphery-rules.rst difftap.1', "non-negative"),
    ('diff       = { gds = [65, 20]', 'diff       = { gds = [65]', "[layer, datatype]"),
    ('diff_width = 0.42', 'diff_width = 0.423', "off the 0.005 µm grid"),
    ('npc        = { gds = [95, 20], source = "layers.rst: npc.drawing 95/20" }\n', '', "[roles].npc: unknown layer 'npc'"),
    ('li = "li"\n', '', "[roles]: missing key 'li'"),
    ('npc = "npc"\n', '', "[bitcell]: unknown key 'npc_enclosure'"),
    ('gate_sc    = "gate and areaid_sc"', 'gate_sc    = "gate and areaid"', "[derived].gate_sc"),
    ('[bitcell]\nprogramming_layer = "mcon"', '[bitcell]\nprogramming_layer = "via9"', "programming_layer"),
    # values that load but mean nothing or crash later
    ('value = 0.15\nsource = "periphery-rules.rst difftap.1', 'value = nan\nsource = "periphery-rules.rst difftap.1',
     "rule #1 'difftap.1'.value: expected a finite non-negative number, got nan"),
    ('value = 0.15\nsource = "periphery-rules.rst difftap.1', 'value = inf\nsource = "periphery-rules.rst difftap.1',
     "'difftap.1'.value: expected a finite"),
    ('value = 0.15\nsource = "periphery-rules.rst difftap.1', 'value = 0\nsource = "periphery-rules.rst difftap.1',
     "'difftap.1'.value: must be greater than 0"),
    ('diff_width = 0.42', 'diff_width = nan', "[bitcell].diff_width: expected a finite"),
    ('poly       = { gds = [66, 20]', 'poly       = { gds = [65, 20]', "[layers].poly.gds: 65/20 is also layer 'diff'"),
    ('[skipped]\n', '[skipped]\n"licon.1, difftap.*" = "said twice"\n',
     "[skipped].\"licon.1, difftap.*\": rule 'licon.1' is checked"),
])
def test_malformed_pdk_names_file_and_key(tmp_path, old, new, message):
    d = variant(tmp_path, old, new)
    with pytest.raises(PdkError) as err:
        load_pdk(d)
    assert message in str(err.value) and str(d / "pdk.toml") in str(err.value)


def test_not_toml_and_missing(tmp_path):
    (tmp_path / "pdk.toml").write_text("[pdk\nname=")
    with pytest.raises(PdkError, match="not valid TOML"):
        load_pdk(tmp_path)
    with pytest.raises(PdkError, match="unknown PDK"):
        load_pdk("gf9000")


def test_user_pdk_directory_is_accepted(tmp_path):
    shutil.copytree(SRC.parent, tmp_path / "mine")
    assert load_pdk(tmp_path / "mine").name == "sky130"


def test_layer_properties_file_opens_in_klayout_with_every_layer():
    import klayout.lay as lay
    p = load_pdk("sky130")
    assert p.lyp is not None
    view = lay.LayoutView()
    view.load_layer_props(str(p.lyp))
    sources = {n.source for n in view.each_layer()}
    assert sources == {f"{l.gds[0]}/{l.gds[1]}@1" for l in p.layers.values()}


def test_enclosure_of_zero_is_a_rule():
    """Zero is meaningful for enclosure (the inner shape lies inside the outer): every built-in deck
    keeps such rules, and they load."""
    for name in list_pdks():
        p = load_pdk(name)
        assert all(r.value > 0 or r.kind.startswith("enclosure") for r in p.rules), name
    assert any(r.value == 0 for r in load_pdk("sky130").rules)

"""The installed package holds every sub-package and the PDK data (a non-editable install sees only these)."""
from __future__ import annotations

import tomllib

from conftest import ROOT


def test_every_subpackage_is_listed_for_installation():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "weightfab").rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "weightfab.pdks" in listed


def test_pdk_data_is_mapped_from_the_top_level_folder():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert cfg["package-dir"]["weightfab.pdks"] == "pdk"
    for name in ("sky130", "gf180mcu", "ihp-sg13g2"):
        assert (ROOT / "pdk" / name / "pdk.toml").is_file()

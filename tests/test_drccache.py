"""The fast DRC's template cache (signoff/drccache.py): a template found clean is not checked again
for another model of the same shape; an edited layout's templates differ and are checked; the cache
can be turned off, and one that cannot be written is reported, not fatal."""
from __future__ import annotations

import gdstk
import numpy as np
import pytest

from conftest import mlp_model
import weightfab
from weightfab.signoff.drc import run_drc
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
MET1 = PDK.gds("met1")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Two models of one shape (other weights), compiled without checks."""
    d = tmp_path_factory.mktemp("cache")
    out = []
    for seed in (1, 2):
        model = mlp_model(d / f"m{seed}.onnx", sizes=(24, 16, 8), seed=seed)
        np.savez(d / f"m{seed}.calib.npz", x=np.random.default_rng(seed).random((16, 24), dtype=np.float32))
        weightfab.compile(model, d / f"m{seed}.gds", calib=d / f"m{seed}.calib.npz", drc=False, verify=False)
        out.append(d / f"m{seed}.gds")
    return out


def _note(rep) -> str:
    return next((n for n in rep.notes if n.startswith("template cache")), "")


def _counts(rep):
    return {r.name: (r.count, r.examples) for r in rep.rules}


def test_another_model_of_one_shape_checks_no_template_again(pair, tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTFAB_CACHE", str(tmp_path / "c"))
    first = run_drc(pair[0], PDK, fast=True)
    n = int(_note(first).split(" of ")[1].split()[0])
    assert first.clean and f": 0 of {n} templates" in _note(first) and f"{n} remembered" in _note(first)
    second = run_drc(pair[1], PDK, fast=True)
    assert f": {n} of {n} templates found clean in an earlier run" in _note(second), second.notes
    monkeypatch.setenv("WEIGHTFAB_CACHE", "off")
    plain = run_drc(pair[1], PDK, fast=True)
    assert not _note(plain) and _counts(plain) == _counts(second)


def test_an_edit_after_a_clean_run_is_checked(pair, tmp_path, monkeypatch):
    """A met1 sliver (below the width rule) in the periphery after the clean layout was cached:
    the met1 templates differ, are checked, fail, and the full check's counts come out."""
    monkeypatch.setenv("WEIGHTFAB_CACHE", str(tmp_path / "c"))
    assert run_drc(pair[0], PDK, fast=True).clean
    lib = gdstk.read_gds(str(pair[0]))
    per = next(c for c in lib.cells if "_periphery_" in c.name)
    (x0, y0), _ = per.bounding_box()
    per.add(gdstk.rectangle((x0 + 1, y0 + 1), (x0 + 1.05, y0 + 1.05), layer=MET1[0], datatype=MET1[1]))
    bad = tmp_path / "bad.gds"
    lib.write_gds(str(bad))
    fast, full = run_drc(bad, PDK, fast=True), run_drc(bad, PDK)
    assert full.violations > 0
    assert {r.name: r.count for r in fast.rules} == {r.name: r.count for r in full.rules}
    note = _note(fast)
    hits, total = int(note.split(": ")[1].split()[0]), int(note.split(" of ")[1].split()[0])
    assert 0 < hits < total, note


def test_cache_off_and_unwritable(pair, tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTFAB_CACHE", "off")
    rep = run_drc(pair[0], PDK, fast=True)
    assert rep.clean and not _note(rep)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("WEIGHTFAB_CACHE", str(blocker / "c"))
    rep = run_drc(pair[0], PDK, fast=True)
    assert rep.clean and "0 remembered; not written" in _note(rep), rep.notes

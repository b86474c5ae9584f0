"""GDSII array limits, the DRC mode on the command line, and the progress line."""
from __future__ import annotations

import io
import time

import gdstk
import numpy as np

import weightfab
from conftest import SAMPLE, mlp_model, run_cli
from weightfab.flow.progress import Progress
from weightfab.signoff.drc import run_drc
from weightfab.tech.pdk import load_pdk


def test_more_bitlines_than_a_gdsii_aref_holds(tmp_path):
    """32,800 bitlines: the bit array is written as AREF tiles of at most 32,767 columns (GDSII's
    16-bit count), read back as one array; the fast DRC proves it. Programmed on via: an mcon array
    that wide is strapped (rom/ties.py), one bit-pair row per 64 columns."""
    from weightfab.rom.writer import AREF_MAX
    model = mlp_model(tmp_path / "w.onnx", sizes=(4, 8200), seed=1, relu=False, softmax=False)
    np.savez(tmp_path / "w.calib.npz", x=np.random.default_rng(0).random((8, 4), dtype=np.float32))
    out = tmp_path / "w.gds"
    res = weightfab.compile(model, out, calib=tmp_path / "w.calib.npz", weights="int4", drc=False, periphery=False,
                            program_layer="via")
    assert res.verify.ok and res.verify.total_bits == 8200 * 4 * 4
    lib = gdstk.read_gds(str(out))
    counts = [r.repetition.columns for c in lib.cells for r in c.references if r.repetition.columns]
    assert max(counts) == AREF_MAX and sum(counts) == 8200 * 4
    rep = run_drc(out, load_pdk("sky130"), fast=True)
    assert rep.clean and rep.mode == "fast" and not any("full" in n for n in rep.notes), rep.notes


def test_drc_command_names_the_mode(tmp_path):
    out = tmp_path / "s.oas"
    weightfab.compile(SAMPLE, out, drc=False, verify=False, periphery=False)
    fast = run_cli("drc", out, "--quiet")
    full = run_cli("drc", out, "--full", "--quiet")
    assert fast.returncode == 0 and "fast mode" in fast.stdout, fast.stdout + fast.stderr
    assert full.returncode == 0 and "full mode" in full.stdout
    assert fast.stderr == "" and full.stderr == ""   # not a terminal: no progress line


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal_and_not_when_quiet():
    tty, quiet, pipe = _Tty(), _Tty(), io.StringIO()
    for stream, q in ((tty, False), (quiet, True), (pipe, False)):
        with Progress(q, stream=stream, after=0.1) as p:
            p.lap("import", 0.01)
            p.step(3, 39, "li.3")
            time.sleep(0.7)
            p.lap("drc", 2.5)
    assert "3/39 li.3" in tty.getvalue() and "drc: 2.5 s" in tty.getvalue()
    assert quiet.getvalue() == "" and pipe.getvalue() == ""

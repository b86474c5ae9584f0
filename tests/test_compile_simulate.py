"""compile --simulate: each macro read in ngspice from the file the compile wrote; the report and
the printed lines carry access time and energy per read at the clock the reads met."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import mlp_model, one_line_error, run_cli
from weightfab.flow.readtime import parse_corners


def test_compile_reports_a_simulated_read(tmp_path):
    model = mlp_model(tmp_path / "m.onnx", sizes=(16, 2))
    np.savez(tmp_path / "m.calib.npz", x=np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32))
    gds, rep = tmp_path / "m.gds", tmp_path / "m.json"
    r = run_cli("compile", model, "-o", gds, "--report", rep, "--simulate", "tt", "--reads", 2,
                "--html", tmp_path / "m.html")
    assert r.returncode == 0, r.stdout + r.stderr
    layer = json.loads(rep.read_text())["layers"][0]
    read = layer["macro"]["read"]
    (tt,) = read["corners"]
    assert tt["corner"] == "tt" and tt["reads"] == 2 and tt["ok"] and tt["bit_errors"] == 0
    assert read["netlist"] == "extracted" and read["meets_clock"]
    assert 0 < tt["access_time_ns"] <= 0.4 * read["period_ns"] and tt["energy_per_read_pj"] > 0
    assert read["periods_tried_ns"][-1] == read["period_ns"]
    line = next(l for l in r.stdout.splitlines() if l.startswith("read "))
    assert layer["macro"]["cell"] in line and f"access {tt['access_time_ns']:.3f} ns" in line
    assert "simulate" in json.loads(rep.read_text())["timings_s"]
    page = (tmp_path / "m.html").read_text(encoding="utf-8")   # the macros table of the HTML report
    assert f"tt: {tt['access_time_ns']:.3f} ns, {tt['energy_per_read_pj']:.2f} pJ, 2 reads right" in page


@pytest.mark.parametrize("args, expect", [
    (("--simulate", "xx"), "unknown corner 'xx'"),
    (("--simulate", "tt", "--pdk", "gf180mcu"), "SKY130 device models"),
    (("--simulate", "tt", "--no-periphery"), "--no-periphery"),
    (("--simulate", "tt", "--reads", 0), "--reads must be at least 1"),
])
def test_simulate_usage_errors_before_any_work(tmp_path, args, expect):
    model = mlp_model(tmp_path / "m.onnx", sizes=(16, 2))
    gds = tmp_path / "m.gds"
    r = run_cli("compile", model, "-o", gds, *args)
    one_line_error(r, expect)
    assert not gds.exists()


def test_corner_list():
    assert parse_corners("tt, ss,tt") == ("tt", "ss") and parse_corners(None) == ()


class _Run:
    """A stand-in for flow.simulate.SimulateRun: one corner, reads right from ``right_from`` seconds of
    period on, access ``access`` seconds."""

    def __init__(self, period, access, right_from):
        from types import SimpleNamespace
        self.results = [SimpleNamespace(ok=period >= right_from, access=np.array([access]))]


@pytest.mark.parametrize("access, right_from, expect", [
    (0.8e-9, 0.0, [10.0]),                 # meets the first clock
    (5.0e-9, 0.0, [10.0, 20.0]),           # right at 10 ns but later than 0.4 of it
    (1.0e-9, 35e-9, [10.0, 20.0, 40.0]),   # wrong until the precharge phase is long enough
    (1.0e-6, 0.0, [10.0, 20.0, 40.0, 80.0, 160.0, 320.0]),   # never: stops after 5 doublings
])
def test_clock_period_is_doubled_until_every_read_meets_it(monkeypatch, access, right_from, expect):
    import weightfab.flow.simulate as sim
    from weightfab.flow.readtime import find_period
    calls = []
    monkeypatch.setattr(sim, "simulate", lambda *a, period, **kw: calls.append(period) or _Run(period, access, right_from))
    run, period, tried = find_period("x.gds", "m.onnx", 0, ("tt",))
    assert tried == expect and period == pytest.approx(expect[-1] * 1e-9) and len(calls) == len(expect)
    _, period, tried = find_period("x.gds", "m.onnx", 0, ("tt",), 7e-9)
    assert tried == [7.0] and period == 7e-9

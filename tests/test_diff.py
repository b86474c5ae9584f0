"""`weightfab diff`: two same-shape models differ on the programming layer alone."""
from __future__ import annotations

import json

from conftest import SAMPLES, mlp_model, run_cli


def _compile(model, out, *extra):
    r = run_cli("compile", model, "-o", out, "--calib", SAMPLES / "digits_mlp.calib.npz", "--no-drc", "--no-verify",
                *extra)
    assert r.returncode == 0, r.stderr
    return out


def test_same_shape_models_differ_on_the_programming_layer_only(tmp_path):
    a = _compile(mlp_model(tmp_path / "a.onnx", sizes=(64, 24, 10), seed=1), tmp_path / "a.gds")
    b = _compile(mlp_model(tmp_path / "b.onnx", sizes=(64, 24, 10), seed=2), tmp_path / "b.gds")
    r = run_cli("diff", a, b, "--json")
    assert r.returncode == 4, r.stderr
    d = json.loads(r.stdout)
    differing = [l["name"] for l in d["layers"] if l["differs"]]
    assert differing == ["mcon"]
    mcon = next(l for l in d["layers"] if l["name"] == "mcon")
    assert mcon["shapes_a"] != mcon["shapes_b"] or mcon["xor_polygons"] > 0
    r = run_cli("diff", a, b)
    assert "1 of" in r.stdout and "layers differ: mcon" in r.stdout


def test_identical_layouts_and_gds_against_oasis(tmp_path):
    m = mlp_model(tmp_path / "a.onnx", sizes=(64, 24, 10), seed=1)
    a, b = _compile(m, tmp_path / "a.gds"), _compile(m, tmp_path / "a.oas")
    r = run_cli("diff", a, b)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "identical on every layer" in r.stdout


def test_a_different_shape_differs_on_base_layers(tmp_path):
    a = _compile(mlp_model(tmp_path / "a.onnx", sizes=(64, 24, 10), seed=1), tmp_path / "a.gds")
    b = _compile(mlp_model(tmp_path / "b.onnx", sizes=(64, 20, 10), seed=1), tmp_path / "b.gds")
    d = json.loads(run_cli("diff", a, b, "--json").stdout)
    assert {"diff", "poly", "met1"} <= {l["name"] for l in d["layers"] if l["differs"]}


def test_unreadable_input_is_one_line(tmp_path):
    bad = tmp_path / "x.gds"
    bad.write_bytes(b"nonsense")
    r = run_cli("diff", bad, bad)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "x.gds" in r.stderr

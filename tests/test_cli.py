"""End to end through the real command line, on the shipped sample and the shared models."""
from __future__ import annotations

import json
import os

import onnx
import pytest
from onnx import TensorProto, helper

from conftest import MODELS, SAMPLE, SAMPLES, run_cli


def test_sample_compiles_drc_clean_and_verified(tmp_path):
    out, rep = tmp_path / "chip.gds", tmp_path / "r.json"
    r = run_cli("compile", SAMPLE, "-o", out, "--data", SAMPLES / "digits_mlp.test.npz", "--report", rep)
    assert r.returncode == 0, r.stderr
    assert "DRC: clean" in r.stdout and "verified: 21760 of 21760 bits match" in r.stdout
    report = json.loads(rep.read_text())
    from weightfab.tech.pdk import load_pdk
    assert report["drc"]["clean"] and report["drc"]["rules_checked"] == len(load_pdk("sky130").rules)
    assert report["verify"]["ok"] and report["verify"]["bits"] == 21760
    assert [(l["outputs"], l["inputs"]) for l in report["layers"]] == [(32, 64), (16, 32), (10, 16)]
    assert report["accuracy"]["quantized"] >= report["accuracy"]["float"] - 0.02
    assert report["accuracy"]["chip"] == report["accuracy"]["quantized"]
    assert report["die"]["area_mm2"] > 0 and report["file_bytes"] == out.stat().st_size


@pytest.mark.parametrize("suffix", [".gds", ".oas"])
def test_compiling_twice_gives_identical_bytes(tmp_path, suffix):
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    for out in (a, b):
        r = run_cli("compile", SAMPLE, "-o", out, "--no-drc", "--no-verify", "--weights", "int4")
        assert r.returncode == 0, r.stderr
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_bytes()) > 1000


def test_oasis_output_verifies(tmp_path):
    out = tmp_path / "chip.oas"
    assert run_cli("compile", SAMPLE, "-o", out, "--no-drc").returncode == 0
    r = run_cli("verify", out, "--model", SAMPLE)
    assert r.returncode == 0 and "verified: 21760 of 21760" in r.stdout, r.stdout + r.stderr


def test_unsupported_op_is_one_line_exit_1(tmp_path):
    model = tmp_path / "conv.onnx"
    g = helper.make_graph([helper.make_node("LpNormalization", ["x"], ["y"], name="norm1")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), model)
    out = tmp_path / "x.gds"
    r = run_cli("compile", model, "-o", out, "--calib", SAMPLES / "digits_mlp.calib.npz")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "'norm1'" in lines[0] and "LpNormalization" in lines[0] and "Gemm" in lines[0]
    assert "Traceback" not in r.stderr and not out.exists()


def test_unwritable_output_fails_cleanly(tmp_path):
    """A parent that is a file, a target that is a directory (the rename fails after the whole
    layout was written), and, when not root, a read-only directory: one line, exit 1, no file left."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "chip.gds").mkdir()
    targets = [tmp_path / "afile" / "chip.gds", tmp_path / "out" / "chip.gds"]
    if os.geteuid() != 0:
        (tmp_path / "ro").mkdir(mode=0o500)
        targets.append(tmp_path / "ro" / "chip.gds")
    for out in targets:
        r = run_cli("compile", SAMPLE, "-o", out)
        assert r.returncode == 1, (out, r.stdout)
        assert len(r.stderr.strip().splitlines()) == 1 and str(out) in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    assert not any(p.is_file() for p in (tmp_path / "out").rglob("*")), "no partial or temporary file remains"
    assert (tmp_path / "out" / "chip.gds").is_dir()


def test_bad_inputs_are_one_line_errors(tmp_path):
    bad_pdk = tmp_path / "pdk"
    bad_pdk.mkdir()
    (bad_pdk / "pdk.toml").write_text((SAMPLE.parents[1] / "pdk/sky130/pdk.toml").read_text()
                                      .replace("grid_um = 0.005", "grid_um = 0.005\ncolour = 3"))
    cases = [
        (["compile", SAMPLE, "-o", tmp_path / "a.txt"], "must end in .gds or .oas"),
        (["compile", tmp_path / "none.onnx", "-o", tmp_path / "a.gds"], "no such file"),
        (["compile", SAMPLE, "-o", tmp_path / "a.gds", "--pdk", bad_pdk], "unknown key 'colour'"),
        (["compile", SAMPLE, "-o", tmp_path / "a.gds", "--pdk", "nosuch"], "unknown PDK 'nosuch'"),
        (["compile", SAMPLE, "-o", tmp_path / "a.gds", "--block", "3"], "even"),
        (["compile", SAMPLE, "-o", tmp_path / "a.gds", "--data", SAMPLE], "not an .npz file"),
        (["drc", tmp_path / "none.gds"], "no such file"),
    ]
    for args, expect in cases:
        r = run_cli(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert expect in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
    assert not (tmp_path / "a.gds").exists()


def test_drc_command_exit_2_and_marker_database(tmp_path):
    import gdstk
    lib = gdstk.Library()
    cell = lib.new_cell("TOP")
    cell.add(gdstk.rectangle((0, 0), (0.1, 2), layer=68, datatype=20))  # met1 narrower than m1.1
    path = tmp_path / "narrow.gds"
    lib.write_gds(path)
    r = run_cli("drc", path, "--pdk", "sky130")
    assert r.returncode == 2 and "m1.1" in r.stdout
    assert (tmp_path / "narrow.lyrdb").is_file()
    import klayout.rdb as krdb
    db = krdb.ReportDatabase("")
    db.load(str(tmp_path / "narrow.lyrdb"))
    assert db.num_items() >= 1


def test_pdk_list_and_show():
    r = run_cli("pdk", "list")
    assert r.returncode == 0 and "sky130" in r.stdout
    r = run_cli("pdk", "show", "sky130")
    assert r.returncode == 0 and "licon.11" in r.stdout and "bits/µm²" in r.stdout


@pytest.mark.slow
def test_keras_mlp_compiles_drc_clean_and_verifies(tmp_path, mnist):
    calib, test = mnist
    out, rep = tmp_path / "keras.gds", tmp_path / "r.json"
    r = run_cli("compile", MODELS / "mnist_mlp_keras2onnx.onnx", "-o", out, "--calib", calib, "--report", rep)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(rep.read_text())
    assert report["drc"]["clean"] and report["verify"]["ok"]
    assert [(l["outputs"], l["inputs"]) for l in report["layers"]] == [(300, 784), (50, 300), (10, 50)]
    assert report["verify"]["bits"] == sum(l["bits_stored"] for l in report["layers"])


def test_mse_clipped_int4_compiles_and_verify_tells_it_from_max_scaling(tmp_path):
    """int4-mse holds other integers than int4 in the same 4 bits: verify without --weights finds
    which one the layout holds; told the wrong one, it reports the mismatch (exit 3)."""
    out = tmp_path / "mse.gds"
    r = run_cli("compile", SAMPLE, "-o", out, "--weights", "int4-mse", "--data", SAMPLES / "digits_mlp.test.npz")
    assert r.returncode == 0 and "verified: 10880 of 10880 bits match" in r.stdout, r.stdout + r.stderr
    r = run_cli("verify", out, "--model", SAMPLE)
    assert r.returncode == 0 and "(int4-mse," in r.stdout, r.stdout + r.stderr
    r = run_cli("verify", out, "--model", SAMPLE, "--weights", "int4")
    assert r.returncode == 3, r.stdout + r.stderr

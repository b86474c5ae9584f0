"""Nothing lost, nothing corrupt, every figure true: bad input, full disks, interruptions and misuse.

Each test names the case of the hardening issue it covers; the README's "Outputs" and "Exit codes"
sections state the rules tested here."""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SAMPLE, SAMPLES, mlp_model, one_line_error, run_cli

TEST = SAMPLES / "digits_mlp.test.npz"


def leftovers(d: Path, keep=()) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name not in keep)


@pytest.fixture
def tiny(tmp_path):
    """A 6-5-3 MLP with calibration beside it and a labelled data file."""
    model = mlp_model(tmp_path / "tiny.onnx")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tiny.calib.npz", x=rng.normal(size=(32, 6)).astype(np.float32))
    np.savez(tmp_path / "tiny.data.npz", x=rng.normal(size=(40, 6)).astype(np.float32), y=rng.integers(0, 3, 40))
    return model


# -- disk full ---------------------------------------------------------------------------------------

def _fsize_limited(*args, limit):
    """The CLI with writes beyond ``limit`` bytes failing (RLIMIT_FSIZE, SIGXFSZ ignored): a disk
    that fills at ``limit`` bytes, without root."""
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    env = dict(os.environ)
    env.pop("WEIGHTFAB_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "weightfab", *map(str, args)], capture_output=True, text=True,
                          env=env, preexec_fn=pre, timeout=300)


@pytest.mark.parametrize("suffix", [".gds", ".oas"])
@pytest.mark.parametrize("checks", [["--no-drc", "--no-verify"], []])
def test_full_disk_leaves_no_layout(tmp_path, suffix, checks):
    """gdstk does not report a failed write: the written file is checked before it gets its name.
    (Before: exit 0 with the truncated size reported as success, or the error blamed the file.)"""
    out = tmp_path / f"chip{suffix}"
    r = _fsize_limited("compile", SAMPLE, "-o", out, *checks, limit=20_000)
    one_line_error(r, f"cannot write {out}", "cut short")
    assert leftovers(tmp_path) == []


@pytest.fixture
def tmpfs(tmp_path):
    """A 200 kB tmpfs (needs root; elsewhere the RLIMIT_FSIZE tests above stand for it)."""
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode().strip()}")
    yield d
    subprocess.run(["umount", str(d)], check=True)


def fill(d: Path, leave: int) -> None:
    """Fill the file system of ``d`` up to ``leave`` bytes."""
    fd = os.open(d / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.statvfs(d).f_bavail * os.statvfs(d).f_frsize > leave:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.mark.parametrize("suffix", [".gds", ".oas"])
def test_full_tmpfs_leaves_no_layout(tmpfs, suffix):
    """The sample's layout (799 kB GDSII, 59 kB OASIS) on a file system with 24 kB free."""
    fill(tmpfs, 24_000)
    out = tmpfs / f"chip{suffix}"
    r = run_cli("compile", SAMPLE, "-o", out, "--no-drc", "--no-verify")
    one_line_error(r, f"cannot write {out}")
    assert leftovers(tmpfs) == ["filler"]


def test_failed_report_write_keeps_no_layout(tmpfs, tiny, tmp_path):
    """The report cannot be written (its disk is full): the layout, written and checked elsewhere,
    does not reach its name either."""
    fill(tmpfs, 0)
    out = tmp_path / "chip.gds"
    r = run_cli("compile", tiny, "-o", out, "--report", tmpfs / "r.json")
    one_line_error(r, f"cannot write {tmpfs / 'r.json'}")
    assert not out.exists() and leftovers(tmpfs) == ["filler"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# -- outputs that overwrite inputs or each other -----------------------------------------------------

def test_outputs_equal_to_inputs_or_each_other_are_usage_errors(tmp_path, tiny):
    out = tmp_path / "chip.gds"
    out.write_bytes(b"old layout")
    (tmp_path / "link.gds").symlink_to(out)
    (tmp_path / "model_link.json").symlink_to(tiny)
    os.link(tiny, tmp_path / "hard.json")
    calib = tmp_path / "tiny.calib.npz"
    before = {p: p.read_bytes() for p in (tiny, calib, out)}
    cases = [
        (["compile", tiny, "-o", out, "--report", out], "--report", "-o"),
        (["compile", tiny, "-o", out, "--report", tiny], "--report", "MODEL"),
        (["compile", tiny, "-o", out, "--report", tmp_path / "model_link.json"], "--report", "MODEL"),
        (["compile", tiny, "-o", out, "--report", tmp_path / "hard.json"], "--report", "MODEL"),
        (["compile", tiny, "-o", out, "--lyrdb", out], "--lyrdb", "-o"),
        (["compile", tiny, "-o", out, "--lyrdb", tmp_path / "link.gds"], "--lyrdb", "-o"),
        (["compile", tiny, "-o", out, "--report", calib], "--report", "the calibration beside MODEL"),
        (["compile", tiny, "-o", out, "--calib", calib, "--report", calib], "--report", "--calib"),
        (["compile", tiny, "-o", out, "--report", tmp_path / "r.json", "--lyrdb", tmp_path / "r.json"],
         "--lyrdb", "--report"),
        (["compile", tiny, "-o", out, "--report", tmp_path / "nodir" / "r.json"], "does not exist"),
        (["drc", out, "--lyrdb", out], "--lyrdb", "FILE"),
        (["inspect", tiny, "--data", tmp_path / "tiny.data.npz", "--plot", tiny], "--plot", "MODEL"),
    ]
    for args, *expect in cases:
        t0 = time.monotonic()
        r = run_cli(*args)
        assert r.returncode == 1, (args, r.stdout[-500:])
        one_line_error(r, "error: ", *expect)
        assert r.stdout == "", (args, r.stdout)  # refused before any work
        assert time.monotonic() - t0 < 30
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# -- where a layout lands when runs fail or are interrupted -------------------------------------------

INTERRUPT = """
import os, signal, sys
import weightfab.flow.compile as c
stage = sys.argv.pop(1)
orig = getattr(c, stage)
def interrupted(*a, **k):
    os.kill(os.getpid(), signal.SIGINT)
    return orig(*a, **k)
setattr(c, stage, interrupted)
from weightfab.cli.main import main
main(prog_name="weightfab")
"""

STAGES = ["load_pdk", "load_onnx", "resolve_inputs", "quantize", "dedup", "floorplan", "build_library",
          "write_library", "check_layout_file", "run_drc", "write_lyrdb", "verify_layout", "_accuracy", "write_json"]


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_sigint_at_each_stage_leaves_outputs_as_they_were(tmp_path, tiny, stage):
    """SIGINT at any stage: exit 130, one line, the previous files at the output paths untouched,
    no temporary file left."""
    out, rep, mk = tmp_path / "chip.gds", tmp_path / "r.json", tmp_path / "m.lyrdb"
    for p in (out, rep, mk):
        p.write_text("from an earlier run")
    env = dict(os.environ)
    env.pop("WEIGHTFAB_DEBUG", None)
    r = subprocess.run([sys.executable, "-c", INTERRUPT, stage, "compile", tiny, "-o", out, "--report", rep,
                        "--lyrdb", mk, "--data", tmp_path / "tiny.data.npz"],
                       capture_output=True, text=True, env=env, timeout=300)
    one_line_error(r, "interrupted", code=130)
    assert all(p.read_text() == "from an earlier run" for p in (out, rep, mk))
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_drc_violations_keep_the_layout_with_markers_and_exit_2(tmp_path, tiny):
    """A deck the ROM cannot meet (met1 width 5 µm): the layout is kept with its markers and report."""
    pdk = tmp_path / "strict"
    shutil.copytree(ROOT / "pdk" / "sky130", pdk)
    text = (pdk / "pdk.toml").read_text()
    start = text.index('name = "m1.1"')
    value = text.index("value = ", start)
    end = text.index("\n", value)
    (pdk / "pdk.toml").write_text(text[:value] + "value = 5.0" + text[end:])
    out, rep = tmp_path / "chip.gds", tmp_path / "r.json"
    r = run_cli("compile", tiny, "-o", out, "--pdk", pdk, "--report", rep)
    one_line_error(r, "DRC violations", "m1.1", code=2)
    assert out.is_file() and (tmp_path / "chip.lyrdb").is_file() and not json.loads(rep.read_text())["drc"]["clean"]


@pytest.mark.slow
def test_concurrent_compiles_each_verify_their_own_file(tmp_path):
    """Two compiles of different models to one output at once: each checks the file it wrote (the
    loser used to verify the winner's file and exit 3); the file left is one of them, complete."""
    a = mlp_model(tmp_path / "a.onnx", sizes=(64, 32, 10), seed=1)
    b = mlp_model(tmp_path / "b.onnx", sizes=(64, 48, 10), seed=2)
    for m in (a, b):
        shutil.copy(SAMPLES / "digits_mlp.calib.npz", m.with_suffix(".calib.npz"))
    out = tmp_path / "chip.gds"
    env = dict(os.environ)
    env.pop("WEIGHTFAB_DEBUG", None)
    procs = [subprocess.Popen([sys.executable, "-m", "weightfab", "compile", str(m), "-o", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for m in (a, b, a, b)]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    assert all(code == 0 for code, _, _ in results), results
    ok = [run_cli("verify", out, "--model", m).returncode for m in (a, b)]
    assert sorted(ok) == [0, 1], ok  # the other model's shape is refused (exit 1)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


# -- figures that must be true ------------------------------------------------------------------------

def test_pdk_show_lists_each_rule_either_checked_or_not():
    r = run_cli("pdk", "show", "sky130")
    assert r.returncode == 0
    rules, _, unchecked = r.stdout.partition("not checked (")
    assert "difftap.2b" in rules and "difftap.2b" not in unchecked


def test_drc_writes_markers_only_on_violations_or_when_asked(tmp_path):
    import gdstk
    clean = tmp_path / "clean.gds"
    lib = gdstk.Library()
    lib.new_cell("TOP").add(gdstk.rectangle((0, 0), (1, 2), layer=68, datatype=20))
    lib.write_gds(clean)
    r = run_cli("drc", clean)
    assert r.returncode == 0 and "DRC: clean" in r.stdout and not (tmp_path / "clean.lyrdb").exists()
    r = run_cli("drc", clean, "--lyrdb", tmp_path / "asked.lyrdb")
    assert r.returncode == 0 and (tmp_path / "asked.lyrdb").is_file()
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "markers are written only on violations or when `--lyrdb` is given" in readme


# -- messages that name the cause ---------------------------------------------------------------------

def test_data_file_messages(tmp_path, tiny):
    out = tmp_path / "o.gds"
    np.save(tmp_path / "arr.npy", np.zeros((3, 6)))
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 6), np.float32))
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}] * 3, dtype=object))
    np.savez(tmp_path / "range.npz", x=np.zeros((4, 6), np.float32), y=np.array([0, 1, 2, 3]))
    np.savez(tmp_path / "frac.npz", x=np.zeros((4, 6), np.float32), y=np.array([0, 1.5, 2, 0]))
    np.savez(tmp_path / "neg.npz", x=np.zeros((4, 6), np.float32), y=np.array([0, -1, 2, 0]))
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")
    cases = [
        (["--input-scale", "nan"], "--input-scale nan: must be a finite number"),
        (["--input-offset", "inf"], "--input-offset inf: must be a finite number"),
        (["--calib", tmp_path / "text.npz"], "text.npz: not an .npz file (not a zip archive)"),
        (["--calib", tmp_path / "arr.npy"], "arr.npy: not an .npz file (a single .npy array)"),
        (["--calib", tmp_path / "obj.npz"], "obj.npz: not a readable .npz file (holds Python objects"),
        (["--calib", tmp_path / "empty.npz"], "empty.npz: 'x' holds no samples"),
        (["--data", tmp_path / "range.npz"], "range.npz: label 3 is outside the model's 3 classes (0..2)"),
        (["--data", tmp_path / "neg.npz"], "neg.npz: label -1 is outside"),
        (["--data", tmp_path / "frac.npz"], "frac.npz: label 1.5 is not an integer class index"),
    ]
    for extra, expect in cases:
        r = run_cli("compile", tiny, "-o", out, *extra)
        one_line_error(r, expect)
        assert r.stdout == "" and not out.exists()


def test_calibration_falling_back_to_data_is_said(tmp_path, tiny):
    (tmp_path / "tiny.calib.npz").unlink()
    rep = tmp_path / "r.json"
    r = run_cli("compile", tiny, "-o", tmp_path / "o.gds", "--no-drc", "--data", tmp_path / "tiny.data.npz",
                "--report", rep)
    assert r.returncode == 0, r.stderr
    assert "warning: no calibration file" in r.stderr and "the set the accuracy is measured on" in r.stderr
    cal = json.loads(rep.read_text())["calibration"]
    assert cal["source"] == "data" and cal["samples"] == 40 and "accuracy is measured on" in cal["note"]
    r = run_cli("compile", tiny, "-o", tmp_path / "o.gds", "--no-drc")
    one_line_error(r, "no calibration inputs")


def test_verify_of_another_models_layout(tmp_path, tiny):
    out = tmp_path / "chip.gds"
    assert run_cli("compile", tiny, "-o", out, "--no-drc").returncode == 0
    r = run_cli("verify", out, "--model", SAMPLE)
    one_line_error(r, "not a layout of this model")
    other = mlp_model(tmp_path / "other.onnx", sizes=(6, 7, 3))
    r = run_cli("verify", out, "--model", other)
    one_line_error(r, "array 0 is", "not a layout of this model")


def test_inspect_plot_problems_found_before_work(tmp_path):
    r = run_cli("inspect", SAMPLE, "--data", TEST, "--plot", tmp_path / "nodir" / "c.png")
    one_line_error(r, "--plot", "does not exist")
    assert r.stdout == ""
    no_mpl = ("import sys; sys.modules['matplotlib'] = None\n"
              "from weightfab.cli.main import main; main(prog_name='weightfab')")
    r = subprocess.run([sys.executable, "-c", no_mpl, "inspect", SAMPLE, "--data", TEST, "--plot", tmp_path / "c.png"],
                       capture_output=True, text=True)
    one_line_error(r, "--plot needs matplotlib")
    assert r.stdout == ""


def test_internal_error_text_is_one_line():
    """An exception without text (MemoryError() from Python itself) still makes one line."""
    code = ("import sys\nimport weightfab.flow.compile as c\n"
            "def boom(*a, **k): raise MemoryError()\n"
            "c.load_onnx = boom\n"
            "from weightfab.cli.main import main; main(prog_name='weightfab')")
    r = subprocess.run([sys.executable, "-c", code, "compile", SAMPLE, "-o", "/tmp/never.gds"],
                       capture_output=True, text=True)
    one_line_error(r, "out of memory")


def test_internal_error_after_the_layout_was_written_leaves_no_layout(tmp_path, tiny):
    """A bug in a late stage (here the readback raises) is one line, exit 1, and the unchecked
    layout does not reach its name."""
    code = ("import weightfab.flow.compile as c\n"
            "def boom(*a, **k): raise RuntimeError('readback exploded')\n"
            "c.verify_layout = boom\n"
            "from weightfab.cli.main import main; main(prog_name='weightfab')")
    out = tmp_path / "chip.gds"
    r = subprocess.run([sys.executable, "-c", code, "compile", tiny, "-o", out, "--no-drc"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == ("internal error: RuntimeError: readback exploded "
                                                     "(set WEIGHTFAB_DEBUG=1 for a traceback)"), r.stderr
    assert not out.exists() and not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_oasis_check_reads_the_whole_file(tmp_path, tiny):
    """A written OASIS file carries a CRC32 of every byte: one byte changed anywhere, or the file cut
    where a stray END-record byte happens to sit 256 bytes before the cut, is refused."""
    from weightfab.errors import OutputError
    from weightfab.flow.outputs import check_layout_file
    out = tmp_path / "chip.oas"
    assert run_cli("compile", tiny, "-o", out, "--no-drc", "--no-verify").returncode == 0
    data = out.read_bytes()
    assert check_layout_file(out, ".oas") == len(data)
    bad = tmp_path / "bad.oas"
    bad.write_bytes(data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1:])
    with pytest.raises(OutputError, match="cut short"):
        check_layout_file(bad, ".oas")
    cut = next(k for k in range(len(data) - 300, 300, -1) if data[k - 256] == 2)
    bad.write_bytes(data[:cut])
    with pytest.raises(OutputError, match="cut short"):
        check_layout_file(bad, ".oas")

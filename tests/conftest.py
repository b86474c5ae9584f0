from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SAMPLE = SAMPLES / "digits_mlp.onnx"
# the shared models and data beside the checkout (WEIGHTFAB_SHARED overrides)
SHARED = Path(os.environ.get("WEIGHTFAB_SHARED", ROOT.parent / "shared"))
MODELS = SHARED / "models"
DATA = SHARED / "data"


def pytest_collection_modifyitems(config, items):
    """The modules holding ``slow`` tests run first, each with its slow tests at its head, the others
    after them in their own order. With ``--dist loadgroup`` (addopts) every test is its own unit
    of work handed to the next free worker in this order, so the long tests start early and the
    short ones fill both workers at the end; a module stays contiguous on each worker, so its
    module-scoped fixtures are built once per worker as before."""
    module_of = {id(it): it.nodeid.split("::", 1)[0] for it in items}
    slow_modules = {module_of[id(it)] for it in items if it.get_closest_marker("slow")}
    first = {}
    for i, it in enumerate(items):
        first.setdefault(module_of[id(it)], i)
    order = {id(it): i for i, it in enumerate(items)}
    items.sort(key=lambda it: (module_of[id(it)] not in slow_modules, first[module_of[id(it)]],
                               it.get_closest_marker("slow") is None, order[id(it)]))


@pytest.fixture(scope="session", autouse=True)
def _drc_cache(tmp_path_factory):
    """The fast DRC's template cache (signoff/drccache.py) in a directory of this run, not the
    user's ~/.cache (the CLI tests' subprocesses inherit it); a test may set its own."""
    old = os.environ.get("WEIGHTFAB_CACHE")
    os.environ["WEIGHTFAB_CACHE"] = str(tmp_path_factory.mktemp("drc-cache"))
    yield
    if old is None:
        os.environ.pop("WEIGHTFAB_CACHE", None)
    else:
        os.environ["WEIGHTFAB_CACHE"] = old


def run_cli(*args, cwd=None, check=None) -> subprocess.CompletedProcess:
    """Run the real command line (``python -m weightfab``) and capture its output."""
    env = dict(os.environ)
    env.pop("WEIGHTFAB_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "weightfab", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


def cli(*args):
    """The command line in this process (fast, for the one-line error cases): (exit code, stdout, stderr)."""
    from click.testing import CliRunner
    from weightfab.cli import main
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.stdout, r.stderr


def one_line_error(r, *expect, code=1) -> str:
    """Assert that the run ``r`` exited with ``code`` printing exactly one stderr line, "error: ..." holding
    each of ``expect``, and no traceback or internal error; return that line."""
    assert r.returncode == code, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    for e in expect:
        assert e in lines[0], (e, lines[0])
    return lines[0]


def save_graph(path: Path, nodes, inits, in_shape, out_name, out_shape, opset=13) -> Path:
    """``nodes`` and ``inits`` as a model with one float input ``x`` and one float output, saved to ``path``."""
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def compiled_mlp(d: Path, name: str, sizes, seed: int) -> Path:
    """A one-engine-per-layer MLP (no softmax) with its calibration beside it, compiled to
    ``d/name.gds`` without checks; the layout's path."""
    import numpy as np
    import weightfab
    model = mlp_model(d / f"{name}.onnx", sizes=sizes, seed=seed, softmax=False)
    calib = d / f"{name}.calib.npz"
    np.savez(calib, x=np.random.default_rng(0).random((16, sizes[0]), dtype=np.float32))
    weightfab.compile(model, d / f"{name}.gds", calib=calib, drc=False, verify=False)
    return d / f"{name}.gds"


def mlp_model(path: Path, sizes=(6, 5, 3), seed=0, relu=True, softmax=True, batch="N") -> Path:
    """A small MatMul+Add(+Relu) MLP written with onnx.helper."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    cur = "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32)
        bias = rng.normal(0, 0.1, b).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"], name=f"mm{i}"))
        nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"add{i}"))
        cur = f"a{i}"
        if relu and i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [cur], [f"r{i}"], name=f"relu{i}"))
            cur = f"r{i}"
    if softmax:
        nodes.append(helper.make_node("Softmax", [cur], ["y"], axis=-1, name="softmax"))
        cur = "y"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, sizes[0]])],
                              [helper.make_tensor_value_info(cur, TensorProto.FLOAT, [batch, sizes[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def mnist(tmp_path_factory):
    """The shared MNIST test set as calibration (first 500) and evaluation (the rest) files."""
    if not (DATA / "mnist_t10k.npz").is_file():
        pytest.fail(f"shared data missing: {DATA / 'mnist_t10k.npz'}")
    d = np.load(DATA / "mnist_t10k.npz")
    out = tmp_path_factory.mktemp("mnist")
    np.savez(out / "calib.npz", x=d["images"][:500].astype(np.float32))
    np.savez(out / "test.npz", x=d["images"].astype(np.float32), y=d["labels"])
    return out / "calib.npz", out / "test.npz"


def mutate_layer(src: Path, dst: Path, gds: tuple[int, int], op: str, amount_um: float) -> Path:
    """A copy of the layout ``src`` (flattened) with every shape of one GDS layer changed: "size"
    grows (negative: shrinks) all sides, "sizex"/"sizey" one direction, "shift"/"shifty" moves in
    x/y, "crop" keeps only the ``amount`` x ``amount`` corner piece at the layer's lower left."""
    import klayout.db as kdb
    layout = kdb.Layout()
    layout.read(str(src))
    (top,) = layout.top_cells()
    top.flatten(True)
    idx = layout.find_layer(*gds)
    assert idx is not None, f"{src}: no shapes on {gds} to mutate"
    region = kdb.Region(top.shapes(idx))
    d = round(amount_um / layout.dbu)
    if op == "size":
        region = region.sized(d)
    elif op == "sizex":
        region = region.sized(d, 0, 2)
    elif op == "sizey":
        region = region.sized(0, d, 2)
    elif op == "shift":
        region.move(d, 0)
    elif op == "shifty":
        region.move(0, d)
    elif op == "crop":
        bb = region.merged().bbox()
        region = region & kdb.Region(kdb.Box(bb.left, bb.bottom, bb.left + d, bb.bottom + d))
        assert not region.is_empty(), f"{src}: nothing of {gds} in the {amount_um} µm corner"
    else:
        raise AssertionError(op)
    top.shapes(idx).clear()
    top.shapes(idx).insert(region)
    layout.write(str(dst))
    return dst



def remove_via(src: Path, dst: Path, cell: str, x: int, y: int, role: str = "mcon", pdk: str = "sky130") -> Path:
    """``src`` with the one programming via (``role`` of ``pdk``) of cell ``cell`` that covers the
    point (x, y) (dbu, flattened cell coordinates) removed, written to ``dst``."""
    import klayout.db as kdb
    from weightfab.tech.pdk import load_pdk
    layout = kdb.Layout()
    layout.read(str(src))
    c = layout.cell(cell)
    c.flatten(True)
    li = layout.find_layer(*load_pdk(pdk).role_gds(role))
    hit = [s for s in c.shapes(li).each() if s.bbox().contains(kdb.Point(x, y))]
    assert len(hit) == 1, f"{len(hit)} vias at ({x}, {y})"
    c.shapes(li).erase(hit[0])
    layout.write(str(dst))
    return dst

"""signoff/forkpool.py: tasks shared with forked processes give the results of one process, in
task order; a task that fails in a child fails the run; one job runs in this process. And the fast
DRC reports the same with one and with two processes, clean and on a seeded violation."""
from __future__ import annotations

import os
import time

import gdstk
import numpy as np
import pytest

import weightfab
from conftest import mlp_model
from weightfab.signoff import forkpool
from weightfab.signoff.drc import run_drc
from weightfab.tech.pdk import load_pdk

PDK = load_pdk("sky130")
STATE = {"base": np.arange(50) ** 2}     # read by the tasks: the state before the fork


def _task(i):
    time.sleep(0.02 * (i % 3))
    return int(STATE["base"][i]) + i, os.getpid()


def test_results_in_task_order_from_several_processes():
    done = []
    got = forkpool.run(_task, list(range(40)), 3, done=lambda i, r: done.append(i))
    assert [v for v, _ in got] == [i * i + i for i in range(40)]
    assert sorted(done) == list(range(40))
    assert len({pid for _, pid in got}) > 1 and os.getpid() in {pid for _, pid in got}


def test_one_job_runs_here(monkeypatch):
    monkeypatch.setenv("WEIGHTFAB_JOBS", "1")
    got = forkpool.run(_task, list(range(6)))
    assert {pid for _, pid in got} == {os.getpid()}
    monkeypatch.setenv("WEIGHTFAB_JOBS", "two")
    with pytest.raises(ValueError, match="WEIGHTFAB_JOBS"):
        forkpool.jobs()


def test_a_task_failing_in_a_child_fails_the_run():
    parent = os.getpid()

    def fn(i):
        time.sleep(0.01)
        if os.getpid() != parent:
            raise KeyError(f"task {i} in the child")
        return i
    with pytest.raises(RuntimeError, match="KeyError: 'task"):
        forkpool.run(fn, list(range(20)), 2)


def test_a_task_failing_here_stops_the_children():
    def fn(i):
        if i == 0:
            raise ValueError("here")
        time.sleep(5)
        return i
    t = time.perf_counter()
    with pytest.raises(ValueError, match="here"):
        forkpool.run(fn, list(range(4)), 2)
    assert time.perf_counter() - t < 4      # the child was killed, not waited for


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    d = tmp_path_factory.mktemp("jobs")
    model = mlp_model(d / "m.onnx", sizes=(24, 16, 6), seed=5)
    np.savez(d / "c.npz", x=np.random.default_rng(5).random((16, 24), dtype=np.float32))
    weightfab.compile(model, d / "m.gds", calib=d / "c.npz", drc=False, verify=False)
    return d / "m.gds"


def _report(path, jobs, monkeypatch):
    monkeypatch.setenv("WEIGHTFAB_JOBS", str(jobs))
    rep = run_drc(path, PDK, fast=True)
    return [(r.name, r.count, r.examples) for r in rep.rules], rep.notes


def test_fast_drc_equal_with_one_and_two_processes(layout, tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTFAB_CACHE", "off")
    assert _report(layout, 1, monkeypatch) == _report(layout, 2, monkeypatch)
    lib = gdstk.read_gds(str(layout))     # a met1 sliver in the periphery: a template fails
    per = next(c for c in lib.cells if "_periphery_" in c.name)
    (x0, y0), _ = per.bounding_box()
    g = PDK.gds("met1")
    per.add(gdstk.rectangle((x0 + 1, y0 + 1), (x0 + 1.05, y0 + 1.05), layer=g[0], datatype=g[1]))
    bad = tmp_path / "bad.gds"
    lib.write_gds(str(bad))
    one, two = _report(bad, 1, monkeypatch), _report(bad, 2, monkeypatch)
    assert one == two
    assert dict((n, c) for n, c, _ in two[0])["m1.1"] > 0 and any("fails" in n for n in two[1])

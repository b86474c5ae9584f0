#!/usr/bin/env python
"""Compile-time benchmark for weightfab (a benchmark script, not a test).

Builds synthetic MLP ONNX models (MatMul + Add + Relu, random float32 weights from a seeded
numpy RNG, input [N, in] with a symbolic batch), compiles each one in a fresh subprocess at
int4 / block 4 with drc=False, verify=False, and reports per-stage wall time (from
CompileResult.timings) and the peak RSS of that process. The written layout is then checked by the
fast DRC (signoff/fastdrc.py) and read back (weightfab.signoff.readback.verify_layout against the
quantized network), each in a fresh subprocess, timed (wall and CPU) with its own peak RSS.
Optionally also GDSII (--gds) and the full DRC on the 1M case (--drc). Sizes 1M, 10M, 100M.

    python bench/bench_compile.py [--sizes 1M,10M] [--gds] [--drc] [--keep DIR] [--profile SIZE]

Target: 10M int4 weights as OASIS in < 10 s without DRC, < 2 GiB peak RSS, on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# name -> layer widths (input first). Weight count = sum(a*b for consecutive widths).
SIZES: dict[str, list[int]] = {
    "100K": [256, 256, 128, 10],                        # 99,584 weights (quick smoke run)
    "1M": [512, 1024, 512, 10],                         # 1,053,696 weights
    "10M": [1600, 1600, 1600, 1600, 1600, 10],          # 10,256,000 weights
    "100M": [4096] * 7,                                   # 100,663,296 weights (heavy: minutes, 3-4 GiB)
}
WEIGHTS = "int4"
BLOCK = 4
CALIB_SAMPLES = 64
TARGET_SIZE, TARGET_SECONDS, TARGET_RSS_MIB = "10M", 10.0, 2048
STAGES = ("import", "quantize", "dedup", "floorplan", "layout", "write")
HERE = Path(__file__).resolve()


def n_weights(widths: list[int]) -> int:
    return sum(a * b for a, b in zip(widths, widths[1:]))


def peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS)
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / (1024 * 1024) if sys.platform == "darwin" else r / 1024


# -- model generation (parent process) ------------------------------------------------------

def make_model(size: str, widths: list[int], directory: Path, seed: int) -> tuple[Path, Path]:
    """Write DIR/mlp_SIZE.onnx and DIR/mlp_SIZE.calib.npz; returns both paths."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    cur = "x"
    last = len(widths) - 2
    for i, (fin, fout) in enumerate(zip(widths, widths[1:])):
        w = (rng.standard_normal((fin, fout), dtype=np.float32) * np.float32(np.sqrt(2.0 / fin))).astype(np.float32)
        b = (rng.standard_normal(fout, dtype=np.float32) * np.float32(0.01)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        nodes.append(helper.make_node("MatMul", [cur, f"W{i}"], [f"mm{i}"], name=f"fc{i}"))
        out = "y" if i == last else f"add{i}"
        nodes.append(helper.make_node("Add", [f"mm{i}", f"B{i}"], [out], name=f"fc{i}_bias"))
        if i != last:
            nodes.append(helper.make_node("Relu", [out], [f"relu{i}"], name=f"relu{i}"))
            out = f"relu{i}"
        cur = out
    graph = helper.make_graph(
        nodes, f"mlp_{size}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", widths[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", widths[-1]])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="weightfab-bench")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = directory / f"mlp_{size}.onnx"
    onnx.save(model, str(path))          # well under the 2 GB protobuf limit at these sizes
    calib = directory / f"mlp_{size}.calib.npz"
    np.savez(calib, x=rng.random((CALIB_SAMPLES, widths[0]), dtype=np.float32))
    return path, calib


# -- child jobs (each in a fresh interpreter, so ru_maxrss is per job) ------------------------

def unique_cells(blocks, n_layers: int) -> int:
    """Cells build_library writes: top + one per engine + bit pair + one per distinct non-zero block."""
    from weightfab.mapping.dedup import to_bits
    pats = []
    for lb in blocks.layers:
        bits = to_bits(lb.unique, lb.bits)
        nz = bits.reshape(len(bits), -1).any(axis=1)
        pats.append(np.packbits(bits[nz].reshape(int(nz.sum()), -1), axis=1))
    allp = np.concatenate(pats) if pats else np.zeros((0, 1), np.uint8)
    return 2 + n_layers + (len(np.unique(allp, axis=0)) if len(allp) else 0)


class StageMeter:
    """compile()'s progress hook: the CPU seconds (time.process_time, all threads) of each stage and
    the peak RSS when it ended (ru_maxrss: the process's peak so far)."""

    def __init__(self):
        self.cpu: dict[str, float] = {}
        self.rss: dict[str, float] = {}
        self.last = time.process_time()

    def lap(self, stage: str, seconds: float) -> None:
        now = time.process_time()
        self.cpu[stage] = self.cpu.get(stage, 0.0) + now - self.last
        self.rss[stage] = peak_rss_mib()
        self.last = now

    def step(self, i: int, n: int, what: str) -> None:
        pass


def job_compile(a) -> dict:
    import weightfab
    from weightfab.flow.compile import compile as wf_compile

    rss0 = peak_rss_mib()
    meter = StageMeter()
    prof = None
    if a.profile_out:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t0, c0 = time.perf_counter(), time.process_time()
    meter.last = c0
    res = wf_compile(a.model, a.output, weights=WEIGHTS, block=BLOCK, calib=a.calib, drc=False, verify=False,
                     progress=meter)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if prof is not None:
        prof.disable()
        prof.dump_stats(a.profile_out)
    rss = peak_rss_mib()
    with open(a.qnet_out, "wb") as f:      # for the separate readback job
        pickle.dump(res.qnet, f, protocol=pickle.HIGHEST_PROTOCOL)
    layers = res.blocks.layers
    return {
        "weightfab": weightfab.__version__,
        "timings": res.timings, "cpu_timings": meter.cpu, "stage_peak_rss_mib": meter.rss,
        "wall": wall, "cpu_seconds": cpu, "file_bytes": res.file_bytes,
        "weights": int(sum(l.shape[0] * l.shape[1] for l in layers)),
        "blocks": int(sum(l.blocks for l in layers)),
        "unique_blocks": int(sum(len(l.unique) for l in layers)),
        "cells": unique_cells(res.blocks, len(layers)),
        "rss_start_mib": rss0, "peak_rss_mib": rss,
    }


def job_readback(a) -> dict:
    from weightfab.tech.pdk import load_pdk
    from weightfab.signoff.readback import verify_layout

    pdk = load_pdk("sky130")
    with open(a.qnet_out, "rb") as f:
        qnet = pickle.load(f)
    rss0 = peak_rss_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    v = verify_layout(a.output, qnet, pdk)
    wall = time.perf_counter() - t0
    return {"seconds": wall, "cpu_seconds": time.process_time() - c0, "ok": v.ok, "bits": v.total_bits, "matched": v.matched,
            "mismatches": len(v.mismatches), "arrays": len(v.arrays),
            "rss_start_mib": rss0, "peak_rss_mib": peak_rss_mib()}


def job_drc(a, fast: bool = False) -> dict:
    from weightfab.signoff.drc import run_drc
    from weightfab.tech.pdk import load_pdk

    pdk = load_pdk("sky130")
    t0, c0 = time.perf_counter(), time.process_time()
    rep = run_drc(a.output, pdk, fast=fast)
    wall = time.perf_counter() - t0
    return {"seconds": wall, "cpu_seconds": time.process_time() - c0, "clean": rep.clean,
            "violations": rep.violations, "rules": len(rep.rules), "mode": rep.mode, "notes": list(rep.notes),
            "peak_rss_mib": peak_rss_mib()}


JOBS = {"compile": job_compile, "readback": job_readback, "drc": job_drc,
        "fastdrc": lambda a: job_drc(a, fast=True)}


def run_child(job: str, timeout: float | None = None, **kw) -> dict | None:
    """Run one job in a fresh interpreter; None if it ran past ``timeout`` seconds (it is killed)."""
    cmd = [sys.executable, str(HERE), "--one", job]
    for k, v in kw.items():
        if v is not None:
            cmd += [f"--{k.replace('_', '-')}", str(v)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    proc = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"child job '{job}' failed (exit {p.returncode}): {' '.join(cmd)}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["process_seconds"] = proc       # incl. interpreter start and imports
    return out


# -- report ---------------------------------------------------------------------------------

def fmt_table(rows: list[dict]) -> str:
    head = (["size", "weights", "fmt", "file bytes", "cells"] + list(STAGES)
            + ["total s", "fast DRC s", "readback s", "peak RSS MiB", "DRC RSS MiB", "readback RSS MiB"])
    body = []
    for r in rows:
        c, rb = r["compile"], r["readback"]
        t = c["timings"]
        body.append([r["size"], f"{c['weights']:,}", r["fmt"], f"{c['file_bytes']:,}", f"{c['cells']:,}"]
                    + [f"{t.get(s, 0.0):.2f}" for s in STAGES]
                    + [f"{sum(t.values()):.2f}", f"{r['fastdrc']['seconds']:.2f}" + ("" if r["fastdrc"]["clean"] else " DIRTY"),
                       f"{rb['seconds']:.2f}" + ("" if rb["ok"] else " FAIL"),
                       f"{c['peak_rss_mib']:.0f}", f"{r['fastdrc']['peak_rss_mib']:.0f}", f"{rb['peak_rss_mib']:.0f}"])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(x.rjust(w) if i else x.ljust(w) for i, (x, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def main_parent(args) -> int:
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"unknown size '{s}' (choose from {', '.join(SIZES)})")
    fmts = ["oas"] + (["gds"] if args.gds else [])
    tmp = None
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="wf_bench_")
        work = Path(tmp)
    print(f"weightfab compile benchmark: {WEIGHTS}, block {BLOCK}, drc=False, verify=False; "
          f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; work dir {work}", flush=True)
    rows, drc_res = [], None
    try:
        for size in sizes:
            widths = SIZES[size]
            t0 = time.perf_counter()
            model, calib = make_model(size, widths, work, args.seed)
            shapes = ", ".join(f"{b}x{a}" for a, b in zip(widths, widths[1:]))
            print(f"\n[{size}] layers (out x in): {shapes}; {n_weights(widths):,} weights; "
                  f"model {model.stat().st_size / 2**20:.1f} MiB, generated in {time.perf_counter() - t0:.1f} s", flush=True)
            for fmt in fmts:
                out = work / f"mlp_{size}.{fmt}"
                qn = work / f"mlp_{size}.{fmt}.qnet.pkl"
                prof = None
                if args.profile and size in args.profile.split(",") and fmt == "oas":
                    prof = str(work / f"mlp_{size}.{fmt}.prof")
                c = run_child("compile", model=model, calib=calib, output=out, qnet_out=qn, profile_out=prof)
                t = c["timings"]
                ct, sr = c["cpu_timings"], c["stage_peak_rss_mib"]
                print(f"  {fmt}: compile {sum(t.values()):.2f} s wall, {c['cpu_seconds']:.2f} s CPU (stage wall / CPU s, "
                      "peak RSS MiB at its end: " + ", ".join(f"{k} {v:.2f} / {ct.get(k, 0.0):.2f}, {sr.get(k, 0.0):.0f}"
                                                             for k, v in t.items())
                      + f"), peak RSS {c['peak_rss_mib']:.0f} MiB, {c['file_bytes']:,} bytes, "
                      f"{c['unique_blocks']:,} unique of {c['blocks']:,} blocks, {c['cells']:,} cells"
                      + (" [profiled: times include cProfile overhead]" if prof else ""), flush=True)
                fd = run_child("fastdrc", output=out)
                print(f"  {fmt}: fast DRC {fd['seconds']:.2f} s ({fd['cpu_seconds']:.2f} s CPU), "
                      f"{'clean' if fd['clean'] else str(fd['violations']) + ' violations'}, peak RSS "
                      f"{fd['peak_rss_mib']:.0f} MiB; " + "; ".join(fd["notes"]), flush=True)
                rb = run_child("readback", output=out, qnet_out=qn)
                print(f"  {fmt}: readback {rb['seconds']:.2f} s ({rb['cpu_seconds']:.2f} s CPU), {'ok' if rb['ok'] else 'MISMATCH'} "
                      f"({rb['matched']:,} of {rb['bits']:,} bits, {rb['arrays']} arrays), peak RSS {rb['peak_rss_mib']:.0f} MiB", flush=True)
                rows.append({"size": size, "fmt": fmt, "compile": c, "readback": rb, "fastdrc": fd})
                if prof:
                    show_profile(prof)
                os.unlink(qn)
        if args.drc:   # last, so a slow DRC does not hold up the compile figures
            drc_file = work / "mlp_1M.oas"
            if not drc_file.is_file():
                make_model("1M", SIZES["1M"], work, args.seed)
                run_child("compile", model=work / "mlp_1M.onnx", calib=work / "mlp_1M.calib.npz", output=drc_file,
                          qnet_out=work / "mlp_1M.oas.qnet.pkl")
                os.unlink(work / "mlp_1M.oas.qnet.pkl")
            print(f"\n[1M] full DRC of {drc_file.name} (timeout {args.drc_timeout:.0f} s) ...", flush=True)
            t0 = time.perf_counter()
            drc_res = run_child("drc", timeout=args.drc_timeout, output=drc_file)
            if drc_res is None:
                drc_res = {"timeout": args.drc_timeout, "seconds": time.perf_counter() - t0}
                print(f"  DRC: did not finish within {args.drc_timeout:.0f} s (killed)")
            else:
                print(f"  DRC: {drc_res['seconds']:.2f} s, "
                      f"{'clean' if drc_res['clean'] else str(drc_res['violations']) + ' violations'} "
                      f"({drc_res['rules']} rules), peak RSS {drc_res['peak_rss_mib']:.0f} MiB")
        print("\n" + fmt_table(rows))
        print("\ntimes in seconds (wall, per stage from CompileResult.timings; 'total' = their sum, the compile() call);"
              "\npeak RSS = ru_maxrss of the fresh process that ran the job (includes interpreter + imports).")
        if drc_res and "timeout" in drc_res:
            print(f"full DRC (1M, OASIS): > {drc_res['timeout']:.0f} s (killed at the timeout)")
        elif drc_res:
            print(f"full DRC (1M, OASIS): {drc_res['seconds']:.2f} s, "
                  f"{'clean' if drc_res['clean'] else str(drc_res['violations']) + ' violations'}, "
                  f"peak RSS {drc_res['peak_rss_mib']:.0f} MiB")
        print_targets(rows)
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": rows, "drc": drc_res}, indent=2) + "\n")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


# size -> (seconds, MiB) for the checks of issue 12: 10M fast DRC + readback, 100M compile + fast DRC + readback
CHECK_TARGETS = {"10M": ("fast DRC + readback", 30.0, 4096), "100M": ("compile + fast DRC + readback", 600.0, 16384)}


def print_targets(rows: list[dict]) -> None:
    """The compile target, and per size the time of compile + fast DRC + readback (wall and CPU,
    each job a fresh process) and the largest peak RSS of the three, against its target."""
    for r in rows:
        c, fd, rb = r["compile"], r["fastdrc"], r["readback"]
        if r["size"] == TARGET_SIZE and r["fmt"] == "oas":
            tot = sum(c["timings"].values())
            ok = tot < TARGET_SECONDS and c["peak_rss_mib"] < TARGET_RSS_MIB
            print(f"target {TARGET_SIZE} int4 OASIS < {TARGET_SECONDS:.0f} s and < {TARGET_RSS_MIB} MiB: "
                  f"{tot:.2f} s, {c['peak_rss_mib']:.0f} MiB -> {'MET' if ok else 'NOT MET'}")
        comp = sum(c["timings"].values())
        peak = max(c["peak_rss_mib"], fd["peak_rss_mib"], rb["peak_rss_mib"])
        print(f"{r['size']} {r['fmt']}: compile {comp:.1f} s ({c.get('cpu_seconds', 0.0):.1f} s CPU) + fast DRC {fd['seconds']:.1f} s ({fd['cpu_seconds']:.1f} s CPU)"
              f" + readback {rb['seconds']:.1f} s ({rb['cpu_seconds']:.1f} s CPU) = {comp + fd['seconds'] + rb['seconds']:.1f} s;"
              f" largest peak RSS {peak:.0f} MiB; load average now {os.getloadavg()[0]:.2f}")
        if r["size"] in CHECK_TARGETS and r["fmt"] == "oas":
            what, secs, mib = CHECK_TARGETS[r["size"]]
            got = fd["seconds"] + rb["seconds"] + (comp if r["size"] == "100M" else 0.0)
            mem = peak if r["size"] == "100M" else max(fd["peak_rss_mib"], rb["peak_rss_mib"])
            ok = got <= secs and mem <= mib
            print(f"  target {r['size']} {what} <= {secs:.0f} s and <= {mib} MiB: {got:.1f} s, {mem:.0f} MiB -> "
                  f"{'MET' if ok else 'NOT MET'}")


def show_profile(path: str, n: int = 25) -> None:
    import pstats
    for key in ("tottime", "cumulative"):
        print(f"\n  --- cProfile top {n} by {key} ({path}) ---")
        pstats.Stats(path, stream=sys.stdout).strip_dirs().sort_stats(key).print_stats(n)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1M,10M", help=f"comma-separated, from {', '.join(SIZES)} (default 1M,10M)")
    ap.add_argument("--gds", action="store_true", help="also compile to GDSII")
    ap.add_argument("--drc", action="store_true", help="also run the full DRC on the 1M OASIS file (the fast DRC "
                    "runs on every size)")
    ap.add_argument("--drc-timeout", type=float, default=1800, metavar="S", help="give up on DRC after S seconds (1800)")
    ap.add_argument("--keep", metavar="DIR", help="write models and layouts here and keep them (default: temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", metavar="SIZES", help="cProfile the OASIS compile of these sizes (e.g. 10M)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    # internal: one job in this (fresh) process
    ap.add_argument("--one", choices=list(JOBS), help=argparse.SUPPRESS)
    for opt in ("--model", "--calib", "--output", "--qnet-out", "--profile-out"):
        ap.add_argument(opt, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(JOBS[args.one](args)))
        return 0
    return main_parent(args)


if __name__ == "__main__":
    sys.exit(main())

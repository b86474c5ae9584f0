"""Fault, trim and yield figures on the shared MNIST models (issue 16).

MNIST t10k is split into a calibration half (first 5,000: quantization calibration and trim
fitting) and a held-out half (last 5,000: every accuracy). For each model the layout is compiled
(--no-drc: the layout itself is what the faults act on; readback is checked), then
``weightfab faults`` gives accuracy vs fault rate per kind, the sensitivity and the yield, and
``weightfab calibrate`` fits trims for dies drawn at a via-open rate. Every command is printed.

    python bench/bench_faults.py [--out DIR] [--only mlp-int8,...] [--dies 5]
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MLP = SHARED / "models" / "mnist_mlp_keras2onnx.onnx"
CNN = SHARED / "models" / "mnist-12_onnxzoo_cntk.onnx"
CNN_SCALE = ["--input-scale", "0.00392156862745098"]
CASES = {  # name: (model, weights, compile options, input options, samples for the fault runs, trials, trim dies)
    "mlp-int8": (MLP, "int8", [], [], None, 20, 5),
    "mlp-int4": (MLP, "int4", [], [], None, 20, 5),
    "mlp-int8-msb2": (MLP, "int8", ["--protect", "msb:2"], [], None, 20, 0),
    "mnist12-int8": (CNN, "int8", [], CNN_SCALE, 1000, 6, 2),
    "mnist12-int8-msb2": (CNN, "int8", ["--protect", "msb:2"], CNN_SCALE, 1000, 6, 0),
}
TRIM_RATES = {"mnist12-int8": ("1e-4",), "mlp-int4": ("1e-4",)}   # where time is short: the rate the figures ask for


def sh(args: list, log) -> subprocess.CompletedProcess:
    cmd = " ".join(shlex.quote(str(a)) for a in args)
    print(f"$ {cmd}", file=log, flush=True)
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    print(r.stdout + r.stderr, file=log, flush=True)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {cmd}\n{r.stderr}")
    return r


def split(out: Path) -> tuple[Path, Path]:
    d = np.load(SHARED / "data" / "mnist_t10k.npz")
    x, y = d["images"], d["labels"]
    cal, held = out / "mnist_cal.npz", out / "mnist_held.npz"
    np.savez(cal, x=x[:5000], y=y[:5000])
    np.savez(held, x=x[5000:], y=y[5000:])
    return cal, held


def run_case(name: str, out: Path, cal: Path, held: Path, dies: int, log) -> dict:
    model, weights, copts, extra, samples, trials, case_dies = CASES[name]
    dies = min(dies, case_dies)
    gds = out / f"{name}.gds"
    sh(["weightfab", "compile", model, "-o", gds, "--weights", weights, "--calib", cal, "--data", held,
        "--no-drc", *copts, *extra], log)
    common = ["--model", model, "--calib", cal, *extra]
    few = ["--samples", str(samples)] if samples else []
    sh(["weightfab", "faults", gds, *common, "--data", held, *few, "--trials", str(trials),
        "--yield-trials", str(trials), "--plot", out / f"{name}_faults.png", "--report", out / f"{name}_faults.json"], log)
    rep = json.loads((out / f"{name}_faults.json").read_text())
    trims = []
    for rate in TRIM_RATES.get(name, ("1e-4", "1e-3")):
        for seed in range(dies):
            found = out / f"{name}_die_{rate}_{seed}.json"
            sh(["weightfab", "faults", gds, *common, "--data", held, "--samples", "1", "--trials", "1", "--rate", rate,
                "--kinds", "via-open", "--no-sensitivity", "--no-yield", "--seed", str(seed),
                "--die", f"via-open:{rate}", "--found-out", found], log)
            cal_rep = out / f"{name}_trims_{rate}_{seed}.json"
            sh(["weightfab", "calibrate", "--faults", found, "--data", cal, "--heldout", held, "--report", cal_rep], log)
            r = json.loads(cal_rep.read_text())
            trims.append({"rate": float(rate), "seed": seed, "faulty_bits": r["faulty_bits"], **r["heldout_accuracy"],
                          "chosen": r["chosen"], "register_bits": r["trim_registers"]["total_bits"]})
    return {"faults": rep, "trims": trims}


def summary(name: str, res: dict) -> None:
    rep = res["faults"]
    s = rep["sweep"]
    ca = rep.get("yield", {}).get("engines", [])
    if rep.get("protect") and ca:
        half = len(ca) // 2
        main_sites = sum(e["sites"] for e in ca[:half])
        print(f"\n{name}: protect {rep['protect']}: shadow arrays hold {sum(e['sites'] for e in ca[half:]):,} bit sites, "
              f"{100 * sum(e['sites'] for e in ca[half:]) / main_sites:.1f}% of the {main_sites:,} main sites")
    print(f"\n## {name}: fault-free {100 * s['reference_accuracy']:.2f}% on {s['samples']} held-out samples, "
          f"{s['trials']} trials, seed {s['seed']}")
    rates = sorted({r["rate"] for r in s["table"]})
    print("| kind | " + " | ".join(f"{r:.0e} mean / p5 / worst" for r in rates) + " |")
    print("|---|" + "---|" * len(rates))
    for kind in dict.fromkeys(r["kind"] for r in s["table"]):
        cells = [next(r for r in s["table"] if r["kind"] == kind and r["rate"] == rate) for rate in rates]
        print(f"| {kind} | " + " | ".join(f"{100 * c['mean']:.2f} / {100 * c['p5']:.2f} / {100 * c['worst']:.2f}"
                                          for c in cells) + " |")
    se = rep.get("sensitivity")
    if se:
        print(f"sensitivity (flip rate {se['rate']:.0e}, mean loss in points): "
              + ", ".join(f"{r['label']} {100 * r['mean_loss']:.2f}" for r in reversed(se["per_bit"]))
              + "; layers " + ", ".join(f"{r['name']} {100 * r['mean_loss']:.2f}" for r in se["per_layer"]))
    for rate in sorted({t["rate"] for t in res["trims"]}):
        ts = [t for t in res["trims"] if t["rate"] == rate]
        print(f"via-open {rate:.0e}, {len(ts)} dies, held-out: fault-free {100 * ts[0]['fault_free']:.2f}%, "
              f"faulty {100 * np.mean([t['faulty'] for t in ts]):.2f}% (worst {100 * min(t['faulty'] for t in ts):.2f}), "
              f"trimmed {100 * np.mean([t['trimmed'] for t in ts]):.2f}% (worst {100 * min(t['trimmed'] for t in ts):.2f}); "
              f"trims chosen {[t['chosen'] for t in ts]}, {ts[0]['register_bits']:,} register bits (modelled)")
    y = rep.get("yield")
    if y:
        print(f"yield at D0 {y['d0_per_cm2']}/cm² per layer and defect type, alpha {y['alpha']}, target "
              f"{100 * y['target']:.2f}%: pass(n) " + ", ".join(f"{n}:{p:.2f}" for n, p in zip(y["pass_n"], y["pass_p"])))
        for r in y["table"]:
            print(f"  {r['die_mm2']:9.4f} mm²{' (drawn)' if r['drawn'] else ''}: {r['faults_per_die']:.4g} faults/die, "
                  f"Y0 {r['zero_defect_poisson']:.5f} / Yf {r['functional_poisson']:.5f} "
                  f"(>= {r.get('functional_poisson_low95', float('nan')):.5f}) Poisson, "
                  f"Y0 {r['zero_defect_negbin']:.5f} / Yf {r['functional_negbin']:.5f} "
                  f"(>= {r.get('functional_negbin_low95', float('nan')):.5f}) neg. binomial")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("bench_faults_out"))
    ap.add_argument("--only", default=",".join(CASES))
    ap.add_argument("--dies", type=int, default=5)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    cal, held = split(a.out)
    with open(a.out / "commands.log", "a") as log:
        for name in a.only.split(","):
            res = run_case(name, a.out, cal, held, a.dies, log)
            (a.out / f"{name}_summary.json").write_text(json.dumps(res, indent=1) + "\n")
            summary(name, res)
    print(f"\ncommands and their output: {a.out / 'commands.log'}")


if __name__ == "__main__":
    main()

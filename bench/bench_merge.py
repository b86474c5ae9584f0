#!/usr/bin/env python
"""Lossy block merging benchmark (a script, not a test).

For each model at int4, block 4: calibration part (first half of the data: quantization
calibration, importance statistics, bias correction and the budget search) and held-out part
(second half: every accuracy printed here, except the "search" figures of merge_budget rows).
Rows: exact dedup; merge_budget at the budget with the default noise margin (1 standard error)
and without it (--margins); merge_tol at 1, 2, 3 (all blocks, bias-corrected); baselines: scalar
weight sharing (k-means over single weights per layer, 8 and 4 shared values rounded to valid
integers) and vector quantization (k-means over blocks, k = exact unique / 4 per layer, centroids
rounded to valid integers), both then re-deduplicated.

    python bench/bench_merge.py [--models keras,mnist12,resnet8] [--budget 0.5] [--margins 1,0]
                                [--no-baselines]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from weightfab.mapping.dedup import dedup  # noqa: E402
from weightfab.mapping.merge import accuracy, merge_budget, merge_tol  # noqa: E402
from weightfab.frontend.onnx_import import load_onnx  # noqa: E402
from weightfab.quant.quantize import quantize  # noqa: E402

SHARED = ROOT.parent / "shared"
BLOCK = 4


def data(name):
    if name in ("keras", "mnist12"):
        d = np.load(SHARED / "data/mnist_t10k.npz")
        img, lab = d["images"].astype(np.float32), d["labels"].astype(np.int64)
        x = img[..., None] if name == "keras" else img[:, None] / np.float32(255)
        h = 5000
    else:
        d = np.load(SHARED / "data/cifar10_test_first846.npz")
        x = d["images"].astype(np.float32).transpose(0, 3, 1, 2)
        lab = d["labels"].astype(np.int64)
        h = 423
    return x[:h], lab[:h], x[h:], lab[h:]


MODELS = {   # model file, samples of the calibration part the budget search measures (None: all)
    "keras": ("mnist_mlp_keras2onnx.onnx", None),
    "mnist12": ("mnist-12_onnxzoo_cntk.onnx", None),
    "resnet8": ("mlperftiny_resnet8_fp32_tflite2onnx.onnx", None),
}


def scalar_share(q, k):
    from sklearn.cluster import KMeans
    out = []
    for l in q.layers:
        w = l.weight.astype(np.float64).reshape(-1, 1)
        vals = np.unique(w)
        if len(vals) <= k:
            out.append(l.weight)
            continue
        km = KMeans(n_clusters=k, random_state=0, n_init=4).fit(w)
        qmax = 2 ** (l.bits - 1) - 1
        c = np.clip(np.rint(km.cluster_centers_[:, 0]), -qmax, qmax)
        out.append(c[km.labels_].reshape(l.weight.shape).astype(np.int8))
    return out


def vq(q, lib):
    from sklearn.cluster import KMeans
    out = []
    for l, lb in zip(q.layers, lib.layers):
        n, j = lb.index.shape
        k = max(1, len(lb.unique) // 4)
        blocks = lb.unique[lb.index].reshape(-1, BLOCK).astype(np.float64)
        km = KMeans(n_clusters=k, random_state=0, n_init=1).fit(blocks)
        qmax = 2 ** (l.bits - 1) - 1
        c = np.clip(np.rint(km.cluster_centers_), -qmax, qmax).astype(np.int8)
        w = c[km.labels_].reshape(n, j * BLOCK)[:, : lb.shape[1]]
        out.append(np.ascontiguousarray(w))
    return out


def run(name, budget, margins, baselines):
    fname, search_n = MODELS[name]
    xc, yc, xe, ye = data(name)
    t0 = time.perf_counter()
    net = load_onnx(SHARED / "models" / fname)
    q = quantize(net, xc, "int4")
    lib = dedup(q, BLOCK)
    exact = [len(lb.unique) for lb in lib.layers]
    ex_tot = sum(exact)
    acc_f = float(np.mean(np.argmax(net.forward(xe), 1) == ye))
    acc_q = accuracy(q, xe, ye)
    print(f"\n== {fname} (int4, block {BLOCK}; calibration/search {len(yc)}"
          f"{'' if not search_n else f' (budget search on the first {search_n})'}, held-out {len(ye)}) ==")
    print(f"layers: {', '.join(f'{l.name} {l.shape}' for l in q.layers)}")
    print(f"float held-out accuracy {100 * acc_f:.2f}%")
    hdr = f"{'method':<34} {'unique blocks':>13} {'vs exact':>8} {'held-out acc':>12} {'loss pp':>8}  per layer"
    print(hdr)
    print("-" * len(hdr))

    def row(label, weights, biases=None, note=""):
        qq = q.with_weights(weights) if biases is None else __import__("weightfab.mapping.merge", fromlist=["_with"])._with(q, weights, biases)
        u = [len(lb.unique) for lb in dedup(qq, BLOCK).layers]
        a = accuracy(qq, xe, ye)
        print(f"{label:<34} {sum(u):>13} {ex_tot / max(sum(u), 1):>7.2f}x {100 * a:>11.2f}% {100 * (acc_q - a):>8.2f}  {u} {note}",
              flush=True)

    print(f"{'exact dedup':<34} {ex_tot:>13} {1:>7.2f}x {100 * acc_q:>11.2f}% {0:>8.2f}  {exact}", flush=True)
    sx, sy = (xc, yc) if not search_n else (xc[:search_n], yc[:search_n])
    for margin in margins:
        t = time.perf_counter()
        r = merge_budget(q, BLOCK, sx, sy, budget, calib=xc, margin=margin)
        dt = time.perf_counter() - t
        row(f"merge_budget {budget} pp, margin {margin:g}", r.weights, r.biases,
            f"search acc {100 * r.accuracy_quantized:.2f}->{100 * r.accuracy_merged:.2f}% (loss "
            f"{100 * (r.accuracy_quantized - r.accuracy_merged):.2f} pp) on {r.samples}; {len(r.history)} evals, "
            f"{dt:.1f} s; stopped: {r.stopped_because}")
    if not baselines:
        print(f"({time.perf_counter() - t0:.1f} s)")
        return
    for tol in (1, 2, 3):
        m = merge_tol(q, BLOCK, tol, calib=xc)
        row(f"merge_tol {tol} (all blocks, bias-corr.)", m.weights, m.biases)
    for k in (8, 4):
        row(f"scalar sharing k-means {k} values", scalar_share(q, k))
    row("VQ k-means, k = exact/4 per layer", vq(q, lib))
    print(f"({time.perf_counter() - t0:.1f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="keras,mnist12,resnet8")
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--margins", default="1,0", help="noise margins (standard errors) of the budget search")
    ap.add_argument("--no-baselines", action="store_true", help="only exact dedup and merge_budget")
    a = ap.parse_args()
    margins = [float(v) for v in a.margins.split(",") if v.strip()]
    for m in a.models.split(","):
        run(m.strip(), a.budget, margins, not a.no_baselines)


if __name__ == "__main__":
    main()

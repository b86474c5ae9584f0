#!/usr/bin/env python
"""int8/int4/int2 accuracy with nearest and optimized rounding, calibration and evaluation disjoint
(a script, not a test).

MNIST models: calibrated (and, with --rounding optimized, fitted) on the first 1,000 test images,
evaluated on the other 9,000. ResNet8: the 846 CIFAR images split in halves, calibration on the
first 423, evaluation on the last 423. Accuracy is the bit-accurate integer simulation's (the chip's).

    python bench/bench_quant.py [--models keras,mnist12,resnet8] [--formats int4,int2] [--roundings nearest,optimized]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from weightfab.frontend.onnx_import import load_onnx  # noqa: E402
from weightfab.quant.quantize import quantize, run_integer  # noqa: E402

SHARED = ROOT.parent / "shared"


def data(name):
    """(model file, calibration inputs, evaluation inputs, evaluation labels)."""
    if name in ("keras", "mnist12"):
        d = np.load(SHARED / "data/mnist_t10k.npz")
        img, lab = d["images"].astype(np.float32), d["labels"].astype(np.int64)
        x = img[..., None] if name == "keras" else img[:, None] / np.float32(255)
        file = "mnist_mlp_keras2onnx.onnx" if name == "keras" else "mnist-12_onnxzoo_cntk.onnx"
        return file, x[:1000], x[1000:], lab[1000:]
    d = np.load(SHARED / "data/cifar10_test_first846.npz")
    x = d["images"].astype(np.float32).transpose(0, 3, 1, 2)
    return "mlperftiny_resnet8_fp32_tflite2onnx.onnx", x[:423], x[423:], d["labels"].astype(np.int64)[423:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="keras,mnist12,resnet8")
    ap.add_argument("--formats", default="int8,int4,int2")
    ap.add_argument("--roundings", default="nearest,optimized")
    args = ap.parse_args()
    print(f"{'model':<9} {'format':<7} {'rounding':<10} {'float':>7} {'chip':>7} {'drop pp':>8} {'seconds':>8}")
    for name in args.models.split(","):
        file, cal, x, y = data(name)
        net = load_onnx(SHARED / "models" / file)
        flt = float(np.mean(np.concatenate([net.forward(x[s:s + 500]).argmax(1) for s in range(0, len(x), 500)]) == y))
        for fmt in args.formats.split(","):
            for rounding in args.roundings.split(","):
                t = time.perf_counter()
                q = quantize(net, cal, fmt, rounding)
                secs = time.perf_counter() - t
                acc = float(np.mean(run_integer(q, x).argmax(1) == y))
                print(f"{name:<9} {fmt:<7} {rounding:<10} {flt:>7.2%} {acc:>7.2%} {100 * (flt - acc):>8.2f} {secs:>8.1f}",
                      flush=True)


if __name__ == "__main__":
    main()

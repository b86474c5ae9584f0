#!/usr/bin/env python
"""Accuracy of the weight formats on the shared models (a script, not a test).

Quantized model, bit-accurate integer simulation (the chip's arithmetic). MNIST models: calibrated on
the first 500 test images, evaluated on all 10,000; ResNet8: calibrated and evaluated on the 846
CIFAR images (the conventions of the README accuracy table).

    python bench/bench_formats.py [--formats int4,int4-mse,int2,int2-mse] [--models keras,mnist12,resnet8]
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
    """(model file, inputs, labels, calibration inputs)."""
    if name in ("keras", "mnist12"):
        d = np.load(SHARED / "data/mnist_t10k.npz")
        img, lab = d["images"].astype(np.float32), d["labels"].astype(np.int64)
        if name == "keras":
            return "mnist_mlp_keras2onnx.onnx", img[..., None], lab, img[:500, ..., None]
        x = img[:, None] / np.float32(255)
        return "mnist-12_onnxzoo_cntk.onnx", x, lab, x[:500]
    d = np.load(SHARED / "data/cifar10_test_first846.npz")
    x = d["images"].astype(np.float32).transpose(0, 3, 1, 2)
    return "mlperftiny_resnet8_fp32_tflite2onnx.onnx", x, d["labels"].astype(np.int64), x


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--formats", default="int4,int4-mse,int2,int2-mse")
    ap.add_argument("--models", default="keras,mnist12,resnet8")
    args = ap.parse_args()
    formats = args.formats.split(",")
    print(f"{'model':<10} {'samples':>7}  " + "  ".join(f"{f:>9}" for f in formats) + "  seconds")
    for name in args.models.split(","):
        t = time.perf_counter()
        file, x, y, cal = data(name)
        net = load_onnx(SHARED / "models" / file)
        accs = [np.mean(np.argmax(run_integer(quantize(net, cal, f), x), 1) == y) for f in formats]
        print(f"{name:<10} {len(y):>7}  " + "  ".join(f"{a:>9.2%}" for a in accs) + f"  {time.perf_counter() - t:7.1f}",
              flush=True)


if __name__ == "__main__":
    main()

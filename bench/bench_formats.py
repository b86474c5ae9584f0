#!/usr/bin/env python
"""Accuracy of the weight formats on the shared models (a script, not a test).

Quantized model, bit-accurate integer simulation (the chip's arithmetic). MNIST models: calibrated on
the first 500 test images, evaluated on all 10,000; ResNet8: calibrated and evaluated on the 846
CIFAR images (the conventions of the README accuracy table).

    python bench/bench_formats.py [--formats int4,int4-mse,int2,int2-mse] [--models keras,mnist12,resnet8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import SHARED, shared_set  # puts the checkout on sys.path
from weightfab.frontend.onnx_import import load_onnx
from weightfab.quant.quantize import quantize, run_integer


def data(name):
    """(model file, inputs, labels, calibration inputs)."""
    file, x, lab = shared_set(name)
    return file, x, lab, (x[:500] if name in ("keras", "mnist12") else x)


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

"""What the benchmark scripts share: the checkout on ``sys.path`` (import this module before weightfab)
and the shared models' test sets."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


def shared_set(name: str) -> tuple[str, np.ndarray, np.ndarray]:
    """(model file in SHARED/models, inputs shaped as the model takes them, labels) of the model ``name``:
    "keras" and "mnist12" on the 10,000 MNIST test images, "resnet8" on the 846 CIFAR-10 images."""
    if name in ("keras", "mnist12"):
        d = np.load(SHARED / "data/mnist_t10k.npz")
        img, lab = d["images"].astype(np.float32), d["labels"].astype(np.int64)
        if name == "keras":
            return "mnist_mlp_keras2onnx.onnx", img[..., None], lab
        return "mnist-12_onnxzoo_cntk.onnx", img[:, None] / np.float32(255), lab
    d = np.load(SHARED / "data/cifar10_test_first846.npz")
    x = d["images"].astype(np.float32).transpose(0, 3, 1, 2)
    return "mlperftiny_resnet8_fp32_tflite2onnx.onnx", x, d["labels"].astype(np.int64)

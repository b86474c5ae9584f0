"""Regenerate the shipped sample files in samples/.

Trains a small MLP (64-32-16-10, ReLU) on scikit-learn's bundled copy of the
UCI handwritten digits data set, exports it to ONNX and writes calibration and
test sets next to it:

    digits_mlp.onnx    float32 model, input "x" [N, 8, 8] raw pixels 0..16,
                       output "probs" [N, 10] softmax probabilities
    digits_mlp.calib.npz   x: float32 [200, 8, 8], drawn from the training split
    digits_mlp.test.npz    x: float32 [500, 8, 8], y: int64 [500]

Everything is seeded, so repeated runs produce byte-identical files. The .npz
files are written with np.savez (uncompressed): numpy writes every zip member
with the fixed zip timestamp 1980-01-01, and leaving out deflate keeps the
bytes independent of the zlib build.

Usage: python samples/make_samples.py
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits

OUT_DIR = Path(__file__).resolve().parent
SEED = 0
N_TEST = 500
N_CALIB = 200
SIZES = (64, 32, 16, 10)
EPOCHS = 60
BATCH = 32
LR = 1e-3
PIXEL_MAX = 16.0  # digits pixels are integers 0..16


def load_split(rng):
    """Return (x_train, y_train, x_test, y_test) with x as float32 [n, 8, 8]."""
    digits = load_digits()
    x = digits.images.astype(np.float32)
    y = digits.target.astype(np.int64)
    perm = rng.permutation(len(x))
    train, test = perm[:-N_TEST], perm[-N_TEST:]
    return x[train], y[train], x[test], y[test]


def init_params(rng):
    """He-initialised weights in the layouts used by the exported graph."""
    d0, d1, d2, d3 = SIZES
    f32 = np.float32
    return {
        "w1": (rng.standard_normal((d1, d0)) * np.sqrt(2.0 / d0)).astype(f32),  # [out, in]
        "b1": np.zeros(d1, f32),
        "w2": (rng.standard_normal((d1, d2)) * np.sqrt(2.0 / d1)).astype(f32),  # [in, out]
        "b2": np.zeros(d2, f32),
        "w3": (rng.standard_normal((d3, d2)) * np.sqrt(2.0 / d2)).astype(f32),  # [out, in]
        "b3": np.zeros(d3, f32),
    }


def forward(p, x):
    """x: float32 [n, 64]. Returns logits and the activations needed for backprop."""
    h1 = np.maximum(x @ p["w1"].T + p["b1"], 0)
    h2 = np.maximum(h1 @ p["w2"] + p["b2"], 0)
    return h2 @ p["w3"].T + p["b3"], (h1, h2)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def train(x, y, rng):
    """Mini-batch Adam on softmax cross-entropy. x: float32 [n, 64] scaled to 0..1."""
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            xb, yb = x[idx], y[idx]
            logits, (h1, h2) = forward(p, xb)
            # Gradient of the mean cross-entropy with respect to the logits.
            d3 = softmax(logits)
            d3[np.arange(len(yb)), yb] -= 1
            d3 /= len(yb)
            d2 = (d3 @ p["w3"]) * (h2 > 0)
            d1 = (d2 @ p["w2"].T) * (h1 > 0)
            grads = {
                "w3": d3.T @ h2, "b3": d3.sum(0),
                "w2": h1.T @ d2, "b2": d2.sum(0),
                "w1": d1.T @ xb, "b1": d1.sum(0),
            }
            step += 1
            lr_t = LR * np.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
            for k, g in grads.items():
                m[k] = beta1 * m[k] + (1 - beta1) * g
                v[k] = beta2 * v[k] + (1 - beta2) * g * g
                p[k] = (p[k] - lr_t * m[k] / (np.sqrt(v[k]) + eps)).astype(np.float32)
    return p


def build_model(p):
    """Flatten -> Gemm -> Relu -> MatMul + Add -> Relu -> Gemm -> Softmax."""
    inits = [numpy_helper.from_array(p[k], name) for k, name in [
        ("w1", "fc1.weight"), ("b1", "fc1.bias"),
        ("w2", "fc2.weight"), ("b2", "fc2.bias"),
        ("w3", "fc3.weight"), ("b3", "fc3.bias"),
    ]]
    nodes = [
        helper.make_node("Flatten", ["x"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["fc1"],
                         name="fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["relu1"], name="relu1"),
        helper.make_node("MatMul", ["relu1", "fc2.weight"], ["fc2_mm"], name="fc2_matmul"),
        helper.make_node("Add", ["fc2_mm", "fc2.bias"], ["fc2"], name="fc2_add"),
        helper.make_node("Relu", ["fc2"], ["relu2"], name="relu2"),
        helper.make_node("Gemm", ["relu2", "fc3.weight", "fc3.bias"], ["logits"],
                         name="fc3", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_mlp",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 8])],
        outputs=[helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", SIZES[-1]])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="weightfab samples",
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    rng = np.random.default_rng(SEED)
    x_train, y_train, x_test, y_test = load_split(rng)
    calib = x_train[rng.choice(len(x_train), N_CALIB, replace=False)]

    params = train(x_train.reshape(len(x_train), -1) / PIXEL_MAX, y_train, rng)
    # Fold the input scaling into the first layer so the model takes raw pixels.
    # Dividing by 16 is exact in float32, so the folded model computes the same
    # first-layer products as the trained one.
    params["w1"] = params["w1"] / np.float32(PIXEL_MAX)

    model = build_model(params)
    model_path = OUT_DIR / "digits_mlp.onnx"
    onnx.save_model(model, model_path)
    np.savez(OUT_DIR / "digits_mlp.calib.npz", x=calib)
    np.savez(OUT_DIR / "digits_mlp.test.npz", x=x_test, y=y_test)

    # Evaluate the exported float model with numpy and with onnxruntime.
    np_probs = softmax(forward(params, x_test.reshape(len(x_test), -1))[0])
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    ort_probs = sess.run(["probs"], {"x": x_test})[0]
    np_acc = float(np.mean(np_probs.argmax(1) == y_test))
    ort_acc = float(np.mean(ort_probs.argmax(1) == y_test))
    assert np_acc == ort_acc, (np_acc, ort_acc)
    assert np.allclose(np_probs, ort_probs, atol=1e-5), np.abs(np_probs - ort_probs).max()

    print(f"test accuracy (numpy):       {np_acc:.4f}")
    print(f"test accuracy (onnxruntime): {ort_acc:.4f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""int8/int4/int2 accuracy with nearest and optimized rounding, calibration and evaluation disjoint
(a script, not a test).

MNIST models: calibrated (and, with --rounding optimized, fitted) on the first 1,000 test images,
evaluated on the other 9,000. ResNet8: the 846 CIFAR images split in halves, calibration on the
first 423, evaluation on the last 423. Accuracy is the bit-accurate integer simulation's (the chip's).

    python bench/bench_quant.py [--models keras,mnist12,resnet8] [--formats int4,int2] [--roundings nearest,optimized]

With --onnxruntime: the chip's integer outputs against onnxruntime's on the quantized ONNX formats (the
shared QDQ models; ResNet8 made QDQ, QOperator and integer-op by onnxruntime.quantization, calibrated
on the first 100 CIFAR images): share of output codes equal (before the final softmax) and of arg-max.

    python bench/bench_quant.py --onnxruntime
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from common import SHARED, shared_set  # puts the checkout on sys.path
from weightfab.frontend.onnx_import import load_onnx
from weightfab.quant.quantize import quantize, run_integer


def data(name):
    """(model file, calibration inputs, evaluation inputs, evaluation labels)."""
    file, x, lab = shared_set(name)
    n = 1000 if name in ("keras", "mnist12") else 423
    return file, x[:n], x[n:], lab[n:]


def ort_logits(model: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    step = inp.shape[0] if isinstance(inp.shape[0], int) else 256
    return np.concatenate([sess.run(None, {inp.name: x[s:s + step]})[0] for s in range(0, len(x), step)])


def before_softmax(path) -> tuple[bytes, int | None]:
    """The model cut at its (QLinear)Softmax input, and the zero point of integer logits."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(path))
    g = m.graph
    sm = [i for i, n in enumerate(g.node) if n.op_type in ("Softmax", "QLinearSoftmax")]
    if not sm:
        return m.SerializeToString(), None
    node, keep = g.node[sm[0]], list(g.node)[:sm[0]]
    del g.node[:]
    g.node.extend(keep)
    g.output[0].name = node.input[0]
    del g.output[0].type.tensor_type.shape.dim[:]
    zp = None
    if node.op_type == "QLinearSoftmax":
        z = next(t for t in g.initializer if t.name == node.input[2])
        zp, g.output[0].type.tensor_type.elem_type = int(numpy_helper.to_array(z).reshape(-1)[0]), z.data_type
    return m.SerializeToString(), zp


def agreement(path, cal, x, y=None, codes=True) -> str:
    q = quantize(load_onnx(path), cal)
    ours = run_integer(q, x)
    model, zp = before_softmax(path)
    out = ort_logits(model, x).reshape(len(x), -1)
    ref = out.astype(np.int64) - zp if zp is not None else np.rint(out / q.tq[q.output].scale).astype(np.int64)
    line = (f"codes equal {np.mean(ours == ref):8.4%}" if codes else "codes equal      n/a") + \
        f"  argmax equal {np.mean(ours.argmax(1) == ref.argmax(1)):8.4%}"
    if y is not None:
        line += f"  accuracy chip {np.mean(ours.argmax(1) == y):.2%} onnxruntime {np.mean(ref.argmax(1) == y):.2%}"
    return line


def onnxruntime_table() -> None:
    import tempfile

    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)
    m = np.load(SHARED / "data/mnist_t10k.npz")
    xm = ((m["images"][:2000].astype(np.float32) / 255 - 0.1307) / 0.3081)[:, None]
    xk = np.random.default_rng(0).normal(0, 1, (500, 490)).astype(np.float32)
    print("tiny CNN QDQ (2,000 MNIST)   ", agreement(SHARED / "models/mnist_tinycnn_pytorch_qdq_opset17.onnx", xm, xm),
          flush=True)
    print("KWS DS-CNN QDQ (500 random)  ", agreement(SHARED / "models/mlperftiny_kws_dscnn_int8_qdq_tf2onnx.onnx", xk, xk),
          flush=True)
    _, cal, x, y = data("resnet8")
    tmp = Path(tempfile.mkdtemp())
    src = tmp / "r8.onnx"
    onnx.save(version_converter.convert_version(onnx.load(SHARED / "models/mlperftiny_resnet8_fp32_tflite2onnx.onnx"),
                                                13), src)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input_1": cal[i:i + 1]} for i in range(100)])

        def get_next(self):
            return next(self.it, None)

    for fmt in ("QDQ", "QOperator"):
        quantize_static(str(src), str(tmp / f"{fmt}.onnx"), Reader(), quant_format=getattr(QuantFormat, fmt),
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        print(f"ResNet8 {fmt:<9} (423 held out)", agreement(tmp / f"{fmt}.onnx", cal, x, y), flush=True)
    quantize_dynamic(str(src), str(tmp / "dyn.onnx"), weight_type=QuantType.QUInt8, op_types_to_quantize=["Conv", "Gemm"])
    # float logits: the chip's activation grid is calibrated, onnxruntime's is computed per input
    print("ResNet8 dynamic   (423 held out)", agreement(tmp / "dyn.onnx", cal, x, y, codes=False), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="keras,mnist12,resnet8")
    ap.add_argument("--formats", default="int8,int4,int2")
    ap.add_argument("--roundings", default="nearest,optimized")
    ap.add_argument("--onnxruntime", action="store_true", help="agreement with onnxruntime on quantized formats")
    args = ap.parse_args()
    if args.onnxruntime:
        return onnxruntime_table()
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

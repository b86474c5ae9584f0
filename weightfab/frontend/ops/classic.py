"""Linear models of classic ML exporters (``ai.onnx.ml``): LinearClassifier as one Dense layer.

The chip outputs the class scores before ``post_transform`` (softmax, logistic and probit keep the
order of the classes, so the arg-max is the same); the label output is the class at the arg-max.
"""
from __future__ import annotations

import numpy as np

from ..network import Dense
from . import handler

ML = "ai.onnx.ml"


@handler("LinearClassifier", domain=ML)
def linear_classifier(im, n, *, coefficients, intercepts=None, multi_class=0, post_transform="NONE",
                      classlabels_ints=None, classlabels_strings=None):
    labels = classlabels_ints if classlabels_ints is not None else classlabels_strings
    features = int(np.prod(n.shape))
    coef = np.asarray(coefficients, np.float32)
    rows = coef.size // max(features, 1)
    if len(n.shape) != 1 or rows * features != coef.size:
        im.fail(n.node, f"{coef.size} coefficients do not fit [batch, {features}] inputs")
    w = coef.reshape(rows, features)
    b = np.asarray(intercepts if intercepts is not None else np.zeros(rows), np.float32).reshape(-1)
    if b.size != rows:
        im.fail(n.node, f"{b.size} intercepts for {rows} classes")
    if rows == 1 and labels is not None and len(labels) == 2:  # binary: class 1 scores s, class 0 scores -s
        w, b = np.concatenate([-w, w]), np.concatenate([-b, b])
    im.emit(Dense(n.name, (n.x,), n.node.output[1] if len(n.node.output) > 1 else n.out, w, b))

"""The typed network the importer builds and every later stage reads (no ONNX here)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dense:
    """y = act(W x + b); ``weight`` is [out, in] float32, ``bias`` is [out]."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    relu: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.weight.shape)


@dataclass(frozen=True)
class Network:
    """A chain of Dense layers on a flattened input; ``softmax`` marks an arg-max-preserving output."""

    name: str
    input_name: str
    input_shape: tuple[int, ...]  # one sample, batch dimension removed
    layers: tuple[Dense, ...]
    softmax: bool = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Float reference forward pass (logits; the softmax, if any, is not applied)."""
        h = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        for layer in self.layers:
            h = h @ layer.weight.T + layer.bias
            if layer.relu:
                h = np.maximum(h, 0)
        return h

    def activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Input and every layer's output, float, for calibration."""
        h = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        out = [h]
        for layer in self.layers:
            h = h @ layer.weight.T + layer.bias
            if layer.relu:
                h = np.maximum(h, 0)
            out.append(h)
        return out

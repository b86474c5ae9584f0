"""Sample inputs and labels from .npz files.

A file holds the model's inputs under ``x`` (or ``images``) and, for accuracy, the labels
under ``y`` (or ``labels``). Inputs are reshaped to the model's input shape when the number
of values per sample matches; ``scale`` and ``offset`` map stored values to model inputs
(x_model = x · scale + offset), for data kept as raw pixels.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import WeightfabError


def load_npz(path: str | Path, sample_shape: tuple[int, ...], need_labels: bool,
             scale: float = 1.0, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            xkey = "x" if "x" in keys else "images" if "images" in keys else None
            ykey = "y" if "y" in keys else "labels" if "labels" in keys else None
            if xkey is None:
                raise WeightfabError(f"{path}: no 'x' (or 'images') array; found {', '.join(sorted(keys)) or 'nothing'}")
            x = np.asarray(f[xkey])
            y = np.asarray(f[ykey]) if ykey else None
    except FileNotFoundError:
        raise WeightfabError(f"{path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise WeightfabError(f"{path}: not a readable .npz file ({exc})") from None
    if need_labels and y is None:
        raise WeightfabError(f"{path}: no 'y' (or 'labels') array for the accuracy")
    per = int(np.prod(sample_shape))
    if x.ndim < 1 or len(x) == 0 or x[0].size != per:
        raise WeightfabError(f"{path}: '{xkey}' has samples of shape {x.shape[1:]}, the model takes {sample_shape}")
    x = x.reshape((len(x), *sample_shape)).astype(np.float32) * np.float32(scale) + np.float32(offset)
    if not np.all(np.isfinite(x)):
        raise WeightfabError(f"{path}: '{xkey}' holds NaN or infinite values")
    if y is not None:
        y = y.reshape(-1).astype(np.int64)
        if len(y) != len(x):
            raise WeightfabError(f"{path}: {len(x)} inputs but {len(y)} labels")
    return x, y

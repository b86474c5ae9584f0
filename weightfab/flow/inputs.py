"""Sample inputs and labels from .npz files, and the one resolver of calibration and data inputs.

A file holds the model's inputs under ``x`` (or ``images``) and, for accuracy, the labels
under ``y`` (or ``labels``). Inputs are reshaped to the model's input shape when the number
of values per sample matches; ``scale`` and ``offset`` map stored values to model inputs
(x_model = x · scale + offset), for data kept as raw pixels. Labels are integer class
indices below the model's number of outputs.

Calibration (compile, verify and inspect all resolve it here): ``--calib FILE``, else
``MODEL.calib.npz`` beside the model, else the ``--data`` inputs, which is said on stderr and in the
report (the set that measures the accuracy then also calibrated the model), else an error when the
caller needs activations calibrated. ``verify`` compares weight bits, which do not depend on the
calibration, and goes on without one.
"""
from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError

NPZ_MAGIC = b"PK"          # an .npz file is a zip archive of .npy arrays
NPY_MAGIC = b"\x93NUMPY"


def _read_arrays(path: Path) -> tuple[str, np.ndarray, np.ndarray | None]:
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not an .npz file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not magic.startswith(NPZ_MAGIC):
        what = "a single .npy array" if magic == NPY_MAGIC else "empty" if not magic else "not a zip archive"
        raise DataError(f"{path}: not an .npz file ({what}); save inputs with numpy.savez(path, x=..., y=...)")
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            xkey = "x" if "x" in keys else "images" if "images" in keys else None
            ykey = "y" if "y" in keys else "labels" if "labels" in keys else None
            if xkey is None:
                raise DataError(f"{path}: no 'x' (or 'images') array; found {', '.join(sorted(keys)) or 'nothing'}")
            x = np.asarray(f[xkey])
            y = np.asarray(f[ykey]) if ykey else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = "holds Python objects, not plain arrays" if "pickle" in str(exc) else (str(exc).splitlines() or ["damaged"])[0]
        raise DataError(f"{path}: not a readable .npz file ({reason})") from None
    return xkey, x, y


def load_npz(path: str | Path, sample_shape: tuple[int, ...], need_labels: bool,
             scale: float = 1.0, offset: float = 0.0, classes: int | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Inputs (float32, [n, *sample_shape]) and labels (int64 or None) of one file."""
    path = Path(path)
    check_scale(scale, offset)
    xkey, x, y = _read_arrays(path)
    if need_labels and y is None:
        raise DataError(f"{path}: no 'y' (or 'labels') array for the accuracy")
    per = int(np.prod(sample_shape))
    if x.ndim < 1 or len(x) == 0:
        raise DataError(f"{path}: '{xkey}' holds no samples (shape {x.shape})")
    if x.dtype.kind not in "fiub":
        raise DataError(f"{path}: '{xkey}' holds {x.dtype} values, not numbers")
    if x[0].size != per:
        raise DataError(f"{path}: '{xkey}' has samples of shape {x.shape[1:]} ({x[0].size} values), "
                        f"the model takes {sample_shape} ({per} values)")
    x = x.reshape((len(x), *sample_shape)).astype(np.float32) * np.float32(scale) + np.float32(offset)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path}: '{xkey}' holds NaN or infinite values")
    if y is not None:
        y = _labels(path, y, len(x), classes)
    return x, y


def _labels(path: Path, y: np.ndarray, n: int, classes: int | None) -> np.ndarray:
    y = y.reshape(-1)
    if y.dtype.kind not in "iubf":
        raise DataError(f"{path}: labels are {y.dtype} values, expected integer class indices")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        bad = y[~(np.isfinite(y) & (y == np.round(y)))][0]
        raise DataError(f"{path}: label {bad} is not an integer class index")
    if len(y) != n:
        raise DataError(f"{path}: {n} inputs but {len(y)} labels")
    y = y.astype(np.int64)
    if classes is not None and len(y) and (y.min() < 0 or y.max() >= classes):
        bad = int(y[(y < 0) | (y >= classes)][0])
        raise DataError(f"{path}: label {bad} is outside the model's {classes} classes (0..{classes - 1})")
    return y


def check_scale(scale: float, offset: float) -> None:
    for name, v in (("--input-scale", scale), ("--input-offset", offset)):
        if not math.isfinite(v):
            raise UsageError(f"{name} {v}: must be a finite number")


def default_calibration(model: Path) -> Path | None:
    p = Path(model).with_suffix(".calib.npz")
    return p if p.is_file() else None


@dataclass
class Inputs:
    """Resolved calibration and data inputs, and where the calibration came from."""
    calib_x: np.ndarray | None
    calib_source: str                 # "file", "default", "data" or "none"
    calib_file: Path | None
    data_x: np.ndarray | None = None
    data_y: np.ndarray | None = None
    data_file: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """The report's "calibration" entry."""
        return {"source": self.calib_source, "file": None if self.calib_file is None else str(self.calib_file),
                "samples": None if self.calib_x is None else int(len(self.calib_x)),
                "note": "calibrated on the data the accuracy is measured on" if self.calib_source == "data" else None}


def resolve_inputs(model: str | Path, net, calib=None, data=None, scale: float = 1.0, offset: float = 0.0,
                   required: bool = True) -> Inputs:
    """The calibration and data inputs for ``net`` (see the module docstring for the order)."""
    model = Path(model)
    check_scale(scale, offset)
    classes = net_classes(net)
    data_x = data_y = None
    if data:
        data_x, data_y = load_npz(data, net.input_shape, True, scale, offset, classes)
    if calib:
        cx, _ = load_npz(calib, net.input_shape, False, scale, offset)
        return Inputs(cx, "file", Path(calib), data_x, data_y, data and Path(data))
    default = default_calibration(model)
    if default is not None:
        cx, _ = load_npz(default, net.input_shape, False, scale, offset)
        return Inputs(cx, "default", default, data_x, data_y, data and Path(data))
    if data_x is not None:
        warn = (f"no calibration file (--calib, or {model.with_suffix('.calib.npz').name} beside the model): "
                f"calibrating on --data {data}, the set the accuracy is measured on")
        return Inputs(data_x, "data", Path(data), data_x, data_y, Path(data), [warn])
    if required:
        raise DataError(f"{model}: no calibration inputs: give --calib FILE.npz (array 'x'), "
                        f"or put {model.with_suffix('.calib.npz').name} beside the model, or give --data")
    return Inputs(None, "none", None)


def net_classes(net) -> int | None:
    """Number of outputs per sample (the classes labels index), from a batch-1 probe of the network."""
    try:
        out = net.forward(np.zeros((1, *net.input_shape), np.float32))
    except Exception:  # a network the float model cannot run is reported by the stage that needs it
        return None
    return int(np.prod(out.shape[1:]))

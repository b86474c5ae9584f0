"""Errors that carry their own exit code and a one-line message, and the one map from outcomes to exit codes.

Exit codes (the README's "Exit codes" section): 0 success; 1 any error (bad model, PDK, data, path or
usage; one line on stderr); 2 DRC violations; 3 readback mismatch; 130 interrupted (SIGINT).
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_DRC = 2
EXIT_VERIFY = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


class WeightfabError(Exception):
    """A failure the user can act on. ``str(err)`` is one line; ``exit_code`` is for the CLI."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class UsageError(WeightfabError):
    """Options that contradict each other or paths that would destroy an input or another output."""


class ModelError(WeightfabError):
    """The ONNX model is malformed, unsupported, or holds bad values."""


class PdkError(WeightfabError):
    """A PDK file is missing, malformed, or inconsistent."""


class DataError(WeightfabError):
    """A calibration or data file is missing, malformed, or does not fit the model."""


class OutputError(WeightfabError):
    """An output could not be written completely (full disk, permissions, missing directory)."""


class DrcError(WeightfabError):
    """The layout violates the PDK's rule deck."""

    exit_code = EXIT_DRC


class VerifyError(WeightfabError):
    """The layout does not encode the model (readback mismatch, or an electrical check failed)."""

    exit_code = EXIT_VERIFY


class LayoutReadError(WeightfabError):
    """A layout file cannot be read as a weightfab ROM layout."""


def outcome_error(drc=None, verified: bool | None = None, what: str = "") -> WeightfabError | None:
    """The error a finished run ends with, or None when every check that ran passed: DRC
    violations first (exit 2), then a readback mismatch (exit 3). ``drc`` is a DrcReport or None
    (not run); ``verified`` is None when the readback did not run."""
    where = f"{what}: " if what else ""
    if drc is not None and not drc.clean:
        failing = ", ".join(r.name for r in drc.failing()[:5]) + (", ..." if len(drc.failing()) > 5 else "")
        return DrcError(f"{where}{drc.violations} DRC violations ({failing})")
    if verified is False:
        return VerifyError(f"{where}the layout does not hold the model's weights (readback mismatch)")
    return None


def memory_message(exc: BaseException) -> str:
    """'out of memory' with the size that was asked for, when the allocator said it (numpy does)."""
    text = " ".join(str(exc).split())
    return f"out of memory: {text}" if text else "out of memory (the allocation that failed did not say its size)"

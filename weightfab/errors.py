"""Errors that carry their own exit code and a one-line message."""
from __future__ import annotations


class WeightfabError(Exception):
    """A failure the user can act on. ``str(err)`` is one line; ``exit_code`` is for the CLI."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ModelError(WeightfabError):
    """The ONNX model is malformed, unsupported, or holds bad values."""


class PdkError(WeightfabError):
    """A PDK file is missing, malformed, or inconsistent."""


class DrcError(WeightfabError):
    """The layout violates the PDK's rule deck."""

    exit_code = 2


class VerifyError(WeightfabError):
    """The layout does not encode the model (readback mismatch)."""

    exit_code = 3


class LayoutReadError(WeightfabError):
    """A layout file cannot be read as a weightfab ROM layout."""

"""One small handler per ONNX op, registered in one table.

A handler is ``fn(im, n, **attributes)``: ``im`` is the importer (its state and helpers), ``n`` the
node's context (resolved inputs, the run-time input, output name, unique op name, input shape per
sample) and the node's attributes arrive as keyword arguments whose defaults are the ONNX spec's.
An attribute a handler does not declare is refused by name. ``HANDLERS`` maps op type -> Handler;
``FOLDABLE`` lists the ops that are accepted only when every input is a constant (they are folded).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Handler:
    fn: Callable
    attributes: frozenset  # attribute names the handler understands
    named: bool = True     # the op gets a unique name (every op that may emit one)
    codes: bool = False    # the run-time input may be an integer code (QuantizeLinear output)
    inputs: int = 1        # run-time inputs accepted
    domain: str = ""       # the op set ("" is the default ai.onnx domain)


HANDLERS: dict[str, Handler] = {}


def handler(*op_types: str, named: bool = True, codes: bool = False, inputs: int = 1, domain: str = ""):
    """Register ``fn`` for ``op_types``; its keyword-only parameters are the attributes."""
    def register(fn):
        params = inspect.signature(fn).parameters.values()
        attrs = frozenset(p.name for p in params if p.kind is p.KEYWORD_ONLY)
        for t in op_types:
            if t in HANDLERS:
                raise AssertionError(f"two handlers for {t}")
            HANDLERS[t] = Handler(fn, attrs, named, codes, inputs, domain)
        return fn
    return register


# ops only ever seen on constants (shape arithmetic), evaluated by the ONNX reference evaluator
FOLDABLE = ("Constant", "ConstantOfShape", "Gather", "Concat")

# layout ops that may run on integer codes (QOperator graphs): they run on the real tensor instead
ON_CODES = ("Identity", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "MaxPool")

from . import basic, classic, integer, layers, qdq, qlinear  # noqa: E402,F401  (registers the handlers)

"""Lossy block merging: similar weight blocks share one ROM cell, under an accuracy budget.

Exact deduplication (``dedup``) shares only identical blocks. Here a block may be replaced by
another block of its layer (its representative), so fewer distinct cells are drawn. Two ways, one module each:

- ``tolerance``: ``merge_tol`` (``--merge-tol T``), every block within T quantization steps of its
  representative (greedy set cover, refinement);
- ``budget``: ``merge_budget`` (``--merge-budget PP``), importance-weighted (``importance``),
  block elimination per layer and one order over all layers (``eliminate``), bisection under an
  accuracy budget with a noise margin.
``common`` holds the result type, the bias correction both use and the accuracy measure.

Everything is deterministic (no random numbers; ties broken by fixed orders).
"""
from __future__ import annotations

from .budget import DEFAULT_MARGIN, MAX_EVALS, merge_budget
from .common import (CALIB_MAX, DEFAULT_LEVELS, METRIC_IMPORTANCE, METRIC_LINF, MergeResult, _with, accuracy,
                     bias_correct)
from .eliminate import CANDIDATES, Elimination, MergeOrder, eliminate
from .importance import block_metric, layer_importance, merge_importance
from .tolerance import cluster_blocks, merge_tol, tradeoff

__all__ = ["CALIB_MAX", "CANDIDATES", "DEFAULT_LEVELS", "DEFAULT_MARGIN", "Elimination", "MAX_EVALS",
           "METRIC_IMPORTANCE", "METRIC_LINF", "MergeOrder", "MergeResult", "_with", "accuracy", "bias_correct",
           "block_metric", "cluster_blocks", "eliminate", "layer_importance", "merge_budget", "merge_importance",
           "merge_tol", "tradeoff"]

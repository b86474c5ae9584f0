"""Accuracy under random faults: per kind and rate, per bit position and per layer.

Every trial has its own random stream, seeded by (seed, kind, rate, trial) alone, so a result
does not depend on which other kinds or rates were asked for, nor on their order. A trial whose
faults change no bit is not simulated again: its accuracy is the fault-free accuracy.
"""
from __future__ import annotations

import numpy as np

from .chip import Chip, accuracy
from .inject import KIND_ID, inject_rate

STREAM_SWEEP, STREAM_BITPOS, STREAM_LAYER, STREAM_DIE, STREAM_YIELD = 1, 2, 3, 4, 5


def rng_for(seed: int, stream: int, *keys) -> np.random.Generator:
    """A generator keyed by integers and floats (a float by its IEEE bits)."""
    ints = [int(np.float64(k).view(np.uint64)) if isinstance(k, float) else int(k) for k in keys]
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream, *ints]))


def _stats(acc: list[float], ref: float, changed: list[int]) -> dict:
    a = np.asarray(acc)
    return {"trials": len(a), "mean": float(a.mean()), "p5": float(np.percentile(a, 5)), "worst": float(a.min()),
            "mean_loss": float(ref - a.mean()), "mean_changed_bits": float(np.mean(changed))}


def _trial(chip: Chip, x, y, ref: float, kind: str, rate: float, rng, cols=None) -> tuple[float, int]:
    bits, _ = inject_rate(chip.bits, kind, rate, rng, cols)
    changed = sum(int(np.count_nonzero(a != b)) for a, b in zip(chip.bits, bits))
    return (ref if changed == 0 else accuracy(chip.outputs(x, bits), y)), changed


def sweep(chip: Chip, x: np.ndarray, y: np.ndarray, kinds, rates, trials: int, seed: int,
          progress=None) -> dict:
    """Accuracy distribution per (kind, rate)."""
    ref = accuracy(chip.outputs(x), y)
    table = []
    for kind in kinds:
        for rate in rates:
            acc, ch = [], []
            for t in range(trials):
                a, c = _trial(chip, x, y, ref, kind, float(rate), rng_for(seed, STREAM_SWEEP, KIND_ID[kind], float(rate), t))
                acc.append(a)
                ch.append(c)
            row = {"kind": kind, "rate": float(rate), **_stats(acc, ref, ch)}
            table.append(row)
            if progress:
                progress(row)
    return {"reference_accuracy": ref, "samples": int(len(y)), "trials": trials, "seed": seed, "table": table}


def bit_label(t: int, nb: int) -> str:
    if t == nb - 1:
        return "sign"
    return "MSB" if t == nb - 2 else ("LSB" if t == 0 else f"bit{t}")


def sensitivity(chip: Chip, x, y, rate: float, trials: int, seed: int) -> dict:
    """Accuracy loss when bits flip at ``rate`` only at one bit position (all layers; position t of a
    b-bit layer, t = b-1 is the sign) and only in one layer (all positions)."""
    ref = accuracy(chip.outputs(x), y)
    nbs = chip.nbits
    per_bit = []
    for t in range(max(nbs)):
        cols = [chip.column_bit(e) == t for e in range(len(chip.bits))]
        if not any(c.any() for c in cols):
            continue
        acc, ch = zip(*(_trial(chip, x, y, ref, "flip", rate, rng_for(seed, STREAM_BITPOS, t, float(rate), k), cols)
                        for k in range(trials)))
        per_bit.append({"bit": t, "label": bit_label(t, max(nbs)), **_stats(list(acc), ref, list(ch))})
    per_layer = []
    for i, layer in enumerate(chip.qnet.layers):
        cols = [np.full(b.shape[0], chip.engine_layer(e) == i) for e, b in enumerate(chip.bits)]
        acc, ch = zip(*(_trial(chip, x, y, ref, "flip", rate, rng_for(seed, STREAM_LAYER, i, float(rate), k), cols)
                        for k in range(trials)))
        per_layer.append({"layer": i, "name": layer.name, "bits": int(sum(b.size for e, b in enumerate(chip.bits)
                                                                          if chip.engine_layer(e) == i)),
                          **_stats(list(acc), ref, list(ch))})
    return {"rate": rate, "trials": trials, "per_bit": per_bit, "per_layer": per_layer}


def plot_sweep(result: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    kinds = list(dict.fromkeys(r["kind"] for r in result["table"]))
    for kind in kinds:
        rows = [r for r in result["table"] if r["kind"] == kind]
        rates = [r["rate"] for r in rows]
        line, = ax.plot(rates, [100 * r["mean"] for r in rows], marker="o", label=kind)
        ax.fill_between(rates, [100 * r["worst"] for r in rows], [100 * r["p5"] for r in rows],
                        color=line.get_color(), alpha=0.15)
    ax.axhline(100 * result["reference_accuracy"], color="k", lw=0.8, ls="--", label="no faults")
    ax.set_xscale("log")
    ax.set_xlabel("fault rate per site")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"mean; band: worst to 5th percentile ({result['trials']} trials)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)

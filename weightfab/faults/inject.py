"""Fault injection on the physical bit arrays of the ROM, vectorised with numpy.

An engine's bits are a [cols, rows] uint8 array, exactly as readback returns them: column c is
bitline c (x order, left to right), row r is wordline r (y order, bottom to top); 1 = the
programming via is present (the transistor's drain reaches the bitline).

Where the lines are driven and sensed (the periphery is not drawn yet; this is the convention
every fault below uses):
- wordlines are driven from the LEFT, where their poly contact pads are (column 0 is nearest the
  row driver); a wordline break before column c leaves columns c, c+1, ... undriven;
- bitlines are sensed at the BOTTOM (row 0 is nearest the sense amplifier); a bitline break
  before row r disconnects rows r, r+1, ... from the sense amplifier.

Fault kinds, with the event each one is drawn as:
- ``via-open``      (c, r) on a programmed site: that bit reads 0;
- ``via-short``     (c, r) on an unprogrammed site: that bit reads 1;
- ``flip``          (c, r) any site: the bit reads inverted (via-open and via-short at the same rate;
                    used for the per-bit-position and per-layer sensitivity);
- ``bitline-open``  (c, r): a break in bitline c just before row r: every bit of rows >= r on that
                    bitline reads 0 (a transistor cut off from the sense amplifier cannot pull it);
- ``wordline-open`` (c, r): a break in wordline r just before column c: every bit of columns >= c on
                    that wordline reads 0 (their transistors stay off);
- ``bitline-short`` c: bitlines c and c+1 joined: each reads the OR of the two (either transistor
                    discharges the shared line); chains of shorts join whole groups;
- ``wordline-short`` r: wordlines r and r+1 joined: selecting either turns both rows on, so each
                    reads the OR of the two rows;
- ``bitline-stuck`` c: bitline c joined to ground (extra via material between the bitline and a
                    ground line): every bit of it reads 1.

At a rate p every candidate site fails independently with probability p (a site is one bit
position along the line: for the line faults, p is the probability of a break or short per bit
pitch). Counts are drawn as Binomial(N, p) and the sites uniformly without replacement, which is
the same distribution, at O(faults) cost instead of O(bits).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import WeightfabError

KINDS = ("via-open", "via-short", "bitline-open", "wordline-open", "bitline-short", "wordline-short",
         "bitline-stuck", "flip")
DEFAULT_KINDS = ("via-open", "via-short", "bitline-open", "wordline-open")
KIND_ID = {k: i for i, k in enumerate(KINDS)}


@dataclass(frozen=True)
class Injection:
    """The faults drawn on one engine: ``events`` [k, 2] int64 (c, r) sites; for the short and
    stuck kinds only the first column is used (c of a bitline pair/line, or r of a wordline pair)."""

    kind: str
    events: np.ndarray


def check_kinds(kinds) -> tuple[str, ...]:
    kinds = tuple(kinds)
    for k in kinds:
        if k not in KINDS:
            raise WeightfabError(f"unknown fault kind '{k}' (choose from {', '.join(KINDS)})")
    return kinds


def _population(b: np.ndarray, kind: str, cols: np.ndarray | None) -> tuple[int, callable]:
    """Number of candidate sites of ``kind`` on engine bits ``b`` and a decoder: flat index -> events."""
    nc, nr = b.shape
    if kind in ("via-open", "via-short", "flip"):
        sel = b if cols is None else b[cols]
        if kind == "flip":
            n = sel.size
            flat = None
        else:
            flat = np.flatnonzero(sel == (1 if kind == "via-open" else 0))
            n = len(flat)
        colmap = np.arange(nc) if cols is None else np.flatnonzero(cols)

        def sites(i):
            j = i if flat is None else flat[i]
            c, r = np.divmod(j, nr)
            return np.stack([colmap[c], r], 1)
        return n, sites
    if kind in ("bitline-open", "wordline-open", "bitline-stuck"):
        return nc * nr, lambda i: np.stack(np.divmod(i, nr), 1)
    if kind == "bitline-short":
        return max(nc - 1, 0) * nr, lambda i: np.stack([i // nr, i % nr], 1)
    if kind == "wordline-short":
        return nc * max(nr - 1, 0), lambda i: np.stack([i // (nr - 1), i % (nr - 1)], 1)
    raise WeightfabError(f"unknown fault kind '{kind}'")


def _events(n: int, k: int, decode, rng: np.random.Generator) -> np.ndarray:
    k = min(int(k), n)
    if k == 0:
        return np.zeros((0, 2), np.int64)
    idx = np.sort(rng.choice(n, k, replace=False))
    return np.asarray(decode(idx), np.int64).reshape(-1, 2)


def apply(b: np.ndarray, inj: Injection) -> np.ndarray:
    """The bits an engine reads with the faults of ``inj`` (a new array; ``b`` is not changed)."""
    out = b.copy()
    ev = inj.events
    if len(ev) == 0:
        return out
    nc, nr = b.shape
    c, r = ev[:, 0], ev[:, 1]
    kind = inj.kind
    if kind == "via-open":
        out[c, r] = 0
    elif kind == "via-short":
        out[c, r] = 1
    elif kind == "flip":
        out[c, r] ^= 1
    elif kind == "bitline-open":
        first = np.full(nc, nr, np.int64)
        np.minimum.at(first, c, r)
        out[np.arange(nr)[None, :] >= first[:, None]] = 0
    elif kind == "wordline-open":
        first = np.full(nr, nc, np.int64)
        np.minimum.at(first, r, c)
        out[np.arange(nc)[:, None] >= first[None, :]] = 0
    elif kind == "bitline-stuck":
        out[np.unique(c)] = 1
    elif kind in ("bitline-short", "wordline-short"):
        axis_len = nc if kind == "bitline-short" else nr
        pairs = np.zeros(axis_len, bool)
        pairs[np.unique(c if kind == "bitline-short" else r)] = True  # line i joined to line i+1
        view = out if kind == "bitline-short" else out.T             # lines along axis 0
        start = np.ones(axis_len, bool)
        start[1:] = ~pairs[:-1]                                       # a group starts where no short joins it
        starts = np.flatnonzero(start)
        group = np.cumsum(start) - 1
        view[:] = np.maximum.reduceat(view, starts, axis=0)[group]
    else:
        raise WeightfabError(f"unknown fault kind '{kind}'")
    return out


def inject_rate(bits: list[np.ndarray], kind: str, rate: float, rng: np.random.Generator,
                cols: list[np.ndarray | None] | None = None) -> tuple[list[np.ndarray], list[Injection]]:
    """Every candidate site of every engine fails with probability ``rate``. ``cols``: optional
    per-engine boolean column masks (only for the site kinds), None = all columns."""
    out, injs = [], []
    for e, b in enumerate(bits):
        mask = None if cols is None else cols[e]
        if mask is not None and kind not in ("via-open", "via-short", "flip"):
            raise WeightfabError(f"a column restriction applies to the site kinds only, not '{kind}'")
        n, decode = _population(b, kind, mask)
        inj = Injection(kind, _events(n, rng.binomial(n, rate) if n else 0, decode, rng))
        injs.append(inj)
        out.append(apply(b, inj))
    return out, injs


def inject_count(bits: list[np.ndarray], kind: str, count: int, rng: np.random.Generator
                 ) -> tuple[list[np.ndarray], list[Injection]]:
    """Exactly ``count`` faults of ``kind`` (fewer only if there are fewer candidate sites), placed
    uniformly over the candidate sites of all engines."""
    pops = [_population(b, kind, None) for b in bits]
    sizes = np.array([n for n, _ in pops], np.float64)
    total = sizes.sum()
    per = rng.multinomial(min(count, int(total)), sizes / total) if total > 0 else np.zeros(len(bits), int)
    # a multinomial share can exceed an engine's own sites only when count ~ total: move the rest on
    for e in range(len(bits)):
        extra = per[e] - int(sizes[e])
        if extra > 0:
            per[e] -= extra
            for f in range(len(bits)):
                room = int(sizes[f]) - per[f]
                take = min(room, extra)
                per[f] += take
                extra -= take
    out, injs = [], []
    for b, (n, decode), k in zip(bits, pops, per):
        inj = Injection(kind, _events(n, k, decode, rng))
        injs.append(inj)
        out.append(apply(b, inj))
    return out, injs


def changed_bits(before: list[np.ndarray], after: list[np.ndarray]) -> int:
    return int(sum(np.count_nonzero(a != b) for a, b in zip(before, after)))

"""Yield: defect counts from critical area, and the functional yield from the fault sensitivity.

With mean critical area A_k of mechanism k and defect density D0 (per cm², the same for every
modelled layer and defect type), a die sees lambda_k = D0 · A_k fault events of kind k, and
lambda = sum lambda_k in all.
- Poisson:            P(N = n) = e^-lambda lambda^n / n!,             Y0 = e^-lambda
- negative binomial:  P(N = n) = G(n+a) / (G(a) n!) (lambda/a)^n (1 + lambda/a)^-(n+a),
                      Y0 = (1 + lambda/a)^-a, with clustering parameter a (a -> inf gives Poisson).
Given N = n events (under either model, since one die-wide density scales every mechanism), the
kinds split multinomially by lambda_k / lambda.
Zero-defect yield Y0 = P(N = 0): the share of dies without any fault. Functional yield
Y_f = sum_n P(N = n) · pass(n), pass(n) = the probability that a die with n random faults still
meets the accuracy target, estimated by injecting n faults (kinds drawn as above) into the
read-back bits and running the integer model: pass(0) is 1 when the fault-free chip meets the
target. pass is measured at a grid of n and interpolated linearly (a lower bound of Y_f uses the
lower end of each point's 95 % Wilson interval over its dies); past two grid points in a row
where no die passed, pass is taken as 0; dies with more events than the grid's last point count
as failing (that mass is reported as the tail).

Defaults: D0 = 0.1 /cm², the round figure foundries quote for mature high-volume logic processes
(e.g. TSMC's N7/N5 defect-density charts of its 2020 Technology Symposium, about 0.09-0.1 /cm²);
here applied to every modelled layer and defect type alike, which is pessimistic. Clustering
a = 2, within the 0.5-5 range reported for production fabs (Stapper, "Fact and fiction in
yield modeling", Microelectronics Journal 20, 1989).
"""
from __future__ import annotations

import math

import numpy as np

from .chip import Chip, accuracy
from .inject import inject_count
from .sweep import STREAM_YIELD, rng_for

DEFAULT_D0 = 0.1      # defects per cm², per modelled layer and defect type
DEFAULT_ALPHA = 2.0   # negative-binomial clustering parameter
N_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
UM2_PER_CM2 = 1e8


def poisson_yield(lam: float) -> float:
    return math.exp(-lam)


def negbin_yield(lam: float, alpha: float) -> float:
    return (1.0 + lam / alpha) ** (-alpha)


def count_pmf(n_max: int, lam: float, alpha: float | None = None) -> np.ndarray:
    """P(N = n) for n = 0..n_max, Poisson (alpha None) or negative binomial."""
    n = np.arange(n_max + 1, dtype=np.float64)
    lg = np.array([math.lgamma(v + 1) for v in n])
    if lam <= 0:
        out = np.zeros(n_max + 1)
        out[0] = 1.0
        return out
    if alpha is None:
        return np.exp(-lam + n * math.log(lam) - lg)
    ga = np.array([math.lgamma(v + alpha) for v in n]) - math.lgamma(alpha)
    return np.exp(ga - lg + n * math.log(lam / alpha) - (n + alpha) * math.log1p(lam / alpha))


def pass_at(ns: list[int], ps: list[float], n: np.ndarray) -> np.ndarray:
    """pass(n) from the grid (ns, ps), linear between points, 0 past the grid."""
    out = np.interp(n, ns, ps)
    return np.where(n > ns[-1], 0.0, out)


def functional_yield(lam: float, ns: list[int], ps: list[float], p0: float, alpha: float | None = None
                     ) -> tuple[float, float]:
    """(functional yield, probability mass past the grid counted as failing)."""
    n_max = int(ns[-1]) if ns else 0
    pmf = count_pmf(n_max, lam, alpha)
    n = np.arange(n_max + 1)
    p = np.concatenate([[p0], pass_at(ns, ps, n[1:])]) if n_max else np.array([p0])
    return float(np.sum(pmf * p)), float(max(0.0, 1.0 - pmf.sum()))


def grid_for(lam_max: float, alpha: float | None) -> list[int]:
    """The grid points needed to cover 99.99 % of the count distribution at the largest lambda."""
    for n_max in N_GRID:
        if count_pmf(n_max, lam_max, alpha).sum() >= 1 - 1e-4:
            break
    return [n for n in N_GRID if n <= n_max]


def pass_curve(chip: Chip, x, y, target: float, shares: dict, ns: list[int], trials: int, seed: int,
               progress=None) -> list[float]:
    """pass(n) at each grid point: the share of ``trials`` dies with n faults meeting ``target``."""
    kinds = sorted(shares)
    prob = np.array([shares[k] for k in kinds], np.float64)
    prob = prob / prob.sum()
    ps, zeros = [], 0
    for n in ns:
        if zeros >= 2:
            ps.append(0.0)
            continue
        ok = 0
        for t in range(trials):
            rng = rng_for(seed, STREAM_YIELD, n, t)
            bits = chip.bits
            for kind, k in zip(kinds, rng.multinomial(n, prob)):
                if k:
                    bits, _ = inject_count(bits, kind, int(k), rng)
            ok += accuracy(chip.outputs(x, bits), y) >= target
        ps.append(ok / trials)
        zeros = zeros + 1 if ok == 0 else 0
        if progress:
            progress(n, ps[-1])
    return ps


def wilson_low(p: float, trials: int, z: float = 1.96) -> float:
    """Lower end of the 95 % Wilson score interval of a share p measured on ``trials`` dies."""
    if trials <= 0:
        return 0.0
    d = 1 + z * z / trials
    c = p + z * z / (2 * trials)
    r = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, (c - r) / d)


def yield_table(lam_drawn: float, drawn_mm2: float, die_mm2: list[float], ns, ps, p0: float,
                alpha: float, trials: int = 0) -> list[dict]:
    """Zero-defect and functional yield, Poisson and negative binomial, for each die size; lambda
    scales with the die area (same bit density and the same per-fault sensitivity as the layout)."""
    rows = []
    for area in [drawn_mm2, *die_mm2]:
        lam = lam_drawn * area / drawn_mm2
        fy_p, tail_p = functional_yield(lam, ns, ps, p0, None)
        fy_nb, tail_nb = functional_yield(lam, ns, ps, p0, alpha)
        low = [wilson_low(p, trials) for p in ps]
        rows.append({"die_mm2": area, "drawn": area == drawn_mm2, "faults_per_die": lam,
                     "zero_defect_poisson": poisson_yield(lam), "functional_poisson": fy_p,
                     "functional_poisson_low95": functional_yield(lam, ns, low, p0, None)[0],
                     "zero_defect_negbin": negbin_yield(lam, alpha), "functional_negbin": fy_nb,
                     "functional_negbin_low95": functional_yield(lam, ns, low, p0, alpha)[0],
                     "tail_counted_failing": max(tail_p, tail_nb)})
    return rows

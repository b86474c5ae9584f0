"""The clock period a read of a macro needs, from its wordline count.

A read precharges every bitline while the clock is low and senses it while the clock is high
(rom/periphery/macro.py, generic.py); a bitline carries a drain per two wordlines, so its
capacitance, and with it both phases, grow in proportion to the wordlines. Measured with
``python bench/bench_spice.py --rows R --cols 64 --corners tt --period T`` (SKY130 tt, 1.8 V,
25 °C, 64 bitlines): access 2.82 ns at 512 wordlines (T = 10 ns); at 1024 every read fails at
10 ns and reads in 7.21 ns at 20 ns; 2048 8.98 ns at 20 ns, 4096 14.54 ns at 40 ns. The period is
10 ns up to 512 wordlines and doubles with each doubling of the wordlines past that, which keeps
the access time under 0.4 of the period at every size measured (the margin the Liberty
characterisation asks of its delay deck, signoff/libchar.py).
"""
from __future__ import annotations

import math

BASE_PERIOD = 10e-9         # s: every macro of up to BASE_ROWS wordlines reads at this period
BASE_ROWS = 512
BASIS = ("10 ns, doubled per doubling of the wordlines past 512 (bench_spice, SKY130 tt); "
         "not simulated for this macro")


def read_period(rows: int, base: float = BASE_PERIOD) -> float:
    """The clock period (s) for a macro of ``rows`` wordlines: ``base`` doubled once per doubling
    of the wordlines past ``BASE_ROWS``."""
    if rows < 1:
        raise ValueError(f"{rows} wordlines: a macro has at least one")
    return base * (1 << max(0, math.ceil(math.log2(rows / BASE_ROWS))))

"""Simulated reads for the compile report (``compile --simulate CORNERS``).

Each engine that has a macro is read in ngspice from the layout this compile wrote, as
``weightfab simulate`` reads it (flow/simulate.py: extracted netlist with its wire capacitance,
SKY130 device models, random addresses, sensed words compared with the words the layout holds).
The clock period is not assumed: it starts at the macro's period by rule (rom/periphery/clock.py;
``START_PERIOD`` for ``weightfab simulate``, which does not know the macro's rows beforehand) and is
doubled, DOUBLINGS times at most, while any read of any asked corner is wrong or the slowest access
exceeds ``SLACK`` of the period (the rule the
Liberty characterisation uses, signoff/libchar.py), so a tall engine is timed at a clock it meets.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import UsageError
from ..signoff.libchar import SLACK
from ..signoff.spice import CORNERS

START_PERIOD = 10e-9
DOUBLINGS = 5            # from 10 ns: 320 ns at most


def parse_corners(text: str | None) -> tuple[str, ...]:
    """'tt,ss' -> ('tt', 'ss'); None or '' -> ()."""
    if not text:
        return ()
    corners = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    bad = [c for c in corners if c not in CORNERS]
    if bad or not corners:
        raise UsageError(f"--simulate {text}: unknown corner '{(bad or [text])[0]}': use one or more of "
                         f"{', '.join(CORNERS)} separated by commas")
    return corners


def check_simulate(corners: tuple[str, ...], pdk_name: str, periphery: bool, reads: int,
                   program_layer: str | None = None, protect: str | None = None) -> None:
    """Usage errors of --simulate, found before any work."""
    if not corners:
        return
    if program_layer is not None or protect:
        raise UsageError("--simulate reads layouts programmed on the PDK's default layer without --protect "
                         "(weightfab simulate compares engines with the model's layers one to one)")
    if pdk_name != "sky130":
        raise UsageError(f"--simulate needs the SKY130 device models: --pdk {pdk_name} has none in this flow")
    if not periphery:
        raise UsageError("--simulate reads the macros: it cannot be used with --no-periphery")
    if reads < 1:
        raise UsageError(f"--reads must be at least 1, not {reads}")


def _meets(run, period: float) -> bool:
    return all(r.ok and float(r.access.max()) <= SLACK * period for r in run.results)


def find_period(layout: Path, model: Path, engine: int | None, corners: tuple[str, ...], period: float | None = None,
                start: float = START_PERIOD, **kw):
    """(SimulateRun, period s, periods tried in ns): the run at ``period`` when given, else at the
    first period from ``start``, doubling, that every corner meets. ``kw`` goes to
    flow.simulate.simulate."""
    from .simulate import simulate
    if period is not None:
        return simulate(layout, model, engine=engine, corners=corners, period=period, **kw), period, [round(period * 1e9, 3)]
    period, tried = start, []
    for _ in range(DOUBLINGS + 1):
        run = simulate(layout, model, engine=engine, corners=corners, period=period, **kw)
        tried.append(round(period * 1e9, 3))
        if _meets(run, period) or len(tried) > DOUBLINGS:
            break
        period *= 2
    return run, period, tried


def read_engine(layout: Path, model: Path, engine: int, corners: tuple[str, ...], **kw) -> dict:
    """One engine read at every corner at the clock found by ``find_period``; the report's
    ``macro.read`` entry."""
    t0 = time.perf_counter()
    run, period, tried = find_period(layout, model, engine, corners, **kw)
    s = run.summary()
    return {"meets_clock": _meets(run, period), "period_ns": round(period * 1e9, 3), "periods_tried_ns": tried,
            "netlist": s["netlist"], "conditions": s["conditions"], "corners": s["corners"],
            "model_bit_errors": s["model_bit_errors"], "seconds": round(time.perf_counter() - t0, 1)}


def read_macros(layout: Path, model: Path, starts: dict[int, float], corners: tuple[str, ...], *, progress=None,
                **kw) -> dict[int, dict]:
    """engine -> read entry for each engine of ``starts`` (engine -> first clock period to try: the
    macro's period by rule, rom/periphery/clock.py, which skips the decks bound to fail)."""
    out = {}
    for k, (e, start) in enumerate(sorted(starts.items())):
        if progress is not None:
            progress(k, len(starts), f"SPICE read of engine {e}")
        out[e] = read_engine(layout, model, e, corners, start=start, **kw)
    return out


def reads_ok(reads: dict[int, dict]) -> bool:
    return all(r["meets_clock"] and all(c["ok"] for c in r["corners"]) for r in reads.values())

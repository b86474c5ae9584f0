"""`weightfab simulate chip.gds --model M.onnx`: reads of one engine simulated in ngspice."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .main import _guard


@click.command("simulate")
@click.argument("layout", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The ONNX model compiled into LAYOUT.")
@click.option("--engine", type=int, default=None, help="Engine (layer) index; default the smallest.")
@click.option("--reads", type=int, default=32, show_default=True, help="Random addresses read, one per clock cycle.")
@click.option("--corner", "corners", multiple=True, type=click.Choice(["tt", "ss", "ff"]),
              help="Device corner (repeatable); default tt.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random addresses.")
@click.option("--period", type=float, default=None, help="Clock period in ns; default: from 10 ns, doubled (up to "
              "320 ns) while a read is wrong or later than 0.4 of the period.")
@click.option("--pdk", default="sky130", show_default=True)
@click.option("--weights", default="int8", show_default=True)
@click.option("--rounding", default="optimized", show_default=True)
@click.option("--calib", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--netlist", "netlist_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the simulated macro netlist (SPICE) here; default LAYOUT.<engine>.spice.")
@click.option("--flat", "flat", flag_value="flat", default=None,
              help="Simulate the whole extracted netlist (default for arrays of up to 16 wordlines).")
@click.option("--reduced", "flat", flag_value="reduced",
              help="Simulate reduced netlists: per deck the addressed wordlines whole, the other bit devices "
                   "folded into the bitlines' loads (default above 16 wordlines).")
@click.option("--rows-per-deck", type=int, default=4, show_default=True, help="Addresses per reduced deck.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the results as JSON.")
@_guard
def simulate_cmd(layout, model, engine, reads, corners, seed, period, pdk, weights, rounding, calib, flat, rows_per_deck, netlist_out, json_out):
    """Simulate reads of random addresses of one engine in ngspice (SKY130 models, 1.8 V, 25 C);
    exit 0 when every sensed bit equals the stored one, 3 otherwise."""
    from ..flow.readtime import find_period

    if period is not None and period <= 0:
        from ..errors import UsageError
        raise UsageError(f"--period must be positive, not {period:g}")
    if pdk != "sky130":
        from ..errors import UsageError
        raise UsageError(f"simulate needs the SKY130 device models: --pdk {pdk} has none in this flow")
    run, clock, tried = find_period(layout, model, engine, tuple(corners) or ("tt",),
                                    None if period is None else period * 1e-9, reads=reads, seed=seed, pdk=pdk,
                                    weights=weights, rounding=rounding, calib=calib,
                                    reduce=None if flat is None else flat == "reduced", rows_per_deck=rows_per_deck)
    out = netlist_out or layout.with_suffix(f".{run.layer}.spice")
    out.write_text(run.spice)
    click.echo(f"engine {run.engine} '{run.layer}': {run.netlist_kind} netlist"
               + (f" of cell {run.macro_cell}" if run.macro_cell else " (the layout draws no macro periphery)")
               + f", {run.results[0].extra.get('netlist_devices', run.results[0].devices):,} devices -> {out}")
    if "reduced_decks" in run.results[0].extra:
        e = run.results[0].extra
        click.echo(f"  read on reduced netlists: {e['reduced_decks']} decks of up to {e['rows_per_deck']} addresses, "
                   f"at most {run.results[0].devices:,} devices each")
    if period is None:
        click.echo(f"  clock period {clock * 1e9:g} ns (tried {', '.join(f'{t:g}' for t in tried)} ns)")
    for r in run.results:
        s = r.summary()
        status = "ok" if r.ok else f"{s['bit_errors']} bit errors"
        click.echo(f"  {r.corner}: {s['reads']} reads at {s['period_ns']:g} ns, {status} (vs {s['compared_with']}); "
                   f"access time {s['access_time_ns']:.3f} ns (mean {s['access_time_mean_ns']:.3f}), "
                   f"energy {s['energy_per_read_pj']:.3f} pJ/read; "
                   f"ngspice {s['seconds']:.0f} s")
        for k, a, j, v in r.errors[:10]:
            click.echo(f"    read {k} address {a} dout[{j}]: sensed {v}, stored {1 - v}")
        if len(r.errors) > 10:
            click.echo(f"    (the first 10 of {len(r.errors)} listed)")
    if run.model_mismatch:
        click.echo(f"  {len(run.model_mismatch)} sensed bits differ from the quantized model")
    if json_out:
        json_out.write_text(json.dumps(run.summary(), indent=1) + "\n")
    sys.exit(0 if all(r.ok for r in run.results) and not run.model_mismatch else 3)

"""`weightfab compile`: the whole flow; see flow/compile.py."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import VerifyError, outcome_error
from ..flow.readtime import reads_ok
from .main import _guard, _print_drc
from .options import FILE, merge_options, model_inputs, pdk_option, rounding_option, warn, weight_format


@click.command("compile")
@click.argument("model", type=FILE)
@click.option("-o", "--output", required=True, type=FILE, help="Layout to write: .gds (GDSII) or .oas (OASIS).")
@pdk_option
@weight_format()
@rounding_option
@model_inputs
@click.option("--report", type=FILE, help="Write the JSON report here.")
@click.option("--lyrdb", type=FILE, help="Write DRC markers here (always written, beside the output, on violations).")
@click.option("--no-drc", is_flag=True, help="Skip the design-rule check.")
@click.option("--no-verify", is_flag=True, help="Skip the readback verification.")
@click.option("--full-drc", is_flag=True, help="DRC every rule on the whole file (default: the fast check, "
              "signoff/fastdrc.py, which falls back to this wherever its proof does not hold).")
@click.option("--quiet", is_flag=True, help="No progress line on stderr (shown only on a terminal).")
@merge_options
@click.option("--html", type=FILE, help="Also write one self-contained HTML report with pictures (needs matplotlib).")
@click.option("--program-layer", help="Via to program the weights on (default: the PDK's densest; "
              "'weightfab pdk show NAME' lists them). Every bit's drain is carried up to it by a via stack.")
@click.option("--protect", help="msb:N: a checked shadow copy of each weight's sign and N-1 high bits "
              "(faults/protect.py).")
@click.option("--no-periphery", is_flag=True, help="Draw the bit arrays alone (no decoders, sensing, pins).")
@click.option("--views", "views_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write each macro's LEF, Liberty (ngspice tt/ss/ff), Verilog and SPICE views here.")
@click.option("--simulate", "corners", metavar="CORNERS", help="Also read each macro in ngspice at these "
              "corners (tt, ss, ff; comma-separated; SKY130) and report access time and energy per read; "
              "minutes per engine.")
@click.option("--reads", default=8, show_default=True, type=int, help="Random addresses per --simulate read.")
@_guard
def compile_cmd(model, output, pdk, weights, block, rounding, calib, data, input_scale, input_offset, report, lyrdb,
                no_drc, no_verify, full_drc, quiet, merge_tol, merge_budget, html, program_layer, protect, no_periphery,
                views_dir, corners, reads):
    """Compile MODEL.onnx into a DRC-checked, read-back-verified ROM layout."""
    from ..flow.compile import compile as run
    from ..flow.progress import Progress

    with Progress(quiet) as progress:
        res = run(model, output, pdk=pdk, weights=weights, rounding=rounding, block=block, calib=calib, data=data,
                  input_scale=input_scale, input_offset=input_offset, drc=not no_drc, verify=not no_verify,
                  report=report, lyrdb=lyrdb, merge_tol=merge_tol, merge_budget=merge_budget, on_warning=warn,
                  program_layer=program_layer, protect=protect, periphery=not no_periphery, full_drc=full_drc,
                  progress=progress, html=html, simulate=corners or (), reads=reads)
    print_result(res, model, output)
    if res.html:
        h = res.html
        click.echo(f"html: {html} ({h['bytes']:,} bytes, {h['figures']} pictures, {h['seconds']:.1f} s)")
    err = outcome_error(res.drc, None if res.verify is None else res.verify.ok, str(output))
    if err is not None:
        raise err
    if res.reads is not None and not reads_ok(res.reads):
        raise VerifyError(f"{output}: a simulated read is wrong or misses its clock (see the 'read' lines)")
    if views_dir:
        from .views import write_views
        write_views(output, model, views_dir, pdk=pdk, weights=weights, rounding=rounding, calib=calib)


def short_name(name: str, width: int = 24) -> str:
    """A layer name cut in the middle when too long, so names sharing a long prefix stay distinct."""
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return f"{name[:head]}…{name[len(name) - (width - 1 - head):]}"


def read_line(cell: str, r: dict) -> str:
    """One line per simulated macro: each corner's reads, access time and energy, at the clock met."""
    def corner(c: dict) -> str:
        right = "right" if c["ok"] else f"WRONG ({c['bit_errors']} bits)"
        return (f"{c['corner']} {c['reads']} reads {right}, access {c['access_time_ns']:.3f} ns, "
                f"{c['energy_per_read_pj']:.2f} pJ/read")
    clock = f"{r['period_ns']:g} ns clock" + ("" if r["meets_clock"] else " NOT met")
    return f"read {cell} (ngspice, {r['netlist']} netlist, {clock}): " + "; ".join(corner(c) for c in r["corners"])


def print_result(res, model: Path, output: Path, echo=click.echo) -> None:
    rep = res.report()
    echo(f"{model} -> {output} ({rep['format'].upper()}, {rep['file_bytes']:,} bytes), PDK {rep['pdk']}, "
         f"{rep['weights']}, block {rep['block']}")
    echo(f"{'layer':<24} {'shape':>11} {'weights':>9} {'bits':>4} {'blocks':>8} {'unique':>8} {'ratio':>6} {'area µm²':>12}")
    for l in rep["layers"]:
        shape = f"{l['outputs']}x{l['inputs']}"
        echo(f"{short_name(l['name']):<24} {shape:>11} {l['weights']:>9,} {l['bits']:>4} {l['blocks']:>8,} "
             f"{l['unique_blocks']:>8,} {l['dedup_ratio']:>6.2f} {l['area_um2']:>12,.1f}")
    d = rep["die"]
    macros = [l for l in rep["layers"] if (l.get("macro") or {}).get("drawn")]
    drawn = "ROM macros: arrays with periphery" if macros else "ROM arrays only; periphery not drawn"
    echo(f"die: {d['width_um']:.1f} x {d['height_um']:.1f} µm = {d['area_mm2']:.4f} mm² ({drawn}; arithmetic not drawn); "
         f"bitcell {rep['bitcell']['area_um2']} µm², {rep['bitcell']['bits_per_um2']} bits/µm²")
    for l in macros:
        m = l["macro"]
        echo(f"macro {m['cell']}: {m['width_um']:.1f} x {m['height_um']:.1f} µm, array {m['array_um2']:,.0f} µm² + "
             f"periphery {m['periphery_um2']:,.0f} µm², {m['bits_per_um2']} bits/µm² with periphery, {m['banks']} bank")
    others = [f"{c['pdk']} {c['die_area_mm2']:.4f} mm² ({c['relative_to_chosen']:.2f}x, {c['bits_per_um2']} bits/µm²)"
              if "die_area_mm2" in c else f"{c['pdk']}: {c['error']}" for c in rep["pdk_comparison"] if c["pdk"] != rep["pdk"]]
    if others:
        echo("same arrays on " + "; ".join(others))
    pr = rep["programming"]
    echo(f"programming layer {pr['layer']}: a model changes 1 mask ({pr['layer']}), shares "
         f"{len(pr['masks_shared'])} with every model of this shape; per programming layer (bitcell, arrays-only die): "
         + ", ".join(f"{c['layer']} {c['bitcell_area_um2']:.4g} µm²/bit {c['die_area_mm2']:.4f} mm²" for c in pr["choices"]))
    for i, r in sorted((res.reads or {}).items()):
        echo(read_line(rep["layers"][i]["macro"]["cell"], r))
    if res.drc is not None:
        _print_drc(res.drc, echo, res.pdk)
    else:
        echo("DRC: skipped (--no-drc)")
    if res.verify is not None:
        v = res.verify
        echo(f"verified: {v.matched} of {v.total_bits} bits match" if v.ok else
             f"readback: {v.mismatch_count} mismatches ({v.total_bits - v.matched} bits differ), first: {v.mismatches[0]}")
    if res.merge is not None:
        m = res.merge
        echo(f"merge: {m.total_before:,} -> {m.total_after:,} unique blocks ({m.reduction:.2f}x; {m.stopped_because})")
    if res.accuracy:
        a = res.accuracy
        merged = f", merged {a['merged']:.2%}" if "merged" in a else ""
        chip = f", chip {a['chip']:.2%}" if "chip" in a else ""
        echo(f"accuracy on {a['samples']} samples: float {a['float']:.2%}, quantized {a['quantized']:.2%}{merged}{chip}")
    echo("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in res.timings.items()))

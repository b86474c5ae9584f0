"""Command line: parses options and calls the library; exit codes 0 ok, 1 error, 2 DRC, 3 verify."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import WeightfabError
from ..quant.quantize import WEIGHT_BITS


def _guard(fn):
    """Turn every failure into one line on stderr and a meaningful exit code."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except WeightfabError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except MemoryError:
            click.echo("error: out of memory", err=True)
            sys.exit(1)
        except BrokenPipeError:  # output piped into a reader that stopped (``| head``): not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(0)
        except Exception as exc:  # a bug: still one line, unless asked for the traceback
            if os.environ.get("WEIGHTFAB_DEBUG"):
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc} (set WEIGHTFAB_DEBUG=1 for a traceback)", err=True)
            sys.exit(1)
    return wrapper


class _Group(click.Group):
    """Usage errors are failures like any other: one line, exit code 1 (2 means DRC violations)."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="weightfab")
def main():
    """Compile a neural network (ONNX) into a mask-ROM chip layout (GDSII/OASIS)."""


def _print_drc(report, echo, pdk=None):
    unchecked = f"; {len(pdk.skipped)} rule groups not checked, see 'weightfab pdk show {pdk.name}'" if pdk and pdk.skipped else ""
    if report.clean:
        echo(f"DRC: clean ({len(report.rules)} rules, {report.seconds:.2f} s{unchecked})")
        return
    echo(f"DRC: {report.violations} violations")
    for r in report.failing():
        ex = ", ".join(f"({x:.3f}, {y:.3f})" for x, y in r.examples[:3])
        echo(f"  {r.name:<10} {r.kind} {r.value} : {r.count} at {ex} µm")


@main.command("compile")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Layout to write: .gds (GDSII) or .oas (OASIS).")
@click.option("--pdk", default="sky130", show_default=True, help="Built-in PDK name or a PDK directory.")
@click.option("--weights", type=click.Choice(list(WEIGHT_BITS)), default="int8", show_default=True)
@click.option("--block", type=int, default=4, show_default=True, help="Weights per ROM block (even).")
@click.option("--calib", type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration inputs (.npz, array 'x'); default MODEL.calib.npz beside the model.")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path),
              help="Inputs and labels (.npz, 'x' and 'y') for float / quantized / chip accuracy.")
@click.option("--input-scale", type=float, default=1.0, show_default=True, help="x_model = x * scale + offset.")
@click.option("--input-offset", type=float, default=0.0, show_default=True)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report here.")
@click.option("--lyrdb", type=click.Path(dir_okay=False, path_type=Path),
              help="Write DRC markers here (always written, beside the output, on violations).")
@click.option("--no-drc", is_flag=True, help="Skip the design-rule check.")
@click.option("--no-verify", is_flag=True, help="Skip the readback verification.")
@click.option("--merge-tol", type=int, help="Merge blocks whose weights all differ by at most T quantization steps.")
@click.option("--merge-budget", type=float,
              help="Merge as far as accuracy on --data drops at most PP percentage points.")
@_guard
def compile_cmd(model, output, pdk, weights, block, calib, data, input_scale, input_offset, report, lyrdb,
                no_drc, no_verify, merge_tol, merge_budget):
    """Compile MODEL.onnx into a DRC-checked, read-back-verified ROM layout."""
    from ..flow.compile import compile as run

    res = run(model, output, pdk=pdk, weights=weights, block=block, calib=calib, data=data,
              input_scale=input_scale, input_offset=input_offset, drc=not no_drc, verify=not no_verify,
              report=report, lyrdb=lyrdb, merge_tol=merge_tol, merge_budget=merge_budget)
    rep = res.report()
    echo = click.echo
    echo(f"{model} -> {output} ({rep['format'].upper()}, {rep['file_bytes']:,} bytes), PDK {rep['pdk']}, "
         f"{rep['weights']}, block {rep['block']}")
    echo(f"{'layer':<24} {'shape':>11} {'weights':>9} {'bits':>4} {'blocks':>8} {'unique':>8} {'ratio':>6} {'area µm²':>12}")
    for l in rep["layers"]:
        shape = f"{l['outputs']}x{l['inputs']}"
        echo(f"{l['name'][:24]:<24} {shape:>11} {l['weights']:>9,} {l['bits']:>4} {l['blocks']:>8,} "
             f"{l['unique_blocks']:>8,} {l['dedup_ratio']:>6.2f} {l['area_um2']:>12,.1f}")
    d = rep["die"]
    echo(f"die: {d['width_um']:.1f} x {d['height_um']:.1f} µm = {d['area_mm2']:.4f} mm² (ROM arrays only; "
         f"periphery not drawn); bitcell {rep['bitcell']['area_um2']} µm², {rep['bitcell']['bits_per_um2']} bits/µm²")
    others = [f"{c['pdk']} {c['die_area_mm2']:.4f} mm² ({c['relative_to_chosen']:.2f}x, {c['bits_per_um2']} bits/µm²)"
              if "die_area_mm2" in c else f"{c['pdk']}: {c['error']}" for c in rep["pdk_comparison"] if c["pdk"] != rep["pdk"]]
    if others:
        echo("same arrays on " + "; ".join(others))
    if res.drc is not None:
        _print_drc(res.drc, echo, res.pdk)
    else:
        echo("DRC: skipped (--no-drc)")
    if res.verify is not None:
        v = res.verify
        echo(f"verified: {v.matched} of {v.total_bits} bits match" if v.ok else
             f"readback: {len(v.mismatches)} mismatches, first: {v.mismatches[0]}")
    if res.merge is not None:
        m = res.merge
        echo(f"merge: {m.total_before:,} -> {m.total_after:,} unique blocks ({m.reduction:.2f}x; {m.stopped_because})")
    if res.accuracy:
        a = res.accuracy
        merged = f", merged {a['merged']:.2%}" if "merged" in a else ""
        chip = f", chip {a['chip']:.2%}" if "chip" in a else ""
        echo(f"accuracy on {a['samples']} samples: float {a['float']:.2%}, quantized {a['quantized']:.2%}{merged}{chip}")
    echo("time: " + ", ".join(f"{k} {v:.2f}s" for k, v in res.timings.items()))
    if res.drc is not None and not res.drc.clean:
        sys.exit(2)
    if res.verify is not None and not res.verify.ok:
        sys.exit(3)


@main.command("drc")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pdk", default="sky130", show_default=True)
@click.option("--lyrdb", type=click.Path(dir_okay=False, path_type=Path),
              help="Marker database to write (default: FILE with suffix .lyrdb).")
@_guard
def drc_cmd(file, pdk, lyrdb):
    """Check FILE (GDSII/OASIS) against the PDK's rule deck; exit 2 on violations."""
    from ..signoff.drc import run_drc, write_lyrdb
    from ..tech.pdk import load_pdk

    p = load_pdk(pdk)
    report = run_drc(file, p)
    out = lyrdb or file.with_suffix(".lyrdb")
    write_lyrdb(report, p, out)
    _print_drc(report, click.echo, p)
    click.echo(f"markers: {out}")
    if not report.clean:
        sys.exit(2)


@main.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pdk", default="sky130", show_default=True)
@click.option("--weights", type=click.Choice(list(WEIGHT_BITS)),
              help="Weight format the layout was compiled with (default: from the bitlines per channel).")
@click.option("--calib", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--input-scale", type=float, default=1.0, show_default=True)
@click.option("--input-offset", type=float, default=0.0, show_default=True)
@click.option("--electrical", is_flag=True,
              help="Also extract the transistors and nets (KLayout) of a window of every engine and check "
                   "that each 1-bit drain reaches its bitline and each 0-bit drain floats.")
@click.option("--block", type=int, default=4, show_default=True, help="As compiled (matters with merging).")
@click.option("--merge-tol", type=int, help="As compiled.")
@click.option("--merge-budget", type=float, help="As compiled (with the same --data).")
@_guard
def verify_cmd(file, model, pdk, weights, calib, data, input_scale, input_offset, electrical, block, merge_tol,
               merge_budget):
    """Read every weight bit back from FILE and compare with MODEL's quantization; exit 3 on mismatch."""
    from ..flow.verify import verify

    res = verify(file, model, pdk=pdk, weights=weights, calib=calib, data=data,
                 input_scale=input_scale, input_offset=input_offset, electrical=electrical, block=block,
                 merge_tol=merge_tol, merge_budget=merge_budget)
    v = res.readback
    if v.ok:
        click.echo(f"verified: {v.matched} of {v.total_bits} bits match ({res.weights}, {len(v.arrays)} arrays, "
                   f"{v.seconds:.2f} s)")
    else:
        click.echo(f"MISMATCH: {len(v.mismatches)} of {v.total_bits} bits differ")
        for m in v.mismatches[:50]:
            click.echo(f"  {m}")
        if len(v.mismatches) > 50:
            click.echo(f"  ... and {len(v.mismatches) - 50} more")
    if res.accuracy:
        a = res.accuracy
        line = f"accuracy on {a['samples']} samples: float {a['float']:.2%}, quantized {a['quantized']:.2%}"
        if "onnxruntime" in a:
            line += f", onnxruntime {a['onnxruntime']:.2%}"
        click.echo(line + f", chip {a['chip']:.2%}; chip == quantized reference on every input: {a['chip_equals_reference']}")
    bad_electrical = False
    for e in res.electrical or []:
        c0, nc, r0, nr = e.window
        click.echo(f"electrical: engine {e.engine} window {nc}x{nr} bits at ({c0}, {r0}): {e.devices} transistors, "
                   f"{e.ones_connected}/{e.ones} ones on their bitline, {e.zeros_floating}/{e.zeros} zeros floating"
                   + ("" if e.ok else f"; {e.error_count} errors, first: {e.errors[0]}"))
        bad_electrical |= not e.ok
    if not v.ok or bad_electrical:
        sys.exit(3)


@main.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--weights", type=click.Choice(list(WEIGHT_BITS)), default="int8", show_default=True)
@click.option("--block", type=int, default=4, show_default=True)
@click.option("--calib", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--input-scale", type=float, default=1.0, show_default=True)
@click.option("--input-offset", type=float, default=0.0, show_default=True)
@click.option("--levels", default="0,1,2,3,4", show_default=True, help="Merge tolerances (steps) to tabulate.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Write the trade-off curve as PNG.")
@_guard
def inspect_cmd(model, weights, block, calib, data, input_scale, input_offset, levels, plot):
    """Unique blocks against accuracy over merge levels, without writing a layout."""

    from ..mapping import merge as mg
    from ..flow.inputs import load_npz
    from ..frontend.onnx_import import load_onnx
    from ..flow.compile import default_calibration
    from ..quant.quantize import quantize

    net = load_onnx(model)
    x = y = None
    if data:
        x, y = load_npz(data, net.input_shape, True, input_scale, input_offset)
    cpath = calib or default_calibration(model)
    cx = load_npz(cpath, net.input_shape, False, input_scale, input_offset)[0] if cpath else x
    if cx is None:
        raise WeightfabError(f"{model}: no calibration inputs: give --calib or --data")
    try:
        lv = [int(v) for v in levels.split(",")]
    except ValueError:
        raise WeightfabError(f"--levels {levels!r}: expected integers separated by commas") from None
    qnet = quantize(net, cx, weights)
    if x is not None:
        rows = mg.tradeoff(qnet, block, x, y, lv, calib=cx)
    else:
        rows = [{"level": t, "unique": [int(u) for u in r.unique_after], "total": r.total_after, "accuracy": None}
                for t in lv for r in [mg.merge_tol(qnet, block, t, calib=cx)]]
    names = [l.name for l in qnet.layers]
    click.echo(f"{model}: {weights}, block {block}; merge metric: L-infinity distance in quantization steps")
    click.echo(f"{'level':>5} {'total':>9} {'accuracy':>9}  " + "  ".join(n[:14] for n in names))
    for r in rows:
        acc = f"{r['accuracy']:.2%}" if r["accuracy"] is not None else "n/a"
        click.echo(f"{r['level']:>5} {r['total']:>9,} {acc:>9}  " + "  ".join(f"{u:>{min(14, len(n))},}" for u, n in zip(r["unique"], names)))
    if plot:
        if x is None:
            raise WeightfabError("--plot needs --data (the curve is unique blocks against accuracy)")
        mg.plot_tradeoff(rows, plot)
        click.echo(f"plot: {plot}")


@main.group("pdk")
def pdk_group():
    """List and show the PDKs."""


@pdk_group.command("list")
@_guard
def pdk_list():
    from ..tech.pdk import list_pdks, load_pdk
    for name in list_pdks():
        click.echo(f"{name:<12} {load_pdk(name).description}")


@pdk_group.command("show")
@click.argument("name")
@_guard
def pdk_show(name):
    from ..tech.pdk import load_pdk
    from ..rom.geometry import RomGeometry
    p = load_pdk(name)
    g = RomGeometry.from_pdk(p)
    click.echo(f"{p.name}: {p.description}\ngrid {p.grid_um} µm, dbu {p.dbu_um} µm\nlayers:")
    for l in p.layers.values():
        click.echo(f"  {l.name:<12} {f'{l.gds[0]}/{l.gds[1]}':<7} {l.source}")
    click.echo("ROM roles: " + ", ".join(f"{role}={layer}" for role, layer in p.roles.items()))
    if p.derived:
        click.echo("derived: " + ", ".join(f"{n} = {a} {op} {b}" for n, (a, op, b) in p.derived.items()))
    click.echo(f"rules ({len(p.rules)}):")
    for r in p.rules:
        click.echo(f"  {r.name:<12} {r.kind:<18} {r.layer:<17} {r.other:<17} {r.value:<7} {r.source}")
    if p.skipped:
        click.echo(f"not checked ({len(p.skipped)}):")
        for k, why in p.skipped.items():
            click.echo(f"  {k}: {why}")
    area = g.px * g.py / 2 * p.dbu_um ** 2
    click.echo(f"bitcell: {g.px * p.dbu_um:.3f} x {g.py / 2 * p.dbu_um:.3f} µm = {area:.4f} µm², "
               f"{1 / area:.3f} bits/µm²; programming layer {p.programming_layer}")
    click.echo(f"KLayout layer properties: {p.lyp or 'none'}")

from .diff import diff_cmd  # noqa: E402

main.add_command(diff_cmd)

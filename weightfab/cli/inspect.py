"""`weightfab inspect`: unique blocks against accuracy over merge levels, without writing a layout."""
from __future__ import annotations

import click

from ..errors import UsageError
from .main import _guard
from .options import FILE, model_inputs, warn, weight_format


@click.command("inspect")
@click.argument("model", type=FILE)
@weight_format()
@model_inputs
@click.option("--levels", default="0,1,2,3,4", show_default=True, help="Merge tolerances (steps) to tabulate.")
@click.option("--plot", type=FILE, help="Write the trade-off curve as PNG (needs --data and matplotlib).")
@_guard
def inspect_cmd(model, weights, block, calib, data, input_scale, input_offset, levels, plot):
    """Unique blocks against accuracy over merge levels, without writing a layout."""
    from ..flow.inputs import check_scale, resolve_inputs
    from ..flow.outputs import check_paths
    from ..frontend.onnx_import import load_onnx
    from ..mapping import merge as mg
    from ..quant.quantize import quantize

    try:
        lv = [int(v) for v in levels.split(",")]
    except ValueError:
        raise UsageError(f"--levels {levels!r}: expected integers separated by commas") from None
    check_scale(input_scale, input_offset)
    if plot:  # every reason the plot cannot be written is found before the table is computed
        if data is None:
            raise UsageError("--plot needs --data (the curve is unique blocks against accuracy)")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib (pip install matplotlib)") from None
        directory = plot.parent if str(plot.parent) else None
        if directory is not None and not directory.is_dir():
            raise UsageError(f"--plot {plot}: directory {directory} does not exist")
        check_paths({"MODEL": model, "--calib": calib, "--data": data}, {"--plot": plot})
    net = load_onnx(model)
    inputs = resolve_inputs(model, net, calib, data, input_scale, input_offset)
    for w in inputs.warnings:
        warn(w)
    x, y, cx = inputs.data_x, inputs.data_y, inputs.calib_x
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
        from ..report.plots import plot_tradeoff
        plot_tradeoff(rows, plot)
        click.echo(f"plot: {plot}")

"""Options shared by several commands, declared once (``@model_inputs``, ``@weight_format``, ...)."""
from __future__ import annotations

from pathlib import Path

import click

from ..quant.quantize import ROUNDINGS, WEIGHT_BITS

FILE = click.Path(dir_okay=False, path_type=Path)


def _stack(*decorators):
    def apply(fn):
        for d in reversed(decorators):
            fn = d(fn)
        return fn
    return apply


pdk_option = click.option("--pdk", default="sky130", show_default=True,
                          help="Built-in PDK name or a PDK directory.")

model_inputs = _stack(
    click.option("--calib", type=FILE,
                 help="Calibration inputs (.npz, array 'x'); default MODEL.calib.npz beside the model, "
                      "else the --data inputs (said on stderr and in the report)."),
    click.option("--data", type=FILE, help="Inputs and labels (.npz, 'x' and 'y') for the accuracy."),
    click.option("--input-scale", type=float, default=1.0, show_default=True, help="x_model = x * scale + offset."),
    click.option("--input-offset", type=float, default=0.0, show_default=True),
)


def weight_format(default: str | None = "int8", help_text: str | None = None):
    """--weights and --block."""
    return _stack(
        click.option("--weights", type=click.Choice(list(WEIGHT_BITS)), default=default, show_default=default is not None,
                     help=help_text),
        click.option("--block", type=int, default=4, show_default=True, help="Weights per ROM block (even)."),
    )


rounding_option = click.option(
    "--rounding", type=click.Choice(ROUNDINGS), default="optimized", show_default=True,
    help="int4/int2 weights: nearest, or each weight rounded up or down (and each channel clipped) for the "
         "least layer output error on the calibration inputs, with bias correction (quant/rounding.py).")


merge_options = _stack(
    click.option("--merge-tol", type=int, help="Merge blocks whose weights all differ by at most T quantization steps."),
    click.option("--merge-budget", type=float,
                 help="Merge as far as accuracy on --data drops at most PP percentage points."),
)


def warn(message: str) -> None:
    """A warning: one line on stderr."""
    click.echo(f"warning: {message}", err=True)

"""`weightfab views chip.gds --model M.onnx -o DIR`: LEF, Liberty, Verilog and SPICE views per macro."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .main import _guard


@click.command("views")
@click.argument("layout", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory for the views.")
@click.option("--pdk", default="sky130", show_default=True)
@click.option("--weights", default="int8", show_default=True)
@click.option("--rounding", default="optimized", show_default=True)
@click.option("--calib", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--corner", "corners", multiple=True, type=click.Choice(["tt", "ss", "ff"]),
              help="Liberty corners (repeatable); default tt, ss and ff.")
@click.option("--engine", "engines", multiple=True, type=int, help="Only these engines (repeatable).")
@click.option("--no-liberty", is_flag=True, help="Skip the ngspice characterisation (no .lib).")
@_guard
def views_cmd(layout, model, out, pdk, weights, rounding, calib, corners, engines, no_liberty):
    """Write the integration views of every engine of LAYOUT into OUT."""
    write_views(layout, model, out, pdk=pdk, weights=weights, rounding=rounding, calib=calib,
                liberty=not no_liberty, corners=tuple(corners) or ("tt", "ss", "ff"), engines=list(engines) or None)


def write_views(layout, model, out, echo=click.echo, **kw) -> None:
    """Write the views (flow/views.py) and print one line per engine."""
    from ..flow.views import views

    run = views(layout, model, out, **kw)
    for e in run.engines:
        line = f"engine {e['engine']} '{e['layer']}': {e['columns']} bitlines x {e['wordlines']} wordlines"
        if "lef" in e:
            line += f", macro {e['lef']['size_um'][0]:.2f} x {e['lef']['size_um'][1]:.2f} µm, {e['lef']['pins']} pins"
        if "liberty" in e:
            line += ", clock-to-output " + ", ".join(f"{c} {v:.3f} ns" for c, v in e["liberty"]["tco_ns"].items())
        if not e["readback_equals_model"]:
            line += " (the words read back differ from the model's: the views hold the layout's)"
        echo(line)
    for n in run.notes:
        echo(n)
    (run.out / "views.json").write_text(json.dumps({"engines": run.engines, "notes": run.notes,
                                                     "files": [f.name for f in run.files]}, indent=1) + "\n")
    echo(f"{len(run.files)} files -> {run.out}")

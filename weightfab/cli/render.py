"""`weightfab render`: a layout as a PNG, drawn by KLayout's own renderer."""
from __future__ import annotations

import click

from .main import _guard
from .options import FILE, pdk_option


@click.command("render")
@click.argument("layout", type=FILE)
@click.option("-o", "--output", required=True, type=FILE, help="PNG to write.")
@pdk_option
@click.option("--window", help="x0,y0,x1,y1 in µm (default: the whole top cell).")
@click.option("--layers", help="Comma-separated layer names of the PDK (or L/D numbers) to show; default all.")
@click.option("--width", type=int, default=1600, show_default=True, help="Picture width in pixels.")
@click.option("--height", type=int, help="Picture height in pixels (default: from the window's aspect ratio).")
@click.option("--ruler/--no-ruler", default=True, show_default=True, help="Draw a scale bar (bottom left).")
@_guard
def render_cmd(layout, output, pdk, window, layers, width, height, ruler):
    """Draw LAYOUT (GDSII/OASIS) as a PNG with the PDK's layer colours."""
    from ..flow.outputs import check_paths
    from ..report.render import found_program_layer, parse_window, render
    from ..tech.pdk import load_pdk

    box = parse_window(window) if window else None
    names = [t.strip() for t in layers.split(",") if t.strip()] if layers else None
    check_paths({"LAYOUT": layout}, {"-o": output})
    p = found_program_layer(layout, load_pdk(pdk))
    w, h = render(layout, output, p, window=box, layers=names, width=width, height=height, ruler=ruler)
    click.echo(f"{layout} -> {output} ({w} x {h} px)")

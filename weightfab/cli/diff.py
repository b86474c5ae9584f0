"""`weightfab diff A B`: which layers of two layouts differ (XOR), with shape counts."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .main import _guard


@click.command("diff")
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pdk", default="sky130", show_default=True, help="Names the layers (GDS numbers are compared).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@_guard
def diff_cmd(a, b, pdk, as_json):
    """Compare two layouts layer by layer; exit 0 when identical, 4 when some layer differs."""
    from ..signoff.diff import diff_layouts
    from ..tech.pdk import load_pdk

    d = diff_layouts(a, b, load_pdk(pdk))
    if as_json:
        click.echo(json.dumps(d.summary(), indent=1))
    else:
        click.echo(f"{'layer':<12} {'gds':>7} {'shapes A':>10} {'shapes B':>10} {'XOR polygons':>13} {'XOR µm²':>12}")
        for l in d.layers:
            mark = "  differs" if l.differs else ""
            click.echo(f"{l.name:<12} {f'{l.layer}/{l.datatype}':>7} {l.shapes_a:>10,} {l.shapes_b:>10,} "
                       f"{l.xor_polygons:>13,} {l.xor_area_um2:>12,.3f}{mark}")
        diff = d.differing
        click.echo("identical on every layer" if not diff else
                   f"{len(diff)} of {len(d.layers)} layers differ: " + ", ".join(l.name for l in diff))
    sys.exit(0 if d.identical else 4)

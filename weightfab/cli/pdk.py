"""`weightfab pdk list|show`."""
from __future__ import annotations

import click

from .main import _guard


@click.group("pdk")
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
    from ..rom.viastack import program, program_layers
    rows = []
    for layer in program_layers(p):  # compile --program-layer: each with its via stack and bitcell
        q = program(p, layer)
        gq = RomGeometry.from_pdk(q)
        rows.append(f"{layer} (bitline {q.roles['met1']}, {gq.px * p.dbu_um:.3f} x {gq.py / 2 * p.dbu_um:.3f} µm)")
    click.echo("programming layers (--program-layer, densest first): " + ", ".join(rows))
    click.echo(f"KLayout layer properties: {p.lyp or 'none'}")



"""`weightfab lvs`: layout versus schematic of every ROM macro of a compiled layout."""
from __future__ import annotations

import click

from ..errors import VerifyError
from .main import _guard
from .options import FILE, pdk_option


@click.command("lvs")
@click.argument("file", type=FILE)
@pdk_option
@click.option("--engine", "engines", type=int, multiple=True, help="Only this engine (index, left to right); repeatable.")
@_guard
def lvs_cmd(file, pdk, engines):
    """Extract every macro of FILE (KLayout, NMOS/PMOS with W/L) and compare it with the circuit
    weightfab draws for it and the bits read back from FILE; exit 3 when any differs."""
    from ..signoff.lvs import lvs_layout
    from ..tech.pdk import load_pdk

    results = lvs_layout(file, load_pdk(pdk), list(engines) or None)
    bad = 0
    for r in results:
        click.echo(f"LVS {r.cell}: {'match' if r.ok else 'MISMATCH'}: {r.devices_layout} devices / {r.nets_layout} nets "
                   f"extracted, {r.devices_reference} / {r.nets_reference} in the reference ({r.seconds:.2f} s)")
        for d in r.differences[:20]:
            click.echo(f"  {d}")
        bad += not r.ok
    if bad:
        raise VerifyError(f"{file}: {bad} of {len(results)} macros differ from their reference circuit (LVS)")

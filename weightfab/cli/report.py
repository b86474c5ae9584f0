"""`weightfab report`: the HTML report of an earlier compile, from its JSON report and its layout."""
from __future__ import annotations

import time

import click

from .main import _guard
from .options import FILE


@click.command("report")
@click.argument("json_report", metavar="REPORT.json", type=FILE)
@click.option("-o", "--output", required=True, type=FILE, help="HTML file to write (one self-contained page).")
@click.option("--layout", type=FILE, help="The layout (default: the one the report names).")
@click.option("--pdk", help="Built-in PDK name or PDK directory (default: the one the report names).")
@_guard
def report_cmd(json_report, output, layout, pdk):
    """Write one self-contained HTML page (pictures embedded) for a compile's JSON report."""
    from ..flow.outputs import check_paths
    from ..report.html import load_report, resolve_layout, write_html
    from ..report.plots import require_matplotlib

    require_matplotlib()
    t0 = time.perf_counter()
    rep = load_report(json_report)
    path = resolve_layout(rep, json_report, layout)
    check_paths({"REPORT.json": json_report, "--layout": path}, {"-o": output})
    info = write_html(rep, output, path, pdk)
    click.echo(f"{json_report} + {path} -> {output} ({info['bytes']:,} bytes, {info['figures']} pictures, "
               f"{time.perf_counter() - t0:.1f} s)")

"""`weightfab drc`: check a layout against the PDK's rule deck."""
from __future__ import annotations

import click

from ..errors import LayoutReadError, outcome_error
from .main import _guard, _print_drc
from .options import FILE, pdk_option


@click.command("drc")
@click.argument("file", type=FILE)
@pdk_option
@click.option("--lyrdb", type=FILE,
              help="Marker database to write (default: FILE with suffix .lyrdb, written only on violations).")
@click.option("--full", is_flag=True, help="Every rule on the whole file (sign-off); default: the fast check "
              "(a proven template of the file, signoff/fastdrc.py), which runs this wherever its proof fails.")
@click.option("--quiet", is_flag=True, help="No progress line on stderr (shown only on a terminal).")
@_guard
def drc_cmd(file, pdk, lyrdb, full, quiet):
    """Check FILE (GDSII/OASIS) against the PDK's rule deck; exit 2 on violations."""
    from ..flow.compile import LYRDB_END
    from ..flow.outputs import Outputs, check_paths, check_text_end
    from ..signoff.drc import run_drc, write_lyrdb
    from ..tech.pdk import load_pdk

    if not file.is_file():
        raise LayoutReadError(f"{file}: no such file")
    out_path = lyrdb or file.with_suffix(".lyrdb")
    check_paths({"FILE": file}, {"--lyrdb" if lyrdb else "the markers (FILE.lyrdb)": out_path})
    p = load_pdk(pdk)
    from ..flow.progress import Progress
    with Progress(quiet) as progress:
        report = run_drc(file, p, fast=not full, progress=progress.step)
    _print_drc(report, click.echo, p)
    if lyrdb or not report.clean:  # markers on violations, or where asked for (README "Outputs")
        with Outputs() as out:
            staged = out.stage(out_path)
            write_lyrdb(report, p, staged)
            check_text_end(staged, LYRDB_END)
            out.commit()
        click.echo(f"markers: {out_path}")
    err = outcome_error(report, None, str(file))
    if err is not None:
        raise err

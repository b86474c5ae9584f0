"""Command line: parses options and calls the library. Each command lives in its own module
(cli/compile.py, verify.py, drc.py, inspect.py, pdk.py, ...), registered at the bottom of this file.

Exit codes are decided in one place, ``_guard``: a WeightfabError ends with its own ``exit_code``
(errors.py: 1 error, 2 DRC violations, 3 readback mismatch); an interruption with 130.
"""
from __future__ import annotations

import functools
import os
import sys
import warnings

import click

from .. import __version__
from ..errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, WeightfabError, memory_message


def _guard(fn):
    """Turn every failure into one line on stderr and its exit code."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except WeightfabError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except MemoryError as exc:
            click.echo(f"error: {memory_message(exc)}", err=True)
            sys.exit(EXIT_ERROR)
        except BrokenPipeError:  # output piped into a reader that stopped (``| head``): not an error
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(EXIT_OK)
        except Exception as exc:  # a bug: still one line, unless asked for the traceback
            if os.environ.get("WEIGHTFAB_DEBUG"):
                raise
            text = " ".join(str(exc).split())
            click.echo(f"internal error: {type(exc).__name__}: {text} (set WEIGHTFAB_DEBUG=1 for a traceback)", err=True)
            sys.exit(EXIT_ERROR)
    return wrapper


class _Group(click.Group):
    """Usage errors are failures like any other: one line, exit code 1 (2 means DRC violations);
    an interruption (SIGINT) is one line and exit code 130."""

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort as exc:
            if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
                click.echo("error: interrupted; no output was written (outputs reach their names only at the end)",
                           err=True)
                sys.exit(EXIT_INTERRUPTED)
            click.echo("error: aborted", err=True)
            sys.exit(EXIT_ERROR)
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(EXIT_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="weightfab")
def main():
    """Compile a neural network (ONNX) into a mask-ROM chip layout (GDSII/OASIS)."""
    # numpy >= 2 with OpenBLAS can report stale floating-point flags after a matmul of finite
    # operands ("invalid value encountered in matmul", numpy issue #28967): not the user's concern,
    # and it would break the one-line error contract (inputs and weights are checked finite on reading)
    warnings.filterwarnings("ignore", message=".* encountered in matmul", category=RuntimeWarning)


def _print_drc(report, echo, pdk=None):
    unchecked = f"; {len(pdk.skipped)} rule groups not checked, see 'weightfab pdk show {pdk.name}'" if pdk and pdk.skipped else ""
    mode = f"{getattr(report, 'mode', 'full')} mode"
    for note in getattr(report, "notes", ()):
        if "full" in note:           # the fast mode says where it ran the full check, and why
            echo(f"DRC note: {note}")
    if report.clean:
        echo(f"DRC: clean ({len(report.rules)} rules, {mode}, {report.seconds:.2f} s{unchecked})")
        return
    echo(f"DRC: {report.violations} violations ({mode})")
    for r in report.failing():
        ex = ", ".join(f"({x:.3f}, {y:.3f})" for x, y in r.examples[:3])
        echo(f"  {r.name:<10} {r.kind} {r.value} : {r.count} at {ex} µm")


from .compile import compile_cmd  # noqa: E402
from .drc import drc_cmd  # noqa: E402
from .inspect import inspect_cmd  # noqa: E402
from .pdk import pdk_group  # noqa: E402
from .verify import verify_cmd  # noqa: E402

main.add_command(compile_cmd)
main.add_command(drc_cmd)
main.add_command(verify_cmd)
main.add_command(inspect_cmd)
main.add_command(pdk_group)

from .diff import diff_cmd  # noqa: E402

main.add_command(diff_cmd)

from .faults import faults_cmd  # noqa: E402

main.add_command(faults_cmd)

from .render import render_cmd  # noqa: E402
from .report import report_cmd  # noqa: E402

main.add_command(render_cmd)
main.add_command(report_cmd)

from .calibrate import calibrate_cmd  # noqa: E402

main.add_command(calibrate_cmd)

from .simulate import simulate_cmd  # noqa: E402

main.add_command(simulate_cmd)

from .views import views_cmd  # noqa: E402

main.add_command(views_cmd)

from .lvs import lvs_cmd  # noqa: E402

main.add_command(lvs_cmd)

"""`weightfab verify`: read every weight bit back from a layout and compare with the model."""
from __future__ import annotations

import click

from ..errors import outcome_error
from .main import _guard
from .options import FILE, merge_options, model_inputs, pdk_option, rounding_option, warn, weight_format


@click.command("verify")
@click.argument("file", type=FILE)
@click.option("--model", required=True, type=FILE)
@pdk_option
@weight_format(None, "Weight format the layout was compiled with (default: from the bitlines per channel).")
@rounding_option
@model_inputs
@click.option("--electrical", is_flag=True,
              help="Also extract the transistors and nets (KLayout) of a window of every engine and check "
                   "that each 1-bit drain reaches its bitline and each 0-bit drain floats.")
@merge_options
@click.option("--program-layer", help="The via the weights must be programmed on (the readback finds it on "
              "the layout; this only checks it).")
@click.option("--protect", help="msb:N as compiled (the shadow arrays are found on the layout; this only checks it).")
@_guard
def verify_cmd(file, model, pdk, weights, block, rounding, calib, data, input_scale, input_offset, electrical, merge_tol,
               merge_budget, program_layer, protect):
    """Read every weight bit back from FILE and compare with MODEL's quantization; exit 3 on mismatch."""
    from ..flow.verify import verify

    res = verify(file, model, pdk=pdk, weights=weights, rounding=rounding, calib=calib, data=data,
                 input_scale=input_scale, input_offset=input_offset, electrical=electrical, block=block,
                 merge_tol=merge_tol, merge_budget=merge_budget, program_layer=program_layer, protect=protect)
    for w in res.warnings or []:
        warn(w)
    v = res.readback
    if v.ok:
        click.echo(f"verified: {v.matched} of {v.total_bits} bits match ({res.weights}, {len(v.arrays)} arrays, "
                   f"programmed on {v.program_layer}" + (f", msb:{res.protect} shadow arrays" if res.protect else "")
                   + f", {v.seconds:.2f} s)")
    else:
        differ = v.total_bits - v.matched
        stray = v.mismatch_count - differ
        click.echo(f"MISMATCH: {differ} of {v.total_bits} bits differ" + (f", {stray} stray shapes" if stray else ""))
        for m in v.mismatches[:50]:
            click.echo(f"  {m}")
        if v.mismatch_count > 50:
            click.echo(f"  ... and {v.mismatch_count - min(50, len(v.mismatches))} more"
                       + (f" ({len(v.mismatches)} listed in the result, the list is capped)" if v.capped else ""))
    if res.accuracy:
        a = res.accuracy
        line = f"accuracy on {a['samples']} samples: float {a['float']:.2%}, quantized {a['quantized']:.2%}"
        if "onnxruntime" in a:
            line += f", onnxruntime {a['onnxruntime']:.2%}"
        click.echo(line + f", chip {a['chip']:.2%}; chip == quantized reference on every input: {a['chip_equals_reference']}")
    bad_electrical = False
    for e in res.electrical or []:
        c0, nc, r0, nr = e.window
        click.echo(f"electrical: engine {e.engine} window {nc}x{nr} bits at ({c0}, {r0}): {e.devices} transistors, "
                   f"{e.ones_connected}/{e.ones} ones on their bitline, {e.zeros_floating}/{e.zeros} zeros floating"
                   + ("" if e.ok else f"; {e.error_count} errors, first: {e.errors[0]}"))
        bad_electrical |= not e.ok
    err = outcome_error(None, v.ok and not bad_electrical, str(file))
    if err is not None:
        raise err

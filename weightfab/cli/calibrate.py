"""``weightfab calibrate``: fit the per-channel trims of one faulty die on calibration data."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import WeightfabError
from .main import _guard


def calibrate(faults_file, data, heldout, *, model=None, layout=None, calib=None, pdk=None, rounding=None, input_scale=None,
              input_offset=None, samples=None, bias_bits=16, scale_bits=8) -> dict:
    """Fit trims for the die of ``faults_file`` on ``data``; accuracy before and after on both sets."""
    import numpy as np

    from ..faults.chip import accuracy, load_chip
    from ..faults.found import apply_found, read_found
    from ..faults.trims import apply_trims, fit_trims
    from ..flow.inputs import load_npz
    from .faults import load_inputs

    if not 2 <= bias_bits <= 32 or not 0 <= scale_bits <= 16:
        raise WeightfabError("--bias-bits must be 2..32 and --scale-bits 0..16")
    doc = read_found(faults_file)
    get = lambda given, key, default=None: given if given is not None else doc.get(key, default)  # noqa: E731
    scale, offset = float(get(input_scale, "input_scale", 1.0)), float(get(input_offset, "input_offset", 0.0))
    net, x, y, cx = load_inputs(get(model, "model"), data, get(calib, "calib"), scale, offset, samples)
    chip = load_chip(get(layout, "layout"), get(model, "model"), net, pdk=get(pdk, "pdk", "sky130"),
                     weights=doc.get("weights"), calib_x=cx, data_x=x, rounding=get(rounding, "rounding", "optimized"))
    die_bits = apply_found(chip, doc["faults"], str(faults_file))
    ref, faulty = chip.qnet, chip.qnet.with_weights(chip.weights(die_bits))
    trims, fit = fit_trims(ref, faulty, x, y, bias_bits, scale_bits)
    trimmed = apply_trims(faulty, trims)
    rep = {"faults_file": str(faults_file), "faulty_bits": len(doc["faults"]), "calibration": str(data),
           "calibration_samples": int(len(y)), "chosen": fit["chosen"],
           "calibration_accuracy": {"fault_free": accuracy(run(ref, x), y), "faulty": fit["calibration_accuracy"]["none"],
                                    "trimmed": fit["calibration_accuracy"][fit["chosen"]],
                                    "candidates": fit["calibration_accuracy"]},
           "trim_registers": {"modelled_not_drawn": True, "per_channel_bits": trims.bias_bits + trims.scale_bits,
                              "bias_bits": trims.bias_bits, "scale_bits": trims.scale_bits,
                              "channels": int(sum(len(b) for b in trims.bias)), "total_bits": trims.register_bits,
                              "largest_bias_trim": int(max(int(np.abs(b).max()) for b in trims.bias)),
                              "channels_trimmed": int(sum(int(np.count_nonzero(b) + np.count_nonzero(
                                  g & (b == 0))) for b, g in zip(trims.bias, trims.gain)))},
           "trims": {"bias": [b.tolist() for b in trims.bias], "gain_code": [g.tolist() for g in trims.gain]}}
    if heldout is not None:
        hx, hy = load_npz(heldout, chip.qnet.input_shape, True, scale, offset)
        rep["heldout"] = str(heldout)
        rep["heldout_samples"] = int(len(hy))
        rep["heldout_accuracy"] = {"fault_free": accuracy(run(ref, hx), hy), "faulty": accuracy(run(faulty, hx), hy),
                                   "trimmed": accuracy(run(trimmed, hx), hy)}
    return rep


def run(qnet, x):
    from ..quant.quantize import run_integer
    return run_integer(qnet, x)


@click.command("calibrate")
@click.option("--faults", "faults_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The die's faulty bits (FOUND.json, e.g. from 'weightfab faults --die ... --found-out').")
@click.option("--data", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration inputs and labels (.npz) the trims are fitted on.")
@click.option("--heldout", type=click.Path(dir_okay=False, path_type=Path),
              help="Held-out inputs and labels (.npz): accuracy recovered, measured where it was not fitted.")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), help="Default: as in the faults file.")
@click.option("--layout", type=click.Path(dir_okay=False, path_type=Path), help="Default: as in the faults file.")
@click.option("--calib", type=click.Path(dir_okay=False, path_type=Path),
              help="Quantization calibration inputs, as compiled (default: as in the faults file, else --data).")
@click.option("--pdk", help="Default: as in the faults file.")
@click.option("--rounding", type=click.Choice(["nearest", "optimized"]), help="As compiled (default: as in the faults file).")
@click.option("--input-scale", type=float, help="Default: as in the faults file.")
@click.option("--input-offset", type=float, help="Default: as in the faults file.")
@click.option("--bias-bits", type=int, default=16, show_default=True, help="Signed bias trim register per channel.")
@click.option("--scale-bits", type=int, default=8, show_default=True,
              help="Signed gain trim per channel (step 2^-(bits+1)); 0 = bias trims only.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="JSON report with the trims.")
@_guard
def calibrate_cmd(faults_file, data, heldout, model, layout, calib, pdk, rounding, input_scale, input_offset, bias_bits,
                  scale_bits, report):
    """Fit per-output-channel trims for a die's faulty bits and report the accuracy recovered."""
    rep = calibrate(faults_file, data, heldout, model=model, layout=layout, calib=calib, pdk=pdk, rounding=rounding,
                    input_scale=input_scale, input_offset=input_offset, bias_bits=bias_bits, scale_bits=scale_bits)
    c, t = rep["calibration_accuracy"], rep["trim_registers"]
    click.echo(f"{rep['faulty_bits']} faulty weight bits; trims fitted on {rep['calibration_samples']} samples: "
               f"{rep['chosen']} (candidates: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in c["candidates"].items()) + ")")
    click.echo(f"calibration accuracy: fault-free {100 * c['fault_free']:.2f}%, faulty {100 * c['faulty']:.2f}%, "
               f"trimmed {100 * c['trimmed']:.2f}%")
    if "heldout_accuracy" in rep:
        h = rep["heldout_accuracy"]
        click.echo(f"held-out accuracy ({rep['heldout_samples']} samples): fault-free {100 * h['fault_free']:.2f}%, "
                   f"faulty {100 * h['faulty']:.2f}%, trimmed {100 * h['trimmed']:.2f}%")
    click.echo(f"trim registers (modelled, not drawn): {t['channels']} channels x {t['per_channel_bits']} bits "
               f"({t['bias_bits']} bias + {t['scale_bits']} gain) = {t['total_bits']:,} bits; "
               f"{t['channels_trimmed']} channels non-zero, largest bias trim {t['largest_bias_trim']}")
    if report:
        Path(report).write_text(json.dumps(rep, indent=1) + "\n")
        click.echo(f"report: {report}")

"""``weightfab faults``: accuracy under injected faults, critical area and yield."""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import WeightfabError
from ..faults.inject import DEFAULT_KINDS, KINDS
from ..faults.yield_model import DEFAULT_ALPHA, DEFAULT_D0
from ..quant.quantize import WEIGHT_BITS
from .main import _guard
from .options import rounding_option


def _pct(v: float) -> str:
    return f"{100 * v:6.2f}"


def print_report(rep: dict, echo) -> None:
    s = rep["sweep"]
    echo(f"accuracy (%) under random faults, {s['trials']} trials each, seed {s['seed']}, {s['samples']} samples; "
         f"no faults {_pct(s['reference_accuracy']).strip()}")
    echo(f"{'kind':<15} {'rate':>8} {'mean':>7} {'p5':>7} {'worst':>7} {'bits changed':>13}")
    for r in s["table"]:
        echo(f"{r['kind']:<15} {r['rate']:>8.0e} {_pct(r['mean'])} {_pct(r['p5'])} {_pct(r['worst'])} "
             f"{r['mean_changed_bits']:>13,.1f}")
    if "sensitivity" in rep:
        se = rep["sensitivity"]
        echo(f"sensitivity: bits flipped at {se['rate']:.0e} per site in one bit position / one layer; "
             f"mean accuracy loss (points)")
        echo("  by bit position: " + ", ".join(f"{r['label']} {100 * r['mean_loss']:.2f}" for r in reversed(se["per_bit"])))
        echo("  by layer:        " + ", ".join(f"{r['name']} {100 * r['mean_loss']:.2f} ({r['mean_changed_bits']:.0f} flips)"
                                           for r in se["per_layer"]))
    if "yield" in rep:
        y = rep["yield"]
        echo(f"critical area of the ROM arrays (µm², mean over the 1/s³ defect sizes, x0 {y['x0_um']} µm, s_max "
             f"{y['s_max_um']:.2f} µm; periphery and stack vias not modelled) and faults per die at D0 {y['d0_per_cm2']}/cm²:")
        for k, v in y["critical_area_um2"].items():
            m = y["mechanisms"][k]
            echo(f"  {k:<15} {m['layer']:<5} {m['defect']:<8} {v:>14,.1f} µm²  {y['faults_per_die'][k]:.3e}")
        echo(f"pass(n): die with n faults meets the target {100 * y['target']:.2f}%: "
             + ", ".join(f"{n}:{p:.2f}" for n, p in zip(y["pass_n"], y["pass_p"])))
        echo(f"{'die mm²':>10} {'faults/die':>11} {'Y0 Poisson':>11} {'Yf Poisson (95% low)':>21} "
             f"{'Y0 negbin':>10} {'Yf negbin (95% low)':>20}  (negative binomial alpha {y['alpha']}; Y0 zero-defect, "
             f"Yf functional)")
        for r in y["table"]:
            tag = " (the drawn die)" if r["drawn"] else ""
            echo(f"{r['die_mm2']:>10.4f} {r['faults_per_die']:>11.4g} {r['zero_defect_poisson']:>11.5f} "
                 f"{r['functional_poisson']:>11.5f} ({r['functional_poisson_low95']:.5f}) "
                 f"{r['zero_defect_negbin']:>10.5f} {r['functional_negbin']:>10.5f} ({r['functional_negbin_low95']:.5f}){tag}")
    if "die" in rep:
        d = rep["die"]
        echo(f"one die at {d['kind']} {d['rate']:.0e}: {d['faulty_bits']} faulty weight bits, accuracy "
             f"{100 * d['accuracy']:.2f}% -> {d['file']}")


def load_inputs(model, data, calib, input_scale, input_offset, samples=None):
    """The network, the data (first ``samples``) and the calibration inputs (None without --calib)."""
    from ..flow.inputs import load_npz
    from ..frontend.onnx_import import load_onnx

    net = load_onnx(model)
    x, y = load_npz(data, net.input_shape, True, input_scale, input_offset)
    if samples:
        x, y = x[:samples], y[:samples]
    cx = load_npz(calib, net.input_shape, False, input_scale, input_offset)[0] if calib else None
    return net, x, y, cx


@click.command("faults")
@click.argument("layout", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Inputs and labels (.npz) the accuracy is measured on.")
@click.option("--calib", type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration inputs of the quantization, as compiled (default: --data).")
@click.option("--pdk", default="sky130", show_default=True)
@click.option("--weights", type=click.Choice(list(WEIGHT_BITS)), help="As compiled (default: from the layout).")
@rounding_option
@click.option("--input-scale", type=float, default=1.0, show_default=True)
@click.option("--input-offset", type=float, default=0.0, show_default=True)
@click.option("--samples", type=int, help="Use only the first N samples of --data.")
@click.option("--rate", "rates", default="1e-5,1e-4,1e-3", show_default=True, help="Fault rates per site.")
@click.option("--trials", type=int, default=20, show_default=True)
@click.option("--kinds", default=",".join(DEFAULT_KINDS), show_default=True, help=f"Any of {', '.join(KINDS)}.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--sens-rate", type=float, help="Bit-flip rate of the sensitivity runs (default: the largest --rate).")
@click.option("--no-sensitivity", is_flag=True)
@click.option("--no-yield", is_flag=True, help="Skip critical area and yield.")
@click.option("--d0", type=float, default=DEFAULT_D0, show_default=True,
              help="Defect density per cm², per modelled layer and defect type.")
@click.option("--alpha", type=float, default=DEFAULT_ALPHA, show_default=True, help="Negative-binomial clustering.")
@click.option("--x0", type=float, help="Peak defect size, µm (default: the PDK's gate length).")
@click.option("--s-max", type=float, help="Largest defect size, µm (default: 100 x0).")
@click.option("--target", type=float, help="Accuracy a die must reach, 0..1 (default: fault-free minus 0.01).")
@click.option("--die-mm2", default="1,10,100", show_default=True,
              help="Further die sizes (mm²) for the yield table: the same density and sensitivity, scaled.")
@click.option("--yield-trials", type=int, default=20, show_default=True, help="Dies per point of pass(n).")
@click.option("--die", help="Also draw one die at KIND:RATE and write its faulty bits to --found-out.")
@click.option("--found-out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Accuracy vs rate per kind (PNG).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="JSON report.")
@_guard
def faults_cmd(layout, model, data, calib, pdk, weights, rounding, input_scale, input_offset, samples, rates, trials, kinds,
               seed, sens_rate, no_sensitivity, no_yield, d0, alpha, x0, s_max, target, die_mm2, yield_trials, die,
               found_out, plot, report):
    """Inject faults into the weights read back from LAYOUT and measure what they do to accuracy."""
    from ..faults.analyse import analyse, parse_list

    if bool(die) != bool(found_out):
        raise WeightfabError("--die KIND:RATE and --found-out FILE go together")
    if d0 < 0 or alpha <= 0 or (target is not None and not 0 <= target <= 1):
        raise WeightfabError("--d0 must be >= 0, --alpha > 0 and --target within 0..1")
    opts = dict(pdk=pdk, weights=weights, rounding=rounding, calib=calib, input_scale=input_scale, input_offset=input_offset,
                samples=samples, rates=parse_list(rates, "--rate"), trials=trials,
                kinds=[k.strip() for k in kinds.split(",") if k.strip()], seed=seed, sens_rate=sens_rate,
                sensitivity=not no_sensitivity, yield_=not no_yield, d0=d0, alpha=alpha, x0=x0, s_max=s_max,
                target=target, die_mm2=parse_list(die_mm2, "--die-mm2"), yield_trials=yield_trials, die=die,
                found_out=found_out, plot=plot, report=report)
    opts["yield"] = opts.pop("yield_")
    net, x, y, cx = load_inputs(model, data, calib, input_scale, input_offset, samples)
    rep = analyse(layout, model, net, x, y, cx, opts=opts, echo=click.echo)
    print_report(rep, click.echo)
    if plot:
        click.echo(f"plot: {plot}")
    if report:
        click.echo(f"report: {report}")

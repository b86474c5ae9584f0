"""The ``faults`` analysis: sweep, sensitivity, critical area and yield, one die's faults file."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import WeightfabError
from .chip import accuracy, load_chip
from .critical_area import MECHANISMS, SizeDistribution, layout_critical_area
from .found import write_found
from .inject import KIND_ID, check_kinds, inject_rate
from .protect import check_gates
from .sweep import STREAM_DIE, plot_sweep, rng_for, sensitivity, sweep
from .yield_model import UM2_PER_CM2, grid_for, pass_curve, yield_table


def parse_list(text: str, what: str, cast=float) -> list:
    try:
        vals = [cast(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise WeightfabError(f"{what} {text!r}: expected numbers separated by commas") from None
    if not vals:
        raise WeightfabError(f"{what} is empty")
    return vals


def _die_area_mm2(layout) -> float:
    from ..signoff.drc import read_layout
    ly, top = read_layout(layout)
    b = top.dbbox()
    return b.width() * b.height() / 1e6


def protection_cost(chip) -> dict:
    """Area of the shadow arrays against the main ones (array bounding boxes on the layout)."""
    um2 = (chip.pdk.dbu_um) ** 2
    area = [(a.bbox[2] - a.bbox[0]) * (a.bbox[3] - a.bbox[1]) * um2 for a in chip.arrays]
    main, shadow = sum(area[:chip.layers]), sum(area[chip.layers:])
    return {"scheme": f"msb:{chip.protect}", "main_area_um2": main, "shadow_area_um2": shadow,
            "area_ratio": shadow / main, "main_sites": int(sum(b.size for b in chip.bits[:chip.layers])),
            "shadow_sites": int(sum(b.size for b in chip.bits[chip.layers:])),
            "check_logic": check_gates(chip.qnet, chip.protect)}


def yield_section(chip, x, y, layout, ref, opts: dict, echo) -> dict:
    x0 = opts["x0"] if opts["x0"] else chip.pdk.bitcell["gate_length"]
    dist = SizeDistribution(float(x0), float(opts["s_max"] or 100 * x0))
    t0 = time.perf_counter()
    engines = layout_critical_area(layout, chip.pdk, chip.bits, dist)
    ca = {k: sum(e.mean_um2[k] for e in engines) for k in MECHANISMS}
    lam = {k: opts["d0"] * v / UM2_PER_CM2 for k, v in ca.items()}
    lam_total = sum(lam.values())
    drawn = _die_area_mm2(layout)
    target = opts["target"] if opts["target"] is not None else ref - 0.01
    sizes = sorted(set(opts["die_mm2"]))
    lam_max = lam_total * max([drawn, *sizes]) / drawn
    ns = grid_for(lam_max, opts["alpha"])
    echo(f"critical area ({time.perf_counter() - t0:.1f} s; x0 {dist.x0} µm, s_max {dist.s_max} µm); "
         f"pass(n) at n = {ns} with {opts['yield_trials']} dies each ...")
    ps = pass_curve(chip, x, y, target, {MECHANISMS[k][2]: v for k, v in lam.items()}, ns,
                    opts["yield_trials"], opts["seed"])
    p0 = 1.0 if ref >= target else 0.0
    return {"d0_per_cm2": opts["d0"], "alpha": opts["alpha"], "x0_um": dist.x0, "s_max_um": dist.s_max,
            "target": target, "drawn_die_mm2": drawn,
            "critical_area_um2": ca, "faults_per_die": lam, "faults_per_die_total": lam_total,
            "mechanisms": {k: {"layer": engines[0].layers[k] if engines else v[0], "defect": v[1], "fault": v[2]}
                           for k, v in MECHANISMS.items()},
            "engines": [{"engine": e.engine, "sites": e.sites, "vias": e.vias, "window_sites": e.window_sites,
                         "critical_area_um2": e.mean_um2} for e in engines],
            "pass_n": ns, "pass_p": ps, "pass_0": p0,
            "table": yield_table(lam_total, drawn, sizes, ns, ps, p0, opts["alpha"], opts["yield_trials"])}


def analyse(layout, model, net, x, y, calib_x, *, opts: dict, echo=lambda s: None) -> dict:
    """Everything ``weightfab faults`` computes, as the JSON report (``net`` loaded from ``model``;
    ``x``, ``y`` the data; ``calib_x`` the quantization calibration inputs, None: ``x``)."""
    kinds = check_kinds(opts["kinds"])
    rates = [float(r) for r in opts["rates"]]
    if any(not 0 < r < 1 for r in rates):
        raise WeightfabError(f"--rate {rates}: every rate must lie in (0, 1)")
    if opts["trials"] < 1:
        raise WeightfabError("--trials must be at least 1")
    chip = load_chip(layout, model, net, pdk=opts["pdk"], weights=opts["weights"], calib_x=calib_x, data_x=x,
                     rounding=opts["rounding"])
    ref = accuracy(chip.outputs(x), y)
    echo(f"{layout}: {len(chip.bits)} engines, {sum(b.size for b in chip.bits):,} bit sites, "
         f"{sum(int(b.sum()) for b in chip.bits):,} programmed; layout differs from the model's quantization in "
         f"{chip.differing_bits} bits; fault-free accuracy {ref:.2%} on {len(y)} samples")
    rep = {"layout": str(layout), "model": str(model), "weights": chip.qnet.weights, "pdk": chip.pdk.name,
           "protect": f"msb:{chip.protect}" if chip.protect else None,
           "samples": int(len(y)), "seed": opts["seed"], "reference_accuracy": ref,
           "layout_differs_from_model_bits": chip.differing_bits,
           "conventions": "wordlines driven from the left (column 0), bitlines sensed at the bottom (wordline 0)"}
    if chip.protect:
        rep["protection"] = protection_cost(chip)
        p = rep["protection"]
        echo(f"protect msb:{chip.protect}: shadow arrays {p['shadow_area_um2']:,.0f} µm² = {100 * p['area_ratio']:.1f}% "
             f"of the main arrays' {p['main_area_um2']:,.0f} µm² ({p['shadow_sites']:,} bit sites); check logic "
             f"(modelled, not drawn): {p['check_logic']['total_gates']:,} gates")
    rep["sweep"] = sweep(chip, x, y, kinds, rates, opts["trials"], opts["seed"], progress=opts.get("progress"))
    if opts["sensitivity"]:
        srate = float(opts["sens_rate"] or max(rates))
        rep["sensitivity"] = sensitivity(chip, x, y, srate, opts["trials"], opts["seed"])
    if opts["yield"]:
        rep["yield"] = yield_section(chip, x, y, layout, ref, opts, echo)
    if opts["die"]:
        kind, _, rate = opts["die"].partition(":")
        check_kinds([kind])
        rate = parse_list(rate, "--die rate")[0]
        bits, _ = inject_rate(chip.bits, kind, rate, rng_for(opts["seed"], STREAM_DIE, KIND_ID[kind], rate))
        meta = {"layout": str(Path(layout).resolve()), "model": str(Path(model).resolve()), "pdk": opts["pdk"],
                "weights": chip.qnet.weights, "rounding": opts["rounding"], "calib": str(Path(opts["calib"]).resolve()) if opts["calib"] else None,
                "input_scale": opts["input_scale"], "input_offset": opts["input_offset"],
                "source": {"kind": kind, "rate": rate, "seed": opts["seed"]},
                "die_accuracy": accuracy(chip.outputs(x, bits), y)}
        n = write_found(opts["found_out"], chip, bits, meta)
        rep["die"] = {"file": str(opts["found_out"]), "kind": kind, "rate": rate, "faulty_bits": n,
                      "accuracy": meta["die_accuracy"]}
    if opts["plot"]:
        plot_sweep(rep["sweep"], opts["plot"])
    if opts["report"]:
        Path(opts["report"]).write_text(json.dumps(rep, indent=1, default=_plain) + "\n")
    return rep


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(type(v))

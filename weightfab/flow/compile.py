"""compile(): the whole flow, one stage after another. The CLI only wraps this."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from .inputs import check_scale, default_calibration, resolve_inputs  # noqa: F401 (default_calibration: API)
from .outputs import Outputs, check_layout_file, check_paths, check_text_end
from ..mapping.dedup import DEFAULT_BLOCK, BlockLibrary, dedup, to_bits
from ..signoff.drc import DrcReport, run_drc, write_lyrdb
from ..errors import OutputError, UsageError, WeightfabError
from ..rom.writer import build_library, write_library
from ..frontend.network import Network
from ..frontend.onnx_import import load_onnx
from ..tech.pdk import BUILTIN_DIR, Pdk, list_pdks, load_pdk
from ..quant.quantize import QuantizedNetwork, quantize, run_integer
from ..rom.geometry import Placement, RomGeometry, floorplan
from ..rom.periphery.clock import read_period
from ..rom.periphery.macro import build_macros, figures as macro_figures
from ..faults.protect import parse_protect, with_shadows
from ..rom.viastack import program, programming_report
from ..signoff.readback import verify_layout
from .readtime import check_simulate, parse_corners, read_macros, reads_ok

LYRDB_END = "</report-database>"


@dataclass
class CompileResult:
    model: Path
    output: Path
    pdk: Pdk
    network: Network
    qnet: QuantizedNetwork
    blocks: BlockLibrary
    placement: Placement
    geometry: RomGeometry
    file_bytes: int
    drc: DrcReport | None
    accuracy: dict | None
    verify: object | None
    timings: dict[str, float] = field(default_factory=dict)
    merge: object | None = None
    calibration: dict | None = None   # where the calibration inputs came from (flow.inputs.Inputs.summary)
    warnings: list[str] = field(default_factory=list)
    drawn_layers: frozenset = frozenset()  # GDS (layer, datatype) pairs the layout holds
    macros: list | None = None        # rom.periphery Macro per engine (None: the array alone)
    macro_notes: list[str] = field(default_factory=list)  # why an engine has no periphery
    periphery: bool = True            # macros were asked for (drawn where the PDK supports them)
    html: dict | None = None          # what the HTML page holds (bytes, pictures, seconds), when written
    reads: dict | None = None         # engine -> simulated read (flow/readtime.py), when --simulate

    @property
    def ok(self) -> bool:
        return ((self.drc is None or self.drc.clean) and (self.verify is None or self.verify.ok)
                and (self.reads is None or reads_ok(self.reads)))

    def report(self) -> dict:
        """The machine-readable report (what --report writes as JSON)."""
        um = self.pdk.dbu_um
        g = self.geometry
        layers = []
        for lb, place, ql in zip(self.blocks.layers, self.placement.engines, self.qnet.layers):
            x0, y0, x1, y1 = place.bbox
            zero = int(np.count_nonzero(~lb.unique.any(axis=1)))
            layers.append({
                "name": lb.name, "outputs": lb.shape[0], "inputs": lb.shape[1],
                "weights": lb.shape[0] * lb.shape[1], "bits": lb.bits, "bits_stored": lb.rows * lb.columns,
                "blocks": lb.blocks, "unique_blocks": int(len(lb.unique)), "zero_block_kinds": zero,
                "dedup_ratio": round(lb.blocks / len(lb.unique), 4),
                "rows": lb.rows, "columns": lb.columns,
                "area_um2": round((x1 - x0) * (y1 - y0) * um * um, 3),
                "programmed_vias": _ones(lb),
                "stores_bits": bool(_ones(lb)),
                "macro": macro_figures(self.macros[len(layers)] if self.macros else None,
                                       self.macro_notes[len(layers)] if self.macro_notes else "", um),
            })
            if self.reads and len(layers) - 1 in self.reads:
                layers[-1]["macro"]["read"] = self.reads[len(layers) - 1]
        die = self.placement.die
        w, h = (die[2] - die[0]) * um, (die[3] - die[1]) * um
        cell_area = g.px * g.py / 2 * um * um
        rep = {
            "weightfab": __version__,
            "model": str(self.model),
            "model_sha256": hashlib.sha256(self.model.read_bytes()).hexdigest(),
            "output": str(self.output),
            "format": self.output.suffix.lower().lstrip("."),
            "file_bytes": self.file_bytes,
            "pdk": self.pdk.name,
            "weights": self.qnet.weights,
            "rounding": self.qnet.rounding,
            "block": self.blocks.block,
            "layers": layers,
            "totals": {
                "weights": sum(l["weights"] for l in layers),
                "blocks": sum(l["blocks"] for l in layers),
                "unique_blocks": sum(l["unique_blocks"] for l in layers),
            },
            "bitcell": {"pitch_x_um": g.px * um, "pitch_y_um": g.py / 2 * um, "area_um2": round(cell_area, 6),
                        "bits_per_um2": round(1 / cell_area, 4)},
            "die": {"width_um": round(w, 3), "height_um": round(h, 3), "area_mm2": round(w * h / 1e6, 6),
                    "drawn": ("ROM macros: arrays with row decoders, wordline drivers, bitline precharge and sensing, "
                              "clock gating, taps, power straps and pins (see layers[].macro)") if any(self.macros or [])
                             else "ROM arrays with wordline pads, ground rails and bitlines",
                    "not_drawn": "the arithmetic that uses the weights (MAC lanes, requantization, activation) is not drawn "
                                 "and not counted" + ("" if all(self.macros or [None]) else
                                                      "; engines without a macro have no periphery (layers[].macro.why_not)")},
            "pdk_comparison": compare_pdks(self.blocks, self.pdk, self.periphery),
            "programming": programming_report(self.pdk, [(l.columns, l.rows) for l in self.blocks.layers],
                                              self.drawn_layers),
            "drc": None if self.drc is None else {
                "clean": self.drc.clean, "violations": self.drc.violations, "rules_checked": len(self.drc.rules),
                "mode": self.drc.mode, "notes": list(self.drc.notes), "seconds": round(self.drc.seconds, 4),
                "failing": [{"rule": r.name, "count": r.count, "examples_um": r.examples} for r in self.drc.failing()],
                "not_checked": dict(self.pdk.skipped),
            },
            "verify": None if self.verify is None else self.verify.summary(),
            "merge": None if self.merge is None else self.merge.summary(),
            "accuracy": self.accuracy,
            "calibration": self.calibration,
            "warnings": list(self.warnings),
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }
        return rep


def compare_pdks(blocks, chosen: Pdk, periphery: bool = True) -> list[dict]:
    """The same arrays floorplanned with every built-in PDK's bitcell (and the chosen one, if it is
    a user PDK): bitcell area, bit density and die area, and the die area relative to the chosen
    PDK. Nothing is drawn; the floorplan is the one compile uses (with the macros' periphery on
    a PDK that gets macros, when ``periphery``)."""
    sizes = [(l.columns, l.rows) for l in blocks.layers]
    names = [l.name for l in blocks.layers]
    rows, base = [], None
    builtin = chosen.path.resolve().parent == BUILTIN_DIR.resolve()
    for name in ([] if builtin else [None]) + list_pdks():
        try:
            p = chosen if name is None or (builtin and name == chosen.name) else load_pdk(name)
            g = RomGeometry.from_pdk(p)
            macros = build_macros(sizes, names, p, g)[0] if periphery else [None] * len(sizes)
            die = floorplan(sizes, g, bboxes=[m.bbox if m else None for m in macros]).die
        except WeightfabError as exc:
            rows.append({"pdk": str(name or chosen.path), "error": str(exc)})
            continue
        um = p.dbu_um
        cell = g.px * g.py / 2 * um * um
        area = (die[2] - die[0]) * (die[3] - die[1]) * um * um / 1e6
        rows.append({"pdk": p.name, "bitcell_um": [round(g.px * um, 4), round(g.py / 2 * um, 4)],
                     "bitcell_area_um2": round(cell, 6), "bits_per_um2": round(1 / cell, 4),
                     "die_um": [round((die[2] - die[0]) * um, 3), round((die[3] - die[1]) * um, 3)],
                     "die_area_mm2": round(area, 6)})
        if p.name == chosen.name:
            base = area
    for r in rows:
        if base and "die_area_mm2" in r:
            r["relative_to_chosen"] = round(r["die_area_mm2"] / base, 4)
    return rows


def _ones(lb) -> int:
    """Programming shapes the layer's array holds: the 1-bits of every block use."""
    return int(to_bits(lb.unique, lb.bits).sum(axis=(1, 2))[lb.index].sum())


def _accuracy(net: Network, qref: QuantizedNetwork, qnet: QuantizedNetwork, merged, verified,
              x: np.ndarray, y: np.ndarray) -> dict:
    """Float, quantized, merged (when merged) and chip (weights read back, when verified) accuracy."""
    f = np.concatenate([np.argmax(net.forward(x[s:s + 256]), axis=1) for s in range(0, len(x), 256)])  # batched
    q = np.argmax(run_integer(qref, x), axis=1)
    acc = {"samples": int(len(y)), "float": float(np.mean(f == y)), "quantized": float(np.mean(q == y))}
    if merged is not None:
        acc["merged"] = float(np.mean(np.argmax(run_integer(qnet, x), axis=1) == y))
    if verified is not None and verified.weights is not None:
        chip = np.argmax(run_integer(qnet.with_weights(verified.weights), x), axis=1)
        acc["chip"] = float(np.mean(chip == y))
    return acc


def apply_merge(qnet, block, tol, budget, calib_x, data_x, data_y):
    """The similar-block merge asked for (``--merge-tol`` or ``--merge-budget``), or None."""
    from ..mapping import merge as mg
    check_merge_options(tol, budget, data_x is not None)
    if budget is not None:
        return mg.merge_budget(qnet, block, data_x, data_y, float(budget), calib=calib_x)
    if tol:
        return mg.merge_tol(qnet, block, int(tol), calib=calib_x)
    return None


def check_merge_options(tol, budget, have_data: bool) -> None:
    """Usage errors of the merge options, found before any work."""
    if tol is not None and budget is not None:
        raise UsageError("give --merge-tol or --merge-budget, not both")
    if budget is not None and not have_data:
        raise UsageError("--merge-budget needs --data (inputs and labels to measure the accuracy on)")
    if budget is not None and not budget >= 0:
        raise UsageError(f"--merge-budget {budget}: must be >= 0 percentage points")
    if tol is not None and tol < 0:
        raise UsageError(f"--merge-tol {tol}: must be >= 0 quantization steps")


def compile(model: str | Path, output: str | Path, *, pdk: str | Path = "sky130", weights: str = "int8",
            rounding: str = "optimized",
            block: int = DEFAULT_BLOCK, calib: str | Path | None = None, data: str | Path | None = None,
            input_scale: float = 1.0, input_offset: float = 0.0, drc: bool = True, verify: bool = True,
            report: str | Path | None = None, lyrdb: str | Path | None = None,
            merge_tol: int | None = None, merge_budget: float | None = None,
            on_warning: Callable[[str], None] | None = None, program_layer: str | None = None,
            protect: str | None = None, periphery: bool = True, full_drc: bool = False,
            progress=None, html: str | Path | None = None, simulate: tuple[str, ...] = (),
            reads: int = 8) -> CompileResult:
    """Compile an ONNX model into a ROM layout; see the README for what each option does and for
    where outputs land (flow/outputs.py). ``on_warning`` hears each warning as it arises.
    ``simulate``: corners at which each macro is read in ngspice (flow/readtime.py), ``reads``
    random addresses each."""
    model, output = Path(model), Path(output)
    markers = _check_usage(model, output, pdk, calib, data, report, lyrdb, drc, html)
    simulate = parse_corners(simulate) if isinstance(simulate, str) else parse_corners(",".join(simulate))
    check_simulate(simulate, str(pdk), periphery, reads, program_layer, protect)
    check_merge_options(merge_tol, merge_budget, data is not None)
    check_scale(input_scale, input_offset)
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        if on_warning is not None:
            on_warning(message)

    clock = _Clock()
    clock.progress = progress   # flow/progress.py: told when each stage ends (None: silent)
    with Outputs() as out:
        pdk_ = program(load_pdk(pdk), program_layer)             # the programming via (rom/viastack.py)
        net = load_onnx(model)                                    # ONNX -> Network
        clock.lap("import")
        inputs = resolve_inputs(model, net, calib, data, input_scale, input_offset)
        for w in inputs.warnings:
            warn(w)
        qnet = quantize(net, inputs.calib_x, weights, rounding)   # Network -> QuantizedNetwork
        clock.lap("quantize")
        qref, merged = qnet, apply_merge(qnet, block, merge_tol, merge_budget, inputs.calib_x,
                                         inputs.data_x, inputs.data_y)
        if merged is not None:                                    # similar blocks share one cell
            qnet = merged.apply(qnet)
            clock.lap("merge")
        qnet = with_shadows(qnet, parse_protect(protect))        # --protect msb:N: shadow arrays (faults/protect.py)
        blocks = dedup(qnet, block)                               # -> BlockLibrary
        clock.lap("dedup")
        for lb in blocks.layers:
            if _ones(lb) == 0:
                warn(f"layer '{lb.name}' stores no bits: all its weights quantize to zero")
        geom = RomGeometry.from_pdk(pdk_)
        sizes = [(l.columns, l.rows) for l in blocks.layers]
        macros, notes = (build_macros(sizes, [l.name for l in blocks.layers], pdk_, geom) if periphery
                         else ([None] * len(sizes), ["not asked for (--no-periphery)"] * len(sizes)))
        placement = floorplan(sizes, geom, bboxes=[m.bbox if m else None for m in macros])
        clock.lap("floorplan")
        lib = build_library(net.name, blocks, placement, pdk_, macros)  # -> cells (macros: array + periphery)
        clock.lap("layout")
        staged = out.stage(output)                                # checked, then renamed by commit()
        write_library(lib, staged)                                # -> GDSII / OASIS bytes
        drawn = frozenset(lib.layers_and_datatypes())             # the masks, for the report
        del lib
        size = check_layout_file(staged, output.suffix.lower())  # a full disk truncates silently
        clock.lap("write")
        drc_report = clock.stage("drc", drc, _drc, staged, output, pdk_, markers if lyrdb else None, out, full_drc,
                                 progress)
        verify_result = clock.stage("verify", verify, _verify, staged, qnet, pdk_, output)  # the file this run wrote
        read = clock.stage("simulate", bool(simulate), read_macros, staged, model,  # SPICE reads (flow/readtime.py)
                           {i: read_period(m.rows) for i, m in enumerate(macros) if m}, simulate, reads=reads, pdk=pdk, weights=weights,
                           rounding=rounding, calib=calib, progress=None if progress is None else progress.step)
        accuracy = clock.stage("accuracy", inputs.data_x is not None, _accuracy, net, qref, qnet, merged,
                               verify_result, inputs.data_x, inputs.data_y)
        result = CompileResult(model, output, pdk_, net, qnet, blocks, placement, geom, size, drc_report,
                               accuracy, verify_result, clock.t, merged, inputs.summary(), warnings,
                               drawn_layers=drawn, macros=macros, macro_notes=notes, periphery=periphery, reads=read)
        if report:
            write_json(result.report(), out.stage(report))
        if html:                                                  # report/html.py: pictures of the staged file
            result.html = _html(result, out.stage(html), staged)
        out.commit()                                              # every output reaches its name together
    return result


def _check_usage(model: Path, output: Path, pdk, calib, data, report, lyrdb, drc: bool, html=None) -> Path | None:
    """Usage errors found before any work; returns where DRC markers go (None without DRC)."""
    if output.suffix.lower() not in (".gds", ".oas"):
        raise UsageError(f"{output}: output must end in .gds or .oas")
    if html is not None:
        from ..report.plots import require_matplotlib
        require_matplotlib()
        if Path(html).suffix.lower() not in (".html", ".htm"):
            raise UsageError(f"--html {html}: the name must end in .html")
    markers = Path(lyrdb) if lyrdb else output.with_suffix(".lyrdb") if drc else None
    pdk_file = Path(pdk) / "pdk.toml" if Path(pdk).is_dir() else None
    calib_in = ("--calib", calib) if calib else ("the calibration beside MODEL", default_calibration(model))
    check_paths({"MODEL": model, calib_in[0]: calib_in[1], "--data": data, "--pdk": pdk_file},
                {"-o": output, "--report": report, "--html": html,
                 ("--lyrdb" if lyrdb else "the DRC markers (beside -o)"): markers})
    return markers


def _verify(staged: Path, qnet, pdk_: Pdk, output: Path):
    """Readback of the staged file, reported under the output's name."""
    res = verify_layout(staged, qnet, pdk_)
    res.file = str(output)
    return res


def _html(result: CompileResult, path: Path, layout: Path) -> dict:
    """The HTML page of this compile, its pictures drawn from the staged layout."""
    from ..report.html import write_html
    t0 = time.perf_counter()
    info = write_html(result.report(), path, layout, result.pdk)
    return {**info, "seconds": time.perf_counter() - t0}


def _drc(staged: Path, output: Path, pdk_: Pdk, lyrdb: Path | None, out: Outputs, full: bool = False,
         progress=None) -> DrcReport:
    """DRC of the staged layout; markers staged beside the output when asked for or on violations."""
    step = None if progress is None else progress.step
    rep = dataclasses.replace(run_drc(staged, pdk_, fast=not full, progress=step), file=str(output))  # fastdrc.py
    if lyrdb is not None or not rep.clean:
        path = out.stage(lyrdb or output.with_suffix(".lyrdb"))
        write_lyrdb(rep, pdk_, path)
        check_text_end(path, LYRDB_END)
    return rep


class _Clock:
    """Seconds per stage: ``lap(stage)`` charges the time since the last lap to ``stage``."""

    def __init__(self):
        self.t: dict[str, float] = {}
        self.last = time.perf_counter()

    def stage(self, stage: str, run: bool, fn, *args, **kw):
        """``fn(*args, **kw)`` timed as ``stage`` when ``run``; None when not."""
        if not run:
            return None
        out = fn(*args, **kw)
        self.lap(stage)
        return out

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.t[stage] = self.t.get(stage, 0.0) + now - self.last
        if getattr(self, "progress", None) is not None:
            self.progress.lap(stage, now - self.last)
        self.last = now


def write_json(obj: dict, path: str | Path) -> None:
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(obj, f, indent=2, sort_keys=False)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None

"""compile(): the whole flow, one stage after another. The CLI only wraps this."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from .inputs import load_npz
from ..mapping.dedup import DEFAULT_BLOCK, BlockLibrary, dedup, to_bits
from ..signoff.drc import DrcReport, run_drc, write_lyrdb
from ..errors import WeightfabError
from ..rom.writer import build_library, write_library
from ..frontend.network import Network
from ..frontend.onnx_import import load_onnx
from ..tech.pdk import BUILTIN_DIR, Pdk, list_pdks, load_pdk
from ..quant.quantize import QuantizedNetwork, quantize, run_integer
from ..rom.geometry import Placement, RomGeometry, floorplan


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

    @property
    def ok(self) -> bool:
        return (self.drc is None or self.drc.clean) and (self.verify is None or self.verify.ok)

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
            })
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
                    "drawn": "ROM arrays with wordline pads, ground rails and bitlines",
                    "not_drawn": "periphery (decoders, sense amplifiers, MAC lanes, control) is not included in this area"},
            "pdk_comparison": compare_pdks(self.blocks, self.pdk),
            "drc": None if self.drc is None else {
                "clean": self.drc.clean, "violations": self.drc.violations, "rules_checked": len(self.drc.rules),
                "failing": [{"rule": r.name, "count": r.count, "examples_um": r.examples} for r in self.drc.failing()],
                "not_checked": dict(self.pdk.skipped),
            },
            "verify": None if self.verify is None else self.verify.summary(),
            "merge": None if self.merge is None else self.merge.summary(),
            "accuracy": self.accuracy,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }
        return rep


def compare_pdks(blocks, chosen: Pdk) -> list[dict]:
    """The same arrays floorplanned with every built-in PDK's bitcell (and the chosen one, if it is
    a user PDK): bitcell area, bit density and die area, and the die area relative to the chosen
    PDK. Nothing is drawn; the floorplan is the one compile uses."""
    sizes = [(l.columns, l.rows) for l in blocks.layers]
    rows, base = [], None
    builtin = chosen.path.resolve().parent == BUILTIN_DIR.resolve()
    for name in ([] if builtin else [None]) + list_pdks():
        try:
            p = chosen if name is None or (builtin and name == chosen.name) else load_pdk(name)
            g = RomGeometry.from_pdk(p)
            die = floorplan(sizes, g).die
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


def _accuracy(net: Network, qnet: QuantizedNetwork, x: np.ndarray, y: np.ndarray) -> dict:
    f = np.argmax(net.forward(x), axis=1)
    q = np.argmax(run_integer(qnet, x), axis=1)
    return {"samples": int(len(y)), "float": float(np.mean(f == y)), "quantized": float(np.mean(q == y))}


def apply_merge(qnet, block, tol, budget, calib_x, data_x, data_y):
    """The similar-block merge asked for (``--merge-tol`` or ``--merge-budget``), or None."""
    from ..mapping import merge as mg
    if tol is not None and budget is not None:
        raise WeightfabError("give --merge-tol or --merge-budget, not both")
    if budget is not None:
        if data_x is None:
            raise WeightfabError("--merge-budget needs --data (inputs and labels to measure the accuracy on)")
        if budget < 0:
            raise WeightfabError(f"--merge-budget {budget}: must be >= 0 percentage points")
        return mg.merge_budget(qnet, block, data_x, data_y, float(budget), calib=calib_x)
    if tol:
        if tol < 0:
            raise WeightfabError(f"--merge-tol {tol}: must be >= 0 quantization steps")
        return mg.merge_tol(qnet, block, int(tol), calib=calib_x)
    return None


def default_calibration(model: Path) -> Path | None:
    p = model.with_suffix(".calib.npz")
    return p if p.is_file() else None


def compile(model: str | Path, output: str | Path, *, pdk: str | Path = "sky130", weights: str = "int8",
            block: int = DEFAULT_BLOCK, calib: str | Path | None = None, data: str | Path | None = None,
            input_scale: float = 1.0, input_offset: float = 0.0, drc: bool = True, verify: bool = True,
            report: str | Path | None = None, lyrdb: str | Path | None = None,
            merge_tol: int | None = None, merge_budget: float | None = None) -> CompileResult:
    """Compile an ONNX model into a ROM layout; see the README for what each option does."""
    model, output = Path(model), Path(output)
    if output.suffix.lower() not in (".gds", ".oas"):
        raise WeightfabError(f"{output}: output must end in .gds or .oas")
    t: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage):
        nonlocal clock
        now = time.perf_counter()
        t[stage] = t.get(stage, 0.0) + now - clock
        clock = now

    pdk_ = load_pdk(pdk)
    net = load_onnx(model)                                    # ONNX -> Network
    lap("import")
    calib_path = Path(calib) if calib else default_calibration(model)
    data_x = data_y = None
    if data:
        data_x, data_y = load_npz(data, net.input_shape, True, input_scale, input_offset)
    if calib_path is not None:
        calib_x, _ = load_npz(calib_path, net.input_shape, False, input_scale, input_offset)
    elif data_x is not None:
        calib_x = data_x
    else:
        raise WeightfabError(f"{model}: no calibration inputs: give --calib FILE.npz (array 'x'), "
                             f"or put {model.with_suffix('.calib.npz').name} beside the model")
    qnet = quantize(net, calib_x, weights)                    # Network -> QuantizedNetwork
    lap("quantize")
    qref, merged = qnet, apply_merge(qnet, block, merge_tol, merge_budget, calib_x, data_x, data_y)
    if merged is not None:                                    # similar blocks share one cell
        qnet = merged.apply(qnet)
        lap("merge")
    blocks = dedup(qnet, block)                               # -> BlockLibrary
    lap("dedup")
    geom = RomGeometry.from_pdk(pdk_)
    placement = floorplan([(l.columns, l.rows) for l in blocks.layers], geom)
    lap("floorplan")
    lib = build_library(net.name, blocks, placement, pdk_)    # -> cells
    lap("layout")
    size = write_library(lib, output)                         # -> GDSII / OASIS bytes
    del lib
    lap("write")
    drc_report = None
    if drc:
        drc_report = run_drc(output, pdk_)                    # KLayout, hierarchical
        if lyrdb or not drc_report.clean:
            write_lyrdb(drc_report, pdk_, lyrdb or output.with_suffix(".lyrdb"))
        lap("drc")
    verify_result = None
    if verify:
        from ..signoff.readback import verify_layout
        verify_result = verify_layout(output, qnet, pdk_)
        lap("verify")
    accuracy = None
    if data_x is not None:
        accuracy = _accuracy(net, qref, data_x, data_y)
        if merged is not None:
            accuracy["merged"] = float(np.mean(np.argmax(run_integer(qnet, data_x), axis=1) == data_y))
        if verify_result is not None and verify_result.weights is not None:
            chip = np.argmax(run_integer(qnet.with_weights(verify_result.weights), data_x), axis=1)
            accuracy["chip"] = float(np.mean(chip == data_y))
        lap("accuracy")
    result = CompileResult(model, output, pdk_, net, qnet, blocks, placement, geom, size, drc_report,
                           accuracy, verify_result, t, merged)
    if report:
        write_json(result.report(), report)
    return result


def write_json(obj: dict, path: str | Path) -> None:
    import os
    import tempfile
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise WeightfabError(f"cannot write {path}: {exc.strerror or exc}") from None

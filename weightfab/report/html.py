"""One self-contained HTML page from a compile report: pictures embedded as data URIs, no script,
no network. The JSON report says what was compiled and measured; the pictures are drawn from the
layout it names (read again, so that ``weightfab report chip.json`` needs nothing else)."""
from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

from ..errors import WeightfabError
from ..tech.pdk import Pdk, load_pdk
from . import plots
from .render import LayoutPicture

ZOOM_COLUMNS, ZOOM_ISLANDS = 16, 4
KNOWN = {"weightfab", "model", "model_sha256", "output", "format", "file_bytes", "pdk", "weights", "block", "layers",
         "totals", "bitcell", "die", "pdk_comparison", "drc", "verify", "merge", "accuracy", "timings_s"}

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d1d1f;background:#f6f6f8}
main{max-width:1280px;margin:0 auto;padding:18px 28px 40px}
h1{font-size:1.55em;margin:.4em 0 .1em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.sub{color:#555;margin:0 0 1em}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px 14px;min-width:140px}
.card b{display:block;font-size:1.35em}.card span{color:#666;font-size:.85em}
.ok{color:#137333}.bad{color:#b3261e}figure{margin:10px 0;background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}figcaption{color:#444;font-size:.9em;margin-top:6px}
table{border-collapse:collapse;background:#fff;font-size:.88em;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px}
th{background:#eef0f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}tr.total td{font-weight:600}
code{background:#eef0f4;padding:0 3px;border-radius:3px}.note{color:#555;font-size:.9em}
"""


def _e(v) -> str:
    return html.escape(str(v))


def _img(png: bytes, alt: str, caption: str, cls: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure class="{cls}"><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _table(head: list[str], rows: list[list], numeric: set[int] = frozenset(), cls: str = "",
           total: list | None = None) -> str:
    out = [f'<table class="{cls}"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for r in rows + ([total] if total else []):
        tr = '<tr class="total">' if total is not None and r is total else "<tr>"
        out.append(tr + "".join(f'<td class="n">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>"
                                for i, v in enumerate(r)) + "</tr>")
    return "".join(out) + "</tbody></table>"


def _sentence(text: str) -> str:
    text = str(text)
    return text[:1].upper() + text[1:]


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}%"


# -- the pictures ----------------------------------------------------------------------------------

def _engine_labels(pic: LayoutPicture) -> list[tuple[str, tuple]]:
    """Fallback labels when the arrays cannot be read back: the top cell's child cells."""
    out = []
    for inst in pic.top.each_inst():
        b = inst.dbbox()
        if not b.empty():
            out.append((inst.cell.name, (b.left, b.bottom, b.right, b.top)))
    return out[:64]


def _macro_labels(pic: LayoutPicture, engines) -> list[tuple[str, tuple]]:
    """Each engine's name on the smallest child cell of the top cell that holds its array (its macro,
    with the periphery), or on the array itself when no child cell holds it."""
    boxes = []
    for inst in pic.top.each_inst():
        b = inst.dbbox()
        if not b.empty():
            boxes.append((b.left, b.bottom, b.right, b.top))
    out = []
    for e in engines:
        a = e.bbox_um
        inside = [b for b in boxes if b[0] <= a[0] + 1e-6 and b[1] <= a[1] + 1e-6 and b[2] >= a[2] - 1e-6 and b[3] >= a[3] - 1e-6]
        out.append((e.name, min(inside, key=lambda b: (b[2] - b[0]) * (b[3] - b[1])) if inside else a))
    return out


def _pictures(rep: dict, layout: Path, pdk: Pdk) -> tuple[dict[str, str], dict]:
    """The figures of the page (HTML snippets by section: die, zoom, reuse, merge) and what they show."""
    from .reuse import read_reuse
    figs, info = {}, {}
    pic = LayoutPicture(layout, pdk)
    die = pic.die_box()
    engines, why = None, ""
    try:
        engines = read_reuse(layout, pdk, rep.get("layers", []), int(rep.get("block", 4)))
    except WeightfabError as exc:
        why = str(exc)
    labels = _macro_labels(pic, engines) if engines else _engine_labels(pic)
    png, w, h = pic.png(die, *_die_pixels(die), oversampling=3, texts=False)
    fig = plots.layout_figure(png, die, labels, title=f"{Path(str(rep.get('model', ''))).name}: the whole die on {pdk.name}")
    figs["die"] = _img(plots.png_bytes(fig), "die",
                       f"The whole layout drawn by KLayout ({w} x {h} px render), {die[2] - die[0]:.1f} x "
                       f"{die[3] - die[1]:.1f} µm; each engine labelled with its layer.", "die")
    if engines:
        figs["zoom"] = _zoom(pic, engines[0], pdk)
        fig = plots.reuse_figure(die, engines, title="block reuse: how often each block's bit pattern occurs in its layer",
                                 outlines=[b for _, b in labels])
        info["reuse"] = [{"name": x.name, "cells": x.unique, "blocks": x.positions, "zero": x.zero_positions,
                          "most": int(x.counts.max(initial=0))} for x in engines]
        figs["reuse"] = _img(plots.png_bytes(fig), "block reuse",
                             "Each small rectangle is one block position (K wordlines of one output channel), coloured "
                             "by how many positions of its layer hold the same bits, i.e. how many references share "
                             "one layout cell. Read from the layout's programming shapes."
                             + _reuse_table(info["reuse"]), "reuse")
    else:
        figs["zoom"] = figs["reuse"] = f'<p class="note">Bit-cell and reuse pictures not available: {_e(why)}</p>'
    merge = rep.get("merge")
    if merge:
        figs["merge"] = _img(plots.png_bytes(plots.merge_figure(merge)), "merge trade-off",
                             "Similar-block merging: unique blocks against accuracy on the data given to the compile.",
                             "merge")
    return figs, info


def _zoom(pic: LayoutPicture, e, pdk: Pdk) -> str:
    """A few bit cells at the lower-left corner of engine ``e``, with the wordline pads at their left."""
    n_cols = min(ZOOM_COLUMNS, e.counts.shape[1] * e.bits)
    n_isl = min(ZOOM_ISLANDS, e.counts.shape[0] * e.block // 2)
    win = (e.bbox_um[0] - 3 * e.col_um, e.y0_um - 0.3 * e.row_um,
           e.x0_um + (n_cols - 0.5) * e.col_um, e.y0_um + n_isl * e.row_um)
    zw = 1000
    png, _, _ = pic.png(win, zw, round(zw * (win[3] - win[1]) / (win[2] - win[0])))
    ones = int(e.corner[:n_cols, :2 * n_isl].sum())
    fig = plots.layout_figure(png, win, legend=pic.legend(win), width_in=10,
                              title=f"{e.name}: {n_cols} bitlines x {2 * n_isl} wordlines at the array's corner")
    return _img(plots.png_bytes(fig), "bit cells",
                f"Bit cells of <b>{_e(e.name)}</b> at its lower-left corner: in the array each yellow square is a "
                f"programmed site (a 1-bit: the {_e(pdk.programming_layer)} shape joins the drain to the bitline); an "
                f"empty site is a 0. This window holds {ones} ones of {n_cols * 2 * n_isl} bits. Wordline contact pads "
                f"are at the array's left edge; {_e(pdk.programming_layer)} shapes left of them, if any, belong to the "
                f"periphery's cells.",
                "zoom")


def _reuse_table(rows: list[dict]) -> str:
    return _table(["engine", "block positions", "layout cells (distinct non-zero blocks)", "all-zero positions (no cell)",
                   "uses of the most used cell", "positions per cell"],
                  [[r["name"], f"{r['blocks']:,}", f"{r['cells']:,}", f"{r['zero']:,}", f"{r['most']:,}",
                    f"{(r['blocks'] - r['zero']) / r['cells']:.2f}" if r["cells"] else "n/a"] for r in rows],
                  {1, 2, 3, 4, 5}, "reuse")


def _die_pixels(die) -> tuple[int, int | None]:
    w, h = die[2] - die[0], die[3] - die[1]
    width = 2000 if w >= h else max(400, round(2000 * w / h))
    height = round(width * h / w)
    return width, min(height, 4000)



# -- the tables ------------------------------------------------------------------------------------

def _layers_table(rep: dict) -> str:
    head = ["layer", "shape", "weights", "bits", "blocks", "unique blocks", "dedup ratio", "wordlines x bitlines",
            "programmed sites", "area µm²"]
    rows = [[l["name"], f"{l['outputs']}x{l['inputs']}", f"{l['weights']:,}", l["bits"], f"{l['blocks']:,}",
             f"{l['unique_blocks']:,}", f"{l['dedup_ratio']:.2f}", f"{l['rows']:,} x {l['columns']:,}",
             f"{l.get('programmed_vias', 0):,}", f"{l['area_um2']:,.1f}"] for l in rep.get("layers", [])]
    t = rep.get("totals", {})
    total = None
    if t:
        ratio = t["blocks"] / t["unique_blocks"] if t.get("unique_blocks") else float("nan")
        total = ["total", "", f"{t['weights']:,}", "", f"{t['blocks']:,}", f"{t['unique_blocks']:,}", f"{ratio:.2f}",
                 "", f"{sum(l.get('programmed_vias', 0) for l in rep.get('layers', [])):,}",
                 f"{sum(l['area_um2'] for l in rep.get('layers', [])):,.1f}"]
    return _table(head, rows, set(range(2, 10)), "layers", total)


def _macros_table(rep: dict) -> str:
    """Each engine's macro: size, array and periphery areas, density, and its simulated read when
    the compile ran one (--simulate)."""
    head = ["macro", "size µm", "array µm²", "periphery µm²", "bits/µm²", "address bits", "simulated read"]
    rows = []
    for l in rep.get("layers", []):
        m = l.get("macro") or {}
        if not m.get("drawn"):
            rows.append([l["name"], "not drawn: " + m.get("why_not", ""), "", "", "", "", ""])
            continue
        r = m.get("read")
        read = "not simulated (compile --simulate)" if r is None else f"{r['period_ns']:g} ns clock" + (
            "" if r["meets_clock"] else " NOT met") + "".join(
            f"; {c['corner']}: {c['access_time_ns']:.3f} ns, {c['energy_per_read_pj']:.2f} pJ, "
            f"{c['reads']} reads {'right' if c['ok'] else 'WRONG'}" for c in r["corners"])
        rows.append([m["cell"], f"{m['width_um']:.1f} x {m['height_um']:.1f}", f"{m['array_um2']:,.0f}",
                     f"{m['periphery_um2']:,.0f}", f"{m['bits_per_um2']:.4f}", m["address_bits"], read])
    return _table(head, rows, {2, 3, 4, 5}, "macros")


def _accuracy_section(rep: dict) -> str:
    a = rep.get("accuracy")
    if not a:
        return '<p class="note">No accuracy: the compile was given no <code>--data</code>.</p>'
    names = [("float", "float model"), ("quantized", "quantized (integer simulation)"),
             ("merged", "merged blocks"), ("onnxruntime", "onnxruntime"), ("chip", "chip (weights read back from the layout)")]
    rows = [[label, _pct(a[k])] for k, label in names if k in a]
    return f"<p>On {a.get('samples', '?')} samples:</p>" + _table(["model", "accuracy"], rows, {1}, "accuracy")


def _drc_section(rep: dict, pdk: Pdk | None) -> str:
    d = rep.get("drc")
    if d is None:
        return '<p class="note">DRC not run (<code>--no-drc</code>).</p>'
    failing = {f["rule"]: f for f in d.get("failing", [])}
    status = ('<p class="ok"><b>clean</b>' if d.get("clean") else f'<p class="bad"><b>{d.get("violations", 0):,} '
              "violations</b>") + f" ({d.get('rules_checked', '?')} rules checked)</p>"
    rows = []
    if pdk is not None:
        for r in pdk.rules:
            f = failing.pop(r.name, None)
            rows.append([r.name, r.kind, r.layer + (f" / {r.other}" if r.other else ""), r.value,
                         f["count"] if f else 0, "FAIL" if f else "pass", r.source])
    for name, f in failing.items():  # failing rules this PDK file does not list
        rows.append([name, "", "", "", f["count"], "FAIL", ""])
    out = status + _table(["rule", "kind", "layers", "value (µm, µm²)", "violations", "result", "source"], rows,
                          {3, 4}, "drc")
    skipped = d.get("not_checked") or {}
    if skipped:
        out += "<p>Not checked:</p>" + _table(["rules", "why"], [[k, v] for k, v in skipped.items()], cls="skipped")
    return out


def _verify_section(rep: dict) -> str:
    v = rep.get("verify")
    if v is None:
        return '<p class="note">Readback not run (<code>--no-verify</code>).</p>'
    if v.get("ok"):
        out = (f'<p class="ok"><b>{v["matched"]:,} of {v["bits"]:,} bits match</b>: every weight bit was read back '
               f"from the layout's geometry alone"
               + (f", programmed on {_e(v['program_layer'])} (found on the layout)" if v.get("program_layer") else "")
               + f" ({v.get('seconds', 0):.2f} s).</p>")
    else:
        out = f'<p class="bad"><b>{v.get("mismatch_count", 0):,} mismatches</b> of {v["bits"]:,} bits</p>'
        rows = [[m.get("layer_name", ""), m.get("channel"), m.get("weight"), m.get("bit"), m.get("kind"),
                 f"({m.get('x_um', 0):.3f}, {m.get('y_um', 0):.3f})"] for m in v.get("mismatches", [])[:50]]
        out += _table(["layer", "channel", "weight", "bit", "kind", "at µm"], rows, {1, 2, 3}, "mismatches")
    return out


def _pdk_table(rep: dict) -> str:
    rows = []
    for c in rep.get("pdk_comparison", []):
        if "error" in c:
            rows.append([c["pdk"], c["error"], "", "", "", ""])
            continue
        rows.append([c["pdk"], f"{c['bitcell_um'][0]} x {c['bitcell_um'][1]}", c["bits_per_um2"],
                     f"{c['die_um'][0]:.1f} x {c['die_um'][1]:.1f}", f"{c['die_area_mm2']:.4f}",
                     f"{c.get('relative_to_chosen', float('nan')):.2f}x"])
    return _table(["PDK", "bitcell µm", "bits/µm²", "die µm", "die mm²", "vs chosen"], rows, {2, 4, 5}, "pdks")


def _timings_table(rep: dict, extra: dict) -> str:
    t = dict(rep.get("timings_s", {}))
    t.update(extra)
    rows = [[k, f"{v:.3f}"] for k, v in t.items()]
    return _table(["stage", "seconds"], rows, {1}, "timings",
                  ["total", f"{sum(t.values()):.3f}"] if t else None)


def _merge_table(rep: dict) -> str:
    m = rep.get("merge")
    if not m:
        return ""
    rows = [[l["name"], l.get("tol", ""), f"{l['unique_before']:,}", f"{l['unique_after']:,}"] for l in m.get("layers", [])]
    return (f"<p>{_e(m.get('stopped_because', ''))}</p>"
            + _table(["layer", "tolerance (steps)", "unique before", "unique after"], rows, {1, 2, 3}, "merge"))


def _value(v, depth: int = 0) -> str:
    """Any JSON value as HTML: a dict as a two-column table, a list of dicts with the same keys as a
    table with those columns, a list of plain values joined by commas."""
    if isinstance(v, dict) and v and depth < 3:
        return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_value(x, depth + 1)}</td></tr>" for k, x in v.items()) \
            + "</table>"
    if isinstance(v, list) and v and all(isinstance(x, dict) for x in v) and depth < 3:
        keys = list(dict.fromkeys(k for x in v for k in x))
        return ("<table><tr>" + "".join(f"<th>{_e(k)}</th>" for k in keys) + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{_value(x.get(k, ''), depth + 1)}</td>" for k in keys) + "</tr>"
                          for x in v[:200]) + "</table>")
    if isinstance(v, list):
        return _e(", ".join(str(x) for x in v[:200])) if v else "none"
    if isinstance(v, (dict, list)):
        return _e(json.dumps(v)[:2000])
    return "n/a" if v is None else _e(v)


def _other(rep: dict) -> str:
    """Report entries this page has no section for (newer reports add some), each as a table."""
    rest = {k: v for k, v in rep.items() if k not in KNOWN}
    if not rest:
        return ""
    return "".join(f"<h2>{_e(k.replace('_', ' ').capitalize())}</h2>{_value(v)}" for k, v in rest.items())


# -- the page --------------------------------------------------------------------------------------

def _cards(rep: dict) -> str:
    d, t = rep.get("die", {}), rep.get("totals", {})
    cards = []
    if d:
        cards.append((f"{d['width_um']:.1f} x {d['height_um']:.1f} µm", f"die, {d['area_mm2']:.4f} mm²", ""))
    if t.get("unique_blocks"):
        cards.append((f"{t['blocks'] / t['unique_blocks']:.2f}x",
                      f"dedup: {t['blocks']:,} blocks, {t['unique_blocks']:,} unique", ""))
    drc = rep.get("drc")
    if drc is not None:
        cards.append(("clean" if drc["clean"] else f"{drc['violations']:,} violations",
                      f"DRC, {drc.get('rules_checked', '?')} rules", "ok" if drc["clean"] else "bad"))
    v = rep.get("verify")
    if v is not None:
        cards.append((f"{v['matched']:,} / {v['bits']:,}", "bits read back", "ok" if v.get("ok") else "bad"))
    a = rep.get("accuracy") or {}
    if "chip" in a:
        cards.append((_pct(a["chip"]), f"chip accuracy ({a['samples']} samples)", ""))
    return '<div class="cards">' + "".join(f'<div class="card"><b class="{c}">{_e(x)}</b><span>{_e(y)}</span></div>'
                                           for x, y, c in cards) + "</div>"


def build_html(rep: dict, layout: Path, pdk: Pdk | None) -> tuple[str, dict]:
    """The page as text, and what it holds (figure count, reuse per engine, seconds)."""
    t0 = time.perf_counter()
    if pdk is None:
        raise WeightfabError(f"PDK {rep.get('pdk')!r} of the report cannot be loaded: give --pdk")
    figs, info = _pictures(rep, layout, pdk)
    pics_s = time.perf_counter() - t0
    model = Path(str(rep.get("model", "model"))).name
    die = rep.get("die", {})
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>weightfab: {_e(model)} on {_e(rep.get('pdk', ''))}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{_e(model)} &rarr; {_e(Path(str(rep.get('output', ''))).name)}</h1>",
        f'<p class="sub">PDK <b>{_e(rep.get("pdk", ""))}</b>, weights <b>{_e(rep.get("weights", ""))}</b>, block '
        f'{_e(rep.get("block", ""))}; {_e(str(rep.get("format", "")).upper())} file of {rep.get("file_bytes", 0):,} '
        f'bytes; model sha256 <code>{_e(str(rep.get("model_sha256", ""))[:16])}</code>; weightfab '
        f'{_e(rep.get("weightfab", ""))}</p>',
        _cards(rep),
        "<h2>The chip</h2>", figs["die"],
        f'<p class="note">Die: {_e(die.get("drawn", ""))}. {_e(_sentence(die.get("not_drawn", "")))}</p>' if die else "",
        "<h2>Bit cells</h2>", figs["zoom"],
        "<h2>Block reuse</h2>", figs["reuse"],
        "<h2>Layers</h2>", _layers_table(rep),
        *(["<h2>ROM macros</h2>", _macros_table(rep)] if any("macro" in l for l in rep.get("layers", [])) else []),
        "<h2>Accuracy</h2>", _accuracy_section(rep),
    ]
    if rep.get("merge"):
        parts += ["<h2>Similar-block merging</h2>", figs.get("merge", ""), _merge_table(rep)]
    parts += ["<h2>Design-rule check</h2>", _drc_section(rep, pdk),
              "<h2>Readback</h2>", _verify_section(rep),
              "<h2>Same arrays on every PDK</h2>", _pdk_table(rep),
              "<h2>Time per stage</h2>", _timings_table(rep, {"pictures": pics_s}),
              _other(rep), "</main></body></html>"]
    info.update({"figures": sum(f.startswith("<figure") for f in figs.values()), "pictures_s": pics_s})
    return "\n".join(p for p in parts if p) + "\n", info


def resolve_layout(rep: dict, json_path: Path | None, layout: str | Path | None) -> Path:
    """The layout the report names: as given, else as written in the report (relative to the working
    directory, then to the JSON file's directory)."""
    if layout is not None:
        p = Path(layout)
        if not p.is_file():
            raise WeightfabError(f"{p}: no such layout file")
        return p
    name = rep.get("output")
    if not name:
        raise WeightfabError(f"{json_path}: the report names no layout ('output'); give --layout")
    for p in [Path(name)] + ([json_path.parent / name] if json_path is not None else []):
        if p.is_file():
            return p
    raise WeightfabError(f"{json_path or 'report'}: the layout it names, {name}, is not there; give --layout")


def load_report(path: str | Path) -> dict:
    path = Path(path)
    try:
        rep = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WeightfabError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise WeightfabError(f"{path}: not a JSON report ({exc})") from None
    if not isinstance(rep, dict) or "layers" not in rep or "pdk" not in rep:
        raise WeightfabError(f"{path}: not a weightfab compile report (no 'layers' or 'pdk')")
    return rep


def write_html(rep: dict, out: str | Path, layout: str | Path, pdk: Pdk | str | None = None) -> dict:
    """Write the page for report ``rep`` of ``layout`` to ``out``; returns what it holds."""
    out = Path(out)
    if pdk is None or isinstance(pdk, (str, Path)):
        try:
            pdk = load_pdk(pdk or rep["pdk"])
        except WeightfabError as exc:
            raise WeightfabError(f"{exc} (the report's PDK; give --pdk)") from None
        from .render import found_program_layer
        pdk = found_program_layer(layout, pdk)
    text, info = build_html(rep, Path(layout), pdk)
    try:
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise WeightfabError(f"cannot write {out}: {exc.strerror or exc}") from None
    info["bytes"] = out.stat().st_size
    return info

"""matplotlib figures: the merge trade-off, the layout pictures with labels and axes in µm, and the
block reuse map. Every function returns a Figure; ``png_bytes``/``save_png`` write it."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import WeightfabError

DPI = 100


def require_matplotlib() -> None:
    """Fail at once (before any work starts) when plotting is asked for and matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise WeightfabError("plotting needs matplotlib, which is not installed: pip install matplotlib") from None


def _plt():
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes (no timestamp or version in the metadata: same figure, same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches="tight", pad_inches=0.12)
    _plt().close(fig)
    return buf.getvalue()


def save_png(fig, path: str | Path) -> None:
    data = png_bytes(fig)
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise WeightfabError(f"cannot write {path}: {exc.strerror or exc}") from None


# -- merging -------------------------------------------------------------------------------------

def _group_levels(rows: list[dict]) -> list[tuple[list[int], int, float]]:
    """Levels that land on the same point (same unique blocks and accuracy) share one label."""
    groups: dict[tuple[int, float], list[int]] = {}
    for r in rows:
        groups.setdefault((int(r["total"]), round(100 * r["accuracy"], 6)), []).append(int(r["level"]))
    return [(lv, t, a) for (t, a), lv in groups.items()]


def _levels_text(levels: list[int]) -> str:
    if len(levels) > 2 and levels == list(range(levels[0], levels[-1] + 1)):
        return f"tol {levels[0]}-{levels[-1]}"
    return "tol " + ",".join(str(v) for v in levels)


def tradeoff_figure(rows: list[dict]):
    """Unique blocks against accuracy, one point per merge level (``inspect --plot``). Levels that
    merge nothing more land on one point and share one label; when no level merges anything the
    figure says so instead of drawing a curve."""
    plt = _plt()
    rows = [r for r in rows if r.get("accuracy") is not None]
    if not rows:
        raise WeightfabError("no accuracy to plot (the curve needs --data)")
    groups = _group_levels(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    tot = np.array([g[1] for g in groups], float)
    acc = np.array([g[2] for g in groups], float)
    order = np.argsort(-tot)
    ax.plot(tot[order], acc[order], "o-", color="#1f77b4")
    for i, (lv, t, a) in enumerate(groups):
        # alternate label sides so that neighbouring labels do not overlap
        ax.annotate(_levels_text(lv), (t, a), textcoords="offset points", xytext=(6, 6 if i % 2 == 0 else -12),
                    fontsize=8)
    if len(groups) == 1:
        ax.set_title(f"no merge level changes anything: {int(tot[0]):,} unique blocks, {acc[0]:.2f}% at every level",
                     fontsize=9)
        ax.set_xlim(tot[0] * 0.9, tot[0] * 1.1)
        ax.set_ylim(acc[0] - 2, acc[0] + 2)
    else:
        if tot.max() / max(tot.min(), 1) >= 4:
            _log_x(ax, tot.min(), tot.max())
        pad = max(0.5, (acc.max() - acc.min()) * 0.1)
        ax.set_ylim(acc.min() - pad, acc.max() + pad)
        ax.set_title("block merging: unique blocks (layout cells) against accuracy", fontsize=10)
    ax.set_xlabel("unique blocks (all layers)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def _log_x(ax, lo: float, hi: float) -> None:
    """A logarithmic x axis labelled with plain numbers at 1-2-5 steps (no 3x10^2 next to 4x10^2)."""
    from matplotlib.ticker import NullFormatter
    ax.set_xscale("log")
    ticks = [m * 10 ** e for e in range(0, 10) for m in (1, 2, 5) if lo / 1.5 <= m * 10 ** e <= hi * 1.5]
    ax.set_xticks(ticks, labels=[f"{t:,}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_tradeoff(rows: list[dict], path_png) -> None:
    """``inspect --plot``: the trade-off figure written as PNG."""
    save_png(tradeoff_figure(rows), path_png)


def merge_figure(merge: dict):
    """The merge actually compiled: for a budget search, every point the bisection evaluated
    (accepted or not) with the budget line; otherwise the unmerged and merged points."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    hist = merge.get("history") or []
    aq, am = merge.get("accuracy_quantized"), merge.get("accuracy_merged")
    budget = merge.get("budget_pp")
    # the axis spans the budget's neighbourhood; far worse evaluations sit on its lower edge
    floor = 100 * aq - max(4 * budget, 2.0) if aq is not None and budget is not None else None
    if hist:
        for accepted, colour, label in ((True, "#2ca02c", "search step: accepted"),
                                        (False, "#d62728", "search step: rejected (budget + noise margin)")):
            pts = [h for h in hist if bool(h.get("accepted")) == accepted]
            x = np.array([sum(h["unique"]) for h in pts], float)
            y = np.array([100 * h["accuracy"] for h in pts], float)
            low = y < floor if floor is not None else np.zeros(len(y), bool)
            if (~low).any():
                ax.plot(x[~low], y[~low], "o", color=colour, label=label, ms=5)
            if low.any():
                ax.plot(x[low], np.full(low.sum(), floor), "v", color=colour, ms=6,
                        label=f"{label}, below {floor:.1f}% ({int(low.sum())})")
    if aq is not None:
        ax.plot([merge["unique_before"]], [100 * aq], "s", color="#1f77b4", label="unmerged", ms=7)
    if am is not None:
        ax.plot([merge["unique_after"]], [100 * am], "*", color="#ff7f0e", label="compiled", ms=12)
    ys = [100 * v for v in (aq, am) if v is not None] + [100 * h["accuracy"] for h in hist]
    if budget is not None and aq is not None:
        ax.axhline(100 * aq - budget, color="#888888", ls="--", lw=1, label=f"budget: {budget} points below unmerged")
    if ys:
        lo = min(ys) if floor is None else max(min(ys), floor)
        pad = max(0.25, 0.08 * (max(ys) - lo))
        ax.set_ylim(lo - pad, max(ys) + pad)
    ax.set_xlabel("unique blocks (all layers)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"merging: {merge['unique_before']:,} -> {merge['unique_after']:,} unique blocks "
                 f"({merge['reduction']:.2f}x)", fontsize=10)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# -- layout pictures -----------------------------------------------------------------------------

def _image(png: bytes):
    import matplotlib.image as mpimg
    return mpimg.imread(io.BytesIO(png), format="png")


def _label(ax, text: str, box, die) -> None:
    """Write ``text`` inside the top-left corner of ``box``, or beside it (above, else below) when
    the box is too narrow to hold it."""
    a, b, c, d = box
    x0, y0, x1, y1 = die
    style = dict(color="#000000", fontsize=9, ha="left", bbox=dict(boxstyle="round,pad=0.25", fc="#ffffffdd", ec="none"))
    if (c - a) >= 0.011 * (x1 - x0) * max(len(text), 4):
        ax.text(a + 0.01 * (x1 - x0), d - 0.01 * (y1 - y0), text, va="top", clip_on=True, **style)
    else:
        right = a + 0.011 * (x1 - x0) * len(text) > x1     # no room on the right: end the text at the box's right
        x, style["ha"] = (c, "right") if right else (a, "left")
        if y1 - d > 0.06 * (y1 - y0):
            ax.text(x, d + 0.01 * (y1 - y0), text, va="bottom", clip_on=False, **style)
        else:
            ax.text(x, b - 0.01 * (y1 - y0), text, va="top", clip_on=False, **style)


def layout_figure(png: bytes, box, labels=(), legend=(), title: str = "", width_in: float = 12.0):
    """A KLayout picture of ``box`` (µm) with axes in µm, ``labels`` [(text, (x0, y0, x1, y1))]
    written over their boxes, and a ``legend`` [(name, colour, outline)] of the layers shown."""
    plt = _plt()
    from matplotlib.patches import Patch, Rectangle
    x0, y0, x1, y1 = box
    aspect = (y1 - y0) / (x1 - x0)
    extra = 0.35 * max(1, -(-len(legend) // 4)) if legend else 0
    fig, ax = plt.subplots(figsize=(width_in, min(max(width_in * aspect + 0.9 + extra, 2.6), 14)))
    ax.imshow(_image(png), extent=(x0, x1, y0, y1), interpolation="nearest", aspect="equal")
    for text, (a, b, c, d) in labels:
        ax.add_patch(Rectangle((a, b), c - a, d - b, fill=False, ec="#ffffff", lw=1.0, ls="--"))
        _label(ax, text, (a, b, c, d), box)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    if title:
        ax.set_title(title, fontsize=10)
    if legend:
        handles = [Patch(fc="none" if outline else colour, ec=colour, label=name, hatch=None)
                   for name, colour, outline in legend]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12 if aspect > 0.3 else -0.25),
                  ncol=min(4, len(handles)), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def reuse_figure(die_box, engines, title: str = "", outlines=()):
    """Every engine's block positions coloured by how often the block's bit pattern occurs in its
    layer (1 = used once, a cell of its own); all-zero blocks (no cell) in grey. ``outlines``: boxes
    (µm) drawn as light dashed frames, e.g. each engine's macro with its periphery."""
    plt = _plt()
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle
    x0, y0, x1, y1 = die_box
    aspect = (y1 - y0) / (x1 - x0)
    fig, ax = plt.subplots(figsize=(12, min(max(12 * aspect + 1.2, 3.0), 14)))
    ax.set_facecolor("#ffffff")
    top = max([int(e.counts.max(initial=1)) for e in engines] + [2])
    norm = LogNorm(vmin=1, vmax=top)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#c8c8c8")
    im = None
    for a, b, c, d in outlines:
        ax.add_patch(Rectangle((a, b), c - a, d - b, fill=False, ec="#b0b0b0", lw=0.8, ls="--"))
    for e in engines:
        j, n = e.counts.shape
        ex0 = e.x0_um - e.col_um / 2
        ex1 = ex0 + n * e.bits * e.col_um
        ey0 = e.y0_um
        ey1 = ey0 + j * (e.block // 2) * e.row_um
        data = np.ma.masked_equal(e.counts.astype(float), 0)
        im = ax.imshow(data, extent=(ex0, ex1, ey0, ey1), origin="lower", cmap=cmap, norm=norm,
                       interpolation="nearest", aspect="auto")
        ax.add_patch(Rectangle((ex0, ey0), ex1 - ex0, ey1 - ey0, fill=False, ec="#000000", lw=0.8))
        _label(ax, e.name, (ex0, ey0, ex1, ey1), die_box)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    if im is not None:
        from mpl_toolkits.axes_grid1 import make_axes_locatable
        cax = make_axes_locatable(ax).append_axes("right", size="1.5%", pad=0.08)   # as tall as the die
        cb = fig.colorbar(im, cax=cax)
        ticks = [v for v in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536, 262144) if v <= top]
        cb.set_ticks(ticks, labels=[f"{v:,}" for v in ticks])
        cb.minorticks_off()
        cb.set_label("uses of the pattern (grey: all-zero)", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig

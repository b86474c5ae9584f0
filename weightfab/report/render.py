"""The layout as a picture, drawn by KLayout's own renderer (``klayout.lay.LayoutView``, headless).

Layers are drawn in the scheme of the PDK's layer-properties file (layerstyle.py); a layer of the
file that the PDK does not name is drawn as a grey outline, so nothing unknown hides the devices.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import WeightfabError
from ..tech.pdk import Pdk
from .layerstyle import STYLES, lyp_text

BACKGROUND = "#000000"
MAX_PIXELS = 8000


def parse_window(text: str) -> tuple[float, float, float, float]:
    """'x0,y0,x1,y1' in µm -> a box with x0 < x1 and y0 < y1."""
    try:
        v = [float(t) for t in text.split(",")]
    except ValueError:
        v = []
    if len(v) != 4 or v[2] <= v[0] or v[3] <= v[1]:
        raise WeightfabError(f"--window {text!r}: expected x0,y0,x1,y1 in µm with x0 < x1 and y0 < y1")
    return tuple(v)


class LayoutPicture:
    """One layout loaded into a headless KLayout view, drawn with a PDK's layer styles."""

    def __init__(self, path: str | Path, pdk: Pdk, layers: list[str] | None = None, ruler: bool = False):
        import klayout.db as kdb
        import klayout.lay as lay
        self.path, self.pdk = Path(path), pdk
        if not self.path.is_file():
            raise WeightfabError(f"{path}: no such layout file")
        view = lay.LayoutView()
        try:
            view.load_layout(str(self.path), False)
        except RuntimeError as exc:
            raise WeightfabError(f"{path}: not a readable GDSII/OASIS layout ({str(exc).splitlines()[0]})") from None
        self.view, self.kdb = view, kdb
        self.layout = view.cellview(0).layout()
        self.top = view.cellview(0).cell
        if self.top is None:
            raise WeightfabError(f"{path}: the layout holds no cell")
        self._load_styles()
        if layers is not None:
            self._only(layers)
        # the grid itself is never drawn; with ``ruler`` its scale bar is (bottom left)
        for key, value in (("background-color", BACKGROUND), ("grid-visible", "true" if ruler else "false"),
                           ("grid-style0", "invisible"), ("grid-style1", "invisible"), ("grid-style2", "invisible"),
                           ("grid-show-ruler", "true" if ruler else "false"), ("text-visible", "true"),
                           ("text-color", "#ffffff"), ("default-text-size", "0.4"), ("bitmap-oversampling", "1")):
            view.set_config(key, value)
        view.max_hier()

    def _load_styles(self) -> None:
        """The PDK's layers in the scheme of layerstyle.py (the shipped .lyp files hold the same), styled
        for this PDK value: a layout programmed on an upper via shows that via solid yellow. Layers of
        the file that the PDK does not name are grey outlines. Loaded as a layer-properties file (a
        view's stipple patterns are set up by loading one)."""
        present = {(i.layer, i.datatype) for i in self.layout.layer_infos()}
        extra = sorted(present - {tuple(l.gds) for l in self.pdk.layers.values()})
        with tempfile.TemporaryDirectory() as d:
            lyp = Path(d) / "layers.lyp"
            lyp.write_text(lyp_text(self.pdk, extra), encoding="utf-8")
            self.view.load_layer_props(str(lyp))

    def _only(self, layers: list[str]) -> None:
        """Show only the named layers (PDK layer names or L/D)."""
        want = set()
        for name in layers:
            if name in self.pdk.layers:
                want.add(tuple(self.pdk.layers[name].gds))
                continue
            try:
                ln, dt = (int(t) for t in name.split("/"))
                want.add((ln, dt))
            except ValueError:
                raise WeightfabError(f"--layers: unknown layer {name!r}; {self.pdk.name} has "
                                     + ", ".join(self.pdk.layers) + " (or give L/D numbers)") from None
        for node in self.view.each_layer():
            node.visible = (node.source_layer, node.source_datatype) in want

    def die_box(self) -> tuple[float, float, float, float]:
        """The die: the PDK's boundary layer when the layout draws it, else the top cell's extent."""
        b = self.top.dbbox()
        if "boundary" in self.pdk.roles:
            li = self.layout.find_layer(*self.pdk.role_gds("boundary"))
            if li is not None:
                r = self.kdb.Region(self.top.begin_shapes_rec(li))
                if not r.is_empty():
                    b = r.bbox().to_dtype(self.layout.dbu)
        if b.empty():
            raise WeightfabError(f"{self.path}: the top cell {self.top.name} is empty")
        return b.left, b.bottom, b.right, b.top

    def legend(self, window=None) -> list[tuple[str, str, bool]]:
        """(name, colour, outline only) of the visible layers that hold shapes (in the window)."""
        kdb = self.kdb
        box = None if window is None else kdb.DBox(*window).to_itype(self.layout.dbu)
        out, others = [], 0
        for node in self.view.each_layer():
            if not node.visible:
                continue
            li = self.layout.find_layer(node.source_layer, node.source_datatype)
            if li is None:
                continue
            it = self.top.begin_shapes_rec(li) if box is None else self.top.begin_shapes_rec_touching(li, box)
            if it.at_end():
                continue
            if node.name.endswith("(not in the PDK)"):
                others += 1
                continue
            out.append((node.name, f"#{node.fill_color & 0xFFFFFF:06x}", node.dither_pattern == 1 and not node.xfill))
        if others:
            out.insert(0, (f"{others} layers not in the PDK", STYLES["marker"].color, True))
        return out

    def png(self, window=None, width: int = 1200, height: int | None = None,
            oversampling: int = 1, texts: bool | None = None) -> tuple[bytes, int, int]:
        """PNG bytes of ``window`` (µm; default: the die and a two-pixel margin) at ``width`` pixels; the
        height follows the window's aspect ratio unless given. ``oversampling`` 2 or 3 averages
        sub-pixels (smoother pictures of whole dies, where a pixel spans many bit cells). Text labels
        (pin names) are drawn in windows, not on the whole die, where they would cover it (``texts``)."""
        self.view.set_config("text-visible", "true" if (window is not None if texts is None else texts) else "false")
        if window is None:  # the whole top cell, with two pixels around it so that its outline shows
            x0, y0, x1, y1 = self.die_box()
            m = 2 * (x1 - x0) / max(width - 4, 1)
            x0, y0, x1, y1 = x0 - m, y0 - m, x1 + m, y1 + m
        else:
            x0, y0, x1, y1 = window
        if height is None:
            height = round(width * (y1 - y0) / (x1 - x0))
        if not (16 <= width <= MAX_PIXELS and 16 <= height <= MAX_PIXELS):
            raise WeightfabError(f"picture of {width} x {height} pixels: each side must be 16 to {MAX_PIXELS} "
                                 f"(window {x1 - x0:.3f} x {y1 - y0:.3f} µm; give --width/--height)")
        box = self.kdb.DBox(x0, y0, x1, y1)
        self.view.zoom_box(box)
        pix = self.view.get_pixels_with_options(width, height, 1, oversampling, 0.0, box)
        return bytes(pix.to_png_data()), width, height


def render(path: str | Path, out: str | Path, pdk: Pdk, *, window=None, layers=None, width: int = 1200,
           height: int | None = None, ruler: bool = True) -> tuple[int, int]:
    """Write a PNG of the layout ``path``; returns its size in pixels."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise WeightfabError(f"{out}: the picture is written as PNG: the name must end in .png")
    data, w, h = LayoutPicture(path, pdk, layers, ruler=ruler).png(window, width, height)
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise WeightfabError(f"cannot write {out}: {exc.strerror or exc}") from None
    return w, h


def found_program_layer(path: str | Path, pdk: Pdk) -> Pdk:
    """``pdk`` with the programming layer the layout's ROM arrays use (found by the readback), or
    ``pdk`` as it is when the file holds no ROM array it can read."""
    from ..signoff.readback import find_arrays, read_layout
    from ..rom.viastack import program
    try:
        layout, top = read_layout(path)
        arrays = find_arrays(layout, top, pdk, path)
    except WeightfabError:
        return pdk
    layers = {a.program_layer for a in arrays if a.program_layer}
    return program(pdk, layers.pop()) if len(layers) == 1 else pdk

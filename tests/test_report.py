"""compile --html and `weightfab report`: one self-contained page, opened in headless Chromium."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import SAMPLE, SAMPLES, cli, run_cli

TEST_DATA = SAMPLES / "digits_mlp.test.npz"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = ('<script>window.addEventListener("load",()=>{document.body.setAttribute("data-probe",JSON.stringify('
         '[...document.images].map(i=>[i.naturalWidth,i.naturalHeight,i.complete])));});</script>')


class Page(HTMLParser):
    """Tables (by class, with their rows of cell texts), images and scripts of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.scripts = 0
        self.links: list[str] = []
        self._table = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("class") or f"t{len(self.tables)}", [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = ""
        elif tag == "img":
            self.images.append(a.get("src", ""))
        elif tag == "script":
            self.scripts += 1
        for k in ("href", "src"):
            if k in a and tag != "img":
                self.links.append(a[k])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    r = run_cli("compile", SAMPLE, "-o", d / "chip.gds", "--weights", "int4", "--merge-budget", "0.5",
                "--data", TEST_DATA, "--report", d / "chip.json", "--html", d / "chip.html")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^html: .*chip\.html \([\d,]+ bytes, 4 pictures", r.stdout, re.M), r.stdout
    return d, r.stdout


def chromium_probe(page: Path, tmp: Path) -> list[list]:
    """Open a copy of ``page`` with a probe script in headless Chromium; [naturalWidth, naturalHeight,
    complete] of every image once the page has loaded."""
    probe = tmp / f"probe_{page.name}"
    probe.write_text(page.read_text(encoding="utf-8") + PROBE, encoding="utf-8")
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp / 'chrome'}",
                        "--virtual-time-budget=15000", "--dump-dom", probe.as_uri()],
                       capture_output=True, text=True, timeout=120)
    m = re.search(r'data-probe="([^"]*)"', r.stdout)
    assert m, f"the page did not load in Chromium: {r.stderr[-500:]}"
    return json.loads(m.group(1).replace("&quot;", '"'))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (tests/install-tools.sh installs it)")
def test_every_image_loads_in_headless_chromium(compiled, tmp_path):
    d, _ = compiled
    imgs = chromium_probe(d / "chip.html", tmp_path)
    assert len(imgs) == 4                      # die, bit cells, reuse, merge curve
    for w, h, complete in imgs:
        assert complete and w > 200 and h > 100
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'chrome'}",
                    f"--screenshot={shot}", "--window-size=1280,1600", "--hide-scrollbars", (d / "chip.html").as_uri()],
                   capture_output=True, timeout=120)
    import matplotlib.image as mpimg
    px = mpimg.imread(shot)
    assert px.shape[:2] == (1600, 1280)
    assert px[..., :3].std() > 0.1             # a drawn page, not a blank one


def test_page_is_self_contained_with_every_table(compiled):
    d, _ = compiled
    text = (d / "chip.html").read_text(encoding="utf-8")
    page = Page(text)
    assert page.scripts == 0 and not page.links
    assert len(page.images) == 4 and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert "http://" not in text and "https://" not in text
    layers = page.tables["layers"]
    assert [r[0] for r in layers[1:]] == ["fc1", "fc2_matmul", "fc3", "total"]
    rep = json.loads((d / "chip.json").read_text())
    assert layers[1][5] == f"{rep['layers'][0]['unique_blocks']:,}"
    assert float(layers[1][6]) > 1.5           # merging makes fc1's blocks repeat
    from weightfab.tech.pdk import load_pdk
    drc = page.tables["drc"]
    assert len(drc) - 1 == len(load_pdk("sky130").rules) == rep["drc"]["rules_checked"]
    assert all(r[5] == "pass" for r in drc[1:])
    acc = {r[0]: r[1] for r in page.tables["accuracy"][1:]}
    assert acc["chip (weights read back from the layout)"] == f"{100 * rep['accuracy']['chip']:.2f}%"
    assert {"merge", "pdks", "timings", "skipped"} <= set(page.tables)
    macros = page.tables["macros"]                          # the periphery's figures, as the report has them
    assert [r[0] for r in macros[1:]] == [l["macro"]["cell"] for l in rep["layers"]]
    assert macros[1][4] == f"{rep['layers'][0]['macro']['bits_per_um2']:.4f}"
    assert all(r[6] == "not simulated (compile --simulate)" for r in macros[1:])
    reuse = {r[0]: r for r in page.tables["reuse"][1:]}   # read back from the layout, agrees with the compile
    for l in rep["layers"]:
        assert int(reuse[l["name"]][1].replace(",", "")) == l["blocks"]
        cells = int(reuse[l["name"]][2].replace(",", "")) + (1 if l["zero_block_kinds"] else 0)
        assert cells == l["unique_blocks"]
    assert f"{rep['verify']['matched']:,} of {rep['verify']['bits']:,} bits match" in text


def test_report_from_json_draws_the_same_pictures(compiled, tmp_path):
    d, _ = compiled
    r = run_cli("report", d / "chip.json", "-o", tmp_path / "again.html")
    assert r.returncode == 0, r.stderr
    first, again = Page((d / "chip.html").read_text()), Page((tmp_path / "again.html").read_text())
    # die, bit cells, reuse and the merge search (its history is in the JSON): the same bytes
    assert len(again.images) == 4 and first.images == again.images
    # the layout moved: the report says so, --layout finds it
    moved = tmp_path / "moved.gds"
    shutil.copy(d / "chip.gds", moved)
    rep = json.loads((d / "chip.json").read_text())
    rep["output"] = str(tmp_path / "gone.gds")
    (tmp_path / "r.json").write_text(json.dumps(rep))
    code, _, err = cli("report", tmp_path / "r.json", "-o", tmp_path / "x.html")
    assert code == 1 and "gone.gds, is not there; give --layout" in err and len(err.splitlines()) == 1
    code, _, err = cli("report", tmp_path / "r.json", "-o", tmp_path / "x.html", "--layout", moved)
    assert code == 0, err


def test_report_bad_inputs_are_one_line(compiled, tmp_path):
    d, _ = compiled
    (tmp_path / "other.json").write_text('{"a": 1}')
    for args, message in [((d / "chip.gds", "-o", tmp_path / "a.html"), "not a JSON report"),
                          ((tmp_path / "none.json", "-o", tmp_path / "a.html"), "cannot read"),
                          ((d / "chip.json", "-o", d / "chip.json"), "is the same file as"),
                          ((tmp_path / "other.json", "-o", tmp_path / "a.html"), "not a weightfab compile report")]:
        code, _, err = cli("report", *args)
        assert code == 1 and message in err and len(err.splitlines()) == 1, err


def test_compile_html_usage_errors_before_any_work(tmp_path):
    gds = tmp_path / "c.gds"
    for html, message in [(gds, "the name must end in .html"), (tmp_path / "c.txt", "the name must end in .html"),
                          (tmp_path / "no" / "c.html", "does not exist")]:
        code, _, err = cli("compile", SAMPLE, "-o", gds, "--no-drc", "--html", html)
        assert code == 1 and message in err, err
        assert not gds.exists()
    code, _, err = cli("compile", SAMPLE, "-o", gds, "--no-drc", "--report", tmp_path / "r.html", "--html", tmp_path / "r.html")
    assert code == 1 and "is the same file as" in err and not gds.exists()


def test_html_is_staged_with_the_other_outputs(tmp_path, monkeypatch):
    """The page is written beside the staged layout and renamed with it: when drawing the page fails,
    no layout, report or page is left, and a second run writes all three together."""
    import weightfab
    import weightfab.report.html as page
    from weightfab.errors import WeightfabError

    out, rep, html = tmp_path / "c.gds", tmp_path / "c.json", tmp_path / "c.html"

    def broken(*args, **kwargs):
        raise WeightfabError("picture failed")
    monkeypatch.setattr(page, "write_html", broken)
    with pytest.raises(WeightfabError, match="picture failed"):
        weightfab.compile(SAMPLE, out, drc=False, report=rep, html=html)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.undo()
    res = weightfab.compile(SAMPLE, out, drc=False, report=rep, html=html)
    assert out.exists() and rep.exists() and html.exists() and res.html["bytes"] == html.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.gds", "c.html", "c.json"]


def test_missing_matplotlib_is_reported_before_any_work(tmp_path):
    """With matplotlib unimportable, --html fails at once with one line and writes nothing."""
    import sys
    gds = tmp_path / "c.gds"
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from weightfab.cli import main\n"
            f"main(['compile', {str(SAMPLE)!r}, '-o', {str(gds)!r}, '--html', {str(tmp_path / 'c.html')!r}])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1 and "needs matplotlib" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    assert not gds.exists() and not (tmp_path / "c.html").exists()


def test_page_without_readable_arrays_still_has_the_die(compiled, tmp_path):
    """When the layout's arrays do not match the report (here: one layer dropped), the die is still
    drawn and labelled from the layout's cells, and the page says why the other pictures are missing."""
    from weightfab.report.html import write_html
    d, _ = compiled
    rep = json.loads((d / "chip.json").read_text())
    rep["layers"] = rep["layers"][:2]
    info = write_html(rep, tmp_path / "p.html", d / "chip.gds")
    text = (tmp_path / "p.html").read_text()
    assert info["figures"] == 2 and len(Page(text).images) == 2          # the die and the merge curve
    assert "not available: " in text and "3 ROM arrays, the report lists 2 layers" in text
    reuse, merging = text.index("<h2>Block reuse</h2>"), text.index("<h2>Similar-block merging</h2>")
    assert 'alt="merge trade-off"' in text[merging:] and "<img" not in text[reuse:merging]

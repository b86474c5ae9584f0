"""The ``[stack]`` table of a pdk.toml: the interconnect, bottom up from the first routing layer.

``layers`` alternates metal, via, metal, ... starting at the layer of the ROM's ``li`` role; the
first via is the default programming layer and the metal above it the default bitline metal
(role ``met1``). Any via of the stack may be chosen as the programming layer
(``compile --program-layer``). A PDK without the table offers only its default programming layer.
"""
from __future__ import annotations

from ..errors import PdkError


def parse_stack(where: str, table, layers: dict, roles: dict, programming_layer: str) -> tuple[str, ...]:
    """The stack's layer names, checked against the PDK's layers and roles; () when there is no table."""
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise PdkError(f"{where} [stack]: expected a table")
    unknown = sorted(set(table) - {"layers", "source"})
    if unknown:
        raise PdkError(f"{where} [stack]: unknown key '{unknown[0]}' (allowed: layers, source)")
    names = table.get("layers")
    if not (isinstance(names, list) and len(names) >= 3 and len(names) % 2 == 1
            and all(isinstance(n, str) for n in names)):
        raise PdkError(f"{where} [stack].layers: expected an odd-length list of layer names "
                       f"(metal, via, metal, ...), got {names!r}")
    for n in names:
        if n not in layers:
            raise PdkError(f"{where} [stack].layers: unknown layer '{n}'")
    if len(set(names)) != len(names):
        raise PdkError(f"{where} [stack].layers: a layer appears twice")
    expect = (roles.get("li"), programming_layer, roles.get("met1"))
    if tuple(names[:3]) != expect:
        raise PdkError(f"{where} [stack].layers: must start with the li role's layer, the programming layer and "
                       f"the met1 role's layer {list(expect)}, got {names[:3]}")
    return tuple(names)

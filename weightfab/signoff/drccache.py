"""The fast DRC's clean templates, remembered between runs.

A template (fastdrc.py) holds the file's periphery and arrays cut down, with every bit site
programmed: it does not depend on the weights. Two models of one shape, or one model compiled again,
give the same templates, so a template found clean once need not be checked again. The key of an
entry is the SHA-256 of everything the check reads:

* the template itself, written by KLayout as uncompressed OASIS bytes (every cell, shape and
  instance);
* every field of the rules it is checked with, the derived-layer definitions and the GDS numbers
  of the layers they read;
* the KLayout version and the source of ``signoff/drc.py`` (the checks themselves).

Only a template on which every rule found nothing is kept; a failing one is always checked (and
then checked in full on the file). An entry is an empty file named by its key, written atomically.
The cache lives in ``$WEIGHTFAB_CACHE`` if set (``off`` turns it off), else
``$XDG_CACHE_HOME/weightfab/drc`` (``~/.cache/weightfab/drc``); a cache that cannot be written is
not used, and the run says so in its notes.
"""
from __future__ import annotations

import hashlib
import inspect
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import klayout.db as kdb

from . import drc as _drc


def directory() -> Path | None:
    """The cache directory, or None when the cache is off."""
    env = os.environ.get("WEIGHTFAB_CACHE")
    if env is not None:
        return None if env.strip().lower() in ("off", "0", "no", "") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "weightfab" / "drc"


@lru_cache(maxsize=1)
def _tool_digest() -> bytes | None:
    """KLayout's version and the checks' source; None (no cache) where the source is not installed."""
    try:
        src = inspect.getsource(_drc)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(f"klayout {getattr(kdb, '__version__', '')}\n".encode() + src.encode()).digest()


def key(layout: kdb.Layout, rules, pdk) -> str:
    """The entry's key for checking ``rules`` of ``pdk`` on the template ``layout``."""
    opt = kdb.SaveLayoutOptions()
    opt.format = "OASIS"
    opt.oasis_compression_level = 0
    h = hashlib.sha256(_tool_digest())
    h.update(layout.write_bytes(opt))
    names: set[str] = set()
    for r in rules:
        h.update(repr(r).encode())
        names |= {n for n in (r.layer, r.other, r.edges_on) if n}
    seen = set()
    while names - seen:
        n = sorted(names - seen)[0]
        seen.add(n)
        if n in pdk.derived:
            h.update(repr((n, pdk.derived[n])).encode())
            names |= {pdk.derived[n][0], pdk.derived[n][2]}
        elif n in pdk.layers:
            h.update(repr((n, pdk.gds(n))).encode())
    return h.hexdigest()


class Cache:
    """One run's view of the cache: hits, stores, and whether it could be written."""

    def __init__(self):
        self.dir = directory() if _tool_digest() is not None else None
        self.hits = self.stored = 0
        self.error = ""

    def found(self, k: str) -> bool:
        """Whether the entry ``k`` exists (not counted: ``clean`` counts)."""
        return self.dir is not None and (self.dir / k).is_file()

    def clean(self, k: str) -> bool:
        hit = self.found(k)
        self.hits += hit
        return hit

    def write(self, k: str) -> bool:
        """Write the entry ``k`` (not counted: ``remember`` counts); False when it could not be
        (the reason kept in ``error``, and no other entry tried)."""
        if self.dir is None or self.error:
            return False
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".", dir=self.dir)
            os.close(fd)
            os.replace(tmp, self.dir / k)
            return True
        except OSError as exc:
            self.error = f"{self.dir}: {exc.strerror or exc}"
            return False

    def remember(self, k: str) -> None:
        self.stored += self.write(k)

    def note(self, total: int) -> str | None:
        if self.dir is None:
            return None
        out = (f"template cache {self.dir}: {self.hits} of {total} templates found clean in an earlier run "
               f"and not checked again, {self.stored} remembered")
        return out + (f"; not written ({self.error})" if self.error else "")

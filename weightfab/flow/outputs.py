"""Where outputs land: checked paths, staged files, one commit at the end.

The rule (README "Outputs"):
- Before any work, every output path is compared with every input and every other output after
  resolving links (and, for files that exist, by device and inode, so hard links count too); a
  clash is a usage error (exit 1) and nothing is read or written.
- Every output is written to a hidden temporary file in its own directory (``.NAME.<random>.SUFFIX``),
  checked complete (a layout is re-read at its header and end record, a marker database at its
  closing tag, JSON by its writer) and, for the layout, design-rule checked and read back there:
  the checks see the file this run wrote, whatever another run puts at the final path.
- Outputs reach their final names together, only after every requested check has run
  (clean, DRC violations or a readback mismatch: the layout is kept with its report and markers,
  and the exit code says which). On an error or an interruption (SIGINT, exit 130) the temporary
  files are removed and the final paths are left as they were: no partial or unchecked file.
"""
from __future__ import annotations

import os
import zlib
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError, UsageError, WeightfabError

GDS_HEADER = bytes.fromhex("00060002")  # record length 6, HEADER
GDS_ENDLIB = bytes.fromhex("00040400")  # record length 4, ENDLIB
OASIS_MAGIC = b"%SEMI-OASIS\r\n"
OASIS_END_LEN = 256                     # the END record is always 256 bytes, starting with its id 2


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_paths(inputs: dict[str, str | Path | None], outputs: dict[str, str | Path | None]) -> None:
    """Usage error when an output is an input or another output (after resolving links).
    Keys name the option (``--report``), values are paths or None (not given)."""
    ins = [(k, Path(v)) for k, v in inputs.items() if v is not None]
    outs = [(k, Path(v)) for k, v in outputs.items() if v is not None]
    for i, (ko, po) in enumerate(outs):
        for ki, pi in ins:
            if _same(po, pi):
                raise UsageError(f"{ko} {po} is the same file as {ki} {pi}: it would be overwritten")
        for ko2, po2 in outs[:i]:
            if _same(po, po2):
                raise UsageError(f"{ko} {po} is the same file as {ko2} {po2}: one would overwrite the other")
        if po.is_dir():
            raise UsageError(f"{ko} {po} is a directory")
        parent = po.parent if str(po.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"{ko} {po}: directory {parent} does not exist")


def check_layout_file(path: Path, expected_suffix: str) -> int:
    """The size of a complete GDSII/OASIS file, or OutputError when it was cut short (gdstk does not
    report failed writes: a full disk leaves a truncated or empty file behind it)."""
    try:
        with open(path, "rb") as f:
            os.fsync(f.fileno())  # delayed write errors (network file systems) surface here
            size = os.fstat(f.fileno()).st_size
            head = f.read(16)
            f.seek(max(0, size - OASIS_END_LEN))
            tail = f.read()
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if expected_suffix == ".gds":
        complete = head.startswith(GDS_HEADER) and tail.endswith(GDS_ENDLIB)
    else:   # the END record, then CRC32 validation (scheme 1) of every byte before its signature
        complete = (head.startswith(OASIS_MAGIC) and size >= OASIS_END_LEN + len(OASIS_MAGIC) and tail[:1] == b"\x02"
                    and tail[-5:-4] == b"\x01" and _crc32(path, size - 4) == int.from_bytes(tail[-4:], "little"))
    if not complete:
        raise OutputError(f"cannot write {path}: the file was cut short at {size:,} bytes (disk full?)")
    return size


def _crc32(path: Path, n: int, chunk: int = 1 << 24) -> int:
    """CRC32 of the first ``n`` bytes of ``path``, read in chunks."""
    crc = 0
    with open(path, "rb") as f:
        while n > 0:
            block = f.read(min(chunk, n))
            if not block:
                break
            crc, n = zlib.crc32(block, crc), n - len(block)
    return crc


def check_text_end(path: Path, end: str) -> None:
    """A text output (marker database) that does not end with its closing tag was cut short."""
    try:
        with open(path, "rb") as f:
            os.fsync(f.fileno())
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - 200))
            tail = f.read().rstrip()
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not tail.endswith(end.encode()):
        raise OutputError(f"cannot write {path}: the file was cut short at {size:,} bytes (disk full?)")


@contextmanager
def _sigint_deferred():
    """Finish the renames even if SIGINT arrives in between: every check has run and the outputs are
    complete, so the run ends as it would have (an interrupt this late changes nothing)."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals cannot arrive here anyway
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


class Outputs:
    """Staged outputs: ``stage(final)`` gives a temporary path beside ``final``; ``commit()`` renames
    every staged file to its final name; leaving the ``with`` block by an exception (including
    KeyboardInterrupt) removes them all."""

    def __init__(self):
        self.staged: list[tuple[Path, Path]] = []  # (temporary, final)

    def stage(self, final: str | Path) -> Path:
        final = Path(final)
        directory = final.parent if str(final.parent) else Path(".")
        if not directory.is_dir():
            raise OutputError(f"cannot write {final}: directory {directory} does not exist")
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=final.suffix, dir=directory)
            os.close(fd)
        except OSError as exc:
            raise OutputError(f"cannot write {final}: {exc.strerror or exc}") from None
        self.staged.append((Path(tmp), final))
        return Path(tmp)

    def commit(self) -> None:
        with _sigint_deferred():
            for tmp, final in self.staged:
                try:
                    os.chmod(tmp, 0o644)
                    os.replace(tmp, final)
                except OSError as exc:
                    raise OutputError(f"cannot write {final}: {exc.strerror or exc}") from None
            self.staged = []

    def discard(self) -> None:
        for tmp, _ in self.staged:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass
        self.staged = []

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        names = {str(tmp): str(final) for tmp, final in self.staged}
        self.discard()  # after commit() nothing is left to discard
        if isinstance(exc, WeightfabError) and any(t in str(exc) for t in names):
            text = str(exc)
            for tmp, final in names.items():  # name the output the user gave, not its temporary file
                text = text.replace(tmp, final)
            raise type(exc)(text) from None

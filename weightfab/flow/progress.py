"""Progress on stderr while a long stage runs: one line, rewritten in place, only on a terminal.

``Progress.lap(stage, seconds)`` is told when a stage ends (compile's clock calls it);
``Progress.step(i, n, what)`` when a stage reports its own steps (the DRC, rule by rule). A
background thread rewrites the line about twice a second once the current stage has run for
``after`` seconds, so stages shorter than that print nothing. ``quiet`` or a stderr that is not a
terminal turns it all off. The per-stage times are the report's, not this module's.
"""
from __future__ import annotations

import sys
import threading
import time


class Progress:
    def __init__(self, quiet: bool = False, stream=None, after: float = 2.0):
        self.stream = stream if stream is not None else sys.stderr
        self.on = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.after = after
        self.last = "start"
        self.detail = ""
        self.since = time.perf_counter()
        self.shown = False
        self._stop = threading.Event()
        self._thread = None
        if self.on:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def lap(self, stage: str, seconds: float) -> None:
        """``stage`` ended after ``seconds``; the next one starts now."""
        self.last, self.detail, self.since = stage, "", time.perf_counter()
        if self.on and seconds >= self.after:
            self._write(f"{stage}: {seconds:.1f} s", end="\n")

    def step(self, i: int, n: int, what: str) -> None:
        self.detail = f"{i}/{n} {what}"

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self.on and self.shown:
            self._write("", end="")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            t = time.perf_counter() - self.since
            if t >= self.after:
                self._write(f"working ({self.last} done) {t:.0f} s" + (f": {self.detail}" if self.detail else ""))

    def _write(self, text: str, end: str = "") -> None:
        try:
            self.stream.write("\r\033[K" + text + end)
            self.stream.flush()
            self.shown = end == ""
        except (OSError, ValueError):
            self.on = False

"""Progress for long work: a live line on a terminal, periodic lines with ETA in logs and CI."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """Reports ``done/total`` with rate and ETA.

    On a terminal the line is redrawn in place at most every ``refresh`` seconds; otherwise a
    full line is printed at most every ``interval`` seconds, and always for the last step, so
    logs stay short but never silent.
    """

    def __init__(
        self,
        total: float,
        label: str = "",
        unit: str = "trials",
        stream: TextIO | None = None,
        interval: float = 5.0,
        refresh: float = 0.2,
        enabled: bool = True,
    ):
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = refresh if self.live else interval
        self.enabled = enabled
        self.start = time.monotonic()
        self.last_print = -float("inf")
        self.done = 0.0

    def update(self, done: float, extra: str = "", force: bool = False) -> None:
        self.done = done
        if not self.enabled:
            return
        now = time.monotonic()
        finished = done >= self.total
        if not (force or finished or now - self.last_print >= self.interval):
            return
        self.last_print = now
        elapsed = now - self.start
        eta = elapsed / done * (self.total - done) if done > 0 else float("nan")
        eta_text = format_seconds(eta) if eta == eta else "?"
        total = f"{self.total:g}"
        line = (
            f"{self.label}[{done:>{len(total)}g}/{total} {self.unit}] {extra}"
            f" | elapsed {format_seconds(elapsed)} | ETA {eta_text}"
        )
        if self.live:
            self.stream.write("\r\033[K" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.live and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()

"""A live progress line on stderr when someone runs the wodle by hand on a terminal; quiet otherwise.

`security_lake subscriber 'Q': 3 objects, 12000 events (4.1 MB), 5120 events/s` is redrawn in place
twice a second. It is erased before any log line is written and redrawn after, so log lines stay whole.
Under a manager, a service or a pipe (stderr not a terminal) nothing is drawn.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Optional, TextIO

from aws_s3_wodle.observe.stats import RunStats

_CLEAR = "\r\x1b[K"


class Progress:
    def __init__(self, stream: TextIO, interval: float = 0.5) -> None:
        self.stream = stream
        self.interval = interval
        self.lock = threading.RLock()
        self.watched: list[RunStats] = []
        self.shown = False
        self.quiet_until = 0.0  # a log line was just written: let it land before drawing again
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self.filter = _ClearBeforeLog(self)

    @classmethod
    def for_terminal(cls, stream: Optional[TextIO] = None) -> Optional["Progress"]:
        """A started Progress when the stream is a terminal, else None."""
        stream = stream or sys.stderr
        try:
            if not stream.isatty():
                return None
        except (AttributeError, ValueError):
            return None
        progress = cls(stream)
        for handler in logging.getLogger().handlers:
            handler.addFilter(progress.filter)
        progress.thread.start()
        return progress

    def watch(self, stats: RunStats) -> None:
        with self.lock:
            self.watched.append(stats)
            self._draw()

    def unwatch(self, stats: RunStats) -> None:
        with self.lock:
            self._draw()  # the final count, then out of the way of the summary line
            if stats in self.watched:
                self.watched.remove(stats)
            self.clear()

    def line(self) -> str:
        parts = []
        now = time.monotonic()
        for s in self.watched:
            events = s.events + s.in_flight_events
            elapsed = max(now - s.started, 1e-6)
            parts.append(f"{s.label}: {s.objects} objects, {events} events ({s.bytes / 1e6:.1f} MB), "
                         f"{events / elapsed:.0f} events/s")
        return " | ".join(parts)

    def _draw(self) -> None:
        text = self.line()
        if not text:
            return
        try:
            self.stream.write(_CLEAR + text)
            self.stream.flush()
            self.shown = True
        except (OSError, ValueError):
            pass

    def clear(self) -> None:
        with self.lock:
            if self.shown:
                try:
                    self.stream.write(_CLEAR)
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
                self.shown = False

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                if self.watched and time.monotonic() >= self.quiet_until:
                    self._draw()

    def close(self) -> None:
        self.stop.set()
        self.clear()
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self.filter)


class _ClearBeforeLog(logging.Filter):
    """Erases the progress line before a log record is written (the next tick redraws it)."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def filter(self, record: logging.LogRecord) -> bool:
        self.progress.quiet_until = time.monotonic() + 0.1
        self.progress.clear()
        return True

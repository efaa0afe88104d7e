"""Each block runs on its wodle's interval in its own thread; runs of one block never overlap.

A run that outlasts the interval logs `Interval overtaken.` and the next run starts at once.
`time`, `day` and `wday` place the first run; later runs follow the interval, as in Wazuh.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Callable, Optional

from aws_s3_wodle.config.wodle import Wodle

log = logging.getLogger("aws-s3-wodle")


def first_delay(wodle: Wodle, run_on_start: bool, now: Optional[dt.datetime] = None) -> float:
    """Seconds until the first run: 0 on start, else the next matching time/day/wday, else one interval."""
    if run_on_start:
        return 0.0
    if wodle.time is None and wodle.day is None and wodle.wday is None:
        return float(wodle.interval)
    now = now or dt.datetime.now()
    hour, minute = map(int, (wodle.time or "00:00").split(":"))
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    for _ in range(0, 400):
        if candidate > now and (wodle.wday is None or candidate.weekday() == wodle.wday) and \
                (wodle.day is None or candidate.day == wodle.day):
            return (candidate - now).total_seconds()
        candidate += dt.timedelta(days=1)
    return float(wodle.interval)


class BlockScheduler(threading.Thread):
    """Runs `run_once` now or at the first slot, then every `interval` seconds until `stop` is set."""

    def __init__(self, name: str, wodle: Wodle, run_once: Callable[[], object], stop: threading.Event,
                 run_on_start: bool, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name=name, daemon=True)
        self.wodle, self.run_once, self.stop, self.clock = wodle, run_once, stop, clock
        self.delay = first_delay(wodle, run_on_start)
        self.runs = 0

    def run(self) -> None:
        if self.delay > 0:
            log.info("%s: first run in %.0f s", self.name, self.delay)
        next_start = self.clock() + self.delay
        while not self.stop.wait(max(0.0, next_start - self.clock())):
            started = self.clock()
            try:
                self.run_once()
            except Exception:  # a scheduler must outlive any one run; the run logged its own error
                log.exception("%s: the run failed unexpectedly", self.name)
            self.runs += 1
            next_start = started + self.wodle.interval
            if self.clock() > next_start and not self.stop.is_set():
                log.warning("Interval overtaken.")
                next_start = self.clock()

"""Per-run counters and the one summary line every run ends with."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class RunStats:
    label: str
    messages: int = 0        # SQS messages received (new this run)
    deleted: int = 0         # messages acknowledged (all their objects delivered, or noise)
    objects: int = 0         # objects fully delivered
    events: int = 0          # events accepted by the sink
    bytes: int = 0           # bytes accepted by the sink
    errors: int = 0          # objects or messages that failed (they stay queued unless configured otherwise)
    oversized: int = 0       # events too big for the engine, recorded instead of sent
    skipped: int = 0         # objects already delivered before (redelivered notifications): not sent again
    resumed: int = 0         # objects resumed after the events a previous attempt delivered
    dead_lettered: int = 0   # messages given up, recorded in the dead-letter file and deleted
    released: int = 0        # messages handed back to the queue at once (not started, or stopped half-way)
    discarded: int = 0       # events dropped by a discard_regex
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    error_classes: Counter = field(default_factory=Counter)  # errors by class (dispositions.py): missing, corrupt...
    in_flight_events: int = 0   # events of the object being delivered, not yet counted in `events` (progress)
    oldest_age: Optional[float] = None  # seconds between sending and acknowledging the oldest message of the run

    def error(self, kind: str) -> None:
        """Count one failed object or message, by class (for the metrics)."""
        self.errors += 1
        self.error_classes[kind] += 1

    def acknowledged(self, sent_timestamp_ms: Optional[int]) -> None:
        """A message was deleted after delivery; its age (SQS SentTimestamp to now) feeds the metrics."""
        self.deleted += 1
        if sent_timestamp_ms is not None:
            age = max(0.0, time.time() - sent_timestamp_ms / 1000)
            self.oldest_age = age if self.oldest_age is None else max(self.oldest_age, age)

    def finish(self) -> "RunStats":
        self.seconds = time.monotonic() - self.started
        return self

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        extra = f", {self.oversized} oversized events recorded" if self.oversized else ""
        extra += f", {self.discarded} discarded" if self.discarded else ""
        classes = ", ".join(f"{n} {name}" for name, n in sorted(self.error_classes.items()))
        errors = f"{self.errors} errors" + (f" ({classes})" if classes else "")
        deleted = ", ".join([f"{self.deleted} deleted"] + [f"{n} {what}" for n, what in (
            (self.dead_lettered, "dead-lettered"), (self.released, "released")) if n])
        objects = ", ".join([f"{self.objects} objects"] + [f"{n} {what}" for n, what in (
            (self.skipped, "already delivered (not resent)"), (self.resumed, "resumed")) if n])
        return (f"Run of {self.label} done: {self.messages} messages ({deleted}), {objects}, "
                f"{self.events} events, {self.bytes} bytes, {errors}{extra} in {self.seconds:.2f} s "
                f"({self.rate:.1f} events/s)")

"""Per-run counters and the one summary line every run ends with, the same for every source.

A source that reads a queue counts messages; one that lists a bucket counts list calls and removals.
The summary names only what applies: the messages part for a queue, the removals when there were any.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional


QUEUE = "queue"      # a source that receives notifications (SQS subscribers)
LISTING = "listing"  # a source that lists a bucket (bucket blocks)


@dataclass
class RunStats:
    label: str
    source: str = QUEUE      # QUEUE or LISTING: which words the summary uses
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
    removed: int = 0         # objects deleted from their bucket after delivery (<remove_from_bucket>)
    list_calls: int = 0      # ListObjectsV2 calls of a bucket listing
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0
    error_classes: Counter = field(default_factory=Counter)  # errors by class (delivery/outcome.py): missing, corrupt...
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
        classes = ", ".join(f"{n} {name}" for name, n in sorted(self.error_classes.items()))
        errors = f"{self.errors} errors" + (f" ({classes})" if classes else "")
        extra = f", {self.oversized} oversized events recorded" if self.oversized else ""
        if self.discarded:
            extra += f", {self.discarded} events discarded" if self.source == LISTING else f", {self.discarded} discarded"
        extra += f", {self.removed} objects removed" if self.removed else ""
        resumed = f", {self.resumed} resumed" if self.resumed else ""
        if self.source == LISTING:
            head = f"{self.objects} objects ({self.skipped} already read){resumed}"
        else:
            deleted = ", ".join([f"{self.deleted} deleted"] + [f"{n} {what}" for n, what in (
                (self.dead_lettered, "dead-lettered"), (self.released, "released")) if n])
            skipped = f", {self.skipped} already delivered (not resent)" if self.skipped else ""
            head = f"{self.messages} messages ({deleted}), {self.objects} objects{skipped}{resumed}"
        return (f"Run of {self.label} done: {head}, {self.events} events, {self.bytes} bytes, {errors}{extra} in "
                f"{self.seconds:.2f} s ({self.rate:.1f} events/s)")

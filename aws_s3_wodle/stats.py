"""Per-run counters and the one summary line every run ends with."""
from __future__ import annotations

import time
from dataclasses import dataclass, field


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
    discarded: int = 0       # events dropped by a discard_regex
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def finish(self) -> "RunStats":
        self.seconds = time.monotonic() - self.started
        return self

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        extra = f", {self.oversized} oversized events recorded" if self.oversized else ""
        extra += f", {self.discarded} discarded" if self.discarded else ""
        return (f"Run of {self.label} done: {self.messages} messages ({self.deleted} deleted), {self.objects} objects, "
                f"{self.events} events, {self.bytes} bytes, {self.errors} errors{extra} in {self.seconds:.2f} s "
                f"({self.rate:.1f} events/s)")

"""The counters and summary line of a service block's run."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aws_s3_wodle.observe.stats import RunStats
from aws_s3_wodle.seams import SendResult


@dataclass
class ServiceStats(RunStats):
    regions: int = 0       # regions read
    streams: int = 0       # log streams read (CloudWatch Logs)
    removed: int = 0       # log streams deleted after delivery (<remove_log_streams>)
    findings: int = 0      # findings listed (Inspector), delivered or not
    service: str = "cloudwatchlogs"
    missing_groups: Counter = field(default_factory=Counter)  # log group -> regions where it does not exist

    def add_sent(self, result: SendResult) -> None:
        """What the sink took of one batch (all of it, or part of it when a stop ended its wait)."""
        self.events += result.sent
        self.bytes += result.bytes
        self.oversized += result.oversized

    def summary(self) -> str:
        if self.service == "inspector":
            what = f"{self.findings} findings" + (f" ({self.skipped} already delivered)" if self.skipped else "")
        else:
            what = f"{self.streams} log streams" + (f" ({self.removed} removed)" if self.removed else "")
        classes = ", ".join(f"{n} {name}" for name, n in sorted(self.error_classes.items()))
        errors = f"{self.errors} errors" + (f" ({classes})" if classes else "")
        extra = f", {self.oversized} oversized events recorded" if self.oversized else ""
        extra += f", {self.discarded} discarded" if self.discarded else ""
        return (f"Run of {self.label} done: {self.regions} regions, {what}, {self.events} events, {self.bytes} bytes, "
                f"{errors}{extra} in {self.seconds:.2f} s ({self.rate:.1f} events/s)")

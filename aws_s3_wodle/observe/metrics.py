"""`--metrics-file PATH`: Prometheus text format, rewritten atomically after every run.

Meant for node_exporter's textfile collector (or any reader of the format): counters accumulate over
the life of the process (one run with `--once`), gauges describe the last run of each block. The file is
written to a temporary name and renamed over PATH, so a reader never sees half a file.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, write_to_textfile

from aws_s3_wodle.observe.stats import RunStats

log = logging.getLogger("aws-s3-wodle")

PREFIX = "aws_s3_wodle"

disable_created_metrics()  # no `_created` series: the counters restart with the process anyway


def block_labels(block: Any) -> dict[str, str]:
    """`type` and `name` labels of a block: its type and its queue (or bucket, or service) name."""
    name = getattr(block, "sqs_name", None) or getattr(block, "name", None) or getattr(block, "label", "?")
    try:  # a queue given by URL or ARN is labelled by its name
        from aws_s3_wodle.config.subscribers import queue_ref
        name = queue_ref(str(name)).name
    except (ImportError, ValueError):
        pass
    return {"type": str(getattr(block, "TYPE", type(block).__name__)), "name": str(name)}


class Metrics:
    """One registry per process; `observe` after a block's run, `run_done` when its outcome is known."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=True)
        r, b = self.registry, ["type", "name"]

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, [*b, *extra], registry=r)

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> Gauge:
            return Gauge(f"{PREFIX}_{name}", doc, [*b, *extra], registry=r)

        self.runs = counter("runs", "Runs of a block, by result (ok, partial: some objects failed, failed).",
                            ("result",))
        self.received = counter("messages_received", "SQS messages received.")
        self.deleted = counter("messages_deleted", "SQS messages deleted: every object delivered, or noise.")
        self.returned = counter("messages_returned", "SQS messages received but left in the queue (they come "
                                                     "back after the visibility timeout, or go to the redrive policy).")
        self.objects = counter("objects", "Objects fully delivered.")
        self.events = counter("events", "Events accepted by the sink.")
        self.bytes = counter("bytes", "Bytes accepted by the sink (datagrams or lines).")
        self.oversized = counter("oversized_events", "Events too big for the engine, recorded instead of sent.")
        self.errors = counter("errors", "Failures by class: notification, missing, denied, corrupt, throttled, "
                                        "object (per object or message); aws, sink (per run).", ("class",))
        self.run_seconds = gauge("last_run_seconds", "Duration of the last run.")
        self.last_run = gauge("last_run_timestamp_seconds", "Unix time the last run ended.")
        self.rate = gauge("last_run_events_per_second", "Events per second of the last run.")
        self.oldest = gauge("last_run_oldest_message_age_seconds", "Age, when acknowledged, of the oldest message "
                                                                   "delivered by the last run (0: none delivered).")
        self.depth = gauge("queue_messages", "The queue's approximate number of messages after the last run, by "
                                             "state (visible, in_flight, delayed).", ("state",))

    def observe(self, block: Any, stats: RunStats, depth: Optional[dict[str, int]] = None) -> None:
        """Add a run's counters (also of a run that ended early: what it did still happened)."""
        lb = block_labels(block)
        with self.lock:
            self.received.labels(**lb).inc(stats.messages)
            self.deleted.labels(**lb).inc(stats.deleted)
            self.returned.labels(**lb).inc(max(0, stats.messages - stats.deleted - getattr(stats, "dead_lettered", 0)))
            self.objects.labels(**lb).inc(stats.objects)
            self.events.labels(**lb).inc(stats.events)
            self.bytes.labels(**lb).inc(stats.bytes)
            self.oversized.labels(**lb).inc(stats.oversized)
            for kind, count in stats.error_classes.items():
                self.errors.labels(**lb, **{"class": kind}).inc(count)
            unclassified = stats.errors - sum(stats.error_classes.values())
            if unclassified > 0:  # counted by a runner that does not name its classes
                self.errors.labels(**lb, **{"class": "object"}).inc(unclassified)
            self.run_seconds.labels(**lb).set(stats.seconds)
            self.rate.labels(**lb).set(stats.rate)
            self.oldest.labels(**lb).set(stats.oldest_age or 0.0)
            for state, count in (depth or {}).items():
                self.depth.labels(**lb, state=state).set(count)

    def run_done(self, block: Any, result: str, error_class: Optional[str] = None) -> None:
        """Count the run's outcome and rewrite the file."""
        lb = block_labels(block)
        with self.lock:
            self.runs.labels(**lb, result=result).inc()
            if error_class:
                self.errors.labels(**lb, **{"class": error_class}).inc()
            self.last_run.labels(**lb).set(time.time())
            self.write()

    def write(self) -> None:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            write_to_textfile(self.path, self.registry)  # temporary file + rename: atomic for readers
        except OSError as exc:
            log.warning("Cannot write the metrics file %s: %s", self.path, exc.strerror or exc)

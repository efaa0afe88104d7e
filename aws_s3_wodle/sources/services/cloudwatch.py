"""`<service type="cloudwatchlogs">`: every event of every stream of the configured log groups, once.

Per region and group: the streams are listed (DescribeLogStreams, every page); each stream is read forward
with GetLogEvents (startFromHead, from its stored position, pages of up to 10000 events or 1 MB until the
forward token comes back unchanged, which is how CloudWatch Logs says "no more"). The events go to the sink
in batches; the stream's position (the newest timestamp delivered and how many events at that timestamp) is
committed right after the sink accepted each batch. A stop (SIGTERM) ends the run between two batches: what
was sent is recorded, what was not is read next run.

Where a new stream starts: `only_logs_after`, else the moment the group was first read (its origin row),
so a stream created between two runs is read from its first event, not from "today".
With `remove_log_streams`, a stream is deleted only after it was read to its end, every event recorded,
and a second read from that position found nothing new.
"""
from __future__ import annotations

import logging
from typing import Any, Iterator, Optional

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.config.services import CloudWatchLogsService
from aws_s3_wodle.decode.services import log_event, log_message_discarded
from aws_s3_wodle.errors import Interrupted, one_line
from aws_s3_wodle.platform.aws_errors import error_code
from aws_s3_wodle.seams import EventBatch, SendResult
from aws_s3_wodle.sources.services.common import (EndRun, ServiceRun, classify, day_start_ms, shown,
                                                  utc_today)
from aws_s3_wodle.sources.services.state import Position, StreamKey
from aws_s3_wodle.sources.services.stats import ServiceStats

log = logging.getLogger("aws-s3-wodle")

SERVICE = "cloudwatchlogs"
NEEDS = "logs:DescribeLogStreams and logs:GetLogEvents on the log group (and logs:DeleteLogStream with " \
        "<remove_log_streams>)"
MAX_PAGE = 10000  # GetLogEvents' own limit (it also stops at 1 MB): fewer calls, the same batches to the sink


class CloudWatchLogsRun:
    """One pass over the block's groups in one region."""

    def __init__(self, block: CloudWatchLogsService, logs: Any, account: str, region: str, run: ServiceRun,
                 stats: ServiceStats) -> None:
        self.block, self.logs, self.account, self.region = block, logs, account, region
        self.run, self.stats = run, stats
        self.batch = max(1, run.options.batch_size)  # events per batch sent, and per position committed
        self.after = day_start_ms(block.only_logs_after) if block.only_logs_after else None

    def read(self) -> None:
        for group in self.block.aws_log_groups:
            self._check_stop()
            try:
                streams = self._streams(group)
            except (ClientError, BotoCoreError) as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    # a group may live in some of the regions only: an error only if it is in none (run.py)
                    self.stats.missing_groups[group] += 1
                    log.debug("%s: log group '%s' does not exist in %s: nothing to read there", self.block.label,
                              one_line(group), self.region)
                    continue
                self._failed(f"log group '{group}' in {self.region}: cannot list its streams", exc)
                continue
            origin = self._origin(group)
            for stream in streams:
                self._check_stop()
                self._read_stream(group, stream, origin)
            self._purge(group, set(streams))

    # --- a group

    def _streams(self, group: str) -> list[str]:
        names: list[str] = []
        for page in self.logs.get_paginator("describe_log_streams").paginate(logGroupName=group):
            names += [s["logStreamName"] for s in page.get("logStreams", [])]
        log.debug("%s: %d log streams in '%s' (%s)", self.block.label, len(names), group, self.region)
        return names

    def _origin(self, group: str) -> int:
        """Where streams without a position start: only_logs_after, else the day the group was first read."""
        key = StreamKey(SERVICE, self.account, self.region, group)
        stored = self.run.state.position(key)
        if stored is None:
            stored = Position(day_start_ms(utc_today()))
            self.run.state.commit(key, stored)
        return self.after if self.after is not None else stored.time

    def _purge(self, group: str, present: set[str]) -> None:
        """Forget the positions of streams that no longer exist (deleted, expired by retention)."""
        for stream in self.run.state.streams(SERVICE, self.account, self.region, group):
            if stream not in present:
                self.run.state.forget(StreamKey(SERVICE, self.account, self.region, group, stream))

    # --- a stream

    def _start(self, key: StreamKey, origin: int, again: bool = False) -> tuple[int, int]:
        """(timestamp to read from, events at that timestamp already delivered); `again`: a second read in the same
        run, always from the stored position (even with --reparse)."""
        pos = None if self.run.options.reparse and not again else self.run.state.position(key)
        start, count = (pos.time, pos.count) if pos else (origin, 0)
        if self.after is not None and self.after > start:  # only_logs_after moved later than the position
            start, count = self.after, 0
        return start, count

    def _read_stream(self, group: str, stream: str, origin: int) -> None:
        key = StreamKey(SERVICE, self.account, self.region, group, stream)
        where = one_line(f"log stream '{stream}' of '{group}' ({self.region})")
        self.stats.streams += 1
        try:
            sent = self._deliver(key, where, origin)
            if self.block.remove_log_streams:
                if sent and self._deliver(key, where, origin, again=True):
                    log.info("%s: %s got new events while it was read; it is removed on a later run",
                             self.block.label, where)
                    return
                self._remove(key, where)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) == "ResourceNotFoundException":  # deleted or expired since it was listed: nothing to read
                log.warning("%s: %s was deleted while the run read its group; what was read of it is delivered",
                            self.block.label, where)
                self.run.state.forget(key)
                return
            self._failed(where, exc)

    def _deliver(self, key: StreamKey, where: str, origin: int, again: bool = False) -> int:
        """Read the stream from its position to its end; returns the events read (sent or discarded)."""
        start, skip = self._start(key, origin, again)
        log.debug("%s: reading %s from %s (%d events at that time already delivered)", self.block.label, where,
                  shown(start), skip)
        newest, at_newest = start, 0  # the newest timestamp read, and how many events at it (skipped ones too)
        read = 0
        batch, pending = EventBatch(), 0  # pending: events read since the last commit (sent or discarded)
        after: list[Position] = []  # the position after each event of the batch: a stop mid-batch keeps those sent
        for events in self._pages(key, start):
            for event in events:
                ts = int(event["timestamp"])
                if ts < newest:  # CloudWatch returns a stream in time order; an older one was delivered already
                    continue
                if ts == newest:
                    at_newest += 1
                    if ts == start and at_newest <= skip:
                        continue  # delivered by an earlier run
                else:
                    newest, at_newest = ts, 1
                read += 1
                pending += 1
                message = str(event.get("message", ""))
                if log_message_discarded(self.block.discard_regex, message):
                    batch.discarded += 1
                else:
                    batch.append(log_event(message))
                    after.append(Position(newest, at_newest))
                if pending >= self.batch:
                    self._commit(key, batch, where, Position(newest, at_newest), after)
                    batch, pending, after = EventBatch(), 0, []
            if pending:
                self._commit(key, batch, where, Position(newest, at_newest), after)
                batch, pending, after = EventBatch(), 0, []
            self._check_stop()
        return read

    def _commit(self, key: StreamKey, batch: EventBatch, where: str, position: Position,
                after: list[Position]) -> None:
        """Send a batch, then record the stream's position (only once the sink took it), then heed a stop.
        Stopped while the engine took nothing, the position after the events it did take is kept."""
        try:
            self._send(batch, where)
        except Interrupted as exc:
            if exc.handled:
                self.run.state.commit(key, after[exc.handled - 1])
            raise
        self.run.state.commit(key, position)
        self._check_stop()

    def _pages(self, key: StreamKey, start: int) -> Iterator[list[dict]]:
        params = {"logGroupName": key.group, "logStreamName": key.stream, "startTime": start, "startFromHead": True,
                  "limit": MAX_PAGE}
        token: Optional[str] = None
        while True:
            response = self.logs.get_log_events(**params, **({"nextToken": token} if token else {}))
            yield response.get("events", [])
            following = response.get("nextForwardToken")
            if not following or following == token:
                return
            token = following

    def _send(self, batch: EventBatch, where: str) -> None:
        self.stats.discarded += batch.discarded
        if not batch:
            return
        self.stats.in_flight_events = len(batch)
        result = SendResult()
        try:
            result = self.run.sink.send_batch(batch, where)
        except Interrupted as exc:  # stopped while the engine took nothing: count what it took
            result = exc.partial or result
            raise
        finally:
            self.stats.in_flight_events = 0
            self.stats.add_sent(result)

    def _remove(self, key: StreamKey, where: str) -> None:
        try:
            self.logs.delete_log_stream(logGroupName=key.group, logStreamName=key.stream)
        except (ClientError, BotoCoreError) as exc:
            self._failed(f"{where}: delivered, but cannot be removed", exc)
            return
        self.run.state.forget(key)
        self.stats.removed += 1
        log.debug("%s: removed %s (every event delivered)", self.block.label, where)

    # --- failures and stops

    def _failed(self, where: str, exc: BaseException) -> None:
        self._check_stop()  # a stop ended the call's wait to try again: no failure of its own
        cls, reason = classify(exc, NEEDS)
        self.stats.error(cls.name)
        log.error("%s: %s: %s", self.block.label, where, reason)
        if not self.run.options.skip_on_error:
            raise EndRun()

    def _check_stop(self) -> None:
        if self.run.stop.is_set():
            raise Interrupted("stopped between two batches; every event sent is recorded, the rest is read on the "
                              "next run")

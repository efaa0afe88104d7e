"""One run of an SQS subscriber: receive -> parse -> fetch -> decode -> send -> delete.

A message is deleted only when every object it names was accepted by the sink: at-least-once.
One bad object (missing, denied, corrupt) is reported with its key and reason and never stops the
others; a sink that cannot take events ends the run with nothing more acknowledged.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator, Optional

from .errors import ObjectError, WodleError
from .fetch import fetch_object
from .formats import DecodeError
from .notifications import NotificationError, ObjectRef, parse_body
from .sinks import Sink
from .sources.sqs import Message, SqsQueue
from .stats import RunStats

log = logging.getLogger("aws-s3-wodle")

# Turns a downloaded object into batches of JSON events.
Decoder = Callable[[BinaryIO, ObjectRef], Iterator[list[bytes]]]


class Interrupted(WodleError):
    """A stop was requested mid-object: the object's message stays queued and comes back."""

    exit_code = 130


@dataclass
class RunOptions:
    wait_seconds: int = 20
    max_messages: int = 10
    visibility_timeout: Optional[int] = None
    spool_dir: Optional[str] = None
    skip_on_error: bool = True


class SubscriberRun:
    def __init__(self, label: str, queue: SqsQueue, s3: Any, decoder: Decoder, sink: Sink, options: RunOptions,
                 stop: threading.Event) -> None:
        self.queue, self.s3, self.decoder, self.sink = queue, s3, decoder, sink
        self.options, self.stop = options, stop
        self.stats = RunStats(label)

    def run(self) -> RunStats:
        seen: set[str] = set()
        try:
            for message in self.queue.messages(seen):
                self.stats.messages += 1
                if not self._handle(message) and not self.options.skip_on_error:
                    log.error("Ending the run at the first failure (skip_on_error is 'no')")
                    break
                if self.stop.is_set():
                    log.info("Stop requested: ending the run after message %s", message.message_id)
                    break
        finally:
            self.stats.finish()
        return self.stats

    def _handle(self, message: Message) -> bool:
        try:
            note = parse_body(message.body)
        except NotificationError as exc:
            self.stats.error("notification")
            log.error("SQS message %s of queue '%s' is not a notification we understand (%s); left in the queue "
                      "for its redrive policy", message.message_id, self.queue.name, exc)
            return False
        if note.is_noise:
            log.debug("Deleting test notification %s", message.message_id)
            self.queue.delete(message)
            self.stats.deleted += 1
            return True
        failed = 0
        for ref in note.objects:
            try:
                self._deliver(ref)
            except ObjectError as exc:
                failed += 1
                self.stats.error(exc.kind)
                log.error("Cannot deliver %s (message %s): %s; the message stays in the queue", exc.key and
                          f"s3://{exc.bucket}/{exc.key}", message.message_id, exc.reason)
                if not self.options.skip_on_error:
                    break
        if failed:
            return False
        self.queue.delete(message)
        self.stats.acknowledged(message.sent_timestamp_ms)
        return True

    def _deliver(self, ref: ObjectRef) -> None:
        origin = str(ref)
        log.debug("Fetching %s", origin)
        with fetch_object(self.s3, ref, self.options.spool_dir) as spool:
            events = sent_bytes = 0
            try:
                for batch in self.decoder(spool, ref):
                    if self.stop.is_set():
                        raise Interrupted(f"stopped in the middle of {origin} after {events} events; its message "
                                          "stays in the queue and will be received again")
                    self.stats.discarded += getattr(batch, "discarded", 0)  # dropped by discard_regex
                    result = self.sink.send_batch(batch, origin)
                    events += result.sent
                    sent_bytes += result.bytes
                    self.stats.oversized += result.oversized
                    self.stats.in_flight_events = events
            except DecodeError as exc:
                raise ObjectError(ref.bucket, ref.key, f"cannot decode after {events} events: {exc}",
                                  kind="corrupt") from None
            finally:
                self.stats.in_flight_events = 0
                self.stats.events += events
                self.stats.bytes += sent_bytes
        self.stats.objects += 1
        log.debug("Delivered %d events of %s", events, origin)

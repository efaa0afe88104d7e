"""One run of an SQS subscriber: receive -> hold -> parse -> deliver each object -> settle the message.

A message is deleted only when every object it names was accepted by the sink (or had been before:
the checkpoint store): at-least-once. While it is being worked on, leases.py keeps it invisible to other
consumers. The objects themselves go through the one delivery engine (delivery/engine.py), as every
source's do; this source keeps what is its own: receiving, leases, settling, dead letters.
A failure is classified (delivery/outcome.py), logged once per object with its key and reason,
counted by class, and the message is left for the queue's redrive policy, or, when `dead_letter_after`
is set and the failure can never pass, recorded in the dead-letter file and deleted. One bad object
never stops the others. A sink that cannot take events, or a stop request, ends the run: messages not
finished are handed back to the queue at once, and the half-done object resumes where it stopped.

The seams, for a run that works on several objects at once: `LeaseKeeper.hold/done/release` (visibility),
`ObjectDelivery.deliver` (one object, with its per-batch checkpoint; safe to call from several threads
for different objects), `SubscriberRun.settle` (acknowledge or dispose of one message).
"""
from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from aws_s3_wodle.sources.sqs.deadletter import FILE_NAME as DEAD_LETTER_FILE, DeadLetterError, DeadLetterFile
from aws_s3_wodle.config.settings import RunSettings
from aws_s3_wodle.delivery.checkpoints import NoStore, open_store
from aws_s3_wodle.delivery.engine import Interrupted, ObjectDelivery
from aws_s3_wodle.seams import Decoder, Sink
from aws_s3_wodle.delivery.outcome import UNPARSEABLE, Outcome
from aws_s3_wodle.errors import AwsAccessError
from aws_s3_wodle.platform.aws_errors import is_transient
from aws_s3_wodle.sources.sqs.deletes import BatchDeleter
from aws_s3_wodle.sources.sqs.notifications import NotificationError, parse_body
from aws_s3_wodle.sources.sqs.queue import BATCH as SQS_BATCH, Message, SqsQueue
from aws_s3_wodle.observe.stats import RunStats
from aws_s3_wodle.sources.sqs.leases import LeaseKeeper

log = logging.getLogger("aws-s3-wodle")

__all__ = ["Decoder", "Interrupted", "RunOptions", "SubscriberRun"]


_SETTINGS = RunSettings()  # the defaults of the run settings live there only
# Messages a pipelined run may hold received but not started, beyond its free object slots: at most one
# receive's worth, and no more than objects ended in the last AHEAD_WINDOW seconds, so a message waits in
# our hands about that long at most: many small objects get their slots filled without a round trip to SQS
# each, while slow ones (or a run whose objects cannot end: the engine is gone) receive only what can start
# and leave the rest to other consumers. Messages in hand are kept invisible by the LeaseKeeper meanwhile,
# and handed back at once if the run ends before they start.
RECEIVE_AHEAD = 10
AHEAD_WINDOW = 1.0


@dataclass
class RunOptions:
    wait_seconds: int = _SETTINGS.sqs_wait
    # Messages received at a time. A message received but not started waits in our hands while another
    # consumer could have taken it: receive what the run can start now (one, for this serial loop).
    max_messages: int = 1
    visibility_timeout: Optional[int] = 120
    visibility_limit: float = 3600.0
    dead_letter_after: Optional[int] = None
    spool_dir: Optional[str] = None
    skip_on_error: bool = True
    state_dir: Optional[str] = None
    receive_retries: int = 3        # tries again after a throttled / failing receive (on top of botocore's)
    parallel_objects: int = _SETTINGS.parallel_objects  # objects in flight at once (concurrency.py); 1: one at a time

    def for_block(self, block: Any) -> "RunOptions":
        """These options with the block's own delivery settings (config.SqsDelivery) where it has them."""
        own = {name: getattr(block, name) for name in ("visibility_timeout", "visibility_limit", "dead_letter_after")
               if getattr(block, name, None) is not None}
        return dataclasses.replace(self, **own)


class SubscriberRun:
    def __init__(self, label: str, queue: SqsQueue, s3: Any, decoder: Decoder, sink: Any, options: RunOptions,
                 stop: threading.Event) -> None:
        self.label, self.queue, self.s3, self.decoder, self.sink = label, queue, s3, decoder, sink
        self.options, self.stop = options, stop
        self.stats = RunStats(label)
        state_dir = Path(options.state_dir) if options.state_dir else None
        self.dead_letters = DeadLetterFile(state_dir / DEAD_LETTER_FILE if state_dir else None)
        self.store: Any = None
        self.keeper: Optional[LeaseKeeper] = None
        self.deleter: Optional[BatchDeleter] = None
        self.counting = threading.Lock()  # the deleter's thread counts acknowledged messages too
        self.reported: set[tuple[str, str]] = set()
        self._uncounted: set[str] = set()  # deleted as dead letters: not counted as acknowledged

    # --- the loop

    def run(self) -> RunStats:
        self.store = open_store(Path(self.options.state_dir) if self.options.state_dir else None)
        if self.queue.visibility_timeout is None:  # the keeper must know when a message would reappear
            self.queue.visibility_timeout = self.options.visibility_timeout or 120
        timeout = self.queue.visibility_timeout
        self.keeper = LeaseKeeper(self.queue, timeout, self.options.visibility_limit).start()
        self.deleter = BatchDeleter(self.queue, self._deleted)
        waiting: deque[Message] = deque()
        current: Optional[Message] = None
        if self.options.parallel_objects > 1:
            return self._run_pipelined(waiting)
        objects = self._engine(self.decoder, self.sink)
        try:
            for batch in self._receive_batches():
                waiting.extend(batch)
                while waiting and not self.stop.is_set():
                    current = waiting.popleft()
                    ok = self.handle(current, objects)
                    current = None
                    if not ok and not self.options.skip_on_error:
                        log.error("Ending the run at the first failure (skip_on_error is 'no')")
                        return self.stats
                if self.stop.is_set():
                    log.info("Stop requested: ending the run of %s", self.label)
                    return self.stats
        finally:
            self._end(([current] if current else []) + list(waiting))
        return self.stats

    def _engine(self, decoder: Decoder, sink: Sink) -> ObjectDelivery:
        return ObjectDelivery(self.s3, decoder, sink, self.stats, store=self.store, stop=self.stop,
                              spool_dir=self.options.spool_dir)

    def _run_pipelined(self, waiting: "deque[Message]") -> RunStats:
        """The same loop with `parallel_objects` objects in flight, each decoded ahead of its sending.

        Messages are still settled one by one by `settle`, when all their objects are done, in whatever
        order they complete. A fatal error (the sink gave up, a stop) aborts the objects in flight, unsettled;
        an error of this thread (receiving) lets them finish first; a second signal leaves them at once.
        With skip_on_error 'no', no object starts after the first failure (concurrency.py).
        """
        from aws_s3_wodle.delivery.concurrency import ObjectPipeline, OneBatchAtATime, pipelined_decoder
        settled: set[str] = set()
        in_hand: list[Message] = []

        def settle(message: Message, outcomes: list) -> bool:
            settled.add(message.message_id)
            return self.settle(message, outcomes)

        abort = threading.Event()  # one error ends every object in flight at its next batch
        objects = self._engine(pipelined_decoder(self.decoder, abort), OneBatchAtATime(self.sink, abort))
        pipeline: ObjectPipeline = ObjectPipeline(self.options.parallel_objects, objects.deliver, settle,
                                                  stop=self.stop, failed=lambda outcome: not outcome.delivered,
                                                  halt_on_failure=not self.options.skip_on_error, abort=abort)
        receiver = _ReceiveAhead(self)
        try:
            while not pipeline.halted:
                while waiting and pipeline.room() and not pipeline.halted:  # start what can start
                    message = waiting.popleft()
                    in_hand.append(message)
                    refs, acknowledged = self._announced(message, settle)
                    if refs is not None:
                        pipeline.submit(message, refs)
                    elif not acknowledged and not self.options.skip_on_error:
                        pipeline.give_up()
                    pipeline.reap()
                if pipeline.halted:
                    break
                busy = pipeline.in_flight > 0
                ahead = min(RECEIVE_AHEAD, pipeline.finished_within(AHEAD_WINDOW))
                if not receiver.drained and len(waiting) <= pipeline.room() and pipeline.room() + ahead:
                    # too few in hand to fill the free slots: receive, up to `ahead` more than can start;
                    # while objects are in flight, a look that does not wait (the long poll only when idle)
                    batch = receiver.take(min(SQS_BATCH, pipeline.room() + ahead - len(waiting)), wait=not busy)
                    if batch:
                        waiting.extend(batch)
                        continue
                    if receiver.drained and not busy and not waiting:
                        break  # the queue is drained and nothing is in flight
                    if busy:
                        pipeline.reap(wait=True)  # nothing to take now: look again once an object is done
                    continue
                if not busy and not waiting:
                    break
                pipeline.reap(wait=True)
            try:
                pipeline.finish()
            finally:
                if pipeline.gave_up:
                    log.error("Ending the run at the first failure (skip_on_error is 'no')")
                if self.stop.is_set():
                    log.info("Stop requested: ending the run of %s", self.label)
        except KeyboardInterrupt:
            pipeline.close(wait=False)
            raise
        except BaseException as exc:
            if pipeline.fatal is None and not pipeline.abort.is_set():
                # this thread's own error (e.g. SQS refusing receives): the objects in flight are delivered
                # and acknowledged first, so the next run does not send them again
                try:
                    pipeline.finish()
                except KeyboardInterrupt:
                    pipeline.close(wait=False)
                    raise
                except Exception:  # noqa: BLE001 - the run ends with the first error
                    pass
            pipeline.close()
            raise exc
        finally:
            self._end([m for m in in_hand if m.message_id not in settled] + list(waiting))
        return self.stats

    def _end(self, unfinished: list) -> None:
        """Hand unfinished messages back at once; stop renewing; close the state."""
        self.deleter.close()  # every delivered message's delete is sent before the run ends
        self.stats.released += self.keeper.release(unfinished)
        if unfinished:
            log.info("Handed %d unfinished SQS message(s) back to queue '%s' at once", len(unfinished),
                     self.queue.name)
        self.keeper.stop()
        self.store.close()
        self.stats.finish()

    def _receive_batches(self) -> Iterator[list[Message]]:
        """The serial loop's receives (at most max_messages at a time, long polls) until the queue is
        drained, or keeps handing back only messages this run already saw (_ReceiveAhead decides both)."""
        receiver = _ReceiveAhead(self)
        while not self.stop.is_set() and not receiver.drained:
            fresh = receiver.take(max(1, self.options.max_messages), wait=True)
            if fresh:
                yield fresh

    def _receive(self, max_messages: int, wait_seconds: Optional[int] = None) -> list[Message]:
        for attempt in range(self.options.receive_retries + 1):
            try:
                return self.queue.receive(max_messages, wait_seconds)
            except AwsAccessError as exc:
                if self.stop.is_set():
                    return []  # a stop ended the call's wait to try again: nothing received, no failure
                if exc.cause is None or not is_transient(exc.cause) or attempt == self.options.receive_retries:
                    raise
                delay = 2 ** attempt * (0.5 + random.random() / 2)
                log.warning("%s; trying again in %.1f s", exc, delay)
                if self.stop.wait(delay):
                    return []
        return []


    # --- one message

    def handle(self, message: Message, objects: ObjectDelivery) -> bool:
        """Deliver what message announces and settle it; True when it was acknowledged."""
        refs, acknowledged = self._announced(message, self.settle)
        if refs is None:
            return acknowledged
        outcomes = []
        for ref in refs:
            outcome = objects.deliver(ref)  # SinkError and Interrupted end the run from here
            outcomes.append((ref, outcome))
            if not outcome.delivered and not self.options.skip_on_error:
                break
        return self.settle(message, outcomes)

    def _announced(self, message: Message, settle: Any) -> tuple[Optional[tuple], bool]:
        """The objects a message names, or (None, acknowledged) when settled here (noise, not a notification)."""
        try:
            note = parse_body(message.body)
        except NotificationError as exc:
            return None, settle(message, [(None, Outcome(False, UNPARSEABLE,
                                                         f"not a notification we understand: {exc}"))])
        if note.is_noise:
            log.debug("Deleting notification %s: it announces no new object", message.message_id)
            return None, settle(message, [])
        return note.objects, False

    def settle(self, message: Message, outcomes: list) -> bool:
        """Acknowledge a message whose objects were all delivered; otherwise log, count and dispose of it."""
        failed = [(ref, o) for ref, o in outcomes if not o.delivered]
        if not failed:
            return self._delete(message)
        for _, o in failed:
            self.stats.error(o.failure.name)
        dead, disposal = self._dispose(message, failed)
        for ref, o in failed:
            if ref is None:
                log.error("Cannot use SQS message %s of queue '%s': %s: %s; %s", message.message_id,
                          self.queue.name, o.failure.label, o.reason, disposal)
            elif (ref.bucket, ref.key) not in self.reported:  # once per object and run
                self.reported.add((ref.bucket, ref.key))
                log.error("Cannot deliver %s (message %s of queue '%s'): %s: %s; %s", ref, message.message_id,
                          self.queue.name, o.failure.label, o.reason, disposal)
        if dead:
            if self._delete(message, counted=False):
                self.stats.dead_lettered += 1
        else:
            self.keeper.done(message)  # not renewed any more: it reappears after its visibility timeout
        return False

    def _dispose(self, message: Message, failed: list) -> tuple[bool, str]:
        """Dead-letter the message (True) or leave it in the queue (False); and the words that say so."""
        limit = self.options.dead_letter_after
        if not all(o.failure.permanent for _, o in failed):
            return False, "left in the queue: it is tried again when it reappears"
        if not limit:
            return False, "left in the queue for its redrive policy"
        if message.receive_count < limit:
            return False, (f"left in the queue for its redrive policy (dead-lettered after {limit} receives; "
                           f"this was receive {message.receive_count})")
        reasons = [f"{ref or 'message'}: {o.failure.label}: {o.reason}" for ref, o in failed]
        try:
            where = self.dead_letters.record(self.queue.name, message, reasons)
        except DeadLetterError as exc:
            return False, f"cannot be dead-lettered ({exc}): left in the queue for its redrive policy"
        return True, f"received {message.receive_count} times: recorded in {where} and deleted"

    def _delete(self, message: Message, counted: bool = True) -> bool:
        """Acknowledge: the delete is batched with others' (deletes.py); its result reaches `_deleted`."""
        self.keeper.done(message)
        if not counted:
            self._uncounted.add(message.message_id)
        self.deleter.add(message)
        return True

    def _deleted(self, message: Message, refused: Optional[str]) -> None:
        """The deleter's report on one message (its thread): counted, or the failed delete logged once."""
        counted = message.message_id not in self._uncounted
        self._uncounted.discard(message.message_id)  # reported once: the set holds only deletes in flight
        if refused is not None:
            log.warning("cannot delete message %s from '%s': %s; check the sqs:DeleteMessage permission (the message "
                        "will be received again); %s", message.message_id, self.queue.name, refused,
                        "its objects are not recorded as delivered (no state directory): they will be sent again"
                        if isinstance(self.store, NoStore) else
                        "its objects are recorded as delivered and will not be sent again")
        elif counted:
            with self.counting:
                self.stats.acknowledged(message.sent_timestamp_ms)


class _ReceiveAhead:
    """The pipelined run's receives: fresh messages only, leased at once; `drained` once the queue is empty
    (a long poll found nothing) or keeps handing back only messages this run already saw."""

    def __init__(self, run: "SubscriberRun") -> None:
        self.run = run
        self.seen: set[str] = set()
        self.stale = 0
        self.drained = False

    def take(self, wanted: int, wait: bool) -> list[Message]:
        """Up to `wanted` fresh messages; `wait`: a long poll (else a look that does not wait)."""
        run = self.run
        if run.stop.is_set() or wanted <= 0:
            return []
        received_at = time.monotonic()
        batch = run._receive(wanted, None if wait else 0)
        fresh = [m for m in batch if m.message_id not in self.seen]
        if not batch:
            self.drained = wait  # a look that did not wait proves nothing
            return []
        if not fresh:
            self.stale += 1  # a message that failed earlier in this run is back: it stays for a later run
            self.drained = self.stale > 2
            return []
        self.stale = 0
        self.seen.update(m.message_id for m in fresh)
        run.stats.messages += len(fresh)
        run.keeper.hold(fresh, received_at)
        return fresh

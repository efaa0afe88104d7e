"""The one delivery engine: one object from S3 to the sink, at least once and, on this host, at most once.

Every source (SQS subscribers, bucket listings, the services to come) names objects and acknowledges
them; this engine does everything between. `ObjectDelivery.deliver(ref)` is the whole life of one object:
  1. already delivered (the checkpoint store, checkpoints.py)?  -> nothing sent, Outcome(skipped)
  2. download (fetch.py: retries, resume, length check; a stop ends it within a second or so)
  3. decode batch by batch (the source's seams.Decoder), skip the events an earlier attempt already
     handed to the sink (positions count events: a decoder is deterministic)
  4. send each batch; after the sink accepted it, save the progress (the checkpoint)
  5. mark delivered (only then may the source acknowledge: delete the message, record the listing row)
Failures come back as an Outcome with their class (outcome.py: missing, denied, throttled, corrupt),
never as an exception, except the two that must end the run: SinkError (the engine does not take
events) and Interrupted (stop asked, during the download or between batches). In both cases the
progress saved so far stands, so the next attempt resumes after the last batch the sink accepted.
This is the unit a pipelined run calls for several objects at once; two calls for the same object
(notified twice) take turns, so the second finds it delivered instead of sending it again beside the first.
"""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, BinaryIO, Iterator, Optional

from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.delivery.checkpoints import NoStore
from aws_s3_wodle.decode.limits import LimitExceeded
from aws_s3_wodle.delivery.fetch import download
from aws_s3_wodle.delivery.outcome import CORRUPT, REFUSED, Interrupted, Outcome, class_of
from aws_s3_wodle.errors import ObjectError
from aws_s3_wodle.observe.stats import RunStats
from aws_s3_wodle.seams import CheckpointStore, Decoder, ObjectId, ObjectRef, SendResult, Sink, as_batch

log = logging.getLogger("aws-s3-wodle")

__all__ = ["Interrupted", "ObjectDelivery"]


class ObjectDelivery:
    """Delivers objects with one decoder to one sink, checkpointing in one store; counts into one RunStats.

    The decoder and the sink are final once built: a run that needs them wrapped (the pipelined run:
    concurrency.py) builds the engine with the wrapped ones. `redeliver` (a bucket block's --reparse)
    sends objects again whatever the store says, from their first event.
    """

    def __init__(self, s3: Any, decoder: Decoder, sink: Sink, stats: RunStats, *,
                 store: Optional[CheckpointStore] = None, stop: Optional[threading.Event] = None,
                 spool_dir: Optional[str] = None, redeliver: bool = False) -> None:
        self.s3, self.decoder, self.sink, self.stats = s3, decoder, sink, stats
        self.counting = threading.Lock()  # deliver() may run in several threads; the counters are shared
        self.store: CheckpointStore = store or NoStore()
        self.stop = stop or threading.Event()
        self.spool_dir = spool_dir
        self.redeliver = redeliver
        self.delivering: set[tuple[str, str]] = set()  # (bucket, key) of the objects being delivered now
        self.turns = threading.Condition()

    def deliver(self, ref: ObjectRef) -> Outcome:
        with self._turn(ref):
            return self._deliver(ref)

    @contextmanager
    def _turn(self, ref: ObjectRef) -> Iterator[None]:
        """One delivery of an object at a time (whatever its version: the store tells them apart after)."""
        key = (ref.bucket, ref.key)
        with self.turns:
            while key in self.delivering:
                self.turns.wait()
            self.delivering.add(key)
        try:
            yield
        finally:
            with self.turns:
                self.delivering.discard(key)
                self.turns.notify_all()

    def _deliver(self, ref: ObjectRef) -> Outcome:
        oid = ObjectId.of(ref)
        if oid and self._delivered(oid):
            return self._skip(ref)
        log.debug("Fetching %s", ref)
        try:
            fetched = download(self.s3, ref, self.spool_dir, stop=self.stop)  # Interrupted when stopped
        except ObjectError as exc:
            return Outcome(False, class_of(exc.kind), exc.reason)
        log.debug("Fetched %s: %d bytes", ref, fetched.size)
        with fetched:
            if oid is None:
                oid = ObjectId.of(ref, fetched.etag, fetched.version_id)
                if oid and self._delivered(oid):
                    return self._skip(ref)
            return self._send(ref, oid, fetched.file)

    def _delivered(self, oid: ObjectId) -> bool:
        return not self.redeliver and self.store.is_delivered(oid)

    def _count(self, **amounts: int) -> None:
        with self.counting:
            for name, n in amounts.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _skip(self, ref: ObjectRef) -> Outcome:
        log.debug("%s was already delivered: acknowledging its notification without sending it again", ref)
        self._count(skipped=1)
        return Outcome(True, skipped=True)

    def _send(self, ref: ObjectRef, oid: Optional[ObjectId], spool: BinaryIO) -> Outcome:
        resume = self.store.resume_point(oid) if oid and not self.redeliver else 0
        if resume:
            log.info("Resuming %s after the %d events already delivered", ref, resume)
            self._count(resumed=1)
        position = discarded = 0  # position: events of the object handled so far
        took = SendResult()  # what the sink took of the object
        batches = None
        try:
            batches = self.decoder(spool, ref)
            for batch in batches:
                if self.stop.is_set():
                    raise Interrupted(f"stopped in the middle of {ref} after {position} events; it resumes there "
                                      "on the next run")
                start, position = position, position + len(batch)
                if resume and position <= resume:
                    continue  # delivered by an earlier attempt
                batch = as_batch(batch)
                discarded += batch.discarded  # dropped by discard_regex
                if start < resume:
                    batch = batch[resume - start:]
                result = SendResult()
                try:
                    result = self.sink.send_batch(batch, str(ref))
                except Interrupted as exc:  # stopped while the engine took nothing: keep what it took of the batch
                    result = exc.partial or result
                    if oid and exc.handled:
                        self.store.save_progress(oid, max(start, resume) + exc.handled)
                    raise
                finally:
                    took.add(result)
                    self._count(in_flight_events=result.sent)  # progress of the objects being delivered (progress.py)
                if oid:
                    self.store.save_progress(oid, position)  # the checkpoint: at most this batch is resent
        except DecodeError as exc:
            cls = REFUSED if isinstance(exc, LimitExceeded) else CORRUPT
            return Outcome(False, cls, f"cannot decode after {position} events: {exc}", events=took.sent)
        finally:
            self._count(in_flight_events=-took.sent, events=took.sent, bytes=took.bytes, oversized=took.oversized,
                        discarded=discarded)
            if took.oversized:
                log.error("%d events of %s are over the engine's datagram limit: not sent, recorded (head, size, "
                          "sha256) in %s", took.oversized, ref, took.recorded_in)
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # before the spool is closed: no decoding thread may still read it
        if position < resume:
            log.warning("%s has %d events, fewer than the %d recorded as delivered: it changed; nothing resent",
                        ref, position, resume)
        if oid:
            self.store.mark_delivered(oid, position)
        self._count(objects=1)
        log.debug("Delivered %d events of %s", took.sent, ref)
        return Outcome(True, events=took.sent)

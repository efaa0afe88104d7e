"""The pipelined run: several objects at once, and each object decoded ahead of its sending.

    main thread        receive -> parse -> submit objects ............ settle messages
    object workers     download -> [ decode + convert (producer thread) ] -> send
                                    `-- at most `depth` batches ahead --'

Threads suffice: downloads wait on the network, Parquet decoding and the Arrow-native
conversion run in C++ with the GIL released, and sending waits in socket calls. Everything is
bounded: at most `objects` objects in flight (each with its spool file and decoder) and each
decoder at most `depth` batches ahead of its sender, so memory is about objects x (depth + 2)
batches whatever the size of the objects. Messages are received `objects` at a time, so none
waits long in our hands while it could have gone to another consumer.

At-least-once holds in any completion order: a message is settled (``SubscriberRun.settle``:
deleted, or disposed of) only when every object it names is done. An error that must end the run
(the sink does not take events, a stop request) aborts the objects in flight at their next
batch; their messages are handed back to the queue at once and, thanks to the per-batch
checkpoints of ``ObjectDelivery``, resume where they stopped.

``ObjectPipeline`` is the generic part (objects in, settled messages out); ``run_pipelined``
adapts it to ``SubscriberRun``.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, List, Optional, Sequence, Tuple, TypeVar

from .errors import WodleError
from .notifications import NotificationError, ObjectRef, parse_body
from .overlap import prefetched
from .stats import RunStats

log = logging.getLogger("aws-s3-wodle")

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_OBJECTS = 2   # objects in flight: one decoding while another downloads or sends, on 2 cores
DEFAULT_DEPTH = 2     # batches a decoder may be ahead of its sender


class _Aborted(WodleError):
    """Another object's failure ends the run: this one stops at its next batch, unsettled."""


def abortable(batches: Iterator[T], abort: threading.Event) -> Iterator[T]:
    for item in batches:
        if abort.is_set():
            raise _Aborted("the run is ending: object abandoned, its message stays queued")
        yield item


# --- several objects: submitted per message, settled per message --------------------------------

@dataclass
class _Message(Generic[R]):
    message: Any
    refs: Sequence[ObjectRef]
    results: List[Optional[R]]
    left: int
    broken: bool = False  # an object of it was abandoned: never settled (it comes back)


class ObjectPipeline(Generic[R]):
    """Delivers objects ``objects`` at a time; settles a message when all its objects are done.

    ``deliver(ref)`` runs in a worker thread and returns a result (delivered or failed, the
    caller's type); an exception from it is fatal: the run ends, the other objects are aborted
    through ``abort`` (which ``deliver`` must watch), and it is raised again by ``finish``.
    ``settle(message, [(ref, result), ...])`` runs in the submitting thread.
    """

    def __init__(self, objects: int, deliver: Callable[[ObjectRef], R],
                 settle: Callable[[Any, List[Tuple[ObjectRef, R]]], bool]) -> None:
        self.objects = max(1, objects)
        self.deliver, self.settle = deliver, settle
        self.abort = threading.Event()
        self.fatal: Optional[BaseException] = None
        self.failed = False  # some message could not be settled as delivered
        self._pool = cf.ThreadPoolExecutor(max_workers=self.objects, thread_name_prefix="aws-s3-wodle-object")
        self._in_flight: dict = {}
        self._open: dict = {}  # id(entry) -> entry, for the messages submitted and not settled

    def submit(self, message: Any, refs: Sequence[ObjectRef]) -> None:
        """Start the objects of ``message``; blocks while ``objects`` are in flight."""
        entry: _Message[R] = _Message(message, list(refs), [None] * len(refs), len(refs))
        self._open[id(entry)] = entry
        if not refs:
            self._settle(entry)
            return
        for i, ref in enumerate(refs):
            while len(self._in_flight) >= self.objects and self.fatal is None:
                self.reap(wait=True)
            if self.fatal is not None:
                entry.broken = True
                return
            self._in_flight[self._pool.submit(self.deliver, ref)] = (entry, i)
        self.reap(wait=False)

    def wait_for_room(self) -> None:
        """Block until another object can start (settling what completes): receive only then."""
        while len(self._in_flight) >= self.objects and self.fatal is None:
            self.reap(wait=True)

    def reap(self, wait: bool = False) -> None:
        """Take in the objects that are done (waiting for one if ``wait``); settle complete messages."""
        if not self._in_flight:
            return
        if wait:
            done, _ = cf.wait(list(self._in_flight), return_when=cf.FIRST_COMPLETED)
        else:
            done = [f for f in self._in_flight if f.done()]
        for future in done:
            entry, i = self._in_flight.pop(future)
            exc = future.exception()
            if exc is not None:
                entry.broken = True
                if self.fatal is None and not isinstance(exc, _Aborted):
                    self.fatal = exc
                    self.abort.set()
                continue
            entry.results[i] = future.result()
            entry.left -= 1
            if entry.left == 0 and not entry.broken:
                self._settle(entry)

    def _settle(self, entry: _Message[R]) -> None:
        self._open.pop(id(entry), None)
        if not self.settle(entry.message, list(zip(entry.refs, entry.results))):  # type: ignore[arg-type]
            self.failed = True

    def unsettled(self) -> List[Any]:
        """The messages submitted and not settled (an object abandoned, or still in flight)."""
        return [entry.message for entry in self._open.values()]

    def finish(self) -> None:
        """Wait for every object in flight and settle; raise the error that ended the run, if any."""
        try:
            while self._in_flight:
                self.reap(wait=True)
        finally:
            self._pool.shutdown(wait=True)
        if self.fatal is not None:
            raise self.fatal

    def close(self) -> None:
        """End early (an exception in the submitting thread): abort what is in flight and wait for it."""
        self.abort.set()
        for future in list(self._in_flight):
            future.cancel()
        self._pool.shutdown(wait=True)
        self._in_flight.clear()


# --- the adapter for SubscriberRun ----------------------------------------------------------------

def run_pipelined(run: Any, objects: int = DEFAULT_OBJECTS, depth: int = DEFAULT_DEPTH) -> RunStats:
    """``run`` (a SubscriberRun) with its objects pipelined: its own seams, several objects at once.

    The same lifecycle as ``SubscriberRun.run``: the delivery store and the visibility keeper are
    opened first; messages are received ``objects`` at a time and held (kept invisible) until
    settled; each object goes through one shared ``ObjectDelivery`` (thread-safe, with its per-batch
    checkpoints) whose decoder runs ahead (``prefetched``) and stops when the run is aborted; every
    message is settled by ``run.settle`` once all its objects are done. Messages not settled when
    the run ends (aborted, never started) are handed back to the queue at once.
    """
    from .delivered import open_store
    from .delivery import ObjectDelivery
    from .dispositions import UNPARSEABLE, Outcome
    from .visibility import LeaseKeeper

    options = run.options
    run.store = open_store(Path(options.state_dir) if options.state_dir else None)
    if run.queue.visibility_timeout is None:  # the keeper must know when a message would reappear
        run.queue.visibility_timeout = options.visibility_timeout or 120
    run.keeper = LeaseKeeper(run.queue, run.queue.visibility_timeout, options.visibility_limit).start()
    run.queue.max_messages = max(run.queue.max_messages, min(10, objects))  # what the run can start now
    pipeline: ObjectPipeline = ObjectPipeline(objects, lambda ref: delivery.deliver(ref), run.settle)
    decoder = run.decoder
    delivery = ObjectDelivery(run.s3, lambda spool, ref: abortable(prefetched(decoder(spool, ref), depth),
                                                                  pipeline.abort),
                              run.sink, run.stats, store=run.store, stop=run.stop, spool_dir=options.spool_dir)
    waiting: List[Any] = []
    try:
        for batch in run._receive_batches():
            waiting = list(batch)
            while waiting:
                message = waiting.pop(0)
                pipeline.reap()
                try:
                    note = parse_body(message.body)
                except NotificationError as exc:
                    if not run.settle(message, [(None, Outcome(False, UNPARSEABLE,
                                                               f"not a notification we understand: {exc}"))]):
                        pipeline.failed = True
                    continue
                if note.is_noise:
                    log.debug("Deleting test notification %s", message.message_id)
                    run.settle(message, [])
                    continue
                pipeline.submit(message, note.objects)
                if pipeline.fatal is not None or run.stop.is_set() or (pipeline.failed and not options.skip_on_error):
                    break
            if pipeline.fatal is not None:
                break
            if pipeline.failed and not options.skip_on_error:
                log.error("Ending the run at the first failure (skip_on_error is 'no')")
                break
            if run.stop.is_set():
                log.info("Stop requested: ending the run of %s", run.label)
                break
            pipeline.wait_for_room()  # no message received before the run can start it
            if pipeline.fatal is not None:
                break
        pipeline.finish()
    except BaseException:
        pipeline.close()
        raise
    finally:
        unfinished = pipeline.unsettled() + waiting
        run.stats.released += run.keeper.release(unfinished)
        if unfinished:
            log.info("Handed %d unfinished SQS message(s) back to queue '%s' at once", len(unfinished), run.queue.name)
        run.keeper.stop()
        run.store.close()
        run.stats.finish()
    return run.stats

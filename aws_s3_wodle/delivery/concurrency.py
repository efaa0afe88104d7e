"""The pipelined run: several objects at once, and each object decoded ahead of its sending.

    main thread        receive -> parse -> submit objects ............ settle messages
    object threads     download -> [ decode + convert (producer thread) ] -> send (one batch at a time)
                                    `-- at most `depth` batches ahead --'

Threads suffice: downloads wait on the network, Parquet decoding and the Arrow-native
conversion run in C++ with the GIL released, and sending waits in socket calls. Everything is
bounded: at most `objects` objects in flight, and only as many as fit a byte budget (`admits`: each
counted at its size up to SMALL, the in-memory limit of fetch.py; larger ones are spooled to disk),
one of them decoding at a time (the conversion pool gives it the cores) and each decoder at most
`depth` batches ahead of its sender, so memory is one decoder plus the small objects' bytes plus
about objects x (depth + 2) batches whatever the size of the objects. How far the receives run ahead
of the free slots is the subscriber's choice (subscriber.py: RECEIVE_AHEAD), from `finished_within`.

At-least-once holds in any completion order: a message is settled (deleted) only when every
object it names was accepted by the sink. The run halts (no new object starts) on an error that
must end it (the sink gave up, a stop request) and, with skip_on_error 'no', at the first failed
object. On an error, the objects in flight are aborted at their next batch and their messages
are not deleted: they come back, and resume at their checkpoints. On a stop or a failure, what is
in flight finishes. A message whose objects were not all started is never deleted. Counters are
kept per object and added up by one lock.

The object threads are daemon threads: a second signal (KeyboardInterrupt in the main thread)
ends the process at once, as in the serial loop, even while an object waits on a stuck engine.

``ObjectPipeline`` is the generic part (objects in, settled messages out); ``SubscriberRun`` feeds it
(``subscriber.py``), with ``ObjectDelivery.deliver`` as the per-object step and its own ``settle``.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, List, Optional, Sequence, Tuple, TypeVar

from aws_s3_wodle.delivery.fetch import IN_MEMORY
from aws_s3_wodle.platform.threads import ThreadCache
from aws_s3_wodle.errors import WodleError
from aws_s3_wodle.seams import ObjectRef

log = logging.getLogger("aws-s3-wodle")

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_OBJECTS = 2   # objects in flight: one decoding while another downloads or sends, on 2 cores
SMALL = IN_MEMORY     # an object up to this size is held in memory (fetch.py); larger ones are spooled to disk
BUDGET = 128 << 20    # bytes of objects in flight (each counted at most SMALL: larger ones are on disk)
DEFAULT_DEPTH = 2     # batches a decoder may be ahead of its sender
OBJECTS = ThreadCache("aws-s3-wodle-object")  # the objects' threads, kept for the next objects


class _Aborted(WodleError):
    """Another object's failure ends the run: this one stops at its next batch, unsettled."""


def one_at_a_time(batches: Iterator[T], gate: threading.Semaphore, abort: threading.Event) -> Iterator[T]:
    """``batches`` once ``gate`` is ours, held until they end: the objects in flight decode one after another.

    Runs in an object's read-ahead thread (``overlap.prefetched``). One decoder at a time keeps memory at
    one object's however many are in flight, while the others download or send their last batches; the
    conversion pool gives the decoding object every core. A run that is ending stops waiting at once.
    """
    while not gate.acquire(timeout=0.1):
        if abort.is_set():
            raise _Aborted("the run is ending: object abandoned before it was decoded, its message stays queued")
    try:
        yield from batches  # closing this closes them
    finally:
        gate.release()


def abortable(batches: Iterator[T], abort: threading.Event) -> Iterator[T]:
    try:
        for item in batches:
            if abort.is_set():
                raise _Aborted("the run is ending: object abandoned, its message stays queued")
            yield item
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # the read-ahead thread stops now, not when the garbage collector finds it


def pipelined_decoder(decoder: Any, abort: threading.Event, depth: int = DEFAULT_DEPTH) -> Any:
    """`decoder` for a run with several objects in flight: each object decoded in its own read-ahead thread,
    at most `depth` batches ahead of its sender, one object decoding at a time, all of them stopping at
    `abort`. Built once, before the engine: the engine's decoder never changes after construction."""
    from aws_s3_wodle.platform.threads import prefetched
    gate = threading.Semaphore(1)

    def decode(spool: Any, ref: ObjectRef) -> Iterator[Any]:
        return abortable(prefetched(one_at_a_time(decoder(spool, ref), gate, abort), depth), abort)
    return decode


class OneBatchAtATime:
    """The sink, shared by the objects in flight: one batch at a time, and none once the run is aborted.

    A sink that cannot deliver keeps trying for its own window (the engine's socket gone for up to
    --engine-retry, or busy) before it gives up. Without this, an object that waited for the sink
    meanwhile would start a window of its own when the first gave up, so the run would end only
    after one window per object in flight.
    """

    def __init__(self, sink: Any, abort: threading.Event) -> None:
        self.sink, self.abort = sink, abort
        self.lock = threading.Lock()

    def send_batch(self, events: Any, origin: str) -> Any:
        with self.lock:
            if self.abort.is_set():
                raise _Aborted("the run is ending: object abandoned, its message stays queued")
            try:
                return self.sink.send_batch(events, origin)
            except BaseException:
                self.abort.set()  # before another object can take the lock
                raise

    def close(self) -> None:
        self.sink.close()


# --- several objects: submitted per message, settled per message --------------------------------

@dataclass
class _Message(Generic[R]):
    message: Any
    refs: Sequence[ObjectRef]
    results: List[Optional[R]]
    left: int
    broken: bool = False  # an object of it was abandoned, or the run halted before all started: never settled
    cut: bool = False     # the run halted at a failure before all its objects started


class ObjectPipeline(Generic[R]):
    """Delivers objects ``objects`` at a time; settles a message when all its objects are done.

    ``deliver(ref)`` runs in an object thread and returns a result (delivered or failed, the
    caller's type; ``failed(result)`` tells which); an exception from it is fatal: the run ends,
    the other objects are aborted through ``abort`` (which ``deliver`` must watch), and it is
    raised again by ``finish``. ``settle(message, [(ref, result), ...])`` runs in the submitting
    thread. No object starts once ``stop`` is set, nor, with ``halt_on_failure``, once one failed.
    """

    def __init__(self, objects: int, deliver: Callable[[ObjectRef], R],
                 settle: Callable[[Any, List[Tuple[ObjectRef, R]]], bool], *,
                 stop: Optional[threading.Event] = None, failed: Optional[Callable[[R], bool]] = None,
                 halt_on_failure: bool = False, abort: Optional[threading.Event] = None,
                 budget: int = BUDGET) -> None:
        self.objects = max(1, objects)
        self.budget = budget  # admission: bytes of the objects in flight (`cost`); one object always fits
        self.held = 0
        self.deliver, self.settle = deliver, settle
        self.stop = stop or threading.Event()
        self.is_failure: Callable[[R], bool] = failed or (lambda result: False)
        self.halt_on_failure = halt_on_failure
        self.abort = abort or threading.Event()  # shared with the engine's wrappers (pipelined_decoder, OneBatchAtATime)
        self.fatal: Optional[BaseException] = None
        self.failed = False         # some message could not be settled as delivered
        self.gave_up = False        # halt_on_failure, and an object failed (or the caller said so: give_up)
        self._in_flight: dict = {}
        self._completed: deque = deque(maxlen=64)  # monotonic times objects ended: the recent pace (`finished_within`)

    @property
    def halted(self) -> bool:
        """No new object may start: an error ends the run, a stop was asked, or it gave up at a failure."""
        return self.fatal is not None or self.abort.is_set() or self.stop.is_set() or self.gave_up

    def give_up(self) -> None:
        """Start no new object (the caller met a failure of its own, e.g. a message that is no notification)."""
        self.gave_up = True

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def finished_within(self, seconds: float) -> int:
        """Objects that ended in the last `seconds`: how fast slots free up (the receive-ahead's measure)."""
        since = time.monotonic() - seconds
        return sum(1 for at in self._completed if at >= since)

    def room(self) -> int:
        """Objects that could start now (by count; the byte budget is checked per object in `admits`)."""
        return 0 if self.halted else max(0, self.objects - len(self._in_flight))

    @staticmethod
    def cost(ref: ObjectRef) -> int:
        """What an object in flight holds: its bytes when held in memory; SMALL when its size is unknown or it
        is spooled to disk (its decoder's memory is one object's at a time: `one_at_a_time`)."""
        size = getattr(ref, "size", None)
        return SMALL if size is None or size < 0 else min(int(size), SMALL)

    def admits(self, ref: ObjectRef) -> bool:
        """Whether ``ref`` may start now: a free slot, and its cost within the byte budget (or nothing in flight)."""
        if len(self._in_flight) >= self.objects:
            return False
        return not self._in_flight or self.held + self.cost(ref) <= self.budget

    def submit(self, message: Any, refs: Sequence[ObjectRef]) -> None:
        """Start the objects of ``message``; blocks while ``objects`` are in flight.

        When the run halts before all of them started, the others never start; the message is then
        never settled (it goes back to the queue), unless the run gave up at a failure and one of its
        own objects failed: then it is settled with those it started, as the serial loop does.
        """
        entry: _Message[R] = _Message(message, list(refs), [None] * len(refs), len(refs))
        if not refs:
            self._complete(entry)
            return
        for i, ref in enumerate(refs):
            while not self.admits(ref) and not self.halted:
                self.reap(wait=True)
            if self.halted:
                self._cut(entry, i)
                return
            self.held += self.cost(ref)
            self._in_flight[self._start(ref)] = (entry, i)
        self.reap(wait=False)

    def _start(self, ref: ObjectRef) -> cf.Future:
        """``deliver(ref)`` in a daemon thread (at most ``objects`` at once), reused across objects (OBJECTS)."""
        future: cf.Future = cf.Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(self.deliver(ref))
            except BaseException as exc:  # noqa: BLE001 - handed to the submitting thread
                future.set_exception(exc)

        OBJECTS.run(work)
        return future

    def _cut(self, entry: _Message[R], started: int) -> None:
        if not self.gave_up or self.fatal is not None or self.abort.is_set() or self.stop.is_set():
            entry.broken = True  # an error or a stop: handed back whole
            return
        entry.left -= len(entry.refs) - started
        entry.refs, entry.results = entry.refs[:started], entry.results[:started]
        entry.cut = True
        if entry.left == 0:
            self._complete(entry)

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
            self._completed.append(time.monotonic())
            self.held -= self.cost(entry.refs[i])
            exc = future.exception()
            if exc is not None:
                entry.broken = True
                if self.fatal is None and not isinstance(exc, _Aborted):
                    self.fatal = exc
                    self.abort.set()
                continue
            result = future.result()
            entry.results[i] = result
            entry.left -= 1
            if self.halt_on_failure and self.is_failure(result):
                self.gave_up = True
            if entry.left == 0:
                self._complete(entry)

    def _complete(self, entry: _Message[R]) -> None:
        if entry.broken:
            return
        if entry.cut and not any(self.is_failure(r) for r in entry.results):  # type: ignore[arg-type]
            return  # not all its objects were tried: never deleted
        if not self.settle(entry.message, list(zip(entry.refs, entry.results))):  # type: ignore[arg-type]
            self.failed = True

    def finish(self) -> None:
        """Wait for every object in flight and settle; raise the error that ended the run, if any."""
        while self._in_flight:
            self.reap(wait=True)
        if self.fatal is not None:
            raise self.fatal

    def close(self, wait: bool = True) -> None:
        """End early (an exception in the submitting thread): abort what is in flight and, with ``wait``,
        wait until it stopped (at its next batch). Without, the daemon threads are left to the process's end."""
        self.abort.set()
        if wait and self._in_flight:
            cf.wait(list(self._in_flight))
        self._in_flight.clear()
        self.held = 0

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

At-least-once holds in any completion order: a message is settled (deleted) only when every
object it names was accepted by the sink. An error that must end the run (the sink does not take
events, a stop request) aborts the objects in flight at their next batch; their messages are
not deleted and come back. Counters are kept per object and added up by one lock.

``ObjectPipeline`` is the generic part (objects in, settled messages out); ``SubscriberRun`` feeds it
(``subscriber.py``), with ``ObjectDelivery.deliver`` as the per-object step and its own ``settle``.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, List, Optional, Sequence, Tuple, TypeVar

from .errors import WodleError
from .notifications import ObjectRef

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

    def submit(self, message: Any, refs: Sequence[ObjectRef]) -> None:
        """Start the objects of ``message``; blocks while ``objects`` are in flight."""
        entry: _Message[R] = _Message(message, list(refs), [None] * len(refs), len(refs))
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
        if not self.settle(entry.message, list(zip(entry.refs, entry.results))):  # type: ignore[arg-type]
            self.failed = True

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

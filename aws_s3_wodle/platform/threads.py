"""Overlapping stages with threads, always bounded: the building blocks of the pipelined run.

Threads are enough here because the heavy work releases the GIL: Parquet decoding and the
Arrow-native JSON conversion run in C++, downloads and socket sends wait in system calls.

- ``prefetched(items, depth)``: a producer thread runs ``items`` at most ``depth`` ahead of
  the consumer (an object is decoded while its previous batch is being sent).
- ``ThreadCache``: daemon threads kept for reuse, so a run of many small objects does not start
  three threads per object (its worker, its read-ahead, its download's stop watcher).
- ``ordered_map(fn, items, workers)``: ``fn`` over ``items`` in ``workers`` threads at once,
  results in order, at most ``workers`` items ahead (batches of one object converted in
  parallel on a multi-core host).

Both hand a producer's exception to the consumer in its place in the sequence, and both stop
and wait for their threads when the consumer stops early, so nothing touches a source after
its owner closed it.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import threading
from collections import deque
from typing import Callable, Iterable, Iterator, TypeVar

__all__ = ["ThreadCache", "prefetched", "ordered_map"]

log = logging.getLogger("aws-s3-wodle")

T = TypeVar("T")
R = TypeVar("R")


class _End:
    pass


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ThreadCache:
    """Daemon threads kept for reuse: ``run(task)`` hands ``task`` to an idle thread, or starts one if none is.

    Starting a thread costs more than its creation: ``start()`` waits until the new thread holds the GIL,
    up to the switch interval (5 ms) while other threads compute. A cache never makes a task wait for a
    free thread (it starts one instead), so tasks may wait on each other (an object on its read-ahead)
    without a deadlock; a thread idle for ``idle_seconds`` ends. Daemon threads, as before: a second
    signal still ends the process at once, whatever a task waits on.
    """

    def __init__(self, name: str, idle_seconds: float = 30.0) -> None:
        self.name, self.idle_seconds = name, idle_seconds
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a task (a `run` that counts one down puts its task under the lock)
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.started = 0  # threads ever started (tests, the bench)
        self.running = 0  # tasks handed over and not yet returned

    def run(self, task: Callable[[], None]) -> None:
        """Run ``task`` (which handles its own errors) in one of the cache's threads, now."""
        with self._lock:
            self.running += 1  # from now: a task handed over counts until it returned
            if self._idle:
                self._idle -= 1
                self._tasks.put(task)
                return
            self.started += 1
        threading.Thread(target=self._work, args=(task,), name=self.name, daemon=True).start()

    def _work(self, task: Callable[[], None]) -> None:
        while True:
            try:
                task()
            except BaseException:  # noqa: BLE001 - a task reports its own errors; one that escapes is a bug: say so
                log.error("A task of %s failed; its thread goes on", self.name, exc_info=True)
            del task  # nothing of the last task stays alive while the thread waits
            with self._lock:
                self.running -= 1
                self._idle += 1
            try:
                task = self._tasks.get(timeout=self.idle_seconds)
            except queue.Empty:
                with self._lock:
                    try:  # a `run` may have counted this thread down just as it timed out: its task is queued
                        task = self._tasks.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return


READ_AHEAD = ThreadCache("aws-s3-wodle-read-ahead")


def prefetched(items: Iterator[T], depth: int = 2, threads: ThreadCache = READ_AHEAD) -> Iterator[T]:
    """``items``, produced by a thread (of ``threads``) at most ``depth`` items ahead of the consumer."""
    if depth < 1:
        yield from items
        return
    box: queue.Queue = queue.Queue(maxsize=depth)
    quit_ = threading.Event()
    finished = threading.Event()  # the producer is done with `items` (closed them)

    def produce() -> None:
        try:
            for item in items:
                while not quit_.is_set():
                    try:
                        box.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if quit_.is_set():
                    return
            box.put(_End())
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            box.put(_Failed(exc))
        finally:
            try:
                close = getattr(items, "close", None)
                if close is not None:
                    close()  # a generator is closed by the thread that ran it
            except Exception as exc:  # noqa: BLE001 - its items were handed over; say it, keep the thread quiet
                log.warning("Closing a source read ahead failed: %s", exc)
            finally:
                finished.set()

    threads.run(produce)
    try:
        while True:
            item = box.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        quit_.set()
        while not finished.is_set():  # unblock a producer waiting for room; then it has closed `items`
            try:
                box.get(timeout=0.05)
            except queue.Empty:
                pass


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 1) -> Iterator[R]:
    """``map(fn, items)`` with up to ``workers`` calls at once; results in the order of ``items``.

    The calls run in one thread pool shared by every caller (``workers`` threads at least), so
    several objects converting at once share the cores instead of each taking as many threads.
    """
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    pool = _shared_pool(workers)
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        for future in pending:  # started ones finish before the caller closes their source
            if not future.cancelled():
                try:
                    future.result()
                except BaseException:  # noqa: BLE001 - the consumer has gone; nothing to report to
                    pass


_pool: "cf.ThreadPoolExecutor | None" = None
_pool_size = 0
_pool_lock = threading.Lock()


def _shared_pool(workers: int) -> cf.ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aws-s3-wodle-convert")
            _pool_size = workers
        return _pool

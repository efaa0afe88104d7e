"""Overlapping stages with threads, always bounded: the building blocks of the pipelined run.

Threads are enough here because the heavy work releases the GIL: Parquet decoding and the
Arrow-native JSON conversion run in C++, downloads and socket sends wait in system calls.

- ``prefetched(items, depth)``: a producer thread runs ``items`` at most ``depth`` ahead of
  the consumer (an object is decoded while its previous batch is being sent).
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

__all__ = ["prefetched", "ordered_map"]

log = logging.getLogger("aws-s3-wodle")

T = TypeVar("T")
R = TypeVar("R")


class _End:
    pass


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetched(items: Iterator[T], depth: int = 2, name: str = "aws-s3-wodle-read-ahead") -> Iterator[T]:
    """``items``, produced by a thread of its own at most ``depth`` items ahead of the consumer."""
    if depth < 1:
        yield from items
        return
    box: queue.Queue = queue.Queue(maxsize=depth)
    quit_ = threading.Event()

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

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
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
        while producer.is_alive():  # unblock a producer waiting for room
            try:
                box.get(timeout=0.05)
            except queue.Empty:
                pass
        producer.join()


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

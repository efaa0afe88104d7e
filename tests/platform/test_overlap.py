"""Bounded overlap of stages: read-ahead (prefetched) and ordered parallel map (ordered_map)."""
from __future__ import annotations

import threading
import time

import pyarrow as pa
import pytest

from aws_s3_wodle.platform.threads import ThreadCache, ordered_map, prefetched
from aws_s3_wodle.decode.textbatch import TextBatch

from ..helpers import Concurrency


def _threads(prefix: str) -> int:
    return sum(t.name.startswith(prefix) and t.is_alive() for t in threading.enumerate())


def _settled(cache: ThreadCache, timeout: float = 2.0) -> bool:
    """Whether every task of `cache` has returned (its threads idle), waiting up to `timeout`."""
    deadline = time.monotonic() + timeout
    while cache.running and time.monotonic() < deadline:
        time.sleep(0.01)
    return cache.running == 0


def test_prefetched_keeps_order_and_runs_ahead_by_at_most_depth():
    produced = []

    def source():
        for i in range(20):
            produced.append(i)
            yield i

    got = []
    for item in prefetched(source(), depth=3):
        time.sleep(0.01)  # a slow consumer: the producer fills the read-ahead and waits
        assert len(produced) - len(got) <= 3 + 2  # queued, plus the one in hand and the one being put
        got.append(item)
    assert got == list(range(20))


def test_prefetched_raises_the_producer_error_in_its_place():
    def source():
        yield 1
        yield 2
        raise ValueError("bad page")

    got = []
    with pytest.raises(ValueError, match="bad page"):
        for item in prefetched(source(), depth=2):
            got.append(item)
    assert got == [1, 2]


def test_prefetched_stopped_early_stops_and_closes_the_producer():
    closed = threading.Event()

    def source():
        try:
            for i in range(1000):
                yield i
        finally:
            closed.set()

    cache = ThreadCache("test-read-ahead")
    gen = prefetched(source(), depth=2, threads=cache)
    assert next(gen) == 0
    gen.close()  # the consumer gives up (an error while sending, a stop)
    assert closed.is_set()  # the source was closed, by its own thread, before close() returned
    assert _settled(cache)  # the producer returned: its thread waits for the next object's read-ahead


GATED = ThreadCache("test-gated")


def _gated(items, gate, abort=None):
    from aws_s3_wodle.delivery.concurrency import one_at_a_time
    return prefetched(one_at_a_time(items, gate, abort or threading.Event()), depth=2, threads=GATED)


def test_read_aheads_sharing_a_gate_take_turns():
    """One object decodes at a time: the second source starts only when the first is exhausted."""
    gate = threading.Semaphore(1)
    started = threading.Event()

    def second_source():
        started.set()
        yield from range(100, 103)

    first = _gated(iter(range(5)), gate)
    assert next(first) == 0  # the first read-ahead holds the gate
    second = _gated(second_source(), gate)
    results: list = []
    waiting = threading.Thread(target=lambda: results.extend(second))
    waiting.start()
    time.sleep(0.4)
    assert not started.is_set() and results == []  # waits for the gate, its source untouched
    assert list(first) == [1, 2, 3, 4]
    waiting.join(5)
    assert started.is_set() and results == [100, 101, 102]
    assert gate.acquire(blocking=False)  # both released it
    assert _settled(GATED)


def test_a_read_ahead_waiting_for_the_gate_gives_up_when_the_run_aborts():
    from aws_s3_wodle.delivery.concurrency import _Aborted
    gate, abort = threading.Semaphore(1), threading.Event()
    gate.acquire()  # another object is decoding
    waiting = _gated(iter(range(3)), gate, abort)
    threading.Timer(0.3, abort.set).start()
    started = time.monotonic()
    with pytest.raises(_Aborted, match="before it was decoded"):
        next(waiting)
    assert time.monotonic() - started < 2  # not after the other object's decoding
    assert _settled(GATED)


def test_a_gate_is_released_even_when_closing_the_source_fails(caplog):
    gate = threading.Semaphore(1)

    def source():
        try:
            yield from range(3)
        finally:
            raise OSError("closing the file failed")

    gen = _gated(source(), gate)
    assert next(gen) == 0
    gen.close()  # the consumer stops; the read-ahead closes the source, which raises
    assert gate.acquire(timeout=1)  # not left held: later objects can decode
    assert _settled(GATED)
    assert "Closing a source read ahead failed: closing the file failed" in caplog.text


def test_a_thread_cache_reuses_its_threads():
    cache = ThreadCache("test-reuse")
    done = []
    for i in range(50):
        finished = threading.Event()
        cache.run(lambda i=i, finished=finished: (done.append(i), finished.set()))
        assert finished.wait(2)
        assert _settled(cache)
    assert done == list(range(50))
    assert cache.started == 1  # one thread ran the 50 tasks one after another


def test_a_thread_cache_never_makes_a_task_wait_for_a_free_thread():
    """A task waiting on a later task (an object on its read-ahead) gets it run: a new thread if none is idle."""
    cache = ThreadCache("test-nested")
    inner_ran = threading.Event()
    outer_done = threading.Event()

    def outer():
        cache.run(inner_ran.set)  # the only thread is busy with `outer`: another one is started
        if inner_ran.wait(2):
            outer_done.set()

    cache.run(outer)
    assert outer_done.wait(3)
    assert cache.started == 2


def test_idle_threads_of_a_cache_end_and_late_tasks_still_run():
    cache = ThreadCache("test-idle", idle_seconds=0.01)  # threads time out all the time, racing the next run
    ran = []
    lock = threading.Lock()
    for i in range(300):
        def task(i=i):
            with lock:
                ran.append(i)
        cache.run(task)
        if i % 7 == 0:
            time.sleep(0.012)  # let idle threads time out now and then
    deadline = time.monotonic() + 3
    while len(ran) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(ran) == list(range(300))  # no task lost between a thread's timeout and a run()
    deadline = time.monotonic() + 5
    while _threads("test-idle") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _threads("test-idle") == 0  # and idle threads end


def test_a_thread_cache_run_from_many_threads_at_once_runs_every_task_once():
    cache = ThreadCache("test-many", idle_seconds=0.005)
    ran, lock = [], threading.Lock()

    def submitter(base: int) -> None:
        for i in range(500):
            def task(n=base + i):
                with lock:
                    ran.append(n)
            cache.run(task)

    submitters = [threading.Thread(target=submitter, args=(k * 1000,)) for k in range(8)]
    for t in submitters:
        t.start()
    for t in submitters:
        t.join()
    assert _settled(cache, timeout=10)  # `running` counts a task from its hand-over to its return
    assert sorted(ran) == sorted(k * 1000 + i for k in range(8) for i in range(500))


def test_a_task_that_raises_is_logged_and_the_cache_goes_on(caplog):
    cache = ThreadCache("test-raises")
    cache.run(lambda: 1 / 0)
    done = threading.Event()
    cache.run(done.set)
    assert done.wait(2) and _settled(cache)
    assert "A task of test-raises failed" in caplog.text and "ZeroDivisionError" in caplog.text


def test_prefetched_depth_zero_is_plain_iteration():
    assert list(prefetched(iter(range(5)), depth=0)) == list(range(5))


def test_ordered_map_runs_calls_at_once_and_keeps_order():
    calls = Concurrency()

    def slow(i):
        with calls:
            time.sleep(0.02 if i % 2 else 0.005)  # finish out of order
        return i * 10

    assert list(ordered_map(slow, range(12), workers=3)) == [i * 10 for i in range(12)]
    assert 2 <= calls.peak <= 3


def test_ordered_map_error_comes_in_order_and_single_worker_is_plain_map():
    def fn(i):
        if i == 3:
            raise KeyError(i)
        return i

    got = []
    with pytest.raises(KeyError):
        for x in ordered_map(fn, range(6), workers=2):
            got.append(x)
    assert got == [0, 1, 2]
    assert list(ordered_map(str, range(3), workers=1)) == ["0", "1", "2"]


def test_text_batch_is_a_sequence_of_bytes():
    text = pa.array(['{"a":1}', '{"b":"é"}', "{}"])
    batch = TextBatch(text)
    assert len(batch) == 3 and list(batch) == [b'{"a":1}', '{"b":"é"}'.encode(), b"{}"]
    assert batch[1] == '{"b":"é"}'.encode() and batch[-1] == b"{}"
    assert batch[1:] == [batch[1], batch[2]] and isinstance(batch[1:], TextBatch)
    assert batch.nbytes == sum(len(e) for e in batch)
    sliced = TextBatch(text.slice(1, 1))
    assert list(sliced) == ['{"b":"é"}'.encode()] and sliced.nbytes == len('{"b":"é"}'.encode())
    assert list(TextBatch(pa.array([], pa.string()))) == [] and len(TextBatch(pa.array([], pa.string()))) == 0
    with pytest.raises(IndexError):
        batch[3]
    with pytest.raises(ValueError):
        TextBatch(pa.array(["x", None]))

"""The delivery engine alone: a fake S3 and a fake sink around the real checkpoint store, no AWS."""
from __future__ import annotations

import io
import threading
import time
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.delivery.checkpoints import DeliveryStore, Forgiving
from aws_s3_wodle.delivery.engine import Interrupted, ObjectDelivery
from aws_s3_wodle.delivery.outcome import CORRUPT, MISSING
from aws_s3_wodle.errors import SinkError, StateError
from aws_s3_wodle.observe.stats import RunStats
from aws_s3_wodle.seams import EventBatch, ObjectId, ObjectRef, SendResult


class _Body:
    def __init__(self, data: bytes) -> None:
        self.stream = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self.stream.read(n)

    def close(self) -> None:
        pass


class FakeS3:
    """get_object over a dict of key -> bytes; a key not there is NoSuchKey, as S3 answers."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects, self.gets = objects, 0

    def get_object(self, Bucket: str, Key: str, **kw: Any) -> dict:  # noqa: N803 - boto3's names
        self.gets += 1
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "The specified key does not exist."},
                               "ResponseMetadata": {"HTTPStatusCode": 404}}, "GetObject")
        data = self.objects[Key]
        return {"Body": _Body(data), "ContentLength": len(data), "ETag": f'"etag-{Key}"'}


def lines(spool, ref: ObjectRef) -> Iterator[EventBatch]:
    """One event per line, two per batch; a line `BAD` is a corrupt tail."""
    batch = EventBatch()
    for line in spool.read().splitlines():
        if line == b"BAD":
            raise DecodeError("a corrupt line")
        batch.append(line)
        if len(batch) == 2:
            yield batch
            batch = EventBatch()
    if batch:
        yield batch


class FakeSink:
    """Takes batches; gives up (SinkError) at batch number `fail_at`; calls `after` after each batch."""

    def __init__(self, fail_at: int = 0, after=None) -> None:
        self.events: list[bytes] = []
        self.batches, self.fail_at, self.after = 0, fail_at, after

    def send_batch(self, events, origin: str) -> SendResult:
        self.batches += 1
        if self.batches == self.fail_at:
            raise SinkError("the engine is gone")
        self.events.extend(events)
        if self.after:
            self.after()
        return SendResult(sent=len(events), bytes=sum(map(len, events)))

    def close(self) -> None:
        pass


OBJ = b"\n".join(b"e%d" % i for i in range(7))  # 7 events: batches of 2, 2, 2, 1
REF = ObjectRef("b", "k", etag='"etag-k"')


def _engine(tmp_path, s3, sink, **kw) -> tuple[ObjectDelivery, DeliveryStore]:
    store = DeliveryStore(tmp_path / "state.db")
    return ObjectDelivery(s3, lines, sink, RunStats("t"), store=store, **kw), store


def test_delivers_every_event_then_skips_the_object_it_delivered(tmp_path):
    s3, sink = FakeS3({"k": OBJ}), FakeSink()
    engine, store = _engine(tmp_path, s3, sink)
    outcome = engine.deliver(REF)
    assert outcome.delivered and outcome.events == 7 and sink.events == OBJ.split(b"\n")
    assert store.is_delivered(ObjectId("b", "k", "etag-k"))
    again = engine.deliver(REF)
    assert again.delivered and again.skipped and len(sink.events) == 7 and s3.gets == 1  # not even downloaded
    assert engine.stats.objects == 1 and engine.stats.skipped == 1 and engine.stats.events == 7


def test_a_sink_failure_keeps_the_progress_and_the_next_attempt_resumes_after_it(tmp_path):
    s3 = FakeS3({"k": OBJ})
    first = FakeSink(fail_at=3)  # takes 2 batches (4 events), then gives up
    engine, store = _engine(tmp_path, s3, first)
    with pytest.raises(SinkError):
        engine.deliver(REF)
    store.close()
    second = FakeSink()
    engine, store = _engine(tmp_path, s3, second)  # a new process: the store read back from the file
    assert store.resume_point(ObjectId("b", "k", "etag-k")) == 4
    assert engine.deliver(REF).delivered and engine.stats.resumed == 1
    assert first.events + second.events == OBJ.split(b"\n")  # each event exactly once


def test_a_missing_object_is_the_missing_class(tmp_path):
    engine, store = _engine(tmp_path, FakeS3({}), FakeSink())
    outcome = engine.deliver(REF)
    assert not outcome.delivered and outcome.failure is MISSING and outcome.failure.permanent
    assert "NoSuchKey" in outcome.reason and not store.is_delivered(ObjectId("b", "k", "etag-k"))


def test_a_corrupt_tail_is_reported_after_the_events_before_it_are_checkpointed(tmp_path):
    engine, store = _engine(tmp_path, FakeS3({"k": b"a\nb\nc\nBAD\nd"}), FakeSink())
    outcome = engine.deliver(REF)
    assert not outcome.delivered and outcome.failure is CORRUPT and outcome.events == 2
    assert store.resume_point(ObjectId("b", "k", "etag-k")) == 2  # the next attempt sends none of them again


def test_a_stop_between_batches_interrupts_and_the_rest_comes_later(tmp_path):
    stop = threading.Event()
    s3, first = FakeS3({"k": OBJ}), FakeSink(after=stop.set)
    engine, store = _engine(tmp_path, s3, first, stop=stop)
    with pytest.raises(Interrupted):
        engine.deliver(REF)
    second = FakeSink()
    engine = ObjectDelivery(s3, lines, second, RunStats("t"), store=store)
    assert engine.deliver(REF).delivered and first.events + second.events == OBJ.split(b"\n")


def test_a_stop_during_the_download_ends_it_at_once(tmp_path):
    """A body that stalls: the stop is seen between chunks (here within the first read) and the download ends."""
    stop = threading.Event()

    class Slow(_Body):
        def read(self, n: int = -1) -> bytes:
            time.sleep(0.05)
            return self.stream.read(1)

    class SlowS3(FakeS3):
        def get_object(self, **kw: Any) -> dict:
            answer = super().get_object(**kw)
            answer["Body"] = Slow(self.objects[kw["Key"]])
            return answer

    sink = FakeSink()
    engine, _ = _engine(tmp_path, SlowS3({"k": OBJ * 100}), sink, stop=stop)
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Interrupted, match="stopped while downloading"):
        engine.deliver(REF)
    assert time.monotonic() - started < 1.5 and sink.events == []


def test_redeliver_sends_again_whatever_the_store_says(tmp_path):
    s3, sink = FakeS3({"k": OBJ}), FakeSink()
    engine, store = _engine(tmp_path, s3, sink)
    engine.deliver(REF)
    again = ObjectDelivery(s3, lines, sink, RunStats("t"), store=store, redeliver=True)
    assert again.deliver(REF).delivered and len(sink.events) == 14


# --- a failing store

class _Broken:
    """A store whose file went away: every call raises StateError, as DeliveryStore does."""

    path = "/nowhere/state.db"

    def __getattr__(self, name: str):
        def fail(*args: Any) -> None:
            raise StateError("cannot write the state database /nowhere/state.db: disk I/O error")
        return fail


def test_a_failing_store_stops_nothing_for_a_forgiving_source_and_warns_once(tmp_path, caplog):
    sink = FakeSink()
    engine = ObjectDelivery(FakeS3({"k": OBJ, "k2": OBJ}), lines, sink, RunStats("t"), store=Forgiving(_Broken()))
    with caplog.at_level("WARNING", logger="aws-s3-wodle"):
        assert engine.deliver(REF).delivered
        assert engine.deliver(ObjectRef("b", "k2", etag='"etag-k2"')).delivered
    assert len(sink.events) == 14
    warnings = [r for r in caplog.records if "delivery state" in r.getMessage()]
    assert len(warnings) == 1 and "may be sent again" in warnings[0].getMessage()


def test_a_failing_store_stops_a_strict_source(tmp_path):
    """Without Forgiving (bucket blocks), the store's failure ends the delivery: StateError, exit 4."""
    engine = ObjectDelivery(FakeS3({"k": OBJ}), lines, FakeSink(), RunStats("t"), store=_Broken())
    with pytest.raises(StateError) as err:
        engine.deliver(REF)
    assert err.value.exit_code == 4


class StoppedSink(FakeSink):
    """A stop while the engine took nothing: at batch number `stop_at`, takes the first `take` events of it, then
    raises Interrupted saying so (what AnalysisdSink does when the stop ends its wait for a busy engine)."""

    def __init__(self, stop_at: int, take: int) -> None:
        super().__init__()
        self.stop_at, self.take = stop_at, take

    def send_batch(self, events, origin: str) -> SendResult:
        if self.batches + 1 != self.stop_at:
            return super().send_batch(events, origin)
        self.batches += 1
        taken = list(events)[:self.take]
        self.events.extend(taken)
        exc = Interrupted("stopped while the engine was busy")
        exc.partial = SendResult(sent=len(taken), bytes=sum(map(len, taken)))
        raise exc


def threes(spool, ref: ObjectRef) -> Iterator[EventBatch]:
    """One event per line, three per batch."""
    events = spool.read().splitlines()
    for i in range(0, len(events), 3):
        yield EventBatch(events[i:i + 3])


def test_a_stop_mid_batch_keeps_what_the_engine_took_also_of_a_resumed_batch(tmp_path):
    """7 events in batches of 3: the first run is stopped at its 2nd batch after 1 event (position 4); the
    second resumes inside that batch (e4, e5 left of it) and is stopped after 1 more (position 5, not 3 + 1);
    the third sends the rest. Every event exactly once, and each run counts what it sent."""
    s3, store = FakeS3({"k": OBJ}), DeliveryStore(tmp_path / "state.db")
    oid = ObjectId("b", "k", "etag-k")
    sent = []
    for sink in (StoppedSink(stop_at=2, take=1), StoppedSink(stop_at=1, take=1), FakeSink()):
        engine = ObjectDelivery(s3, threes, sink, RunStats("t"), store=store)
        try:
            assert engine.deliver(REF).delivered
        except Interrupted:
            pass
        sent.append(sink.events)
        assert engine.stats.events == len(sink.events)
    assert sent == [[b"e0", b"e1", b"e2", b"e3"], [b"e4"], [b"e5", b"e6"]]
    assert store.is_delivered(oid)

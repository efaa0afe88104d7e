"""The pipelined run: objects in flight at once, messages settled only when all their objects are in."""
from __future__ import annotations

import collections
import json
import random
import threading
import time

import pytest

from aws_s3_wodle.errors import SinkError
from aws_s3_wodle.seams import ObjectRef
from aws_s3_wodle.delivery.concurrency import ObjectPipeline

from ..conftest import run_wodle
from ..helpers import Concurrency, received_events, received_payloads
from .test_delivery import sqs  # noqa: F401  (the fixture)


def refs(*keys: str) -> list:
    return [ObjectRef("bucket", k) for k in keys]


def test_messages_are_settled_once_after_all_their_objects_in_any_completion_order():
    rng = random.Random(3)
    delays = {f"m{m}/o{o}": rng.uniform(0, 0.03) for m in range(8) for o in range(3)}
    done_at: dict = {}
    calls = Concurrency()

    def deliver(ref):
        with calls:
            time.sleep(delays[ref.key])
        done_at[ref.key] = time.monotonic()
        return ref.key.upper()

    settled = []

    def settle(message, results):
        assert all(key in done_at for key in (r.key for r, _ in results))  # every object finished before
        settled.append((message, [(r.key, v) for r, v in results]))
        return True

    pipeline = ObjectPipeline(3, deliver, settle)
    for m in range(8):
        pipeline.submit(f"msg{m}", refs(*(f"m{m}/o{o}" for o in range(m % 3 + 1))))
    pipeline.finish()
    assert sorted(m for m, _ in settled) == [f"msg{m}" for m in range(8)]  # each once
    for message, results in settled:
        m = int(message[3:])
        assert results == [(f"m{m}/o{o}", f"M{m}/O{o}") for o in range(m % 3 + 1)]  # in ref order
    assert 2 <= calls.peak <= 3  # bounded: never more objects in flight than asked


def test_the_byte_budget_admits_many_small_objects_and_few_large_ones():
    """Admission by bytes: small objects fill every slot; objects counted at the in-memory limit (large, or of
    unknown size) are admitted only as far as the budget goes, but one always starts, whatever its size."""
    from aws_s3_wodle.delivery.concurrency import SMALL

    def peak_in_flight(sizes, objects=16, budget=4 * SMALL):
        calls = Concurrency()

        def deliver(ref):
            with calls:
                time.sleep(0.02)
            return True
        pipeline = ObjectPipeline(objects, deliver, lambda m, r: True, budget=budget)
        for i, size in enumerate(sizes):
            pipeline.submit(f"m{i}", [ObjectRef("bucket", f"k{i}", size)])
            assert pipeline.held <= budget or pipeline.in_flight == 1
        pipeline.finish()
        assert pipeline.held == 0  # every object's bytes given back
        return calls.peak

    assert peak_in_flight([1 << 20] * 40) == 16  # 16 x 1 MiB fit in 32 MiB: the slot count bounds them
    assert peak_in_flight([10 << 30] * 12) == 4  # large (spooled) ones count SMALL each: 4 of them
    assert peak_in_flight([None] * 12) == 4  # unknown size: counted as large
    assert peak_in_flight([10 << 30] * 3, budget=SMALL // 2) == 1  # one always starts, even over the budget


def test_a_message_without_objects_is_settled_at_once():
    settled = []
    pipeline = ObjectPipeline(2, lambda ref: True, lambda m, r: settled.append((m, r)) or True)
    pipeline.submit("empty", [])
    pipeline.finish()
    assert settled == [("empty", [])]


def test_a_fatal_error_aborts_the_objects_in_flight_and_settles_nothing_unfinished():
    started = threading.Event()

    def deliver(ref):
        if ref.key == "bad":
            started.wait(2)
            raise SinkError("the engine does not take events")
        started.set()
        while not pipeline.abort.wait(0.01):  # a long object: stops when the run is aborted
            pass
        raise RuntimeError("aborted")  # what deliver raises when it sees the abort (not fatal itself)

    settled = []
    pipeline = ObjectPipeline(2, deliver, lambda m, r: settled.append(m) or True)
    pipeline.submit("long", refs("long"))
    pipeline.submit("fatal", refs("bad"))
    with pytest.raises(SinkError):
        pipeline.finish()
    assert settled == []  # neither message is deleted: both come back
    assert pipeline.abort.is_set()


def test_failed_settlement_is_reported():
    pipeline = ObjectPipeline(1, lambda ref: False, lambda m, r: all(v for _, v in r))
    pipeline.submit("m", refs("a"))
    pipeline.finish()
    assert pipeline.failed


# --- end to end: the CLI, moto's server, a real socket --------------------------------------------

@pytest.mark.parametrize("parallel", ["0", "1", "4"])
def test_every_event_of_many_objects_arrives_once_whatever_the_parallelism(lab, engine, tmp_path, parallel):
    sizes = [700, 40, 1500, 1, 300, 900]
    for i, rows in enumerate(sizes):
        lab.add_generated(rows, version="1.1.0" if i % 2 else "1.0.0-rc.2", seed=60 + i)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--run-on-start", "--socket", engine.path, "--sqs-wait", "1",
                     "--batch-size", "200", "--parallel-objects", parallel)
    assert proc.returncode == 0, proc.stderr
    uids = collections.Counter(e["metadata"]["uid"] for e in received_events(engine, sum(sizes), wait=10))
    assert set(uids.values()) == {1}
    assert set(uids) == {f"{60 + i}-{j}" for i, rows in enumerate(sizes) for j in range(rows)}
    assert lab.queue_depth() == 0
    assert f"{len(sizes)} messages ({len(sizes)} deleted), {len(sizes)} objects, {sum(sizes)} events" in proc.stderr


def test_a_bad_object_among_parallel_ones_keeps_only_its_message(lab, engine, tmp_path):
    good = [lab.add_generated(400, seed=70 + i) for i in range(3)]
    lab.put(lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), b"PAR1 not parquet at all", 0, "corrupt")
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", "--parallel-objects", "3")
    assert proc.returncode == 5, proc.stderr
    assert len(received_payloads(engine, 1200, wait=10)) == sum(o.rows for o in good)
    assert "truncated Parquet object" in proc.stderr and "Traceback" not in proc.stderr
    assert "4 messages (3 deleted)" in proc.stderr and "1 errors" in proc.stderr
    assert lab.queue_depth() == 1  # the corrupt object's message only


def test_engine_down_with_parallel_objects_acknowledges_nothing(lab, tmp_path):
    for i in range(4):
        lab.add_generated(200, seed=80 + i)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--socket", str(tmp_path / "no-engine"), "--sqs-wait", "1",
                     "--engine-retry", "1", "--parallel-objects", "3")
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lab.queue_depth() == 4  # none deleted
    # the three objects in flight when the sink gave up were received once; the fourth never was: a run that
    # ends receives nothing more (each receive counts towards the queue's redrive policy)
    got = lab.client("sqs").receive_message(QueueUrl=lab.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                            MessageSystemAttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert sorted(int(m["Attributes"]["ApproximateReceiveCount"]) for m in got) == [1, 2, 2, 2]


def test_a_stopped_pipelined_run_hands_back_every_unfinished_message_and_resumes(sqs, moto_server,  # noqa: F811
                                                                                   tmp_path):
    """As test_delivery's serial version: a stop mid-object ends the run with nothing deleted; every
    message received is handed back at once; the next run resumes each object after its checkpoint."""
    from aws_s3_wodle.sources.sqs.subscriber import RunOptions

    from .test_delivery import _next_run, _notified_objects, _stopped_run, _visible

    s3, queue = _notified_objects(sqs, moto_server, 5)

    def decoder(spool, ref):
        yield [f'{{"{ref.key}":1}}'.encode(), f'{{"{ref.key}":2}}'.encode()]
        yield [f'{{"{ref.key}":3}}'.encode()]

    options = RunOptions(wait_seconds=0, max_messages=10, visibility_timeout=60, state_dir=str(tmp_path),
                         parallel_objects=2)
    run, first = _stopped_run(queue, s3, decoder, options)
    assert 2 <= len(first) <= 4 and run.stats.deleted == 0  # the first batch of one or two objects, nothing acked
    assert run.stats.released == run.stats.messages >= 2  # every message received went back at once...
    assert _visible(sqs, queue) == 5  # ...not after the 60 s timeout
    stats, later = _next_run(queue, s3, decoder, options)
    assert stats.deleted == 5 and stats.resumed == len(first) // 2
    everything = collections.Counter(first + later)
    assert len(everything) == 15 and set(everything.values()) == {1}  # each event exactly once across the runs


# --- the pipelined run's edges, one by one (moto's server over HTTP; sinks and decoders of our own) --------

def _s3_and_queue(sqs, moto_server, messages):  # noqa: F811
    """A bucket with a 1-byte object per key, and a queue with one S3 notification per list of keys;
    (the S3 client, the queue). test_delivery._notified_objects with several objects per message."""
    import uuid

    from aws_s3_wodle.lab.security_lake import lab_client

    from .test_delivery import _queue
    s3 = lab_client("s3", moto_server.endpoint, "us-east-1")
    bucket = f"bucket-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    queue = _queue(sqs, 0, timeout=60)
    for keys in messages:
        for key in keys:
            s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps({"Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}
            for key in keys]}))
    return s3, queue


class _Objects:
    """A decoder of ours: `batches` batches of 2 events per object, `pause` s apart (or {key: s}); records
    which objects started decoding, how many objects are in flight at once (`gauge`: from the decoder's
    creation, once the object is downloaded, to the end or closing of its batches), and that every decoder
    was closed. The pipelined run decodes one object at a time, so "in flight" is what shows pipelining."""

    def __init__(self, batches=2, pause=0.0, corrupt=(), open_pause=None):
        self.batches, self.pause, self.corrupt = batches, pause, set(corrupt)
        self.open_pause = open_pause or {}  # {key: s} before the first batch, outside the one-decoder gate
        self.started, self.closed = [], []
        self.gauge = Concurrency()
        self.decoding = Concurrency()  # decoders between their first batch and their end

    def __call__(self, spool, ref):
        self.gauge.__enter__()
        time.sleep(self.open_pause.get(ref.key, 0.0))  # as a slow download would
        return _InFlight(self.gauge, self._batches(ref))

    def _batches(self, ref):
        from aws_s3_wodle.decode.formats import DecodeError
        self.started.append(ref.key)
        try:
            with self.decoding:
                for i in range(self.batches):
                    time.sleep(self.pause.get(ref.key, 0.0) if isinstance(self.pause, dict) else self.pause)
                    if ref.key in self.corrupt:
                        raise DecodeError("garbled page")
                    yield [f'{{"{ref.key}":{2 * i}}}'.encode(), f'{{"{ref.key}":{2 * i + 1}}}'.encode()]
        finally:
            self.closed.append(ref.key)


class _InFlight:
    """Batches that hold `gauge` (entered by their maker) until they end or are closed."""

    def __init__(self, gauge, batches):
        self.gauge, self.batches, self.done = gauge, batches, False

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self.batches)
        except BaseException:
            self.close()
            raise

    def close(self):
        if not self.done:
            self.done = True
            self.batches.close()
            self.gauge.__exit__(None, None, None)


def _run(queue, s3, decoder, sink, tmp_path, stop=None, **options):
    from aws_s3_wodle.sources.sqs.subscriber import RunOptions, SubscriberRun
    opts = RunOptions(**{"wait_seconds": 0, "visibility_timeout": 60, "state_dir": str(tmp_path),
                         "parallel_objects": 2, **options})
    return SubscriberRun("test", queue, s3, decoder, sink, opts, stop or threading.Event())


def test_an_engine_that_is_gone_is_waited_for_once_not_once_per_object_in_flight(sqs, moto_server,  # noqa: F811
                                                                                 tmp_path):
    """The sink retries a gone engine for --engine-retry seconds, then gives up. An object waiting for the
    sink meanwhile must not start a wait of its own: the run ends at the first SinkError, nothing deleted,
    every message handed back at once, and every decoder closed (no thread left reading a closed spool)."""
    from .test_delivery import _visible
    s3, queue = _s3_and_queue(sqs, moto_server, [["a"], ["b"]])

    class Gone:
        def __init__(self):
            self.calls, self.lock = [], threading.Lock()

        def send_batch(self, events, origin):
            with self.lock:  # as AnalysisdSink: one connection, one batch at a time
                self.calls.append(origin)
                time.sleep(1.0)  # its retry window
                raise SinkError("the engine's socket is not accepting after 1 s of retries")

    sink, decoder = Gone(), _Objects(batches=10)
    run = _run(queue, s3, decoder, sink, tmp_path)
    with pytest.raises(SinkError):
        run.run()
    assert sorted(decoder.started) == ["a", "b"]  # both objects were in flight...
    assert len(sink.calls) == 1  # ...and only one waited on the engine
    assert sorted(decoder.closed) == ["a", "b"]
    assert run.stats.deleted == 0 and run.stats.released == 2 and _visible(sqs, queue) == 2


def test_one_object_named_by_two_messages_at_once_is_sent_once(lab, engine, tmp_path):
    """SQS or S3 may notify twice; pipelined, both copies can be in flight together: one waits for the other,
    then finds it delivered (the delivery state), so its events go out once and both messages are deleted."""
    obj = lab.add_generated(3000, seed=90)
    etag = lab.client("s3").head_object(Bucket=lab.bucket, Key=obj.key)["ETag"].strip('"')
    lab.notify(obj.key, 0, etag)  # the same object (same version), notified again
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", "--batch-size", "100",
                     "--parallel-objects", "2")
    assert proc.returncode == 0, proc.stderr
    uids = collections.Counter(e["metadata"]["uid"] for e in received_events(engine, obj.rows, wait=10))
    assert len(uids) == obj.rows and set(uids.values()) == {1}
    assert "2 messages (2 deleted), 1 objects, 1 already delivered (not resent)" in proc.stderr
    assert lab.queue_depth() == 0


def test_a_stop_between_objects_starts_no_new_object(sqs, moto_server, tmp_path):  # noqa: F811
    """SIGTERM once an object's last batch is out: that object completes, no other object starts (not even
    the next one of a message half submitted), and what is unfinished goes back to the queue at once."""
    from .test_delivery import _Collect, _visible
    s3, queue = _s3_and_queue(sqs, moto_server, [["a", "b", "c", "d"]])
    stop = threading.Event()

    class StopAfterFirst(_Collect):
        def send_batch(self, events, origin):
            stop.set()
            return super().send_batch(events, origin)

    decoder = _Objects(batches=1, pause=0.3)
    run = _run(queue, s3, decoder, StopAfterFirst(), tmp_path, stop=stop)
    try:
        run.run()
    except Exception as exc:  # noqa: BLE001 - the object stopped at its next batch, if any
        assert "stopped in the middle" in str(exc)
    assert sorted(decoder.started) == ["a", "b"]  # the two in flight when the stop came; c and d never started
    assert run.stats.deleted == 0 and run.stats.released == 1 and _visible(sqs, queue) == 1


def test_skip_on_error_no_ends_a_pipelined_run_at_the_first_failure(sqs, moto_server, tmp_path, caplog):  # noqa: F811
    """skip_on_error 'no' (the Wazuh drop-in's default) keeps the objects in flight: the run stops starting
    objects at the first failure, finishes what is in flight, and leaves the rest in the queue."""
    from .test_delivery import _Collect, _visible
    s3, queue = _s3_and_queue(sqs, moto_server, [["good"], ["bad"], ["c"], ["d"], ["e"]])
    # both are slow to open (as slow downloads), "good" the slower: "bad" fails while "good" is in flight
    decoder, sink = _Objects(batches=3, open_pause={"good": 0.8, "bad": 0.3}, corrupt={"bad"}), _Collect()
    run = _run(queue, s3, decoder, sink, tmp_path, skip_on_error=False)
    stats = run.run()
    assert decoder.gauge.peak == 2  # pipelined, not the serial loop
    assert sorted(decoder.started) == ["bad", "good"]
    assert stats.errors == 1 and stats.deleted == 1 and len(sink.events) == 6  # "good" finished and acknowledged
    assert "Ending the run at the first failure (skip_on_error is 'no')" in caplog.text
    assert "Cannot deliver s3://" in caplog.text and "/bad (message" in caplog.text
    assert _visible(sqs, queue) == 3  # c, d, e never received; "bad" stays for its visibility timeout


def test_a_message_is_deleted_only_after_every_event_of_its_objects_was_accepted(sqs, moto_server,  # noqa: F811
                                                                                  tmp_path):
    """Objects of several messages end in another order than they started: each message is deleted after the
    sink accepted the last batch of each of its objects, never before, and each exactly once."""
    from .test_delivery import _Collect
    messages = [["m0-slow", "m0-fast"], ["m1-fast"], ["m2-mid", "m2-fast", "m2-slow"], ["m3-fast"]]
    s3, queue = _s3_and_queue(sqs, moto_server, messages)
    pause = {k: {"slow": 0.4, "mid": 0.2, "fast": 0.0}[k.split("-")[1]] for keys in messages for k in keys}
    decoder = _Objects(batches=2, open_pause=pause)
    accepted: dict = {}
    deleted: list = []

    class Sink(_Collect):
        def send_batch(self, events, origin):
            result = super().send_batch(events, origin)
            accepted[origin.rsplit("/", 1)[1]] = time.monotonic()  # the last batch accepted so far
            return result

    delete_batch = queue.delete_batch

    def recording_delete(messages):
        for message in messages:
            keys = [r["s3"]["object"]["key"] for r in json.loads(message.body)["Records"]]
            deleted.append((keys, time.monotonic()))
        return delete_batch(messages)

    queue.delete_batch = recording_delete
    stats = _run(queue, s3, decoder, Sink(), tmp_path, parallel_objects=3).run()
    assert stats.deleted == 4 and decoder.gauge.peak >= 2
    assert sorted(keys for keys, _ in deleted) == sorted(messages)
    for keys, at in deleted:
        assert all(accepted[k] < at for k in keys), (keys, at, accepted)
    assert [keys for keys, _ in deleted] != messages  # they did complete out of order


def test_a_pipelined_run_receives_ahead_within_its_bound(sqs, moto_server, tmp_path):  # noqa: F811
    """A completed object's slot is filled from messages already in hand, not after a round trip to SQS: the
    run receives ahead of its free slots, but holds at most RECEIVE_AHEAD messages beyond its objects in
    flight (each receive asks for no more), and while objects are in flight a receive does not long-poll."""
    from aws_s3_wodle.sources.sqs.subscriber import RECEIVE_AHEAD

    from .test_delivery import _Collect
    s3, queue = _s3_and_queue(sqs, moto_server, [[f"k{i}"] for i in range(30)])
    decoder = _Objects(batches=2, pause=0.05)
    asks = []
    received = [0]
    receive = queue.receive

    def recording_receive(max_messages=None, wait_seconds=None):
        in_hand = received[0] - len(decoder.closed)  # received, not finished decoding (started or not)
        asks.append((decoder.gauge.running, in_hand, max_messages, wait_seconds))
        got = receive(max_messages, wait_seconds)
        received[0] += len(got)
        return got

    queue.receive = recording_receive
    stats = _run(queue, s3, decoder, _Collect(), tmp_path, parallel_objects=2).run()
    assert stats.deleted == 30 and decoder.gauge.peak == 2
    assert all(in_hand + asked <= 2 + RECEIVE_AHEAD for _, in_hand, asked, _ in asks), asks
    assert any(running + asked > 2 for running, _, asked, _ in asks), asks  # it does receive ahead
    assert all(wait == 0 for running, _, _, wait in asks if running), asks  # no long poll with objects in flight
    assert len(asks) <= 30 // 2, asks  # fewer receives than slots filled: it asks for more once objects end


def test_messages_received_ahead_are_handed_back_at_a_stop(sqs, moto_server, tmp_path):  # noqa: F811
    """A stop while messages wait in hand, not started: each is handed back at once (visible again), none
    deleted, and the next run delivers them."""
    from .test_delivery import _Collect, _visible

    class StopAfterSome(_Collect):
        def send_batch(self, events, origin):
            result = super().send_batch(events, origin)
            if len(self.events) >= 2 * 6:  # six objects sent: the run has seen objects end, so it receives ahead
                stop.set()
            return result

    s3, queue = _s3_and_queue(sqs, moto_server, [[f"k{i}"] for i in range(14)])
    stop = threading.Event()
    run = _run(queue, s3, _Objects(batches=1, pause=0.02), StopAfterSome(), tmp_path, stop=stop,
               parallel_objects=2)
    try:
        run.run()
    except Exception as exc:  # an object in flight at the stop ends "stopped"
        assert "stopped" in str(exc)
    stats = run.stats
    assert stats.messages > stats.deleted + 2  # more in hand than the two slots: some were waiting, not started
    assert stats.released == stats.messages - stats.deleted
    assert _visible(sqs, queue) == 14 - stats.deleted
    again = _run(queue, s3, _Objects(batches=1), _Collect(), tmp_path).run()
    assert again.deleted == 14 - stats.deleted


@pytest.mark.parametrize("parallel", [1, 2])
def test_a_stop_during_a_download_backoff_hands_the_message_back(sqs, moto_server, tmp_path, parallel):  # noqa: F811
    """SIGTERM while S3 is throttling a download: no error is counted against the object, and its message
    goes back to the queue at once instead of waiting out its visibility timeout."""
    import boto3

    from aws_s3_wodle.platform.aws import client_config
    from aws_s3_wodle.lab.faults import FaultProxy, Rule
    from aws_s3_wodle.lab.security_lake import lab_env

    from .test_delivery import _Collect, _visible
    _, queue = _s3_and_queue(sqs, moto_server, [["slow"]])
    with FaultProxy(moto_server.endpoint, (Rule("s3", "GetObject", status=503, code="SlowDown"),)) as proxy:
        env = lab_env(moto_server.endpoint, "us-east-1")
        s3 = boto3.client("s3", endpoint_url=proxy.endpoint, region_name="us-east-1", config=client_config(),
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
        stop = threading.Event()
        threading.Timer(1.0, stop.set).start()
        run = _run(queue, s3, _Objects(), _Collect(), tmp_path, stop=stop, parallel_objects=parallel)
        with pytest.raises(Exception, match="stopped"):
            run.run()
    assert run.stats.errors == 0 and run.stats.released == 1 and _visible(sqs, queue) == 1


def test_objects_in_flight_decode_one_at_a_time(sqs, moto_server, tmp_path):  # noqa: F811
    """Three objects in flight, but one decoder running at a time: memory stays one object's. Each object is
    slow to open (as a slow download), so all three are in flight together, then take turns decoding."""
    from .test_delivery import _Collect
    keys = ["a", "b", "c", "d", "e", "f"]
    s3, queue = _s3_and_queue(sqs, moto_server, [[k] for k in keys])
    decoder = _Objects(batches=3, pause=0.05, open_pause={k: 0.3 for k in keys})
    sink = _Collect()
    stats = _run(queue, s3, decoder, sink, tmp_path, parallel_objects=3).run()
    assert stats.deleted == 6 and len(sink.events) == 6 * 6
    assert decoder.gauge.peak == 3  # three objects in flight at once...
    assert decoder.decoding.peak == 1  # ...one of them decoding

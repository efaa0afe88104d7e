"""The delivery pieces one by one: delivery state, visibility keeper, dispositions, sink back-off, run hand-back.

SQS is moto's server over HTTP, the engine a real datagram socket; nothing is patched.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from aws_s3_wodle.platform.aws import client_config
from aws_s3_wodle.delivery.checkpoints import DeliveryStore, NoStore, open_store
from aws_s3_wodle.seams import ObjectId
from aws_s3_wodle.delivery.outcome import CORRUPT, DENIED, MISSING, THROTTLED, classify_s3_error, is_transient
from aws_s3_wodle.errors import SinkError
from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.security_lake import lab_client, lab_env
from aws_s3_wodle.seams import ObjectRef
from aws_s3_wodle.sinks.recorder import OversizeRecorder
from aws_s3_wodle.seams import SendResult
from aws_s3_wodle.sinks.analysisd import AnalysisdSink
from aws_s3_wodle.sources.sqs.queue import SqsQueue
from aws_s3_wodle.sources.sqs.subscriber import RunOptions, SubscriberRun
from aws_s3_wodle.sources.sqs.leases import LeaseKeeper


# --- delivery state

def test_store_remembers_delivered_objects_and_progress(tmp_path):
    oid = ObjectId("b", "k", "etag1")
    store = DeliveryStore(tmp_path / "d.sqlite3")
    assert not store.is_delivered(oid) and store.resume_point(oid) == 0
    store.save_progress(oid, 500)
    store.save_progress(oid, 1000)
    store.close()
    store = DeliveryStore(tmp_path / "d.sqlite3")  # what a new process sees
    assert store.resume_point(oid) == 1000
    store.mark_delivered(oid, 1200)
    assert store.is_delivered(oid) and store.resume_point(oid) == 0
    assert not store.is_delivered(ObjectId("b", "k", "etag2"))  # a new version of the object is new
    store.close()


def test_store_forgets_after_the_retention_window(tmp_path):
    now = [1_000_000.0]
    store = DeliveryStore(tmp_path / "d.sqlite3", retention=3600, clock=lambda: now[0])
    old, new = ObjectId("b", "old", "e"), ObjectId("b", "new", "e")
    store.mark_delivered(old, 1)
    store.save_progress(ObjectId("b", "half", "e"), 10)
    now[0] += 3000
    assert store.prune() == 0
    store.mark_delivered(new, 1)
    now[0] += 1000  # old and half are 4000 s old, new 1000 s
    assert store.prune() == 2
    assert not store.is_delivered(old) and store.is_delivered(new)


def test_object_identity_prefers_version_then_etag():
    ref = ObjectRef("b", "k", etag='"abc"')
    assert ObjectId.of(ref).version == "abc"
    assert ObjectId.of(ObjectRef("b", "k", etag="abc", version_id="v1")).version == "v1"
    assert ObjectId.of(ObjectRef("b", "k"), etag='"fromget"').version == "fromget"
    assert ObjectId.of(ObjectRef("b", "k")) is None  # nothing to tell versions apart: no dedupe


def test_unwritable_state_dir_falls_back_with_one_warning(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = open_store(blocker / "state")  # a file where the directory should be
    assert isinstance(store, NoStore)
    assert "Cannot open the delivery state" in caplog.text and "give a writable --state-dir" in caplog.text


# --- dispositions

def _client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetObject")


@pytest.mark.parametrize("error,cls,words", [
    (_client_error("NoSuchKey", 404, "The specified key does not exist."), MISSING, "lifecycle"),
    (_client_error("404", 404), MISSING, "NoSuchKey (HTTP 404)"),
    (_client_error("AccessDenied", 403, "Access Denied"), DENIED, "s3:GetObject"),
    (_client_error("AccessDenied", 403, "not authorized to perform: kms:Decrypt"), DENIED, "grant kms:Decrypt"),
    (_client_error("KMS.DisabledException", 400), DENIED, "kms:Decrypt"),
    (_client_error("InvalidObjectState", 403), DENIED, "archived"),
    (_client_error("SlowDown", 503, "Please reduce your request rate."), THROTTLED, "SlowDown (HTTP 503)"),
    (_client_error("InternalError", 500), THROTTLED, "next run"),
    (EndpointConnectionError(endpoint_url="http://x"), THROTTLED, "EndpointConnectionError"),
])
def test_s3_errors_are_classified_with_a_hint(error, cls, words):
    got, reason = classify_s3_error(error)
    assert got is cls and words in reason and "\n" not in reason


def test_only_failures_that_can_never_pass_are_permanent():
    assert MISSING.permanent and DENIED.permanent and CORRUPT.permanent and not THROTTLED.permanent
    assert is_transient(_client_error("InternalError", 500)) and is_transient(_client_error("RequestThrottled", 403))
    assert not is_transient(_client_error("AccessDenied", 403))
    assert not is_transient(_client_error("AWS.SimpleQueueService.NonExistentQueue", 400))


# --- visibility

@pytest.fixture
def sqs(moto_server):
    env = lab_env(moto_server.endpoint, "us-east-1")
    return boto3.client("sqs", endpoint_url=moto_server.endpoint, region_name="us-east-1", config=client_config(),
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def _queue(sqs, n: int, timeout: int, max_messages: int = 10) -> SqsQueue:
    name = f"keeper-{uuid.uuid4().hex[:10]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for i in range(n):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": i}))
    return SqsQueue(sqs, name, wait_seconds=0, max_messages=max_messages, visibility_timeout=timeout)


def _visible(sqs, queue: SqsQueue) -> int:
    got = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return len(got.get("Messages", []))


def test_keeper_keeps_messages_invisible_then_lets_them_go(sqs):
    queue = _queue(sqs, 3, timeout=1)
    started = time.monotonic()
    held = queue.receive()
    assert len(held) == 3
    with LeaseKeeper(queue, 1, limit=60) as keeper:
        keeper.hold(held, started)
        time.sleep(2.2)  # two timeouts
        assert _visible(sqs, queue) == 0
        assert keeper.renewals >= 6 and keeper.calls <= keeper.renewals / 3 + 1  # batched: 3 messages per call
        keeper.done(held[0])
        assert keeper.release(held[1:]) == 2
        assert _visible(sqs, queue) == 2  # released: visible at once
    time.sleep(1.2)
    assert _visible(sqs, queue) == 3  # the one we stopped renewing reappeared after its timeout


def test_keeper_hard_limit(sqs, caplog):
    queue = _queue(sqs, 1, timeout=1)
    started = time.monotonic()
    held = queue.receive()
    with LeaseKeeper(queue, 1, limit=1.6) as keeper:
        keeper.hold(held, started)
        time.sleep(1.3)
        assert _visible(sqs, queue) == 0
        time.sleep(1.5)
        assert _visible(sqs, queue) == 1  # past the 1.6 s limit, even though still held
    assert "the visibility limit" in caplog.text


# --- a run that is stopped hands its messages back

class _StoppingSink:
    """A sink of ours that asks the run to stop after its first batch (as SIGTERM would)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop, self.events = stop, []

    def send_batch(self, events, origin):
        self.events += events
        self.stop.set()
        return SendResult(sent=len(events))

    def close(self):
        pass


class _Collect:
    """A sink of ours that keeps every event it is sent."""

    def __init__(self) -> None:
        self.events = []

    def send_batch(self, events, origin):
        self.events += events
        return SendResult(sent=len(events))


def _notified_objects(sqs, moto_server, n: int):
    """A fresh bucket holding objects k0..k<n-1> and a fresh queue with one notification for each;
    (the S3 client, the queue)."""
    s3 = lab_client("s3", moto_server.endpoint, "us-east-1")
    bucket = f"bucket-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    queue = _queue(sqs, 0, timeout=60)
    for i in range(n):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
        sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(
            {"detail": {"bucket": {"name": bucket}, "object": {"key": f"k{i}"}}}))
    return s3, queue


def _stopped_run(queue, s3, decoder, options):
    """A run whose sink asks it to stop after its first batch; it must end interrupted: "stopped in the
    middle" of that object or, with several objects in flight, of another one still downloading (whichever
    the pipeline takes in first). (the run, the events its sink took)"""
    from aws_s3_wodle.delivery.outcome import Interrupted
    stop = threading.Event()
    sink = _StoppingSink(stop)
    run = SubscriberRun("test", queue, s3, decoder, sink, options, stop)
    with pytest.raises(Interrupted, match="stopped (in the middle|while downloading)"):
        run.run()
    return run, sink.events


def _next_run(queue, s3, decoder, options):
    """A run to the end after a stopped one: (its stats, the events it sent)."""
    sink = _Collect()
    time.sleep(0.1)
    stats = SubscriberRun("test", queue, s3, decoder, sink, options, threading.Event()).run()
    return stats, sink.events


def test_stopped_run_releases_what_it_did_not_finish(sqs, moto_server, tmp_path):
    s3, queue = _notified_objects(sqs, moto_server, 4)

    def decoder(spool, ref):
        yield [b'{"a":1}', b'{"a":2}']
        yield [b'{"a":3}']

    # the serial loop (test_pipeline.py has the pipelined run's version)
    options = RunOptions(wait_seconds=0, max_messages=10, visibility_timeout=60, state_dir=str(tmp_path),
                         parallel_objects=0)
    run, first = _stopped_run(queue, s3, decoder, options)
    assert first == [b'{"a":1}', b'{"a":2}']
    assert run.stats.released == 4  # the one stopped half-way and the three not started
    assert _visible(sqs, queue) == 4  # at once, not after the 60 s timeout
    # the half-done object resumes after its first batch
    stats, later = _next_run(queue, s3, decoder, options)
    assert stats.resumed == 1 and stats.deleted == 4
    assert len(later) == 1 + 3 * 3  # 1 event left of the first object, 3 each of the others


# --- the engine's socket

def test_busy_engine_backs_off_and_drops_nothing(tmp_path, as_batch):
    path = str(tmp_path / "queue")
    paused = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    paused.bind(path)  # an engine that reads nothing for a while: its queue fills, our send blocks
    sink = AnalysisdSink(path, OversizeRecorder(None), send_timeout=0.2, busy_seconds=30)
    received = []

    def engine_wakes_up():
        time.sleep(1.5)
        paused.settimeout(2)
        while len(received) < 1500:
            received.append(paused.recv(65536))

    reader = threading.Thread(target=engine_wakes_up)
    reader.start()
    started = time.monotonic()
    # more than one sendmmsg window (1024), so a resume after EAGAIN can fall across a window's edge
    result = sink.send_batch(as_batch([json.dumps({"i": i}).encode() for i in range(1500)]), "o")
    reader.join(10)
    paused.close()
    assert result.sent == 1500 and len(received) == 1500
    assert [json.loads(d[len(b"1:Wazuh-AWS:"):])["i"] for d in received] == list(range(1500))  # in order
    assert time.monotonic() - started >= 1.3 and sink.waits >= 1


def test_stuck_engine_ends_the_run_after_the_busy_limit(tmp_path, as_batch):
    path = str(tmp_path / "queue")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stuck:
        stuck.bind(path)
        sink = AnalysisdSink(path, OversizeRecorder(None), send_timeout=0.1, busy_seconds=0.5)
        with pytest.raises(SinkError, match="is wazuh-analysisd stuck"):
            sink.send_batch(as_batch([b"{}"] * 100), "o")


def test_engine_gone_mid_batch_comes_back(tmp_path, as_batch):
    path = str(tmp_path / "queue")
    with DatagramEngine(path) as first:
        sink = AnalysisdSink(path, OversizeRecorder(None), retry_seconds=10)
        sink.send_batch(as_batch([b"1"]), "o")
        time.sleep(0.1)
    second = DatagramEngine(path)
    threading.Timer(1.0, second.start).start()
    sink.send_batch(as_batch([b"2", b"3"]), "o")
    time.sleep(0.2)
    second.stop()
    assert first.datagrams == [b"1:Wazuh-AWS:1"] and second.datagrams == [b"1:Wazuh-AWS:2", b"1:Wazuh-AWS:3"]


# --- downloads

def test_broken_download_resumes_with_a_range_request(moto_server):
    """The proxy cuts the first answer half-way; the rest comes with one ranged GET, not a new download."""
    from aws_s3_wodle.delivery.fetch import download
    from aws_s3_wodle.lab.faults import FaultProxy, Rule
    body = os.urandom(300_000)
    env = lab_env(moto_server.endpoint, "us-east-1")
    keys = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}
    direct = boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="us-east-1", **keys)
    bucket = f"bucket-{uuid.uuid4().hex[:10]}"
    direct.create_bucket(Bucket=bucket)
    direct.put_object(Bucket=bucket, Key="big", Body=body)
    with FaultProxy(moto_server.endpoint, (Rule("s3", "GetObject", truncate=True, times=1),)) as proxy:
        s3 = boto3.client("s3", endpoint_url=proxy.endpoint, region_name="us-east-1", config=client_config(), **keys)
        with download(s3, ObjectRef(bucket, "big")) as got:
            data = got.file.read()
            assert got.size == len(body) and got.etag and got.attempts == 1
        assert data == body
        assert proxy.count("s3", "GetObject") == 2 and proxy.faults_seen() == {"s3:GetObject:truncated": 1}

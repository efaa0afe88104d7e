"""Batched deletes (sources/sqs/deletes.py, SqsQueue.delete_batch): 10 a call, off the caller's thread,
every message reported once, refused entries and failed calls reported as such, nothing left at close."""
from __future__ import annotations

import threading
import time

from botocore.exceptions import ClientError

from aws_s3_wodle.sources.sqs.deletes import BatchDeleter
from aws_s3_wodle.sources.sqs.queue import Message, SqsQueue


class _Sqs:
    """An SQS client of ours: records DeleteMessageBatch calls; refuses the receipt handles in `refuse`,
    and fails whole calls while `down`."""

    def __init__(self, refuse=(), down=False, pause=0.0):
        self.refuse, self.down, self.pause = set(refuse), down, pause
        self.calls: list[list[str]] = []
        self.lock = threading.Lock()

    def get_queue_url(self, QueueName, **_):
        return {"QueueUrl": f"https://sqs.example/{QueueName}"}

    def delete_message_batch(self, QueueUrl, Entries):
        time.sleep(self.pause)
        with self.lock:
            self.calls.append([e["ReceiptHandle"] for e in Entries])
        if self.down:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "DeleteMessageBatch")
        failed = [{"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "Message": "stale", "SenderFault": True}
                  for e in Entries if e["ReceiptHandle"] in self.refuse]
        return {"Successful": [{"Id": e["Id"]} for e in Entries if e["ReceiptHandle"] not in self.refuse],
                "Failed": failed}


def _messages(n: int) -> list[Message]:
    return [Message(f"m{i}", f"r{i}", "{}") for i in range(n)]


def test_delete_batch_reports_only_the_refused_entries():
    sqs = _Sqs(refuse={"r3", "r11"})
    queue = SqsQueue(sqs, "q")
    failed = queue.delete_batch(_messages(12))
    assert [len(c) for c in sqs.calls] == [10, 2]  # SQS's limit of 10 entries a call
    assert failed == {"m3": "ReceiptHandleIsInvalid: stale", "m11": "ReceiptHandleIsInvalid: stale"}


def test_a_failed_call_reports_each_of_its_messages():
    queue = SqsQueue(_Sqs(down=True), "q")
    failed = queue.delete_batch(_messages(3))
    assert set(failed) == {"m0", "m1", "m2"} and all("InternalError" in r for r in failed.values())


def test_deleter_batches_reports_each_message_once_and_flushes_at_close():
    sqs = _Sqs(refuse={"r7"})
    reports: list[tuple[str, object]] = []
    deleter = BatchDeleter(SqsQueue(sqs, "q"), lambda m, reason: reports.append((m.message_id, reason)),
                           delay=0.05)
    for m in _messages(23):
        deleter.add(m)
    deleter.close()  # returns once every message added was deleted or reported refused
    assert sorted(mid for mid, _ in reports) == sorted(f"m{i}" for i in range(23))
    assert [r for mid, r in reports if r is not None] == ["ReceiptHandleIsInvalid: stale"]
    assert dict(reports)["m7"] is not None
    assert all(len(c) <= 10 for c in sqs.calls) and sum(map(len, sqs.calls)) == 23
    assert len(sqs.calls) <= 4  # batched: 23 messages in 3 or 4 calls, not 23


def test_a_lone_message_is_deleted_after_the_short_delay_not_at_close():
    sqs = _Sqs()
    done = threading.Event()
    deleter = BatchDeleter(SqsQueue(sqs, "q"), lambda m, reason: done.set(), delay=0.01)
    deleter.add(_messages(1)[0])
    assert done.wait(2.0)  # the caller does not wait for 9 more messages
    deleter.close()
    assert sqs.calls == [["r0"]]


def test_the_caller_does_not_wait_for_the_round_trip():
    sqs = _Sqs(pause=0.3)
    deleter = BatchDeleter(SqsQueue(sqs, "q"), lambda m, reason: None, delay=0.0)
    started = time.monotonic()
    for m in _messages(5):
        deleter.add(m)
    assert time.monotonic() - started < 0.2  # the calls take 0.3 s each, on the deleter's thread
    deleter.close()
    assert sum(map(len, sqs.calls)) == 5


def test_a_failed_call_is_reported_not_raised():
    reports: list = []
    deleter = BatchDeleter(SqsQueue(_Sqs(down=True), "q"), lambda m, reason: reports.append(reason))
    for m in _messages(2):
        deleter.add(m)
    deleter.close()
    assert len(reports) == 2 and all(r and "InternalError" in r for r in reports)

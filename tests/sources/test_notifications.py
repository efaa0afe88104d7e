"""SQS bodies -> object references, on the real bodies AWS documents and Security Lake sends."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from aws_s3_wodle.sources.sqs.notifications import NotificationError, parse_body
from aws_s3_wodle.seams import ObjectRef

SHARED = Path(__file__).resolve().parents[3] / "shared" / "samples" / "sqs"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/samples not present (a user's clone): "
                                  "real notification bodies are only in the team's workspace")


@needs_shared
def test_security_lake_bodies_from_aws():
    note = parse_body((SHARED / "security_lake_notification_real_queue.json").read_text())
    assert note.kind == "eventbridge"
    assert note.objects == (ObjectRef("aws-security-data-lake-us-west-2",
                                      "aws/ROUTE53/1.0/region=us-west-2/accountId=12345678/eventDay=20230916/test.gz.parquet",
                                      13176, "asdfghj567ghwjhhd"),)
    docs = parse_body((SHARED / "security_lake_notification_aws_docs.json").read_text())
    assert docs.objects[0].bucket == "example-bucket" and docs.objects[0].key == "example-key"


@needs_shared
def test_full_eventbridge_object_created():
    note = parse_body((SHARED / "eventbridge_object_created_aws_docs.json").read_text())
    ref = note.objects[0]
    assert (ref.bucket, ref.key, ref.size, ref.version_id) == ("DOC-EXAMPLE-BUCKET1", "example-key", 5,
                                                               "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")


def _s3_event(*keys: str) -> dict:
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": "b"}, "object": {"key": k, "size": 3, "eTag": "e"}}} for k in keys]}


def test_s3_event_keys_are_url_decoded_and_all_records_kept():
    note = parse_body(json.dumps(_s3_event("aws%2FCLOUD_TRAIL%2Fa+b%3D1.parquet", "plain.json")))
    assert note.kind == "s3"
    assert [o.key for o in note.objects] == ["aws/CLOUD_TRAIL/a b=1.parquet", "plain.json"]


def test_sns_envelope():
    body = {"Type": "Notification", "MessageId": "x", "Message": json.dumps(_s3_event("k%2B1"))}
    note = parse_body(json.dumps(body))
    assert note.kind == "sns+s3" and note.objects[0].key == "k+1"


def test_s3_test_event_is_noise():
    note = parse_body(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}))
    assert note.is_noise and note.objects == ()


@pytest.mark.parametrize("body,reason", [
    ("not json", "not JSON"),
    ("[1, 2]", "not an object"),
    ("{}", "neither"),
    ('{"Records": []}', "empty"),
    ('{"Records": [{"s3": {"bucket": {}}}]}', "bucket.name"),
    ('{"detail": {"bucket": {"name": "b"}}}', "detail.object.key"),
    ('{"detail-type": "Object Restore Completed", "detail": {}}', "Object Restore Completed"),
    ('{"detail-type": "Object Deleted", "detail": {}}', "detail.bucket.name"),
    ("x" * 300000, "over SQS"),
])
def test_bad_bodies_raise_a_short_reason(body, reason):
    with pytest.raises(NotificationError, match=reason):
        parse_body(body)


def _record(name: str, key: str) -> dict:
    return {"eventSource": "aws:s3", "eventName": name, "s3": {"bucket": {"name": "b"}, "object": {"key": key}}}


@pytest.mark.parametrize("name", ["ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated",
                                  "LifecycleExpiration:Delete"])
def test_s3_deletion_records_are_noise(name, caplog):
    with caplog.at_level("INFO", logger="aws-s3-wodle"):
        note = parse_body(json.dumps({"Records": [_record(name, "gone.json")]}))
    assert note.is_noise and note.objects == () and note.kind == "removed"
    assert f"Ignoring the {name} record of s3://b/gone.json" in caplog.text
    sns = parse_body(json.dumps({"Type": "Notification", "Message": json.dumps({"Records": [_record(name, "g")]})}))
    assert sns.is_noise and sns.kind == "sns+removed"


def test_a_message_mixing_created_and_removed_announces_only_the_created():
    body = {"Records": [_record("ObjectRemoved:Delete", "old.json"), _record("ObjectCreated:Put", "new.json"),
                        _record("ObjectCreated:CompleteMultipartUpload", "big.json")]}
    note = parse_body(json.dumps(body))
    assert not note.is_noise and [o.key for o in note.objects] == ["new.json", "big.json"]


def test_eventbridge_object_deleted_is_noise():
    body = {"detail-type": "Object Deleted", "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "gone.json"}}}
    note = parse_body(json.dumps(body))
    assert note.is_noise and note.objects == ()


def test_the_dead_letter_file_is_capped_and_never_rotated(tmp_path):
    """Its lines are the only copy of deleted messages: when full, the message stays in the queue instead."""
    import pytest

    from aws_s3_wodle.sources.sqs.deadletter import DeadLetterError, DeadLetterFile
    from aws_s3_wodle.sources.sqs.queue import Message
    path = tmp_path / "dead-letter.jsonl"
    letters = DeadLetterFile(path, max_bytes=4096)
    message = Message(message_id="m1", receipt_handle="r", body="x" * 1000, receive_count=5, sent_timestamp_ms=0)
    for _ in range(3):
        letters.record("q", message, ["corrupt"])
    with pytest.raises(DeadLetterError, match="is full .4096 bytes.: replay or move its lines"):
        letters.record("q", message, ["corrupt"])
    assert path.stat().st_size <= 4096 and len(path.read_text().splitlines()) == 3
    assert list(tmp_path.iterdir()) == [path]  # nothing rotated away

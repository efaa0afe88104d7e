"""End to end for `<subscriber type="buckets">` and `<subscriber type="security_hub">`: moto's server over
HTTP with the bucket's own notifications (direct, through SNS, through EventBridge), the CLI in its own
process, a real Unix datagram socket."""
from __future__ import annotations

import collections
import gzip
import json
import re

import pytest

from aws_s3_wodle.lab.buckets import ACCOUNT, BucketsLab

from ..conftest import run_wodle
from ..helpers import received_events

ARGS = ("--once", "--sqs-wait", "1")


@pytest.fixture
def make_lab(moto_server):
    def make(**kwargs) -> BucketsLab:
        return BucketsLab(endpoint=moto_server.endpoint, **kwargs).create()
    return make


def _key(record: dict) -> str:
    return json.dumps(record, sort_keys=True)


def _check_delivered(events: list[dict], lab: BucketsLab, objects, source: str = "custom") -> None:
    """Every expected record arrived exactly once, wrapped, with its own object's key and bucket."""
    expected = collections.Counter()
    for obj in objects:
        for record in obj.records:
            expected[(obj.key, _key(record))] += 1
    got = collections.Counter()
    for event in events:
        assert event["integration"] == "aws"
        aws = dict(event["aws"])
        assert aws.pop("source") == source
        info = aws.pop("log_info")
        assert info["s3bucket"] == lab.bucket
        got[(info["log_file"], _key(aws))] += 1
    assert got == expected


def _run(lab, engine, tmp_path, conf_text=None, *extra, env=None):
    conf = tmp_path / "ossec.conf"
    conf.write_text(conf_text or lab.ossec_conf())
    return run_wodle(lab, conf, *ARGS, "--socket", engine.path, *extra, env=env)


def _summary(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "Run of " in line and " done: " in line]
    assert len(lines) == 1, stderr
    return lines[0]


def test_every_format_plain_gzip_and_zip_through_s3_notifications(make_lab, engine, tmp_path):
    lab = make_lab()
    objects = lab.add_samples(("plain", "gzip", "zip"), records=12)
    proc = _run(lab, engine, tmp_path)
    assert proc.returncode == 0, proc.stderr
    total = sum(o.rows for o in objects)
    _check_delivered(received_events(engine, total), lab, objects)
    assert lab.queue_depth() == 0  # the s3:TestEvent too was deleted, as noise
    summary = _summary(proc.stderr)
    assert f"{len(objects) + 1} messages ({len(objects) + 1} deleted), {len(objects)} objects, {total} events" in summary
    assert "0 errors" in summary and "Traceback" not in proc.stderr
    # keys hold a space and a '+': S3 sends them URL-encoded, the events carry them decoded
    assert all(" " in o.key and "+" in o.key for o in objects)


@pytest.mark.parametrize("delivery", ["sns", "eventbridge"])
def test_sns_and_eventbridge_notifications(make_lab, engine, tmp_path, delivery):
    lab = make_lab(delivery=delivery)
    objects = lab.add_samples(("plain", "gzip"), records=8)
    peek = lab.client("sqs").receive_message(QueueUrl=lab.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    bodies = [json.loads(m["Body"]) for m in peek["Messages"]]
    assert len(bodies) >= 5
    if delivery == "sns":  # the S3 notification inside SNS's envelope
        assert all(b["Type"] == "Notification" for b in bodies)
        assert sum("Records" in json.loads(b["Message"]) for b in bodies) >= len(bodies) - 1  # and the TestEvent
    else:
        assert all(b["detail-type"] == "Object Created" and b["source"] == "aws.s3" for b in bodies)
    proc = _run(lab, engine, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_delivered(received_events(engine, sum(o.rows for o in objects)), lab, objects)
    assert lab.queue_depth() == 0


def test_one_notification_naming_several_objects(make_lab, engine, tmp_path):
    lab = make_lab()
    objects = lab.add_samples(("plain", "gzip"), records=5, quiet=True)  # outside the notified prefix
    lab.notify([o.key for o in objects])
    proc = _run(lab, engine, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_delivered(received_events(engine, sum(o.rows for o in objects)), lab, objects)
    assert f"2 messages (2 deleted), {len(objects)} objects" in _summary(proc.stderr)  # with the s3:TestEvent
    assert lab.queue_depth() == 0


def test_discard_regex_drops_and_counts(make_lab, engine, tmp_path):
    lab = make_lab()
    objects = lab.add_samples(("plain",), records=20)
    rule = re.compile("log(in|out)$")
    dropped = sum(1 for o in objects for r in o.records if isinstance(r.get("action"), str) and rule.match(r["action"]))
    for obj in objects:
        obj.records = [r for r in obj.records if not (isinstance(r.get("action"), str) and rule.match(r["action"]))]
    kept = sum(o.rows for o in objects)
    assert dropped > 10 and kept > 10
    proc = _run(lab, engine, tmp_path, lab.ossec_conf(discard=("action", "log(in|out)$")))
    assert proc.returncode == 0, proc.stderr
    _check_delivered(received_events(engine, kept), lab, objects)
    assert f"{kept} events" in _summary(proc.stderr) and f"{dropped} discarded" in _summary(proc.stderr)
    assert lab.queue_depth() == 0


def test_discard_regex_on_plain_text_lines(make_lab, engine, tmp_path):
    lab = make_lab()
    lines = [f"May  1 12:00:0{i} host sshd[1]: {'Failed' if i % 2 else 'Accepted'} password for u{i}" for i in range(8)]
    obj = lab.put(f"{lab.prefix}auth.log", "\n".join(lines).encode(), [{"full_log": line} for line in lines])
    obj.records = [r for r in obj.records if "Accepted" in r["full_log"]]
    proc = _run(lab, engine, tmp_path, lab.ossec_conf(discard=("any.field", r".*sshd\[\d+\]: Failed")))
    assert proc.returncode == 0, proc.stderr
    _check_delivered(received_events(engine, 4), lab, [obj])
    assert "4 discarded" in _summary(proc.stderr)


def test_corrupt_object_next_to_good_ones(make_lab, engine, tmp_path):
    lab = make_lab()
    good = lab.add_samples(("gzip",), records=6, quiet=True)[:3]
    lines = b"".join(json.dumps({"uid": f"cut-{i}", "pad": "x" * 200}).encode() + b"\n" for i in range(3000))
    truncated = gzip.compress(lines)[:-5000]
    bad = lab.put("quiet/bad/truncated one.json.gz", truncated, [], "truncated")
    lab.notify([good[0].key, bad.key, good[1].key, good[2].key])  # one message, four objects
    binary = lab.put(f"{lab.prefix}bad/binary.bin", bytes(range(256)) * 4, [], "binary")  # S3's own notification
    proc = _run(lab, engine, tmp_path)
    assert proc.returncode == 5, proc.stderr
    events = received_events(engine, sum(o.rows for o in good))
    good_events = [e for e in events if e["aws"]["log_info"]["log_file"] != bad.key]
    _check_delivered(good_events, lab, good)
    errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
    assert any(f"s3://{lab.bucket}/{bad.key}" in e and "truncated gzip data" in e for e in errors), proc.stderr
    assert any(f"s3://{lab.bucket}/{binary.key}" in e and "binary data" in e for e in errors), proc.stderr
    assert "Traceback" not in proc.stderr and "2 errors" in _summary(proc.stderr)
    assert lab.queue_depth() == 2  # both messages kept (received, not deleted): they come back


def test_security_hub_one_event_per_finding(make_lab, engine, tmp_path):
    lab = make_lab()
    objects = [lab.add_security_hub(4, 3, layout="concatenated", compression="gzip", seed=1),
               lab.add_security_hub(3, 2, layout="lines", compression="plain", seed=2)]
    proc = _run(lab, engine, tmp_path, lab.ossec_conf("security_hub"))
    assert proc.returncode == 0, proc.stderr
    events = received_events(engine, 18)
    _check_delivered(events, lab, objects, source="securityhub")
    ids = [e["aws"]["finding"]["Id"] for e in events]
    assert len(ids) == 18 == len(set(ids))
    assert "security_hub subscriber" in _summary(proc.stderr)
    assert lab.queue_depth() == 0


def test_security_hub_discard_by_finding_field(make_lab, engine, tmp_path):
    lab = make_lab()
    obj = lab.add_security_hub(5, 4, seed=3)
    archived = [r for r in obj.records if r["finding"]["RecordState"] == "ARCHIVED"]
    obj.records = [r for r in obj.records if r["finding"]["RecordState"] != "ARCHIVED"]
    conf = lab.ossec_conf("security_hub", discard=("finding.RecordState", "ARCHIVED"))
    proc = _run(lab, engine, tmp_path, conf)
    assert proc.returncode == 0, proc.stderr
    _check_delivered(received_events(engine, obj.rows), lab, [obj], source="securityhub")
    assert archived and f"{len(archived)} discarded" in _summary(proc.stderr)


def test_security_hub_rejects_objects_that_are_not_findings(make_lab, engine, tmp_path):
    lab = make_lab()
    good = lab.add_security_hub(2, 2, seed=4)
    bad = lab.put(f"{lab.prefix}securityhub/other.json", b'{"hello": "world"}\n', [], "not findings")
    proc = _run(lab, engine, tmp_path, lab.ossec_conf("security_hub"))
    assert proc.returncode == 5, proc.stderr
    _check_delivered(received_events(engine, good.rows), lab, [good], source="securityhub")
    assert bad.key in proc.stderr and "neither an EventBridge event of Security Hub" in proc.stderr


@pytest.mark.parametrize("form", ["arn", "url"])
def test_queue_by_arn_or_url_takes_its_region(make_lab, engine, tmp_path, form):
    lab = make_lab(region="eu-west-1")
    objects = lab.add_samples(("gzip",), records=3)
    name = {"arn": f"arn:aws:sqs:eu-west-1:{ACCOUNT}:{lab.queue_name}",
            "url": f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/{lab.queue_name}"}[form]
    elsewhere = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
    # by name alone the queue is looked for in the wodle's own region, and is not there
    by_name = _run(lab, engine, tmp_path, lab.ossec_conf(), env=elsewhere)
    assert by_name.returncode == 3 and lab.queue_name in by_name.stderr, by_name.stderr
    proc = _run(lab, engine, tmp_path, lab.ossec_conf(sqs_name=name), env=elsewhere)
    assert proc.returncode == 0, proc.stderr
    _check_delivered(received_events(engine, sum(o.rows for o in objects)), lab, objects)
    assert lab.queue_depth() == 0


def test_deletion_notifications_are_noise(make_lab, engine, tmp_path):
    lab = make_lab()
    lab.client("s3").put_bucket_notification_configuration(Bucket=lab.bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": lab.queue_arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": lab.prefix}]}}}]})
    objects = lab.add_samples(("plain", "gzip"), records=4)
    proc = _run(lab, engine, tmp_path)
    assert proc.returncode == 0, proc.stderr
    _check_delivered(received_events(engine, sum(o.rows for o in objects)), lab, objects)
    lab.client("s3").delete_object(Bucket=lab.bucket, Key=objects[0].key)
    peek = lab.client("sqs").receive_message(QueueUrl=lab.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert [r["eventName"] for m in peek["Messages"] for r in json.loads(m["Body"])["Records"]] == \
        ["ObjectRemoved:Delete"]
    proc = _run(lab, engine, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"Ignoring the ObjectRemoved:Delete record of s3://{lab.bucket}/{objects[0].key}" in proc.stderr
    assert "1 messages (1 deleted), 0 objects" in _summary(proc.stderr)
    assert "0 errors" in _summary(proc.stderr) and lab.queue_depth() == 0

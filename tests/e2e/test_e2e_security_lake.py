"""End to end: moto's server over HTTP, the real CLI in its own process, a real Unix datagram socket."""
from __future__ import annotations

import collections
import json
import re

import pyarrow.parquet as pq
import pytest

from aws_s3_wodle.decode.formats.parquet import iter_parquet_events

from ..conftest import SAMPLES, SKIP_NO_SHARED, run_wodle
from ..helpers import received_payloads


def _expected(path) -> list[bytes]:
    return [e for batch in iter_parquet_events(str(path)) for e in batch]


@pytest.mark.skipif(not SAMPLES, reason=SKIP_NO_SHARED)
def test_every_sample_row_arrives_exactly_once(lab, engine, tmp_path):
    for path in SAMPLES:
        lab.add_sample(path)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--run-on-start", "--once", "--socket", engine.path, "--sqs-wait", "1")
    assert proc.returncode == 0, proc.stderr
    expected = collections.Counter(e for path in SAMPLES for e in _expected(path))
    got = collections.Counter(received_payloads(engine, sum(expected.values())))
    assert got == expected  # same JSON documents, each exactly once
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in SAMPLES)
    assert sum(got.values()) == rows
    assert lab.queue_depth() == 0
    # values as the mapping says, checked on delivered events of both OCSF lines
    events = [json.loads(e) for e in got]
    versions = {e["metadata"]["version"] for e in events}
    assert {"1.0.0-rc.2", "1.1.0"} <= versions
    for e in events:
        if "time_dt" in e:
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time_dt"])
        assert isinstance(e.get("unmapped", {}), dict)
        assert None not in e.values()
    summary = [l for l in proc.stderr.splitlines() if "Run of security_lake subscriber" in l]
    assert len(summary) == 1 and f"{len(SAMPLES)} objects, {rows} events" in summary[0]
    assert re.match(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d aws-s3-wodle: INFO: ", summary[0])


def test_generated_rows_exactly_once_and_only_new_objects(lab, engine, tmp_path):
    lab.add_generated(3000, seed=1)
    lab.add_generated(1200, version="1.0.0-rc.2", seed=2)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    args = ("--run-on-start", "--once", "--socket", engine.path, "--sqs-wait", "1", "--batch-size", "1000")
    proc = run_wodle(lab, conf, *args)
    assert proc.returncode == 0, proc.stderr
    uids = collections.Counter(json.loads(e)["metadata"]["uid"] for e in received_payloads(engine, 4200))
    assert len(uids) == 4200 and set(uids.values()) == {1}
    assert lab.queue_depth() == 0
    # a second run sees an empty queue and sends nothing; a third picks up only the new object
    assert run_wodle(lab, conf, *args).returncode == 0
    assert len(engine.datagrams) == 4200
    lab.add_generated(500, seed=3)
    assert run_wodle(lab, conf, *args).returncode == 0
    uids = collections.Counter(json.loads(e)["metadata"]["uid"] for e in received_payloads(engine, 4700))
    assert len(uids) == 4700 and set(uids.values()) == {1}
    assert lab.queue_depth() == 0


def test_engine_down_keeps_messages_queued(lab, tmp_path):
    lab.add_generated(50, seed=4)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--socket", str(tmp_path / "no-engine"), "--sqs-wait", "1",
                     "--engine-retry", "1")
    assert proc.returncode == 4, proc.stderr
    assert "is wazuh-analysisd running?" in proc.stderr and "Traceback" not in proc.stderr
    assert lab.queue_depth() == 1  # received, not deleted: it comes back after the visibility timeout


def test_bad_object_reported_good_ones_delivered(lab, engine, tmp_path):
    good = lab.add_generated(100, seed=5)
    bad_key = lab.key_for("CLOUD_TRAIL_MGMT", "2.0")
    lab.put(bad_key, b"PAR1 this is not parquet", 0, "corrupt")
    lab.notify("aws/missing/object.gz.parquet", 10)
    lab.client("sqs").send_message(QueueUrl=lab.queue_url, MessageBody="not json at all")
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1")
    assert proc.returncode == 5, proc.stderr
    assert len(received_payloads(engine, good.rows)) == good.rows
    assert bad_key in proc.stderr and "aws/missing/object.gz.parquet" in proc.stderr and "NoSuchKey" in proc.stderr
    assert "not a notification we understand" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "3 errors" in proc.stderr


def test_secrets_never_logged(lab, engine, tmp_path):
    lab.add_generated(10, seed=6)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", "--debug", "3")
    assert proc.returncode == 0, proc.stderr
    for secret in (lab.external_id, "lab-secret-key"):
        assert secret not in proc.stderr
    # the assumed role's credentials (fresh ones per AssumeRole call, so not known here): wherever the AWS SDK's
    # debug lines show one of their fields with a value, the value is masked
    values = re.compile(r"(?i)(<SecretAccessKey>|<SessionToken>|x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)(.{0,3})")
    shown = collections.Counter()
    for m in values.finditer(proc.stderr):
        assert m.group(2) == "***", proc.stderr[max(0, m.start() - 80):m.end() + 80]
        shown[m.group(1)[:6].lower()] += 1
    assert shown["<secre"] >= 1 and shown["<sessi"] >= 1 and shown["x-amz-"] >= 1, shown  # the check saw them


def test_jsonl_output_to_stdout(lab, tmp_path):
    lab.add_generated(25, seed=7)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--output", "-", "--sqs-wait", "1")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(l) for l in proc.stdout.splitlines()]
    assert sorted(r["metadata"]["uid"] for r in rows) == sorted(f"7-{i}" for i in range(25))

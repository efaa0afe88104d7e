"""A bucket object half-delivered by a version before the shared store (its progress counted in records)
resumes after exactly the records that version sent: moto's server over real HTTP, in-process."""
from __future__ import annotations

import json
import sqlite3
import threading

from aws_s3_wodle.config.buckets import BucketConfig
from aws_s3_wodle.config.discard import parse_discard_regex
from aws_s3_wodle.lab.buckets_prefix import ACCOUNTS, REGIONS
from aws_s3_wodle.sinks.jsonl import JsonLinesSink
from aws_s3_wodle.sources.listing.run import BucketOptions, BucketRun
from aws_s3_wodle.sources.listing.state import Scope, StateStore

from ..delivery.test_checkpoint_upgrade import OLD_STATE_SCHEMA
from .test_bucket_types_run import TODAY, bucket_lab  # noqa: F401 - a fixture


def test_a_schema_1_inflight_row_resumes_after_its_records(bucket_lab, tmp_path):  # noqa: F811
    obj = bucket_lab.add("cloudtrail", day=TODAY, records=25)
    prefix = f"AWSLogs/{ACCOUNTS[0]}/CloudTrail/{REGIONS[0]}/"
    etag = bucket_lab.client().head_object(Bucket=bucket_lab.bucket, Key=obj.key)["ETag"].strip('"')
    old = sqlite3.connect(tmp_path / "state.db", isolation_level=None)  # what the old version left
    old.executescript(OLD_STATE_SCHEMA)
    old.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    old.execute("INSERT INTO inflight VALUES (?,?,?,?,?,?,?)",
                (bucket_lab.bucket, "cloudtrail", prefix, obj.key, etag, 20, "2026-12-01T00:00:00Z"))
    old.close()
    state = StateStore(tmp_path / "state.db")
    sink = JsonLinesSink(str(tmp_path / "out.jsonl"))
    # discarded records make events and records differ: 5 of the first 20 records (DescribeInstances) gave no event
    block = BucketConfig(name=bucket_lab.bucket, kind="cloudtrail",
                         discard_regex=parse_discard_regex("^Describe", {"field": "eventName"}))
    stats = BucketRun(block, bucket_lab.client(), state, sink, BucketOptions(batch_size=10), threading.Event()).run()
    sink.close()
    events = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [e["aws"]["eventID"] for e in events] == [i for n, i in enumerate(obj.ids) if n >= 20 and n % 4 != 1]
    scope = Scope(bucket_lab.bucket, "cloudtrail", prefix)
    assert stats.errors == 0 and state.is_processed(scope, obj.key)
    assert state.legacy_progress(scope, obj.key, etag) == 0 and state.progress(scope, obj.key, etag) == 0
    state.close()

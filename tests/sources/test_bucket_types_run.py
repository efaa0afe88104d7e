"""One pass in-process against moto's server (real HTTP): the cursor and progress rules of run.py."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import threading

import pytest

from aws_s3_wodle.config.buckets import BucketConfig
from aws_s3_wodle.lab.buckets_prefix import ACCOUNTS, REGIONS, BucketLab
from aws_s3_wodle.sinks.jsonl import JsonLinesSink
from aws_s3_wodle.sources.listing.run import BucketOptions, BucketRun, utc_today
from aws_s3_wodle.sources.listing.state import Scope, StateStore

TODAY = utc_today()


@pytest.fixture
def bucket_lab(moto_server):
    return BucketLab(endpoint=moto_server.endpoint).create()


def _pass(lab, block, tmp_path, stop=None, **options):
    state = StateStore(tmp_path / "state.db")
    sink = JsonLinesSink(str(tmp_path / "out.jsonl"))
    try:
        stats = BucketRun(block, lab.client(), state, sink, BucketOptions(**options), stop or threading.Event()).run()
    finally:
        sink.close()
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    return stats, state, [json.loads(l) for l in lines]


def _scope(lab, kind, prefix):
    return Scope(lab.bucket, kind, prefix)


def test_cursor_moves_to_yesterday_and_stays_on_a_failed_day(bucket_lab, tmp_path):
    bucket_lab.populate("cloudtrail", days=4, accounts=ACCOUNTS[:1], regions=REGIONS[:1])
    prefix = f"AWSLogs/{ACCOUNTS[0]}/CloudTrail/{REGIONS[0]}/"
    block = BucketConfig(name=bucket_lab.bucket, kind="cloudtrail", only_logs_after=TODAY - dt.timedelta(days=3))
    stats, state, events = _pass(bucket_lab, block, tmp_path)
    assert stats.objects == 4 and state.cursor(_scope(bucket_lab, "cloudtrail", prefix)) == TODAY - dt.timedelta(days=1)
    # a corrupt object two days back holds the cursor on its day, and is tried again
    bad_day = TODAY - dt.timedelta(days=2)
    bucket_lab.client().put_object(Bucket=bucket_lab.bucket, Key=f"{prefix}{bad_day:%Y/%m/%d}/bad.json.gz",
                                   Body=b"\x1f\x8b\x08\x00 broken")
    state.set_cursor(_scope(bucket_lab, "cloudtrail", prefix), TODAY - dt.timedelta(days=3))
    stats, state, _ = _pass(bucket_lab, block, tmp_path)
    assert stats.errors == 1 and stats.objects == 0 and stats.skipped == 4
    assert state.cursor(_scope(bucket_lab, "cloudtrail", prefix)) == bad_day


def test_keys_without_dates_keep_the_cursor_after_a_failure(bucket_lab, tmp_path):
    bucket_lab.add("custom", day=TODAY, path="app/")
    s3 = bucket_lab.client()
    s3.put_object(Bucket=bucket_lab.bucket, Key="app/zz-broken.json.gz", Body=gzip.compress(b'{"a": 1}')[:12])
    start = TODAY - dt.timedelta(days=3)
    block = BucketConfig(name=bucket_lab.bucket, kind="custom", path="app/", only_logs_after=start)
    stats, state, events = _pass(bucket_lab, block, tmp_path)
    assert stats.errors == 1 and len(events) == 5
    assert state.cursor(_scope(bucket_lab, "custom", "app/")) == start  # not past unread objects of any day
    s3.delete_object(Bucket=bucket_lab.bucket, Key="app/zz-broken.json.gz")
    stats, state, events = _pass(bucket_lab, block, tmp_path)
    assert stats.errors == 0 and stats.objects == 0 and len(events) == 5
    assert state.cursor(_scope(bucket_lab, "custom", "app/")) == TODAY - dt.timedelta(days=1)


def test_stop_before_the_pass_reads_nothing_and_keeps_the_start(bucket_lab, tmp_path):
    bucket_lab.populate("vpcflow", days=2, accounts=ACCOUNTS[:1], regions=REGIONS[:1])
    stop = threading.Event()
    stop.set()
    block = BucketConfig(name=bucket_lab.bucket, kind="vpcflow", only_logs_after=TODAY - dt.timedelta(days=1))
    stats, state, events = _pass(bucket_lab, block, tmp_path, stop=stop)
    assert stats.objects == 0 and events == []
    assert state.cursor(_scope(bucket_lab, "vpcflow", f"AWSLogs/{ACCOUNTS[0]}/vpcflowlogs/{REGIONS[0]}/")) is None


def test_progress_after_each_batch_then_resume_skips_what_was_sent(bucket_lab, tmp_path):
    obj = bucket_lab.add("cloudtrail", day=TODAY, records=25)
    prefix = f"AWSLogs/{ACCOUNTS[0]}/CloudTrail/{REGIONS[0]}/"
    scope = _scope(bucket_lab, "cloudtrail", prefix)
    block = BucketConfig(name=bucket_lab.bucket, kind="cloudtrail")
    state = StateStore(tmp_path / "state.db")
    etag = bucket_lab.client().head_object(Bucket=bucket_lab.bucket, Key=obj.key)["ETag"].strip('"')
    state.set_progress(scope, obj.key, etag, 20)  # as if a killed run had sent 2 batches of 10
    state.close()
    stats, state, events = _pass(bucket_lab, block, tmp_path, batch_size=10)
    assert [e["aws"]["eventID"] for e in events] == obj.ids[20:]
    assert state.is_processed(scope, obj.key) and state.progress(scope, obj.key, etag) == 0


def _deep(levels: int) -> bytes:
    return b'{"a":' * levels + b'1' + b'}' * levels + b"\n"


def test_deeply_nested_object_is_an_object_error_not_a_crash(bucket_lab, tmp_path):
    bucket_lab.add("custom", day=TODAY, path="app/")
    s3 = bucket_lab.client()
    s3.put_object(Bucket=bucket_lab.bucket, Key="app/deep.json", Body=_deep(3000))
    block = BucketConfig(name=bucket_lab.bucket, kind="custom", path="app/", only_logs_after=TODAY)
    stats, state, events = _pass(bucket_lab, block, tmp_path)
    assert stats.errors == 1 and stats.objects == 1 and len(events) == 5
    assert not state.is_processed(_scope(bucket_lab, "custom", "app/"), "app/deep.json")


def test_an_unexpected_decoder_exception_is_an_object_error(bucket_lab, tmp_path, caplog):
    import dataclasses
    from aws_s3_wodle.sources.listing import run as run_module

    bucket_lab.add("custom", day=TODAY, path="app/")
    block = BucketConfig(name=bucket_lab.bucket, kind="custom", path="app/", only_logs_after=TODAY)

    def broken(spool, key, limits=None):
        yield {"ok": 1}
        raise KeyError("surprise")

    state = StateStore(tmp_path / "state.db")
    sink = JsonLinesSink(str(tmp_path / "out.jsonl"))
    run = BucketRun(block, bucket_lab.client(), state, sink, BucketOptions(), threading.Event())
    run.btype = dataclasses.replace(run_module.TYPES["custom"], parse=broken)
    with caplog.at_level("ERROR", logger="aws-s3-wodle"):
        stats = run.run()
    sink.close()
    assert stats.errors == 1 and stats.objects == 0
    [line] = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert bucket_lab.objects[-1].key in line and "KeyError" in line and "surprise" in line

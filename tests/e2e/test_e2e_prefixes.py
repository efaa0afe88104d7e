"""Dated and partitioned layouts end to end: the CLI as its own process, moto's server reached through the
lab's proxy (aws_s3_wodle/lab/faults.py, no fault set: it only counts the calls), a real datagram socket.

The point of reading by day: ListObjectsV2 calls grow with the days read, not with what the bucket holds.
"""
from __future__ import annotations

import collections
import datetime as dt

import pytest

from aws_s3_wodle.lab.buckets_prefix import ACCOUNTS, REGIONS, BucketLab, event_id
from aws_s3_wodle.lab.faults import FaultProxy

from ..helpers import received_events
from .test_e2e_bucket_types import Wodle, day, ids_of, since

DATED_PATH = "app/year=///YYYY///month=///mm///day=///dd///hour=///HH//"  # as written for other collectors
DATED_KEYS = "year=%Y/month=%m/day=%d/hour=%H/"                            # what the lab writes, by strftime


@pytest.fixture
def proxy(moto_server):
    with FaultProxy(moto_server.endpoint) as p:
        yield p


def _wodle(lab: BucketLab, tmp_path, engine, proxy: FaultProxy, name: str) -> Wodle:
    wodle = Wodle(lab, tmp_path / name, engine)
    wodle.env["AWS_ENDPOINT_URL"] = proxy.endpoint
    return wodle


def _lists(proxy: FaultProxy, wodle: Wodle, *args: str):
    before = proxy.count("s3", "ListObjects")
    proc = wodle.run(*args)
    return proc, proxy.count("s3", "ListObjects") - before


def _dated_bucket(moto_server, days: int, kms_key: str = "") -> tuple[BucketLab, list]:
    lab = BucketLab(endpoint=moto_server.endpoint).create()
    objects = []
    for back in range(days):
        objects.append(lab.add("custom", day=day(back), path="app/", dated=DATED_KEYS, records=2,
                               kms_key=kms_key or None))
        if back < 3:  # a second hour on the days read
            objects.append(lab.add("custom", day=day(back), path="app/", dated=DATED_KEYS.replace("%H", "23"),
                                   records=2, kms_key=kms_key or None))
    return lab, objects


def test_dated_custom_path_lists_the_days_read_not_the_bucket(moto_server, engine, proxy, tmp_path):
    """60 days in one bucket, 10 in another, only_logs_after 3 days ago: the same 4 listings (one a day)."""
    calls = {}
    for days in (60, 10):
        lab, objects = _dated_bucket(moto_server, days)
        wodle = _wodle(lab, tmp_path, engine, proxy, f"b{days}")
        wodle.configure({"type": "custom", "path": DATED_PATH, "only_logs_after": since(3)})
        before = len(received_events(engine))
        first, calls[days] = _lists(proxy, wodle)
        window = [o for o in objects if o.day >= day(3)]
        events = received_events(engine, before + sum(len(o.ids) for o in window))[before:]
        got = collections.Counter(event_id("custom", e) for e in events)
        assert got == ids_of(window), "every record of the days read, once; none of the days before"
        assert {e["aws"]["log_info"]["log_file"] for e in events} == {o.key for o in window}
        assert f"{len(window)} objects (0 already read)" in first.stderr

        second, relisted = _lists(proxy, wodle)  # nothing new: nothing sent, yesterday and today listed again
        assert len(received_events(engine)) == before + len(events)
        assert "0 events" in second.stderr and relisted == 2
    assert calls == {60: 4, 10: 4}


def test_kms_encrypted_objects_are_read_like_any_other(moto_server, engine, proxy, tmp_path):
    lab = BucketLab(endpoint=moto_server.endpoint).create()
    key = lab.kms_key()
    objects = [lab.add("custom", day=day(back), path="fh/", dated="%Y-%m-%d/", records=3, kms_key=key)
               for back in range(3)]
    head = lab.client().head_object(Bucket=lab.bucket, Key=objects[0].key)
    assert head["ServerSideEncryption"] == "aws:kms"
    wodle = _wodle(lab, tmp_path, engine, proxy, "kms")
    wodle.configure({"type": "custom", "path": "fh///YYYY//-//mm//-//dd//", "only_logs_after": since(2)})
    wodle.run()
    events = received_events(engine, 9)
    assert collections.Counter(event_id("custom", e) for e in events) == ids_of(objects)


def test_hive_vpc_flow_logs_with_hourly_partitions(moto_server, engine, proxy, tmp_path):
    """Hive-compatible folders are found beside the plain ones; 8 days in the bucket, 2 read."""
    lab = BucketLab(endpoint=moto_server.endpoint).create()
    objects = lab.populate("vpcflow", days=8, hive=True, per_hour=True)              # 2 accounts x 2 regions
    objects += lab.populate("vpcflow", days=8, accounts=("333333333333",), regions=REGIONS[:1])  # plain layout
    wodle = _wodle(lab, tmp_path, engine, proxy, "hive")
    wodle.configure({"type": "vpcflow", "only_logs_after": since(1)})
    _, calls = _lists(proxy, wodle)
    window = [o for o in objects if o.day >= day(1)]
    events = received_events(engine, sum(len(o.ids) for o in window))
    assert collections.Counter(event_id("vpcflow", e) for e in events) == ids_of(window)
    assert {e["aws"]["log_info"]["log_file"] for e in events} == {o.key for o in window}
    targets = len(ACCOUNTS) * len(REGIONS) + 1
    # AWSLogs/ once, each account's region folders once, then each target's two days
    assert calls == 1 + (len(ACCOUNTS) + 1) + targets * 2
    second, _ = _lists(proxy, wodle)
    assert "0 events" in second.stderr and len(received_events(engine)) == len(events)


def test_date_partitioned_server_access_logs_beside_simple_keys(moto_server, engine, proxy, tmp_path):
    lab = BucketLab(endpoint=moto_server.endpoint).create()
    objects = []
    for back in range(6):
        objects.append(lab.add("server_access", day=day(back), path="logs/"))  # the simple layout
        for account in ACCOUNTS:
            for region in REGIONS:
                objects.append(lab.add("server_access", day=day(back), path="logs/", account=account, region=region,
                                       partitioned="lab-website"))
    wodle = _wodle(lab, tmp_path, engine, proxy, "access")
    wodle.configure({"type": "server_access", "path": "logs", "only_logs_after": since(2)})
    _, calls = _lists(proxy, wodle)
    window = [o for o in objects if o.day >= day(2)]
    events = received_events(engine, sum(len(o.ids) for o in window))
    assert collections.Counter(event_id("server_access", e) for e in events) == ids_of(window)
    targets = 1 + len(ACCOUNTS) * len(REGIONS)
    # accounts (one '-' delimited listing), regions per account, source buckets per region, then 3 days each
    assert calls == 1 + len(ACCOUNTS) + len(ACCOUNTS) * len(REGIONS) + targets * 3
    second, _ = _lists(proxy, wodle)
    assert "0 events" in second.stderr and len(received_events(engine)) == len(events)

"""Date variables in <path> (config/datepath.py) and how the listing reads them: one prefix per day."""
from __future__ import annotations

import datetime as dt
import re
import threading

import pytest

from aws_s3_wodle.config.buckets import BucketConfig
from aws_s3_wodle.config.datepath import DatePath, has_variables
from aws_s3_wodle.config.reader import parse_config_bytes
from aws_s3_wodle.errors import ConfigError
from aws_s3_wodle.lab.buckets_prefix import BucketLab
from aws_s3_wodle.sinks.jsonl import JsonLinesSink
from aws_s3_wodle.sources.listing import lister as listing
from aws_s3_wodle.sources.listing.layouts import TYPES
from aws_s3_wodle.sources.listing.run import BucketOptions, BucketRun, utc_today

from ..helpers import one_block_conf

DAY = dt.date(2026, 1, 5)

EXPANDED = [
    # as written                                              head                 the day's prefix
    ("logs///YYYY///mm///dd//", "logs/", "2026/01/05/"),
    ("/logs///YYYY///m///d//", "logs/", "2026/1/5/"),
    ("CustomPrefix/year=///YYYY///month=///mm///day=///dd//", "CustomPrefix/year=", "2026/month=01/day=05/"),
    ("app/year=//YYYY///month=//mm///day=//dd///hour=//HH//", "app/year=", "2026/month=01/day=05/hour="),
    ("//YYYY//-//mm//-//dd//", "", "2026-01-05/"),
    ("fh///YYYY///mm///dd///HH///MM//", "fh/", "2026/01/05/"),
    ("logs\\\\\\YYYY\\\\\\mm\\\\\\dd\\\\", "logs/", "2026/01/05/"),
]


@pytest.mark.parametrize("text,head,prefix", EXPANDED)
def test_a_path_expands_to_one_prefix_per_day(text, head, prefix):
    path = DatePath.parse(text)
    assert has_variables(text)
    assert (path.head, path.day_prefix(DAY)) == (head, prefix)
    if "H" not in text and "M" not in text:
        assert path.pattern.fullmatch(head + prefix)  # the day's own folder fits the whole path


def test_hour_and_minute_variables_are_matched_not_listed():
    path = DatePath.parse("fh///YYYY///mm///dd///HH///M//")
    assert path.day_prefix(DAY) == "2026/01/05/"  # listed once a day, whatever the hours
    assert path.pattern.match("fh/2026/01/05/23/7/stream-1.gz")
    assert path.pattern.match("fh/2026/01/05/23/59/stream-1.gz")
    assert not path.pattern.match("fh/2026/01/05/x3/7/stream-1.gz")
    assert not path.pattern.match("fh/2026/01/05/stray.gz")


def test_month_and_minute_are_not_confused():
    month = DatePath.parse("l///YYYY///mm///dd//")
    minute = DatePath.parse("l///YYYY///m///dd///HH///MM//")
    assert month.day_prefix(dt.date(2026, 11, 5)) == "2026/11/05/"
    assert minute.day_prefix(dt.date(2026, 11, 5)) == "2026/11/05/"
    assert minute.pattern.match("l/2026/11/05/10/45/x") and not month.pattern.match("l/2026/11/5/x")


BAD_PATHS = [
    ("logs///yyyy///mm///dd//", "empty folder ('//')"),
    ("logs///YYYY///mm//", "add day"),
    ("logs///HH///YYYY///mm///dd//", "after the year, month and day"),
    ("logs///YYYY///m//1//dd//", "//m// (no leading zero) must be followed"),
    ("logs///YYYY///mm///d//HH//", "//d// (no leading zero) must be followed"),
    ("lo gs///YYYY///mm///dd//", "without spaces"),
]


@pytest.mark.parametrize("text,problem", BAD_PATHS)
def test_a_bad_path_is_one_line_naming_the_element(text, problem):
    conf = one_block_conf("bucket", "custom", f"<name>lab-logs</name><path>{text}</path>")
    with pytest.raises(ConfigError) as err:
        parse_config_bytes(conf, "/etc/ossec.conf")
    msg = str(err.value)
    assert msg.startswith("/etc/ossec.conf:4: <path>") and problem in msg and "\n" not in msg, msg


def test_variables_only_where_aws_does_not_date_the_keys():
    conf = one_block_conf("bucket", "cloudtrail", "<name>lab-logs</name><path>t///YYYY///mm///dd//</path>")
    with pytest.raises(ConfigError, match="date variables, which are for custom, guardduty, waf only"):
        parse_config_bytes(conf, "/etc/ossec.conf")
    for kind in ("custom", "guardduty", "waf"):
        conf = one_block_conf("bucket", kind, "<name>lab-logs</name><path>t///YYYY///mm///dd//</path>")
        (block,) = [b for w in parse_config_bytes(conf, "/etc/ossec.conf").wodles for b in w.blocks]
        assert block.path == "t///YYYY///mm///dd//"


def test_star_means_every_account():
    conf = one_block_conf("bucket", "cloudtrail", "<name>lab-logs</name><aws_account_id>*</aws_account_id>")
    (block,) = [b for w in parse_config_bytes(conf, "/etc/ossec.conf").wodles for b in w.blocks]
    assert not block.aws_account_id
    conf = one_block_conf("bucket", "cloudtrail", "<name>lab-logs</name><path>o-a1b2c3d4e5/*/</path>")
    with pytest.raises(ConfigError, match="'\\*' is not a folder name"):
        parse_config_bytes(conf, "/etc/ossec.conf")


# --- against moto's server (real HTTP), in process: the ListObjectsV2 calls counted by the lister


@pytest.fixture
def bucket_lab(moto_server):
    return BucketLab(endpoint=moto_server.endpoint).create()


def _run(lab, block, tmp_path):
    from aws_s3_wodle.sources.listing.state import StateStore
    sink = JsonLinesSink(str(tmp_path / "out.jsonl"))
    state = StateStore(tmp_path / "state.db")
    try:
        stats = BucketRun(block, lab.client(), state, sink, BucketOptions(), threading.Event()).run()
    finally:
        sink.close()
        state.close()
    return stats, (tmp_path / "out.jsonl").read_text().splitlines()


def test_unpadded_day_1_is_not_day_10_or_11(bucket_lab, tmp_path):
    """app/2026/1/1/ is a prefix of nothing else: the '/' after //d// is part of the day's prefix."""
    today = utc_today()
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)  # the 1st of last month
    days = [first + dt.timedelta(days=n) for n in (0, 9, 10)]
    objs = [bucket_lab.add("custom", day=d, path="app/", dated=f"{d.year}/{d.month}/{d.day}/", records=2)
            for d in days]
    block = BucketConfig(name=bucket_lab.bucket, kind="custom", path="app///YYYY///m///d//", only_logs_after=first)
    stats, lines = _run(bucket_lab, block, tmp_path)
    assert stats.objects == len(objs) and stats.events == 2 * len(objs) and stats.errors == 0
    assert stats.list_calls == (today - first).days + 1  # one call a day, no discovery


def test_keys_outside_the_pattern_are_left_alone(bucket_lab, tmp_path):
    today = utc_today()
    good = bucket_lab.add("custom", day=today, path="fh/", dated="%Y/%m/%d/%H/", records=3)
    s3 = bucket_lab.client()
    s3.put_object(Bucket=bucket_lab.bucket, Key=f"fh/{today:%Y/%m/%d}/notes.txt", Body=b"not an hour folder\n")
    s3.put_object(Bucket=bucket_lab.bucket, Key=f"fh/{today:%Y/%m/%d}/xx/notes.txt", Body=b"nor this\n")
    block = BucketConfig(name=bucket_lab.bucket, kind="custom", path="fh///YYYY///mm///dd///HH//",
                         only_logs_after=today)
    stats, lines = _run(bucket_lab, block, tmp_path)
    assert stats.objects == 1 and stats.events == 3
    assert {re.search(r'"log_file":"([^"]+)"', l).group(1) for l in lines} == {good.key}


def test_targets_of_each_partitioned_layout(bucket_lab):
    """Which prefixes are read: Hive folders beside plain ones; partitioned server access beside simple keys."""
    today = utc_today()
    bucket_lab.add("vpcflow", day=today, account="111111111111", region="us-east-1", hive=True, per_hour=True)
    bucket_lab.add("vpcflow", day=today, account="222222222222", region="eu-west-1")
    for account, region in (("111111111111", "us-east-1"), ("333333333333", "eu-west-1")):
        bucket_lab.add("server_access", day=today, path="s3/", account=account, region=region,
                       partitioned="lab-website")
    bucket_lab.add("server_access", day=today, path="s3/")
    lister = listing.Lister(bucket_lab.client(), bucket_lab.bucket)

    vpc = listing.targets(BucketConfig(name=bucket_lab.bucket, kind="vpcflow"), TYPES["vpcflow"], lister)
    assert sorted((t.prefix, t.account, t.region, t.layout.hive) for t in vpc) == [
        ("AWSLogs/222222222222/vpcflowlogs/eu-west-1/", "222222222222", "eu-west-1", False),
        ("AWSLogs/aws-account-id=111111111111/aws-service=vpcflowlogs/aws-region=us-east-1/", "111111111111",
         "us-east-1", True)]
    hive = next(t for t in vpc if t.layout.hive)
    assert hive.day_prefix(DAY).endswith("/aws-region=us-east-1/year=2026/month=01/day=05/")

    calls = lister.calls
    access = listing.targets(BucketConfig(name=bucket_lab.bucket, kind="server_access", path="s3/",
                                          aws_account_id=("111111111111",)), TYPES["server_access"], lister)
    assert [(t.prefix, t.account, t.region) for t in access] == [
        ("s3/", "", ""), ("s3/111111111111/us-east-1/lab-website/", "111111111111", "us-east-1")]
    assert access[1].day_prefix(DAY) == "s3/111111111111/us-east-1/lab-website/2026/01/05/"
    assert lister.calls - calls == 3  # accounts (one call), regions, source buckets


def test_firehose_types_read_a_dated_path_without_discovery(bucket_lab):
    """guardduty and waf with date variables: no AWSLogs/ or Firehose guess, no folder listing at all."""
    lister = listing.Lister(bucket_lab.client(), bucket_lab.bucket)
    for kind in ("guardduty", "waf"):
        block = BucketConfig(name=bucket_lab.bucket, kind=kind, path="fh/waf///YYYY///mm///dd///HH//")
        (target,) = listing.targets(block, TYPES[kind], lister)
        assert (target.prefix, target.day_prefix(DAY)) == ("fh/waf/", "fh/waf/2026/01/05/")
        assert target.layout.accepts("fh/waf/2026/01/05/17/stream-1-2026-01-05-17-00-00-abc.gz")
        assert not target.layout.accepts("fh/waf/2026/01/05/stream-1.gz")
    assert lister.calls == 0

"""Bucket blocks end to end: moto's server over HTTP, the CLI as its own process, a real datagram socket.

Every test builds its own bucket with the lab (objects as AWS services write them, over several days,
accounts and regions) and counts, record by record, what the engine received.
"""
from __future__ import annotations

import collections
import datetime as dt
import gzip
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aws_s3_wodle.config.buckets import format_log_date
from aws_s3_wodle.lab.buckets_prefix import ACCOUNTS, KINDS, ORGANIZATION, REGIONS, BucketLab, event_id
from aws_s3_wodle.lab.security_lake import lab_env

from ..helpers import HEADER, received_events

TODAY = dt.datetime.now(dt.timezone.utc).date()
NO_AWSLOGS = ("server_access", "cisco_umbrella", "custom")


def day(back: int) -> dt.date:
    return TODAY - dt.timedelta(days=back)


def since(back: int) -> str:
    return format_log_date(day(back))


@pytest.fixture
def bucket_lab(moto_server):
    return BucketLab(endpoint=moto_server.endpoint).create()


class Wodle:
    """The CLI as an operator runs it, with its own state directory and the lab's AWS environment."""

    def __init__(self, lab: BucketLab, tmp_path: Path, engine) -> None:
        self.lab, self.engine = lab, engine
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.conf = tmp_path / "ossec.conf"
        self.state = tmp_path / "state"
        self.env = {**os.environ, **lab_env(lab.endpoint, lab.region)}

    def configure(self, *blocks: dict) -> None:
        self.conf.write_text(self.lab.ossec_conf(list(blocks)))

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "aws_s3_wodle", "--config", str(self.conf), "--once", "--socket",
                self.engine.path, "--state-dir", str(self.state), *args]

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == expect, proc.stderr
        assert "Traceback" not in proc.stderr
        return proc


def ids_of(objects) -> collections.Counter:
    return collections.Counter(i for o in objects for i in o.ids)


def block_for(kind: str, **extra) -> dict:
    spec = {"type": kind, "only_logs_after": since(7)}
    if kind in ("server_access", "custom"):
        spec["path"] = "logs"
    if kind == "cisco_umbrella":
        spec["path"] = "umbrella/dnslogs"
    return {**spec, **extra}


def populate(lab: BucketLab, kind: str, **kwargs) -> list:
    if kind in ("server_access", "custom"):
        return lab.populate(kind, accounts=[""], regions=[""], path="logs/", **kwargs)
    if kind == "cisco_umbrella":
        return lab.populate(kind, accounts=[""], regions=[""], path="umbrella/", **kwargs)
    objects = lab.populate(kind, **kwargs)
    if kind == "vpcflow":  # a custom flow log format next to the default one
        objects += lab.populate(kind, **{"days": 1, **kwargs, "accounts": ACCOUNTS[:1], "custom_format": True})
    return objects


@pytest.mark.parametrize("kind", KINDS)
def test_every_record_once_then_nothing_then_only_new(kind, bucket_lab, engine, tmp_path):
    objects = populate(bucket_lab, kind)
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure(block_for(kind))
    first = wodle.run()
    expected = ids_of(objects)
    events = received_events(engine, sum(expected.values()))
    assert collections.Counter(event_id(kind, e) for e in events) == expected
    # wrapped as Wazuh's AWS rules expect
    source = {"vpcflow": "vpc", "server_access": "s3_server_access"}.get(kind, kind)
    keys = {o.key for o in objects}
    for e in events:
        assert e["integration"] == "aws" and e["aws"]["source"] == source
        assert e["aws"]["log_info"]["s3bucket"] == bucket_lab.bucket and e["aws"]["log_info"]["log_file"] in keys
    if kind not in NO_AWSLOGS:
        assert {e["aws"]["aws_account_id"] for e in events} == set(ACCOUNTS)
    summary = [line for line in first.stderr.splitlines() if f"Run of {kind} bucket" in line]
    assert len(summary) == 1 and f"{len(objects)} objects (0 already read), {len(events)} events" in summary[0]

    second = wodle.run()  # nothing new: nothing sent
    assert len(received_events(engine)) == len(events)
    # days before yesterday were read in full: the second run lists only yesterday and today again
    relisted = len(objects) if kind == "custom" else len([o for o in objects if o.day >= day(1)])
    assert f"0 objects ({relisted} already read), 0 events" in second.stderr

    later = populate(bucket_lab, kind, days=1, records=3)  # objects that arrive later, today
    wodle.run()
    events = received_events(engine, len(events) + sum(ids_of(later).values()))
    assert collections.Counter(event_id(kind, e) for e in events) == expected + ids_of(later)


def test_only_logs_after_accounts_and_regions_filter(bucket_lab, engine, tmp_path):
    objects = bucket_lab.populate("cloudtrail", days=4)
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure({"type": "cloudtrail", "only_logs_after": since(1), "aws_account_id": ACCOUNTS[1],
                     "regions": REGIONS[0]})
    wodle.run()
    wanted = [o for o in objects if o.day >= day(1) and o.account == ACCOUNTS[1] and o.region == REGIONS[0]]
    assert len(wanted) == 2 and len(objects) == 16
    events = received_events(engine, sum(ids_of(wanted).values()))
    assert collections.Counter(event_id("cloudtrail", e) for e in events) == ids_of(wanted)


def test_default_only_logs_after_is_the_first_run_day(bucket_lab, engine, tmp_path):
    objects = bucket_lab.populate("vpcflow", days=3)
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure({"type": "vpcflow"})
    wodle.run()
    wanted = [o for o in objects if o.day == TODAY]
    events = received_events(engine, sum(ids_of(wanted).values()))
    assert collections.Counter(event_id("vpcflow", e) for e in events) == ids_of(wanted)


def test_organization_trail_and_account_discovery(bucket_lab, engine, tmp_path):
    direct = bucket_lab.populate("cloudtrail", days=1, accounts=ACCOUNTS[:1], regions=REGIONS[:1])
    org = bucket_lab.populate("cloudtrail", days=2, organization=ORGANIZATION)
    other_org = bucket_lab.populate("cloudtrail", days=1, accounts=ACCOUNTS[:1], regions=REGIONS[:1],
                                    organization="o-zzzzzzzzzz")
    assert all(f"AWSLogs/{ORGANIZATION}/" in o.key for o in org)
    # discovery: accounts right under AWSLogs/ and inside every organization folder
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure({"type": "cloudtrail", "only_logs_after": since(3)})
    wodle.run()
    events = received_events(engine, sum(ids_of(direct + org + other_org).values()))
    assert collections.Counter(event_id("cloudtrail", e) for e in events) == ids_of(direct + org + other_org)
    # one organization, one of its accounts
    engine.datagrams.clear()
    wodle2 = Wodle(bucket_lab, tmp_path / "second", engine)
    wodle2.configure({"type": "cloudtrail", "only_logs_after": since(3), "aws_organization_id": ORGANIZATION,
                      "aws_account_id": ACCOUNTS[1]})
    wodle2.run()
    wanted = [o for o in org if o.account == ACCOUNTS[1]]
    events = received_events(engine, sum(ids_of(wanted).values()))
    assert collections.Counter(event_id("cloudtrail", e) for e in events) == ids_of(wanted)


def test_path_before_and_suffix_after_awslogs(bucket_lab, engine, tmp_path):
    inside = bucket_lab.populate("alb", days=1, path="lb-logs/", regions=REGIONS[:1])
    outside = bucket_lab.populate("alb", days=1, regions=REGIONS[:1])  # same layout, no prefix: not ours
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure({"type": "alb", "path": "lb-logs/", "only_logs_after": since(1)})
    wodle.run()
    events = received_events(engine, sum(ids_of(inside).values()))
    assert collections.Counter(event_id("alb", e) for e in events) == ids_of(inside)
    assert not set(ids_of(outside)) & {event_id("alb", e) for e in events}
    # <path_suffix>: AWSLogs/<suffix>/<account>/...
    s3 = bucket_lab.client()
    for obj in outside:
        s3.copy_object(Bucket=bucket_lab.bucket, Key=obj.key.replace("AWSLogs/", "AWSLogs/edge/"),
                       CopySource={"Bucket": bucket_lab.bucket, "Key": obj.key})
    engine.datagrams.clear()
    wodle.configure({"type": "alb", "path_suffix": "edge", "only_logs_after": since(1)})
    wodle.run()
    events = received_events(engine, sum(ids_of(outside).values()))
    assert all("/AWSLogs/edge/" in "/" + e["aws"]["log_info"]["log_file"] for e in events)
    assert collections.Counter(event_id("alb", e) for e in events) == ids_of(outside)


def test_load_balancer_types_share_a_folder_and_read_only_their_files(bucket_lab, engine, tmp_path):
    by_kind = {k: bucket_lab.populate(k, days=1, regions=REGIONS[:1]) for k in ("alb", "nlb", "clb")}
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure(*({"type": k, "only_logs_after": since(0)} for k in by_kind))
    wodle.run()
    events = received_events(engine, sum(sum(ids_of(v).values()) for v in by_kind.values()))
    for kind, objects in by_kind.items():
        got = collections.Counter(event_id(kind, e) for e in events if e["aws"]["source"] == kind)
        assert got == ids_of(objects)


def test_remove_from_bucket_deletes_exactly_the_delivered_objects(bucket_lab, engine, tmp_path):
    objects = bucket_lab.populate("waf", days=3)
    corrupt = f"AWSLogs/{ACCOUNTS[0]}/WAFLogs/{REGIONS[0]}/lab-web-acl/{TODAY:%Y/%m/%d}/00/00/broken.log.gz"
    bucket_lab.client().put_object(Bucket=bucket_lab.bucket, Key=corrupt, Body=b"\x1f\x8b\x08\x00 not gzip")
    before = bucket_lab.keys()
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure({"type": "waf", "only_logs_after": since(1), "regions": REGIONS[0], "remove_from_bucket": "yes"})
    proc = wodle.run(expect=5)  # the corrupt object is reported, the others delivered and removed
    delivered = [o for o in objects if o.day >= day(1) and o.region == REGIONS[0]]
    events = received_events(engine, sum(ids_of(delivered).values()))
    assert collections.Counter(event_id("waf", e) for e in events) == ids_of(delivered)
    assert bucket_lab.keys() == before - {o.key for o in delivered}
    assert corrupt in proc.stderr and "1 errors" in proc.stderr and f"{len(delivered)} objects removed" in proc.stderr


def test_discard_regex_drops_and_counts(bucket_lab, engine, tmp_path):
    objects = bucket_lab.populate("cloudtrail", days=1, accounts=ACCOUNTS[:1], regions=REGIONS[:1], records=8)
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure({"type": "cloudtrail", "only_logs_after": since(0),
                     "discard_regex": ("eventName", "Describe")})
    proc = wodle.run()
    body = bucket_lab.client().get_object(Bucket=bucket_lab.bucket, Key=objects[0].key)["Body"].read()
    names = [r["eventName"] for r in json.loads(gzip.decompress(body))["Records"]]
    dropped = sum(n.startswith("Describe") for n in names)
    assert 0 < dropped < len(names) == 8
    events = received_events(engine, len(names) - dropped)
    assert sorted(e["aws"]["eventName"] for e in events) == sorted(n for n in names if not n.startswith("Describe"))
    assert f"{dropped} events discarded" in proc.stderr


def test_corrupt_tail_records_before_it_sent_once_and_reported_each_run(bucket_lab, engine, tmp_path):
    good = bucket_lab.add("vpcflow", day=TODAY, records=4)
    lines = ["version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
             "action log-status"]
    rnd = random.Random(7)  # not too compressible: the cut falls well inside the records
    lines += [f"2 {ACCOUNTS[0]} eni-{rnd.getrandbits(64):016x} 10.9.{i >> 8}.{i & 255} 10.0.0.1 {2000 + i} 22 6 "
              f"{rnd.randrange(1, 999)} {rnd.randrange(40, 99999)} 1700000000 1700000060 ACCEPT OK" for i in range(3000)]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    key = f"AWSLogs/{ACCOUNTS[0]}/vpcflowlogs/{REGIONS[0]}/{TODAY:%Y/%m/%d}/truncated.log.gz"
    bucket_lab.client().put_object(Bucket=bucket_lab.bucket, Key=key, Body=data[: len(data) * 2 // 3])
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure({"type": "vpcflow", "only_logs_after": since(0)})
    first = wodle.run("--batch-size", "50", expect=5)
    assert key in first.stderr and "truncated" in first.stderr
    events = received_events(engine, 4)
    partial = [e for e in events if e["aws"]["log_info"]["log_file"] == key]
    assert 1000 < len(partial) < 3000
    second = wodle.run("--batch-size", "50", expect=5)  # reported again; nothing of it sent twice
    assert key in second.stderr
    events = received_events(engine)
    counts = collections.Counter(event_id("vpcflow", e) for e in events)
    assert set(counts.values()) == {1}
    assert collections.Counter(i for i in counts if i in good.ids) == ids_of([good])


class GatedEngine:
    """An analysis engine that stops reading after `limit` datagrams (until released): the wodle then
    blocks in send(), in the middle of an object, where the test kills it."""

    def __init__(self, path: str, limit: int) -> None:
        self.path, self.limit = path, limit
        self.datagrams: list[bytes] = []
        self.reading = threading.Event()
        self.reading.set()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.closing = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.closing:
            if not self.reading.wait(0.1):
                continue
            try:
                self.datagrams.append(self.sock.recv(1 << 17))
            except socket.timeout:
                continue
            if len(self.datagrams) == self.limit:
                self.reading.clear()

    def close(self) -> None:
        self.closing = True
        self.thread.join(5)
        self.sock.close()


def test_sigkill_midway_then_rerun_every_record_at_least_once_resends_at_most_the_object_in_flight(
        bucket_lab, tmp_path):
    objects = [bucket_lab.add("cloudtrail", day=TODAY, records=40) for _ in range(30)]  # 1200 records
    engine = GatedEngine(str(tmp_path / "queue"), limit=500)
    try:
        wodle = Wodle(bucket_lab, tmp_path, engine)
        wodle.configure({"type": "cloudtrail", "only_logs_after": since(0)})
        proc = subprocess.Popen(wodle.command(), env=wodle.env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while engine.reading.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the wodle fills the socket's queue and blocks in send()
        assert proc.poll() is None, "the wodle should be blocked on the engine, not finished"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        engine.reading.set()  # the engine reads what was queued before the kill, then all of the rerun
        time.sleep(0.3)
        first_run = len(engine.datagrams)
        with sqlite3.connect(wodle.state / "state.db") as db:
            marked = db.execute("SELECT count(*) FROM processed").fetchone()[0]
        wodle.run()
        time.sleep(0.3)
    finally:
        engine.close()
    ids = collections.Counter(json.loads(d[len(HEADER):])["aws"]["eventID"] for d in engine.datagrams)
    expected = ids_of(objects)
    assert set(ids) == set(expected)  # every record at least once
    resent = {i for i, n in ids.items() if n > 1}
    owners = {o.key for o in objects if resent & set(o.ids)}
    print(f"\nSIGKILL test: {len(expected)} records in {len(objects)} objects; {first_run} datagrams reached the "
          f"engine before the kill ({marked} objects recorded); {len(engine.datagrams) - first_run} after the "
          f"rerun; {len(resent)} records sent twice, from {len(owners)} object(s)")
    assert max(ids.values()) <= 2
    assert len(owners) <= 1 and len(resent) <= 40  # at most the object in flight
    assert sum(ids.values()) == len(expected) + len(resent)


def test_wazuh_flags_run_one_pass(bucket_lab, engine, tmp_path):
    objects = bucket_lab.populate("vpcflow", days=2)
    env = {**os.environ, **lab_env(bucket_lab.endpoint, bucket_lab.region)}
    base = [sys.executable, "-m", "aws_s3_wodle", "--socket", engine.path, "--state-dir", str(tmp_path / "state")]
    flags = ["--bucket", bucket_lab.bucket, "--type", "vpcflow", "--aws_account_id", ACCOUNTS[0], "--regions",
             ",".join(REGIONS), "--only_logs_after", since(1), "--skip_on_error", "--debug", "1"]
    proc = subprocess.run(base + flags, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    wanted = [o for o in objects if o.account == ACCOUNTS[0]]
    events = received_events(engine, sum(ids_of(wanted).values()))
    assert collections.Counter(event_id("vpcflow", e) for e in events) == ids_of(wanted)
    assert "DEBUG: " in proc.stderr
    again = subprocess.run(base + flags, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and len(received_events(engine)) == len(events)
    reparse = subprocess.run(base + flags + ["--reparse"], env=env, capture_output=True, text=True, timeout=120)
    assert reparse.returncode == 0, reparse.stderr
    events = received_events(engine, 2 * len(events))
    assert collections.Counter(event_id("vpcflow", e) for e in events) == ids_of(wanted) + ids_of(wanted)


@pytest.mark.parametrize("flags,text", [
    (["--regions", "mars-1"], "--regions: invalid value 'mars-1'"),
    (["--type", "cloudwatch"], "--type: unknown type 'cloudwatch'"),
    (["--only_logs_after", "2026-13-01"], "--only_logs_after: invalid value"),
    (["--aws_account_id", "12"], "--aws_account_id: invalid value '12'"),
    (["--discard-field", "a.b"], "--discard-field and --discard-regex go together"),
    (["--iam_role_duration", "900"], "no <iam_role_arn>"),
    (["--access_key", "AKIAEXAMPLE"], "--access_key is not supported"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--regions"], "argument -r/--regions: expected one argument"),
])
def test_wazuh_flags_bad_values_one_line_exit_2(flags, text, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--bucket", "some-bucket", *flags, "--output", "-",
                           "--state-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0] and "Traceback" not in proc.stderr
    assert "AKIAEXAMPLE" not in proc.stderr


def test_reset_state_reads_a_bucket_again(bucket_lab, engine, tmp_path):
    objects = bucket_lab.populate("config", days=1)
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure({"type": "config", "only_logs_after": since(0)})
    wodle.run()
    n = sum(ids_of(objects).values())
    assert len(received_events(engine, n)) == n
    proc = subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--reset-state", bucket_lab.bucket, "--state-dir",
                           str(wodle.state)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and f"Forgot {len(objects)} objects" in proc.stderr
    wodle.run()
    assert collections.Counter(event_id("config", e) for e in received_events(engine, 2 * n)) == ids_of(objects) + ids_of(objects)


def test_missing_bucket_is_one_clear_error(moto_server, engine, tmp_path):
    lab = BucketLab(endpoint=moto_server.endpoint, bucket="no-such-bucket-here")
    wodle = Wodle(lab, tmp_path, engine)
    wodle.configure({"type": "cloudtrail"})
    proc = wodle.run(expect=3)
    assert "NoSuchBucket" in proc.stderr and "check <name>" in proc.stderr


def test_firehose_deliveries_guardduty_eventbridge_and_waf_lines(bucket_lab, engine, tmp_path):
    """No AWSLogs/ under <path>: GuardDuty and WAF read Kinesis Firehose's <path>YYYY/MM/DD/HH/ layout."""
    s3 = bucket_lab.client()
    findings = [{"version": "0", "id": f"ev-{i}", "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
                 "account": ACCOUNTS[0], "region": REGIONS[0], "detail": {
                     "id": f"gd-{i}", "severity": 5, "title": "probe", "service": {"serviceName": "guardduty"}}}
                for i in range(3)]
    key = f"gd/{TODAY:%Y/%m/%d/%H}/gd-stream-1-{TODAY:%Y-%m-%d}-00-00-00-abc"
    s3.put_object(Bucket=bucket_lab.bucket, Key=key, Body=gzip.compress("".join(map(json.dumps, findings)).encode()))
    waf = [{"timestamp": 1, "action": "BLOCK", "httpRequest": {"clientIp": "1.2.3.4", "requestId": f"w-{i}",
                                                                "headers": [{"name": "Host", "value": "h"}]}}
           for i in range(4)]
    s3.put_object(Bucket=bucket_lab.bucket, Key=f"waf/{TODAY:%Y/%m/%d/%H}/waf-stream-1",
                  Body="\n".join(map(json.dumps, waf)).encode())
    wodle = Wodle(bucket_lab, tmp_path, engine)
    wodle.configure({"type": "guardduty", "path": "gd", "only_logs_after": since(0)},
                    {"type": "waf", "path": "waf", "only_logs_after": since(0)})
    wodle.run()
    events = received_events(engine, 7)
    gd = sorted(e["aws"]["id"] for e in events if e["aws"]["source"] == "guardduty")
    assert gd == ["gd-0", "gd-1", "gd-2"]  # the EventBridge detail, not the envelope
    assert sorted(e["aws"]["httpRequest"]["requestId"] for e in events if e["aws"]["source"] == "waf") == \
        [f"w-{i}" for i in range(4)]
    assert all("aws_account_id" not in e["aws"] for e in events)


def test_lab_buckets_demo_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "aws_s3_wodle", "lab", "bucket-types", "--dir", str(tmp_path),
                           "--days", "1", "--records", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "demo: OK, every record delivered once, nothing on the second run" in proc.stdout
    assert "the second run delivered 0 events" in proc.stdout

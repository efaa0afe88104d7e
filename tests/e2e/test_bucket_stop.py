"""A SIGTERM while a bucket object downloads ends the run at once, and nothing is lost or sent twice.

The lab's fault proxy stalls the object's download half-way for a minute (a slow or stuck S3
connection); the CLI runs as its own process, as an operator runs it, into a real datagram socket.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import os
import subprocess
import time

from aws_s3_wodle.lab.faults import FaultProxy, Rule
from aws_s3_wodle.lab.security_lake import lab_env

from ..helpers import HEADER, terminate
from .test_e2e_bucket_types import TODAY, Wodle, bucket_lab, ids_of  # noqa: F401 - bucket_lab is a fixture


def test_sigterm_during_a_bucket_download_ends_within_2_s_and_the_next_run_delivers_all_once(
        bucket_lab, engine, tmp_path):  # noqa: F811
    first = bucket_lab.add("cloudtrail", day=TODAY, records=30)
    stalled = bucket_lab.add("cloudtrail", day=TODAY, records=40)
    later = bucket_lab.add("cloudtrail", day=TODAY, records=20)
    objects = [first, stalled, later]
    wodle = Wodle(bucket_lab, tmp_path, engine)
    since = (TODAY - dt.timedelta(days=1)).strftime("%Y-%b-%d")
    wodle.configure({"type": "cloudtrail", "only_logs_after": since})
    with FaultProxy(bucket_lab.endpoint, (Rule("s3", "GetObject", key=stalled.key, stall=60.0),)) as proxy:
        env = {**os.environ, **lab_env(proxy.endpoint, bucket_lab.region)}
        proc = subprocess.Popen(wodle.command(), env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not proxy.faults_seen() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proxy.faults_seen(), "the stalled download never started"
        time.sleep(0.5)  # the wodle now waits in the middle of the object's body
        assert proc.poll() is None, "the run should be waiting for the stalled download"
        took, stderr = terminate(proc)
    assert took < 2.0, f"the run took {took:.1f} s to end after SIGTERM:\n{stderr}"
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "stopped while downloading" in stderr
    assert "ending now" not in stderr  # a graceful stop, not the deadline's
    time.sleep(0.3)
    before = len(engine.datagrams)
    wodle.run()  # S3 answers normally now
    time.sleep(0.3)
    ids = collections.Counter(json.loads(d[len(HEADER):])["aws"]["eventID"] for d in engine.datagrams)
    assert ids == ids_of(objects), "every record exactly once over the two runs"
    assert len(engine.datagrams) > before  # the rest came with the second run


def test_sigterm_while_s3_throttles_the_listing_ends_within_2_s_as_a_stop_not_a_failure(bucket_lab, engine,
                                                                                    tmp_path):  # noqa: F811
    from aws_s3_wodle.lab.faults import throttled
    obj = bucket_lab.add("cloudtrail", day=TODAY, records=10)
    wodle = Wodle(bucket_lab, tmp_path, engine)
    since = (TODAY - dt.timedelta(days=1)).strftime("%Y-%b-%d")
    wodle.configure({"type": "cloudtrail", "only_logs_after": since})
    with FaultProxy(bucket_lab.endpoint, (throttled("s3", "ListObjects"),)) as proxy:  # the lab names bucket GETs so
        env = {**os.environ, **lab_env(proxy.endpoint, bucket_lab.region)}
        proc = subprocess.Popen(wodle.command(), env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while proxy.count("s3", "ListObjects", faulted=True) < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the listing was never tried twice"
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read()
        took, stderr = terminate(proc)
    assert took < 2.0, f"the run took {took:.1f} s to end after SIGTERM:\n{stderr}"
    assert proc.returncode == 130, stderr
    assert "stopped while listing" in stderr and "ERROR" not in stderr and "Traceback" not in stderr
    wodle.run()  # S3 answers normally now: the next run reads it all
    time.sleep(0.3)
    assert collections.Counter(json.loads(d[len(HEADER):])["aws"]["eventID"] for d in engine.datagrams) == ids_of([obj])

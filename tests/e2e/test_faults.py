"""Delivery under faults, end to end: the real CLI in its own process, moto's server behind a fault-injecting
proxy of ours (aws_s3_wodle/lab/faults.py), and real Unix datagram sockets as the engine.

Each test counts what the engine received per event uid (`metadata.uid` is unique per generated row):
expected, delivered, duplicates, lost. The figures are collected in TABLE, which conftest.py prints in
the summary of every pytest run ("delivery under faults").

Every scenario runs in both modes of a run (the `mode` fixture): serial (`--parallel-objects 1`, one
object at a time) and pipelined (`--parallel-objects 2`: two objects in flight, each decoded ahead of its
sending, messages received up to 10 at a time once objects end quickly, deleted in batches, and settled in
whatever order their objects end; the default is the same loop with up to 16 in flight).
"""
from __future__ import annotations

import collections
import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Optional
from urllib.parse import quote_plus

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aws_s3_wodle.lab.buckets import BucketsLab
from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.faults import FaultProxy, Rule
from aws_s3_wodle.lab.ocsf import write_ocsf_parquet
from aws_s3_wodle.lab.security_lake import SecurityLakeLab, lab_env

from ..conftest import run_wodle
from ..helpers import drain

HEADER = b"1:Wazuh-AWS:"
TABLE: list[tuple[str, str, int, int, int, int]] = []

# The two modes of a subscriber run and their --parallel-objects: the serial loop, and the pipelined loop.
MODES = {"serial": 1, "pipelined": 2}


@pytest.fixture(params=list(MODES))
def mode(request) -> str:
    return request.param


def parallel(mode: str) -> tuple[str, str]:
    return ("--parallel-objects", str(MODES[mode]))


# --- helpers

def conf_with(lab, **options) -> str:
    """The lab's ossec.conf with extra subscriber options, e.g. visibility_timeout=5."""
    extra = "".join(f"      <{k}>{v}</{k}>\n" for k, v in options.items())
    return lab.ossec_conf().replace("    </subscriber>", extra + "    </subscriber>")


def write_conf(tmp_path: Path, lab, name: str = "ossec.conf", **options) -> Path:
    conf = tmp_path / name
    conf.write_text(conf_with(lab, **options))
    return conf


def uids(*engines: DatagramEngine) -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for engine in engines:
        for d in list(engine.datagrams):
            assert d.startswith(HEADER)
            event = json.loads(d[len(HEADER):])
            out[(event.get("metadata") or event["aws"]["metadata"])["uid"]] += 1  # OCSF, or wrapped by buckets
    return out


def expected_uids(*objects) -> set[str]:
    return {f"{seed}-{i}" for seed, rows in objects for i in range(rows)}


def account(fault: str, expected: set[str], got: collections.Counter,
            mode: str = "pipelined") -> tuple[int, int, int]:
    """Record one row of the table (one per scenario and mode; by default the CLI's own, pipelined);
    returns (delivered, duplicates, lost)."""
    delivered = sum(got[u] for u in expected)
    duplicates = sum(got[u] - 1 for u in expected if got[u] > 1)
    lost = sum(1 for u in expected if got[u] == 0)
    unexpected = set(got) - expected
    assert not unexpected, f"events nobody sent: {sorted(unexpected)[:5]}"
    TABLE.append((fault, f"{mode} ({MODES[mode]})", len(expected), delivered, duplicates, lost))
    print(f"\n{fault} [{mode}]: expected {len(expected)}, delivered {delivered}, duplicates {duplicates}, lost {lost}")
    return delivered, duplicates, lost


def settle(*engines: DatagramEngine, quiet: float = 0.3, timeout: float = 10) -> None:
    """Wait until the engines stopped receiving (their threads drained the sockets)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        now = sum(len(e.datagrams) for e in engines)
        if now == last:
            return
        last = now
        time.sleep(quiet)


def start_wodle(lab, conf: Path, *args: str, endpoint: Optional[str] = None, state: Optional[Path] = None,
                debug: bool = False) -> subprocess.Popen:
    env = {**os.environ, **lab_env(endpoint or lab.endpoint, lab.region)}
    cmd = [sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once",
           "--state-dir", str(state or conf.parent / "state"), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def proxied(proxy: FaultProxy) -> dict:
    return {"AWS_ENDPOINT_URL": proxy.endpoint}


def errors_about(stderr: str, key: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line and key in line]


# --- the faults

def test_sigkill_mid_object_resumes_with_at_most_one_batch_resent(lab, tmp_path, mode):
    """Killed with SIGKILL half-way through large objects: the next run resumes each at its last checkpoint,
    so an object sends again at most the one batch it was sending (pipelined: both objects are in flight)."""
    batch = 500
    objects = {11: lab.add_generated(6000, seed=11), 12: lab.add_generated(3000, seed=12)}
    conf = write_conf(tmp_path, lab, visibility_timeout=2)
    sock = str(tmp_path / "queue")
    with DatagramEngine(sock, rate=2000) as engine:  # 9000 events take about 4.5 s: time to kill in the middle
        proc = start_wodle(lab, conf, "--socket", sock, "--sqs-wait", "1", "--batch-size", str(batch),
                           *parallel(mode))
        deadline = time.monotonic() + 60
        while len(engine.datagrams) < 2250 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        settle(engine)
        at_kill = collections.Counter(int(u.split("-")[0]) for u in uids(engine))
        assert sum(at_kill.values()) >= 2250 and all(at_kill[s] < o.rows for s, o in objects.items()), \
            f"the kill did not land mid-object ({dict(at_kill)} events)"
        engine.rate = None
        # the killed run's message comes back after its 2 s visibility: wait until nothing is in flight, so
        # the new run sees it whatever the machine's load (a timing window here made the test flaky)
        sqs, deadline = lab.client("sqs"), time.monotonic() + 60
        while time.monotonic() < deadline and int(sqs.get_queue_attributes(
                QueueUrl=lab.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]):
            time.sleep(0.2)
        second = run_wodle(lab, conf, "--once", "--socket", sock, "--sqs-wait", "2", "--batch-size", str(batch),
                           *parallel(mode))
        settle(engine)
    assert second.returncode == 0, second.stderr
    # an object that had sent more than one batch has a checkpoint, and was not finished: it must resume there
    started = [s for s, o in objects.items() if at_kill[s] > batch]
    assert started
    for seed in started:
        assert f"Resuming s3://{lab.bucket}/{objects[seed].key} after " in second.stderr, second.stderr
    got = uids(engine)
    delivered, duplicates, lost = account("SIGKILL mid-object, then a new run",
                                          expected_uids(*((s, o.rows) for s, o in objects.items())), got, mode=mode)
    resent = {s: sum(n - 1 for u, n in got.items() if u.startswith(f"{s}-") and n > 1) for s in objects}
    print(f"SIGKILL after {dict(at_kill)} events per object; rows resent after the restart: {resent} "
          f"(batch size {batch})")
    assert lost == 0
    assert all(n <= batch for n in resent.values())  # at most the batch in flight, per object
    assert duplicates <= batch * MODES[mode]  # serial: one object in flight at the kill, so one batch in all
    assert lab.queue_depth() == 0


def test_a_sigterm_stops_within_2s_while_the_engine_takes_nothing(lab, tmp_path, mode):
    """The engine stops reading (its queue is full): the sink backs off, for up to 5 minutes. A SIGTERM ends that
    wait (issue 14: a stop is prompt whatever the run is doing): the process ends within 2 s, exit 130, nothing
    acknowledged, the messages handed back at once, and the next run resumes each object at its checkpoint."""
    batch = 200
    objects = {s: lab.add_generated(2000, seed=s) for s in (13, 14)}
    conf = write_conf(tmp_path, lab)
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read while the wodle runs
    stuck.bind(str(tmp_path / "stuck"))
    proc = start_wodle(lab, conf, "--socket", str(tmp_path / "stuck"), "--sqs-wait", "1", "--batch-size", str(batch),
                       *parallel(mode))
    busy, lines = threading.Event(), []

    def read_stderr() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "the engine is busy" in line:
                busy.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert busy.wait(60), "".join(lines)
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)  # not after the sink's 5 minutes of backing off
        took = time.monotonic() - signalled
    finally:
        proc.kill()
        reader.join(10)
        first = drain(stuck)
        stuck.close()
    stderr = "".join(lines)
    assert took < 2.0, f"the process took {took:.1f} s to end after SIGTERM:\n{stderr}"
    assert proc.returncode == 130, stderr
    assert "stopped while the engine was busy" in stderr and "Traceback" not in stderr
    assert "ending now" not in stderr  # a graceful stop, not the deadline's
    attributes = lab.client("sqs").get_queue_attributes(QueueUrl=lab.queue_url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == len(objects)  # none deleted; visible again at once
    with DatagramEngine(str(tmp_path / "queue")) as engine:
        second = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", "--batch-size",
                           str(batch), *parallel(mode))
        settle(engine)
    assert second.returncode == 0, second.stderr
    got = uids(SimpleNamespace(datagrams=first), engine)  # what the stuck socket held, and the new run's
    _, duplicates, lost = account("engine stops reading; SIGTERM; then a new run",
                                  expected_uids(*((s, o.rows) for s, o in objects.items())), got, mode=mode)
    assert lost == 0
    # the sink said how many events of the interrupted batch the engine's socket took; the checkpoint kept them
    assert duplicates == 0
    assert lab.queue_depth() == 0


def test_engine_down_for_the_first_seconds(lab, tmp_path, mode):
    """The engine's socket is not there when the wodle first sends; it appears once the wodle has said so
    (started from the wodle's own log line, not after a fixed delay, so a slow start-up on a loaded host
    cannot find it already up), and the run then delivers everything once."""
    objects = [lab.add_generated(400, seed=s) for s in (21, 22, 23)]
    conf = write_conf(tmp_path, lab)
    sock = str(tmp_path / "queue")
    engine = DatagramEngine(sock)
    env = {**os.environ, **lab_env(lab.endpoint, lab.region)}
    proc = subprocess.Popen([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--socket", sock,
                             "--sqs-wait", "1", "--engine-retry", "30", "--state-dir", str(tmp_path / "state"),
                             *parallel(mode)], env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    refused_at: list[float] = []

    def watch() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "is not accepting" in line and not refused_at:
                refused_at.append(time.monotonic())
                time.sleep(1.0)  # down a while longer: the wodle retries, then finds it
                engine.start()
    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=120)
        reader.join(timeout=10)
        settle(engine)
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.stop()
    stderr = "".join(lines)
    assert proc.returncode == 0, stderr
    assert refused_at, stderr  # the engine really was down when the wodle first sent
    assert "is not accepting" in stderr and "takes events again" in stderr
    assert stderr.count("is not accepting") == 1  # one outage, one warning
    expected = expected_uids(*((21 + i, o.rows) for i, o in enumerate(objects)))
    _, duplicates, lost = account("engine socket down for the first 2 s", expected, uids(engine), mode=mode)
    assert lost == 0 and duplicates == 0 and lab.queue_depth() == 0


def test_throttling_and_server_errors_from_s3_and_sqs(lab, tmp_path, mode):
    objects = [lab.add_generated(150, seed=30 + i) for i in range(6)]
    bounded = objects[0].key
    rules = (
        # the first object's GET is refused twice in a row: botocore's own retries (shipped config) get it
        Rule("s3", "GetObject", key=bounded, status=503, code="SlowDown", times=2),
        Rule("s3", "GetObject", status=503, code="SlowDown", share=0.34),
        Rule("s3", "GetObject", status=500, code="InternalError", message="We encountered an internal error.",
             share=0.25),
        Rule("s3", "GetObject", truncate=True, share=0.5),
        Rule("sqs", "ReceiveMessage", status=500, code="InternalError", message="boom", share=0.2),
        Rule("sqs", "ChangeMessageVisibilityBatch", status=503, code="ServiceUnavailable", message="slow down",
             share=0.2),
        Rule("sqs", "DeleteMessage(Batch)?", status=500, code="InternalError", message="boom", share=0.2),
    )
    conf = write_conf(tmp_path, lab, visibility_timeout=3)
    with FaultProxy(lab.endpoint, rules) as proxy, DatagramEngine(str(tmp_path / "queue")) as engine:
        proc = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", *parallel(mode),
                         env=proxied(proxy))
        settle(engine)
        faults = proxy.faults_seen()
        gets_of_bounded = [c.fault for c in proxy.calls if c.operation == "GetObject" and c.key == bounded]
    print(f"faults injected: {dict(faults)}")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # 2 refused, then botocore's retries get it; each GET but the last was spoiled (retried only while failing)
    assert gets_of_bounded[:2] == ["SlowDown", "SlowDown"] and gets_of_bounded[-1] is None
    assert None not in gets_of_bounded[:-1]
    if mode == "serial":  # the 3rd GET is the first the shared rules see; pipelined, another object's may come first
        assert len(gets_of_bounded) == 3
    assert faults["s3:GetObject:SlowDown"] >= 3 and faults["s3:GetObject:InternalError"] >= 1
    assert faults["s3:GetObject:truncated"] >= 1  # resumed with a Range request
    assert sum(n for f, n in faults.items() if f.startswith("sqs:")) >= 2
    _, duplicates, lost = account("503 SlowDown / 500 / cut downloads on S3, 500/503 on SQS",
                                  expected_uids(*((30 + i, o.rows) for i, o in enumerate(objects))), uids(engine),
                                  mode=mode)
    assert lost == 0 and duplicates == 0
    assert lab.queue_depth() == 0


def test_retries_are_bounded_and_a_throttled_object_is_left_for_later(lab, tmp_path, mode):
    """With AWS_MAX_ATTEMPTS=2 (honoured like the AWS CLI does): 2 attempts per call x 3 tries per object."""
    stuck = lab.add_generated(100, seed=80)
    late = lab.add_generated(100, seed=81)
    rules = (Rule("s3", "GetObject", key=stuck.key, status=503, code="SlowDown"),
             Rule("s3", "GetObject", key=late.key, status=500, code="InternalError", message="oops", times=2))
    conf = write_conf(tmp_path, lab, visibility_timeout=1, dead_letter_after=1)
    with FaultProxy(lab.endpoint, rules) as proxy, DatagramEngine(str(tmp_path / "queue")) as engine:
        proc = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", *parallel(mode),
                         env={**proxied(proxy), "AWS_MAX_ATTEMPTS": "2"})
        settle(engine)
        gets = collections.Counter(c.key for c in proxy.calls if c.operation == "GetObject")
    assert proc.returncode == 5, proc.stderr
    assert gets[stuck.key] == 2 * 3 and gets[late.key] == 3  # bounded; and our retry got the late one
    lines = errors_about(proc.stderr, stuck.key)
    assert len(lines) == 1 and "throttling or server error (retries exhausted)" in lines[0]
    assert "SlowDown (HTTP 503)" in lines[0] and "download failed 3 times" in lines[0]
    assert "tried again when it reappears" in lines[0]  # transient: never dead-lettered
    assert "1 errors (1 throttled)" in proc.stderr
    assert not (tmp_path / "state" / "dead-letter.jsonl").exists()
    assert not any(u.startswith("80-") for u in uids(engine))
    assert lab.queue_depth() == 1  # the throttled object's message, for the next run
    time.sleep(1.2)  # S3 recovered; the message reappears and the next run delivers it
    with DatagramEngine(engine.path) as engine2:
        again = run_wodle(lab, conf, "--once", "--socket", engine2.path, "--sqs-wait", "1", *parallel(mode))
        settle(engine2)
    assert again.returncode == 0, again.stderr
    _, duplicates, lost = account("S3 refusing one object on every call; next run after S3 recovers",
                                  expected_uids((80, stuck.rows), (81, late.rows)), uids(engine, engine2), mode=mode)
    assert lost == 0 and duplicates == 0
    assert lab.queue_depth() == 0


def test_redelivered_notification_is_not_sent_again(lab, tmp_path, mode):
    """Our delete fails (no retries left): the message comes back; the delivery state says delivered."""
    objects = [lab.add_generated(200, seed=40 + i) for i in range(2)]
    rules = (Rule("sqs", "DeleteMessage(Batch)?", status=500, code="InternalError", message="boom", times=1),)
    conf = write_conf(tmp_path, lab, visibility_timeout=1)
    env = {"AWS_MAX_ATTEMPTS": "1"}
    with FaultProxy(lab.endpoint, rules) as proxy, DatagramEngine(str(tmp_path / "queue")) as engine:
        first = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", *parallel(mode),
                          env={**proxied(proxy), **env})
        time.sleep(1.5)  # the undeleted message reappears
        second = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", *parallel(mode),
                           env={**proxied(proxy), **env})
        settle(engine)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "recorded as delivered and will not be sent again" in first.stderr
    assert "1 already delivered (not resent)" in second.stderr and " 0 events" in second.stderr
    _, duplicates, lost = account("DeleteMessage fails, message redelivered",
                                  expected_uids(*((40 + i, o.rows) for i, o in enumerate(objects))), uids(engine),
                                  mode=mode)
    assert lost == 0 and duplicates == 0
    assert lab.queue_depth() == 0


def _parquet_with_big_event(rows: int) -> bytes:
    """A Security Lake-like object whose second row is too big for one datagram."""
    table = pa.table({"metadata": [{"uid": f"big-{i}", "version": "1.1.0"} for i in range(rows)],
                      "message": ["x" * (70000 if i == 1 else 10) for i in range(rows)]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_bad_objects_and_bodies_between_good_ones(lab, tmp_path, mode):
    good = [lab.add_generated(150, seed=50)]
    bad: dict[str, str] = {}  # key -> what the log must say
    lab.notify(missing := lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), 10)
    bad[missing] = "object missing (NoSuchKey)"
    good.append(lab.add_generated(150, seed=51))
    denied = lab.add_generated(50, seed=90).key
    bad[denied] = "access denied"
    kms = lab.add_generated(50, seed=91).key
    bad[kms] = "kms:Decrypt"
    parquet = io.BytesIO()
    write_ocsf_parquet(parquet, 120, seed=92)
    whole = gzip.compress(parquet.getvalue())
    bad[lab.put(lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), whole[: len(whole) // 2], 0, "gzip").key] = "looks like gzip"
    data = bytearray(parquet.getvalue())
    cut = lab.put(lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), bytes(data[: len(data) // 2]), 0, "cut").key
    bad[cut] = "truncated Parquet"
    # a Parquet object of 6 row groups whose 5th is garbled: its first events go out, then it fails
    several = io.BytesIO()
    write_ocsf_parquet(several, 600, seed=93, row_group_size=100)
    meta = pq.ParquetFile(io.BytesIO(several.getvalue())).metadata
    garbled = meta.row_group(4).column(3)
    data = bytearray(several.getvalue())
    start = garbled.data_page_offset + 64
    data[start:start + 400] = bytes(400)
    corrupt = lab.put(lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), bytes(data), 0, "corrupt").key
    bad[corrupt] = "corrupt or truncated object"
    good.append(lab.add_generated(150, seed=52))
    sqs = lab.client("sqs")
    sqs.send_message(QueueUrl=lab.queue_url, MessageBody="this is not JSON {")
    big = lab.put(lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), _parquet_with_big_event(3), 3, "big")
    good.append(lab.add_generated(150, seed=53))
    # a second block, <subscriber type="buckets">, whose bucket gets a JSON-lines log cut short in its gzip
    logs = BucketsLab(endpoint=lab.endpoint).create()
    def log_lines(seed: int, n: int) -> bytes:
        return b"".join(json.dumps({"metadata": {"uid": f"{seed}-{i}"}, "msg": os.urandom(40).hex()}).encode() + b"\n"
                        for i in range(n))
    packed = gzip.compress(log_lines(94, 3000))  # big enough for batches to go out before the cut
    cut_log = logs.put(f"{logs.prefix}app/cut short.json.gz", packed[: len(packed) * 2 // 3], []).key
    bad[cut_log] = "corrupt or truncated object"
    logs.put(f"{logs.prefix}app/whole.json.gz", gzip.compress(log_lines(95, 300)), [])
    rules = (Rule("s3", "GetObject", key=denied, status=403, code="AccessDenied", message="Access Denied"),
             Rule("s3", "GetObject", key=kms, status=403, code="AccessDenied",
                  message="User is not authorized to perform: kms:Decrypt on the resource"))
    conf = write_conf(tmp_path, lab, visibility_timeout=2, dead_letter_after=2)
    delivery = "<visibility_timeout>2</visibility_timeout><dead_letter_after>2</dead_letter_after>"
    second_block = logs.ossec_conf().split("<subscriber", 1)[1].split("</subscriber>")[0]
    conf.write_text(conf.read_text().replace("  </wodle>", f"    <subscriber{second_block}{delivery}</subscriber>\n"
                                             "  </wodle>"))
    state = tmp_path / "state"
    with FaultProxy(lab.endpoint, rules) as proxy, DatagramEngine(str(tmp_path / "queue")) as engine:
        args = ("--once", "--socket", engine.path, "--sqs-wait", "1", "--batch-size", "100", *parallel(mode))
        first = run_wodle(lab, conf, *args, env=proxied(proxy))
        settle(engine)
        after_first = len(engine.datagrams)
        time.sleep(2.2)  # the failed messages reappear: second receive, dead-lettered
        second = run_wodle(lab, conf, *args, env=proxied(proxy))
        settle(engine)
        denied_gets = sum(1 for c in proxy.calls if c.operation == "GetObject" and c.key == denied)
    assert first.returncode == 5 and second.returncode == 5, first.stderr + second.stderr
    for run in (first, second):
        assert "Traceback" not in run.stderr
        for key, reason in bad.items():
            lines = errors_about(run.stderr, key)
            assert len(lines) == 1, (key, lines)  # reported once per run, with its key and reason
            assert reason in lines[0], (reason, lines[0])
        body_errors = [line for line in run.stderr.splitlines() if "not a notification we understand" in line]
        assert len(body_errors) == 1
    assert "left in the queue for its redrive policy (dead-lettered after 2 receives; this was receive 1)" in \
        first.stderr
    assert "7 errors (3 corrupt, 2 denied, 1 missing, 1 notification)" in first.stderr  # the Security Lake block
    assert "1 errors (1 corrupt)" in first.stderr  # the buckets block
    assert "1 oversized events recorded" in first.stderr
    assert "7 dead-lettered" in second.stderr and "1 dead-lettered" in second.stderr
    assert denied_gets == 2  # AccessDenied is not retried: one GET per run
    # dead letters: the bodies, whole, with why
    letters = [json.loads(line) for line in (state / "dead-letter.jsonl").read_text().splitlines()]
    assert len(letters) == 8
    assert sum(1 for d in letters if d["body"] == "this is not JSON {") == 1
    for key in bad:
        assert sum(1 for d in letters if key in d["body"] or quote_plus(key) in d["body"]) == 1
    assert all(d["receive_count"] == 2 and d["reasons"] for d in letters)
    # the oversized event was recorded (its head, size and sha256), not sent, and its object acknowledged
    kept = [json.loads(line) for line in (state / "oversized-events.jsonl").read_text().splitlines()]
    assert len(kept) == 1 and '"uid":"big-1"' in kept[0]["head"] and kept[0]["truncated"]
    assert kept[0]["event_bytes"] > 70000 and len(kept[0]["sha256"]) == 64
    assert big.key in kept[0]["object"]
    # the damaged objects' first batches went out once: the second run resumed after them, sending nothing
    got = uids(engine)
    partial = {u for u in got if u.startswith("93-")}
    partial_log = {u for u in got if u.startswith("94-")}
    assert 100 <= len(partial) < 600 and 100 <= len(partial_log) < 3000
    assert f"Resuming s3://{lab.bucket}/{corrupt} after the {len(partial)} events already delivered" in second.stderr
    assert f"Resuming s3://{logs.bucket}/{cut_log} after the {len(partial_log)} events" in second.stderr
    assert len(engine.datagrams) == after_first
    expected = expected_uids(*((50 + i, 150) for i in range(4)), (95, 300)) | {"big-0", "big-2"}
    _, duplicates, lost = account("NoSuchKey, AccessDenied, KMS denied, gzip as Parquet, truncated and corrupt "
                                  "Parquet, JSON lines in a truncated gzip, non-JSON body, oversized event",
                                  expected | partial | partial_log, got, mode=mode)
    assert lost == 0 and duplicates == 0
    # nothing stuck: good ones deleted, bad ones dead-lettered on their 2nd receive
    assert lab.queue_depth() == 0 and logs.queue_depth() == 0


# --- the two scenarios that mostly wait on a slow engine run in the background, beside the others
# (own queues, sockets and processes), so their ~25 s of waiting does not add to the suite's time.
# They run in threads: no boto3 in them (its default session is not thread-safe); labs are built before.
# Each consumer gets as many objects as it has in flight (--parallel-objects), smaller ones when there are
# more, and sends in batches of 50, so its objects go out interleaved and each takes ~15 s in both modes.

def _two_consumers(tmp_path: Path, lab, mode: str) -> dict:
    """Visibility 5 s, objects that take ~15 s to deliver, two consumers on two 'hosts' (own state each)."""
    conf = write_conf(tmp_path, lab, visibility_timeout=5)
    with FaultProxy(lab.endpoint) as proxy, \
            DatagramEngine(str(tmp_path / "a" / "queue"), rate=SLOW_RATE) as engine_a, \
            DatagramEngine(str(tmp_path / "b" / "queue"), rate=SLOW_RATE) as engine_b:
        args = ("--sqs-wait", "1", "--batch-size", "50", *parallel(mode))
        a = start_wodle(lab, conf, "--socket", engine_a.path, *args, endpoint=proxy.endpoint,
                        state=tmp_path / "a" / "state")
        time.sleep(1.0)
        b = start_wodle(lab, conf, "--socket", engine_b.path, *args, endpoint=proxy.endpoint,
                        state=tmp_path / "b" / "state")
        out_a, out_b = a.communicate(timeout=120), b.communicate(timeout=120)
        settle(engine_a, engine_b)
        return {"codes": (a.returncode, b.returncode), "stderr": out_a[1] + out_b[1],
                "engines": [(len(e.datagrams), e.last_at - e.first_at) for e in (engine_a, engine_b)],
                "renewals": proxy.count("sqs", "ChangeMessageVisibilityBatch"), "got": uids(engine_a, engine_b)}


def _short_sessions(tmp_path: Path, lab, mode: str) -> dict:
    """STS (through the proxy) grants 302 s sessions and refuses expired keys; a run of ~6 s at --debug 3."""
    conf = write_conf(tmp_path, lab, visibility_timeout=2)
    with FaultProxy(lab.endpoint, session_seconds=302) as proxy, \
            DatagramEngine(str(tmp_path / "queue"), rate=50) as engine:
        proc = start_wodle(lab, conf, "--socket", engine.path, "--sqs-wait", "1", "--debug", "3",
                           "--batch-size", "50", *parallel(mode), endpoint=proxy.endpoint)
        time.sleep(2)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode(errors="replace")
        out, err = proc.communicate(timeout=120)
        settle(engine)
        return {"code": proc.returncode, "out": out, "err": err, "cmdline": cmdline,
                "span": engine.last_at - engine.first_at, "assume_calls": proxy.count("sts", "AssumeRole"),
                "expired": proxy.count(fault="ExpiredToken"), "secrets": set(proxy.secrets),
                "ages": [c.key_age for c in proxy.calls if c.key_age is not None], "got": uids(engine)}


SLOW_ROWS, SLOW_RATE = 300, 20.0  # the engine reads 20 events/s and its queue holds 10: ~15 s per consumer
SESSION_ROWS = 300                # at 50 events/s: a run of ~6 s


def _slow_objects(mode: str, base: int) -> list[tuple[int, int]]:
    """(seed, rows) of the objects of one scenario: as many per consumer as it has in flight, ~SLOW_ROWS each."""
    n = MODES[mode]
    return [(base + 10 * n + i, SLOW_ROWS // n) for i in range(2 * n)]


def _session_objects(mode: str) -> list[tuple[int, int]]:
    return [(150 + 10 * MODES[mode] + i, SESSION_ROWS // 2) for i in range(2)]


def _new_lab(moto_server) -> SecurityLakeLab:
    suffix = uuid.uuid4().hex[:10]
    return SecurityLakeLab(endpoint=moto_server.endpoint, queue_name=f"AmazonSecurityLake-{suffix}-Main-Queue",
                           role_name=f"lake-subscriber-{suffix}").create()


@pytest.fixture(scope="module", autouse=True)
def background(moto_server, tmp_path_factory):
    jobs: dict = {}
    with ThreadPoolExecutor(2 * len(MODES)) as pool:
        for mode in MODES:
            two = _new_lab(moto_server)
            for seed, rows in _slow_objects(mode, 100):
                two.add_generated(rows, seed=seed)
            short = _new_lab(moto_server)
            for seed, rows in _session_objects(mode):
                short.add_generated(rows, seed=seed)
            jobs[("two_consumers", mode)] = (two, pool.submit(
                _two_consumers, tmp_path_factory.mktemp(f"two-consumers-{mode}"), two, mode))
            jobs[("short_sessions", mode)] = (short, pool.submit(
                _short_sessions, tmp_path_factory.mktemp(f"sessions-{mode}"), short, mode))
        yield jobs


def test_two_consumers_slow_engine_short_visibility(background, mode):
    """Visibility 5 s, objects that take ~15 s to deliver, two consumers on two 'hosts': none sent twice."""
    lab, future = background[("two_consumers", mode)]
    r = future.result(timeout=180)
    assert r["codes"] == (0, 0), r["stderr"]
    for count, span in r["engines"]:  # each consumer delivered its objects, and they took > 2 visibility timeouts
        assert count == SLOW_ROWS and span > 12
    assert r["renewals"] >= 2 * 4
    _, duplicates, lost = account("visibility 5 s, 15 s per object, two consumers",
                                  expected_uids(*_slow_objects(mode, 100)), r["got"], mode=mode)
    assert lost == 0 and duplicates == 0
    assert lab.queue_depth() == 0


def test_credentials_expiring_during_a_run_are_refreshed(background, mode):
    """The wodle refreshes assumed-role credentials 300 s before they expire, so each 302 s session is
    used for 2 s here; a run of ~6 s needs several AssumeRole calls and must never send an expired key."""
    lab, future = background[("short_sessions", mode)]
    r = future.result(timeout=180)
    assert r["code"] == 0, r["err"][-3000:]
    assert r["span"] > 5
    assert r["assume_calls"] >= 3, r["assume_calls"]
    assert r["expired"] == 0
    # every SQS/S3 call (main thread, visibility thread, object threads) was signed with a key at most ~2 s old
    ages = r["ages"]
    print(f"AssumeRole calls: {r['assume_calls']}; calls signed with assumed keys: {len(ages)}, oldest key used: "
          f"{max(ages):.2f} s")
    assert len(ages) > 10 and max(ages) < 3.0, max(ages)
    for secret in r["secrets"] | {lab.external_id, "lab-secret-key"}:
        assert secret not in r["err"] and secret not in r["out"] and secret not in r["cmdline"]
    _, duplicates, lost = account("role sessions usable 2 s, run of ~6 s",
                                  expected_uids(*_session_objects(mode)), r["got"], mode=mode)
    assert lost == 0 and duplicates == 0


def test_the_proxy_refuses_expired_sessions(moto_server):
    """The check above can fail: keys used past the session the proxy granted are refused."""
    import boto3
    from botocore.exceptions import ClientError
    with FaultProxy(moto_server.endpoint, session_seconds=1) as proxy:
        env = lab_env(proxy.endpoint, "us-east-1")
        kw = {"endpoint_url": proxy.endpoint, "region_name": "us-east-1"}
        sts = boto3.client("sts", aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], **kw)
        c = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="expiry-check")["Credentials"]
        sqs = boto3.client("sqs", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                           aws_session_token=c["SessionToken"], **kw)
        sqs.list_queues()
        time.sleep(1.2)
        with pytest.raises(ClientError, match="ExpiredToken"):
            sqs.list_queues()
        assert proxy.count(fault="ExpiredToken") >= 1

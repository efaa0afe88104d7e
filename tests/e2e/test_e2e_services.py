"""Service blocks end to end: moto's server over HTTP (CloudWatch Logs, Inspector v2), the CLI as its own
process, a real datagram socket; every event counted by the id the lab wrote into it."""
from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aws_s3_wodle.config.buckets import format_log_date
from aws_s3_wodle.lab.security_lake import lab_env
from aws_s3_wodle.lab.services import ServicesLab, event_id

from ..helpers import HEADER, received_payloads, terminate
from .test_e2e_bucket_types import GatedEngine

UTC = dt.timezone.utc
YESTERDAY = format_log_date(dt.datetime.now(UTC).date() - dt.timedelta(days=1))
OTHER_REGION = "eu-west-1"


class Wodle:
    """The CLI as an operator runs it (--config ... --once), with its own state directory."""

    def __init__(self, lab: ServicesLab, tmp_path: Path, socket_path: str) -> None:
        self.lab, self.socket = lab, socket_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.conf, self.state = tmp_path / "ossec.conf", tmp_path / "state"
        self.env = {**os.environ, **lab_env(lab.endpoint, lab.region)}

    def configure(self, *blocks: str) -> None:
        self.conf.write_text(self.lab.ossec_conf(*blocks))

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "aws_s3_wodle", "--config", str(self.conf), "--once", "--socket", self.socket,
                "--state-dir", str(self.state), *args]

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == expect, proc.stderr
        assert "Traceback" not in proc.stderr
        return proc


def ids(payloads: list[bytes]) -> collections.Counter:
    return collections.Counter(event_id(p.decode()) for p in payloads)


def wanted(lines) -> collections.Counter:
    return collections.Counter(line.id for line in lines)


def test_cloudwatch_logs_every_event_once_then_nothing_then_only_new(services_lab, engine, tmp_path):
    lab = services_lab
    app, audit = lab.group("app"), lab.group("audit")
    far = lab.group("app", region=OTHER_REGION)
    written = lab.put(app, "i-1", 40, same_time=3) + lab.put(app, "i-2", 7) + lab.put(audit, "2026/01/01", 5)
    written += lab.put(far, "i-9", 6, region=OTHER_REGION)
    lab.put(app, "old", 4, start=int((time.time() - 3 * 86400) * 1000))  # before only_logs_after: not read
    wodle = Wodle(lab, tmp_path, engine.path)
    wodle.configure(lab.block("cloudwatchlogs", aws_log_groups=f"{app},{audit}", only_logs_after=YESTERDAY,
                              regions=f"us-east-1,{OTHER_REGION}"))
    metrics = tmp_path / "metrics.prom"
    first = wodle.run("--batch-size", "4", "--metrics-file", str(metrics))
    payloads = received_payloads(engine, len(written))
    assert ids(payloads) == wanted(written)
    # shaped as Wazuh sends them: the message itself, JSON or text, after the header
    by_id = {line.id: line.message.encode() for line in written}
    assert all(p == by_id[event_id(p.decode())] for p in payloads)
    assert f"done: 2 regions, 5 log streams, {len(written)} events" in first.stderr
    events_line = [l for l in metrics.read_text().splitlines() if l.startswith("aws_s3_wodle_events_total{")]
    assert len(events_line) == 1 and 'type="cloudwatchlogs"' in events_line[0]
    assert events_line[0].endswith(f" {float(len(written))}")

    second = wodle.run()
    assert "0 events" in second.stderr and len(engine.datagrams) == len(written)

    later = lab.put(app, "i-1", 3, start=written[39].timestamp)  # at the newest time already read, and after
    later += lab.put(app, "i-3", 4) + lab.put(far, "i-9", 2, region=OTHER_REGION)
    wodle.run()
    payloads = received_payloads(engine, len(written) + len(later))
    assert ids(payloads) == wanted(written) + wanted(later)


def test_cloudwatch_logs_discard_and_remove_log_streams(services_lab, engine, tmp_path):
    lab = services_lab
    app = lab.group("app")
    written = lab.put(app, "a", 12) + lab.put(app, "b", 4)
    wodle = Wodle(lab, tmp_path, engine.path)
    # the lab's JSON messages are DEBUG every 4th event; its text lines start with the month: both kinds match
    wodle.configure(lab.block("cloudwatchlogs", aws_log_groups=app, only_logs_after=YESTERDAY,
                              remove_log_streams="yes", discard_regex=("level", "DEBUG")))
    proc = wodle.run()
    kept = [l for l in written if '"level": "DEBUG"' not in l.message]
    assert ids(received_payloads(engine, len(kept))) == wanted(kept)
    assert f"{len(written) - len(kept)} discarded" in proc.stderr and "(2 removed)" in proc.stderr
    assert lab.streams(app) == []  # deleted once every event was delivered
    assert "0 log streams" in wodle.run().stderr


def test_cloudwatch_logs_sigterm_mid_run_loses_nothing(services_lab, tmp_path):
    lab = services_lab
    app = lab.group("app")
    written = lab.put(app, "busy", 1500, same_time=7) + lab.put(app, "quiet", 20)
    engine = GatedEngine(str(tmp_path / "queue"), limit=300)
    try:
        wodle = Wodle(lab, tmp_path, engine.path)
        wodle.configure(lab.block("cloudwatchlogs", aws_log_groups=app, only_logs_after=YESTERDAY))
        proc = subprocess.Popen(wodle.command("--batch-size", "25"), env=wodle.env, stderr=subprocess.PIPE, text=True)
        _stop_while_blocked(proc, engine)
        stopped = len(engine.datagrams)
        assert 300 <= stopped < len(written)
        wodle.run()
        time.sleep(0.3)
    finally:
        engine.close()
    counts = ids([d[len(HEADER):] for d in engine.datagrams])
    assert counts == wanted(written), "every event exactly once across the stopped run and the next one"
    print(f"\nCloudWatch Logs SIGTERM: {len(written)} events; {stopped} delivered before the stop, the rest by the "
          "next run, none twice")


def _stop_while_blocked(proc: subprocess.Popen, engine: GatedEngine) -> None:
    """Wait until the wodle fills the gated engine and blocks, SIGTERM it, let the engine read again 2.5 s later
    (well past the sink's 0.5 s send timeout: the stop ends the sink's wait mid-batch, and the events the engine's
    socket took are recorded; the rest comes with the next run). Exit 130."""
    deadline = time.monotonic() + 60
    while engine.reading.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    assert proc.poll() is None, "the wodle should be blocked on the engine, not finished"
    proc.send_signal(signal.SIGTERM)
    time.sleep(2.5)
    engine.reading.set()
    engine.limit = 10 ** 9
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    time.sleep(0.3)


def test_inspector_every_finding_once_then_nothing_then_only_new(services_lab, engine, tmp_path):
    lab = services_lab
    first = lab.findings(9)
    far = lab.findings(4, region=OTHER_REGION)
    lab.queue_findings(first)
    lab.queue_findings(far, region=OTHER_REGION)
    wodle = Wodle(lab, tmp_path, engine.path)
    wodle.configure(lab.block("inspector", only_logs_after=YESTERDAY, regions=f"us-east-1,{OTHER_REGION}"))
    proc = wodle.run("--batch-size", "4")
    events = [json.loads(p) for p in received_payloads(engine, 13)]
    assert collections.Counter(event_id(e["aws"]["findingArn"]) for e in events) == \
        collections.Counter(event_id(f["findingArn"]) for f in first + far)
    for e in events:  # Wazuh's shape for Inspector v2 findings
        assert e["integration"] == "aws" and e["aws"]["source"] == "inspector2"
        assert e["aws"]["updatedAt"].endswith("Z") and "T" in e["aws"]["updatedAt"]
    assert "done: 2 regions, 13 findings, 13 events" in proc.stderr

    assert "0 events" in wodle.run().stderr and len(engine.datagrams) == 13

    # the service answers with findings updated since (and, here, the old ones again: outside the window)
    new = lab.findings(3, updated=dt.datetime.now(UTC))
    lab.queue_findings(first + new)
    lab.queue_findings([], region=OTHER_REGION)
    wodle.run()
    events = [json.loads(p) for p in received_payloads(engine, 16)]
    assert collections.Counter(event_id(e["aws"]["findingArn"]) for e in events) == \
        collections.Counter(event_id(f["findingArn"]) for f in first + far + new)


def test_inspector_sigterm_mid_run_loses_nothing(services_lab, tmp_path):
    lab = services_lab
    findings = lab.findings(1200)
    lab.queue_findings(findings)
    engine = GatedEngine(str(tmp_path / "queue"), limit=255)  # mid-batch: the findings the engine took are kept
    try:
        wodle = Wodle(lab, tmp_path, engine.path)
        wodle.configure(lab.block("inspector", only_logs_after=YESTERDAY))
        proc = subprocess.Popen(wodle.command("--batch-size", "20"), env=wodle.env, stderr=subprocess.PIPE, text=True)
        _stop_while_blocked(proc, engine)
        stopped = len(engine.datagrams)
        assert 255 <= stopped < len(findings)
        second = wodle.run()  # the same window again (moto answers the same request the same way)
        assert "resuming the window" in second.stderr
        time.sleep(0.3)
    finally:
        engine.close()
    counts = collections.Counter(event_id(json.loads(d[len(HEADER):])["aws"]["findingArn"]) for d in engine.datagrams)
    assert counts == collections.Counter(event_id(f["findingArn"]) for f in findings)
    print(f"\nInspector SIGTERM: {len(findings)} findings; {stopped} delivered before the stop, the rest by the next "
          "run, none twice")


def test_role_and_endpoints_take_effect_and_a_refusal_names_the_permission(services_lab, engine, tmp_path, fault_proxy):
    """<iam_role_arn> with <sts_endpoint> (AssumeRole and GetCallerIdentity go there) and <service_endpoint>
    (CloudWatch Logs goes there); then logs:GetLogEvents refused: one error naming the stream and the
    permission, exit 5, and nothing recorded for that stream (the next run reads it)."""
    from aws_s3_wodle.lab.faults import access_denied
    lab = services_lab
    app = lab.group("app")
    written = lab.put(app, "s", 5)
    wodle = Wodle(lab, tmp_path, engine.path)
    wodle.configure(lab.block("cloudwatchlogs", aws_log_groups=app, only_logs_after=YESTERDAY,
                              iam_role_arn="arn:aws:iam::123456789012:role/wazuh-logs-reader",
                              sts_endpoint=fault_proxy.endpoint, service_endpoint=fault_proxy.endpoint))
    wodle.run()
    assert ids(received_payloads(engine, len(written))) == wanted(written)
    assert fault_proxy.count("sts", "AssumeRole") >= 1 and fault_proxy.count("sts", "GetCallerIdentity") >= 1
    assert fault_proxy.count("logs", "GetLogEvents") >= 1 and fault_proxy.count("logs", "DescribeLogStreams") >= 1

    more = lab.put(app, "s", 3)
    fault_proxy.add(access_denied("logs", "GetLogEvents"))
    proc = wodle.run(expect=5)
    assert "log stream 's' of" in proc.stderr and "AccessDenied" in proc.stderr
    assert "logs:GetLogEvents" in proc.stderr and "1 errors (1 denied)" in proc.stderr
    fault_proxy.clear()
    wodle.run()
    assert ids(received_payloads(engine, len(written) + len(more))) == wanted(written) + wanted(more)


def test_cloudwatch_logs_sigkill_resends_at_most_the_batch_in_flight(services_lab, tmp_path):
    lab = services_lab
    app = lab.group("app")
    written = lab.put(app, "busy", 1000, same_time=5)
    engine = GatedEngine(str(tmp_path / "queue"), limit=300)
    try:
        wodle = Wodle(lab, tmp_path, engine.path)
        wodle.configure(lab.block("cloudwatchlogs", aws_log_groups=app, only_logs_after=YESTERDAY))
        proc = subprocess.Popen(wodle.command("--batch-size", "40"), env=wodle.env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while engine.reading.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None, "the wodle should be blocked on the engine, not finished"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        engine.reading.set()
        engine.limit = 10 ** 9
        time.sleep(0.3)
        before = len(engine.datagrams)
        wodle.run()
        time.sleep(0.3)
    finally:
        engine.close()
    counts = ids([d[len(HEADER):] for d in engine.datagrams])
    assert set(counts) == set(wanted(written))  # every event at least once
    twice = sum(n - 1 for n in counts.values())
    assert max(counts.values()) <= 2 and twice <= 40  # at most the batch the kill interrupted
    print(f"\nCloudWatch Logs SIGKILL: {len(written)} events; {before} reached the engine before the kill; "
          f"{twice} sent twice (batches of 40)")


def test_sigterm_while_cloudwatch_logs_throttles_ends_within_2s_and_loses_nothing(services_lab, engine, tmp_path,
                                                                                fault_proxy):
    """logs:GetLogEvents throttled every time: botocore waits between its tries (up to 20 s each); a SIGTERM
    meanwhile ends the process at once, nothing of the stream is recorded, and the next run reads it all."""
    from aws_s3_wodle.lab.faults import throttled
    lab = services_lab
    app = lab.group("app")
    written = lab.put(app, "s", 7)
    wodle = Wodle(lab, tmp_path, engine.path)
    wodle.configure(lab.block("cloudwatchlogs", aws_log_groups=app, only_logs_after=YESTERDAY,
                              service_endpoint=fault_proxy.endpoint))
    fault_proxy.add(throttled("logs", "GetLogEvents"))
    proc = subprocess.Popen(wodle.command(), env=wodle.env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while fault_proxy.count("logs", "GetLogEvents", faulted=True) < 2:  # botocore now waits for its third try
        assert proc.poll() is None, f"the run ended before its retries: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "GetLogEvents was never tried twice"
        time.sleep(0.02)
    took, stderr = terminate(proc)
    assert took < 2.0, f"the run took {took:.1f} s to end after SIGTERM:\n{stderr}"
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and engine.datagrams == []
    assert "ERROR" not in stderr and " 0 errors" in stderr  # a stop, not a throttling failure
    assert "ending now" not in stderr  # a graceful stop, not the deadline's
    fault_proxy.clear()
    wodle.run()
    assert ids(received_payloads(engine, len(written))) == wanted(written)

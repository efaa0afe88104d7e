"""Inputs chosen to hurt, end to end: odd object keys, oversized and binary SQS bodies, secrets.

Nothing may crash the process, write outside our own directories, forge a log line, or show a secret.
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.faults import FaultProxy, Rule
from aws_s3_wodle.lab.ocsf import write_ocsf_parquet
from aws_s3_wodle.lab.security_lake import lab_env

from .test_faults import account, expected_uids, settle, uids, write_conf

LOG_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d aws-s3-wodle: (DEBUG|INFO|WARNING|ERROR): ")

ODD_KEYS = [
    "../../../../../../tmp/aws-s3-wodle-escape.parquet",
    "aws/../../../etc/aws-s3-wodle-escape.parquet",
    "/leading/slash//double.parquet",
    "ctl\x01\x7f\x1b[31mred.parquet",
    "ünïcødé/🙂 %2F+&?#.parquet",
    "spaces and\ttab.parquet",
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_odd_keys_and_hostile_bodies(lab, tmp_path):
    sqs = lab.client("sqs")
    good = []
    for i, key in enumerate(ODD_KEYS):
        buf = io.BytesIO()
        write_ocsf_parquet(buf, 20, seed=100 + i)
        good.append((100 + i, lab.put(key, buf.getvalue(), 20, "odd").rows))
    forged = "x\n2026/01/01 00:00:00 aws-s3-wodle: INFO: forged line.parquet"
    lab.notify(forged, 10)  # no such object (S3 refuses the name): NoSuchKey, key escaped in the log
    bodies = ["x" * (256 * 1024 + 10), "\x00\x01\x02\x7f binary \ufffd", "[" * 50000, json.dumps({"detail": {}}),
              json.dumps({"Records": [{"s3": {"bucket": {"name": lab.bucket}, "object": {"key": "%0Aforged"}}}]})]
    for body in bodies:
        sqs.send_message(QueueUrl=lab.queue_url, MessageBody=body)
    conf = write_conf(tmp_path, lab, visibility_timeout=30)
    work = tmp_path / "cwd"
    work.mkdir()
    with DatagramEngine(str(tmp_path / "sock" / "queue")) as engine:
        env = {**os.environ, **lab_env(lab.endpoint, lab.region)}
        proc = subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--socket",
                               engine.path, "--sqs-wait", "1", "--state-dir", str(tmp_path / "state"), "--debug", "1"],
                              env=env, cwd=work, capture_output=True, text=True, timeout=120)
        settle(engine)
    assert proc.returncode == 5, proc.stderr
    assert "Traceback" not in proc.stderr
    # one line per log record, none forged by a key or a body
    lines = proc.stderr.splitlines()
    assert all(LOG_LINE.match(line) for line in lines), [l for l in lines if not LOG_LINE.match(l)][:3]
    assert not any("INFO: forged" in line[:60] for line in lines)
    assert any("x\\n2026/01/01 00:00:00 aws-s3-wodle: INFO: forged line.parquet" in line for line in lines)
    assert "ctl\\x01\\x7f\\x1b[31mred.parquet" in proc.stderr
    assert "over SQS's 262144" in proc.stderr and "not JSON" in proc.stderr
    assert "6 errors (2 missing, 4 notification)" in proc.stderr
    # nothing written outside our directories: the working directory and /tmp are untouched
    assert _tree(work) == set()
    assert not Path("/tmp/aws-s3-wodle-escape.parquet").exists()
    assert not Path("/etc/aws-s3-wodle-escape.parquet").exists()
    assert _tree(tmp_path / "state") <= {"state.db", "state.db-wal", "state.db-shm"}
    _, duplicates, lost = account("odd keys (../, control bytes, unicode) beside hostile bodies",
                                  expected_uids(*good), uids(engine))
    assert lost == 0 and duplicates == 0


def test_secrets_stay_out_of_logs_and_errors(lab, tmp_path):
    """A run at --debug 3 (botocore's own lines too) and a run whose AssumeRole is refused: no secret shows."""
    lab.add_generated(10, seed=120)
    conf = write_conf(tmp_path, lab)
    env = {**os.environ, **lab_env(lab.endpoint, lab.region), "AWS_SESSION_TOKEN": "lab-session-token-abcdef"}
    refuse = (Rule("sts", "AssumeRole", status=403, code="AccessDenied",
                   message="User is not authorized to perform: sts:AssumeRole"),)
    runs = []
    with DatagramEngine(str(tmp_path / "queue")) as engine, FaultProxy(lab.endpoint) as ok, \
            FaultProxy(lab.endpoint, refuse) as refusing:
        for proxy in (ok, refusing):
            runs.append(subprocess.run(
                [sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--socket", engine.path,
                 "--sqs-wait", "1", "--state-dir", str(tmp_path / "state"), "--debug", "3"],
                env={**env, "AWS_ENDPOINT_URL": proxy.endpoint}, capture_output=True, text=True, timeout=120))
        issued = set(ok.secrets)
    assert runs[0].returncode == 0, runs[0].stderr[-2000:]
    assert runs[1].returncode == 3 and "sts:AssumeRole" in runs[1].stderr and "Traceback" not in runs[1].stderr
    assert len(issued) == 2  # the assumed role's secret key and session token, as STS issued them
    assert "x-amz-security-token" in runs[0].stderr.lower()  # botocore did log the headers: they were scrubbed
    for proc in runs:
        for secret in issued | {lab.external_id, "lab-secret-key", "lab-session-token-abcdef"}:
            assert secret not in proc.stderr and secret not in proc.stdout

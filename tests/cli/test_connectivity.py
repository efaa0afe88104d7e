"""`aws-s3-wodle test` against the lab: passes when all is well, and names the cause when a step fails."""
from __future__ import annotations

import socket

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from aws_s3_wodle.cli.check import explain
from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.faults import access_denied, require_external_id

from ..conftest import run_cli, run_wodle


def _conf(tmp_path, lab, **extra) -> str:
    text = lab.ossec_conf()
    for name, value in extra.items():
        text = text.replace("</external_id>", f"</external_id>\n      <{name}>{value}</{name}>")
    path = tmp_path / "ossec.conf"
    path.write_text(text)
    return str(path)


def _lines(out: str) -> dict[str, str]:
    """step name -> its status line."""
    steps = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("OK", "FAILED", "SKIPPED"):
            name = line[10:26].strip()
            steps[name] = line
    return steps


def _visible(lab) -> int:
    attrs = lab.client("sqs").get_queue_attributes(QueueUrl=lab.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_every_step_passes_and_nothing_is_consumed(lab, engine, tmp_path):
    obj = lab.add_generated(20, seed=40)
    proc = run_cli(lab, "test", "--config", _conf(tmp_path, lab), "--socket", engine.path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = _lines(proc.stdout)
    assert list(steps) == ["credentials", "assume role", "queue", "notification", "bucket", "engine socket"]
    assert all(line.lstrip().startswith("OK") for line in steps.values()), proc.stdout
    assert "redrive policy: to" in steps["queue"] and "visibility timeout 300 s" in steps["queue"]
    assert obj.key in steps["notification"] and "readable" in steps["bucket"] and "Parquet" in steps["bucket"]
    assert "result: every step passed" in proc.stdout
    assert lab.external_id not in proc.stdout + proc.stderr
    # the peeked notification was handed back at once: visible now, and a real run still delivers it
    assert _visible(lab) == 1 and engine.datagrams == []
    run = run_wodle(lab, tmp_path / "ossec.conf", "--once", "--socket", engine.path, "--sqs-wait", "1")
    assert run.returncode == 0, run.stderr
    assert lab.queue_depth() == 0


def test_empty_queue_skips_the_bucket_step_but_passes(lab, engine, tmp_path):
    proc = run_cli(lab, "test", "--config", _conf(tmp_path, lab), "--socket", engine.path, "--wait", "0")
    assert proc.returncode == 0, proc.stdout
    steps = _lines(proc.stdout)
    assert "no message pending" in steps["notification"]
    assert steps["bucket"].lstrip().startswith("SKIPPED")


def test_wrong_queue_name_fails_with_code_status_and_what_to_check(lab, engine, tmp_path):
    path = tmp_path / "ossec.conf"
    path.write_text(lab.ossec_conf().replace(lab.queue_name, "AmazonSecurityLake-nope-Main-Queue"))
    proc = run_cli(lab, "test", "--config", str(path), "--socket", engine.path)
    assert proc.returncode == 3, proc.stdout
    steps = _lines(proc.stdout)
    assert steps["credentials"].lstrip().startswith("OK") and steps["assume role"].lstrip().startswith("OK")
    assert steps["queue"].lstrip().startswith("FAILED")
    assert "AWS.SimpleQueueService.NonExistentQueue (HTTP 400)" in steps["queue"]
    assert "<sqs_name> 'AmazonSecurityLake-nope-Main-Queue'" in steps["queue"] and "us-east-1" in steps["queue"]
    assert steps["notification"].lstrip().startswith("SKIPPED") and steps["bucket"].lstrip().startswith("SKIPPED")
    assert "Traceback" not in proc.stdout + proc.stderr


def test_denied_assume_role_fails_with_the_trust_policy_hint(lab, engine, tmp_path, fault_proxy):
    lab.add_generated(5, seed=41)
    fault_proxy.add(access_denied("sts", "AssumeRole", f"User: arn:aws:iam::123456789012:user/moto is not "
                                                       f"authorized to perform: sts:AssumeRole on resource: {lab.role_arn}"))
    proc = run_cli(lab, "test", "--config", _conf(tmp_path, lab, sts_endpoint=fault_proxy.endpoint),
                   "--socket", engine.path)
    assert proc.returncode == 3, proc.stdout
    steps = _lines(proc.stdout)
    assert steps["credentials"].lstrip().startswith("OK")
    assert steps["assume role"].lstrip().startswith("FAILED")
    assert "AccessDenied (HTTP 403)" in steps["assume role"] and "trust policy" in steps["assume role"]
    assert "sts:AssumeRole" in steps["assume role"]
    assert all(steps[s].lstrip().startswith("SKIPPED") for s in ("queue", "notification", "bucket"))
    assert [s.action for s in fault_proxy.seen if s.faulted] == ["AssumeRole"]
    assert lab.external_id not in proc.stdout + proc.stderr
    assert _visible(lab) == 1  # nothing received


def test_external_id_mismatch_is_a_denied_assume_role(lab, engine, tmp_path, fault_proxy):
    fault_proxy.add(require_external_id("the-real-one"))
    proc = run_cli(lab, "test", "--config", _conf(tmp_path, lab, sts_endpoint=fault_proxy.endpoint),
                   "--socket", engine.path)
    assert proc.returncode == 3 and "AccessDenied (HTTP 403)" in _lines(proc.stdout)["assume role"]
    lab.external_id = "the-real-one"
    proc = run_cli(lab, "test", "--config", _conf(tmp_path, lab, sts_endpoint=fault_proxy.endpoint),
                   "--socket", engine.path, "--wait", "0")
    assert proc.returncode == 0, proc.stdout


def test_denied_object_names_the_s3_permission(lab, engine, tmp_path, fault_proxy):
    lab.add_generated(5, seed=42)
    fault_proxy.add(access_denied("s3", r"GET /.*"))
    proc = run_cli(lab, "test", "--config", _conf(tmp_path, lab, service_endpoint=fault_proxy.endpoint),
                   "--socket", engine.path)
    assert proc.returncode == 3, proc.stdout
    bucket = _lines(proc.stdout)["bucket"]
    assert "AccessDenied (HTTP 403)" in bucket and "s3:GetObject" in bucket and "kms:Decrypt" in bucket
    assert _visible(lab) == 1


def test_stopped_engine_fails_with_the_reason(lab, tmp_path):
    path = str(tmp_path / "queue" / "sockets" / "queue")
    engine = DatagramEngine(path).start()
    engine.stop()  # the socket is gone, as when analysisd stops
    proc = run_cli(lab, "test", "--config", _conf(tmp_path, lab), "--socket", path, "--wait", "0")
    assert proc.returncode == 4, proc.stdout
    line = _lines(proc.stdout)["engine socket"]
    assert line.lstrip().startswith("FAILED") and "does not exist" in line and "wazuh-analysisd running" in line
    # a socket file nobody listens on (analysisd died without cleaning up)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(path)
    stale.close()
    proc = run_cli(lab, "test", "--config", _conf(tmp_path, lab), "--wazuh-path", str(tmp_path), "--wait", "0")
    assert proc.returncode == 4 and "nobody is listening" in _lines(proc.stdout)["engine socket"]


def test_no_credentials(lab, engine, tmp_path):
    env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None}
    proc = run_cli(lab, "test", "--config", _conf(tmp_path, lab), "--socket", engine.path, env=env)
    assert proc.returncode == 3
    line = _lines(proc.stdout)["credentials"]
    assert line.lstrip().startswith("FAILED") and "no AWS credentials found" in line


def test_bad_config_is_one_line_exit_1(tmp_path, lab):
    bad = tmp_path / "bad.conf"
    bad.write_text('<ossec_config><wodle name="aws-s3"><subscriber type="security_lake"></subscriber></wodle></ossec_config>')
    proc = run_cli(lab, "test", "--config", str(bad))
    assert proc.returncode == 1 and "<sqs_name> is required" in proc.stderr and "Traceback" not in proc.stderr


def _client_error(code: str, status: int, message: str = "m") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "Op")


@pytest.mark.parametrize("code,status,step,expect", [
    ("ThrottlingException", 400, "queue", "throttling"),
    ("TooManyRequests", 429, "queue", "throttling"),
    ("AccessDenied", 403, "notification", "sqs:ReceiveMessage"),
    ("AccessDenied", 403, "queue", "sqs:GetQueueAttributes"),
    ("InvalidClientTokenId", 403, "credentials", "access key or secret key"),
    ("ExpiredToken", 400, "assume role", "expired"),
    ("NoSuchBucket", 404, "bucket", "does not exist"),
    ("NoSuchKey", 404, "bucket", "lifecycle"),
    ("NotFound", 404, "queue", "endpoint"),
    ("ValidationError", 400, "assume role", "configuration"),
    ("InternalError", 500, "bucket", "AWS's side"),
])
def test_explain_names_code_status_and_what_to_check(code, status, step, expect):
    text = explain(_client_error(code, status), step, {"queue": "q", "region": "r", "bucket": "b"})
    assert text.startswith(f"{code} (HTTP {status}): m. Check: ") and expect in text


def test_explain_unreachable_endpoint():
    text = explain(EndpointConnectionError(endpoint_url="https://sts.example.invalid"), "credentials",
                   {"endpoints": "<sts_endpoint> https://sts.example.invalid"})
    assert "Could not connect" in text and "<sts_endpoint>" in text


def test_buckets_subscriber_by_queue_arn(moto_server, engine, tmp_path):
    """A `<subscriber type="buckets">` named by its queue ARN (which also gives the region)."""
    from aws_s3_wodle.lab.buckets import BucketsLab
    lab = BucketsLab(endpoint=moto_server.endpoint, region="eu-west-1").create()
    lab.add_samples(("gzip",), records=5)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf(sqs_name=lab.queue_arn))
    proc = run_cli(lab, "test", "--config", str(conf), "--socket", engine.path, env={"AWS_DEFAULT_REGION": "us-east-1",
                                                                                     "AWS_REGION": "us-east-1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = _lines(proc.stdout)
    assert "region eu-west-1" in steps["credentials"] and "assume role" not in steps
    assert f"first object s3://{lab.bucket}/{lab.prefix}" in steps["notification"]
    assert steps["bucket"].lstrip().startswith("OK") and "readable" in steps["bucket"] and "gzip" in steps["bucket"]


def test_bucket_block_lists_its_bucket(moto_server, engine, tmp_path):
    from aws_s3_wodle.lab.security_lake import SecurityLakeLab
    lab = SecurityLakeLab(endpoint=moto_server.endpoint)  # only for its client and environment
    s3 = lab.client("s3")
    s3.create_bucket(Bucket="trail-logs-connectivity")
    s3.put_object(Bucket="trail-logs-connectivity", Key="AWSLogs/123456789012/CloudTrail/x.json.gz", Body=b"x")
    conf = tmp_path / "ossec.conf"
    for bucket, code in (("trail-logs-connectivity", 0), ("trail-logs-missing", 3)):
        conf.write_text(f'<ossec_config><wodle name="aws-s3"><bucket type="cloudtrail"><name>{bucket}</name>'
                        f'</bucket></wodle></ossec_config>')
        proc = run_cli(lab, "test", "--config", str(conf), "--socket", engine.path)
        assert proc.returncode == code, proc.stdout
        line = _lines(proc.stdout)["bucket listing"]
        if code == 0:
            assert line.lstrip().startswith("OK") and "AWSLogs/" in line
        else:
            assert "NoSuchBucket (HTTP 404)" in line and "trail-logs-missing" in line


def test_service_blocks_check_their_log_groups_and_findings(services_lab, engine, tmp_path):
    lab = services_lab
    group = lab.group("app")
    lab.put(group, "s", 3)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf(lab.block("cloudwatchlogs", aws_log_groups=f"{group},/no/such/group",
                                             regions="us-east-1,eu-west-1"),
                                   lab.block("inspector", regions="us-east-1")))
    proc = run_cli(lab, "test", "--config", str(conf), "--socket", engine.path)
    out = proc.stdout
    assert proc.returncode == 3, out  # '/no/such/group' exists in no region
    rows = [l for l in out.splitlines() if "log groups" in l[:30]]
    assert rows[0].lstrip().startswith("OK") and f"'{group}' 1 streams" in rows[0] and "us-east-1" in rows[0]
    assert "'/no/such/group' not in this region" in rows[0]
    assert rows[1].lstrip().startswith("OK") and f"'{group}' not in this region" in rows[1]
    assert rows[2].lstrip().startswith("FAILED") and "/no/such/group exist(s) in none of the regions" in rows[2]
    assert _lines(out)["findings"].lstrip().startswith("OK") and "inspector2:ListFindings in us-east-1" in out
    assert len(lab.streams(group)) == 1  # nothing deleted, nothing consumed
    assert engine.datagrams == []

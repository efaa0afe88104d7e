"""The Wazuh manager's own command lines run one pass, with its output format and distinct exit codes.

wazuh-modulesd builds the command of a subscriber block like this (wm_aws.c, wm_aws_run_subscriber), then
splits it on spaces and runs it from the Wazuh directory; `wazuh_command` below does the same.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from aws_s3_wodle.lab.buckets import BucketsLab
from aws_s3_wodle.lab.faults import require_external_id
from aws_s3_wodle.lab.security_lake import lab_env
from aws_s3_wodle.cli.wazuh import FLAGS, MODES, REFUSED, is_wazuh_command_line

from ..conftest import run_cli
from ..helpers import received_events

LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR): ")


def wazuh_command(sub: dict, debug: int = 0, skip_on_error: bool = True) -> list[str]:
    """The command string wm_aws.c builds for a <subscriber>, split on spaces as wm_exec does."""
    cmd = "wodles/aws/aws-s3"
    cmd += f" --subscriber {sub['type']} --queue {sub['sqs_name']}"
    for flag, key in (("--external_id", "external_id"), ("--iam_role_arn", "iam_role_arn"),
                      ("--iam_role_duration", "iam_role_duration"), ("--aws_profile", "aws_profile"),
                      ("--sts_endpoint", "sts_endpoint"), ("--service_endpoint", "service_endpoint"),
                      ("--discard-field", "discard_field"), ("--discard-regex", "discard_regex")):
        if sub.get(key):
            cmd += f" {flag} {sub[key]}"
    if debug:
        cmd += f" --debug {debug}"
    if skip_on_error:
        cmd += " --skip_on_error"
    return cmd.split(" ")


def run_as_manager(lab, argv: list[str], wazuh_dir, *, env=None, pass_fds=(), extra=("--sqs-wait", "1")):
    """argv[0] is the manager's script path; our entry point takes its place, as the wrapper installs it."""
    full_env = {**os.environ, **lab_env(lab.endpoint, lab.region), **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}
    args = [sys.executable, "-m", "aws_s3_wodle", "--wazuh-path", str(wazuh_dir), *extra, *argv[1:]]
    return subprocess.run(args, env=full_env, capture_output=True, text=True, timeout=120, pass_fds=pass_fds)


def _sub(lab, **kw) -> dict:
    return {"type": "security_lake", "sqs_name": lab.queue_name, "external_id": lab.external_id,
            "iam_role_arn": lab.role_arn, **kw}


def _only_wazuh_lines(out: str) -> None:
    lines = [l for l in out.splitlines() if l.strip()]
    assert lines, "no output at all"
    bad = [l for l in lines if not LINE.match(l)]
    assert not bad, bad


def test_manager_command_line_delivers_one_pass(lab, engine, tmp_path):
    obj = lab.add_generated(300, seed=50)
    argv = wazuh_command(_sub(lab))
    assert argv[:5] == ["wodles/aws/aws-s3", "--subscriber", "security_lake", "--queue", lab.queue_name]
    proc = run_as_manager(lab, argv, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(engine.wait_for(obj.rows, 5)) == obj.rows
    assert all(d.startswith(b"1:Wazuh-AWS:{") for d in engine.datagrams)
    assert lab.queue_depth() == 0
    _only_wazuh_lines(proc.stderr)
    assert proc.stdout == ""
    assert re.search(r"^INFO: Run of security_lake subscriber .* 300 events", proc.stderr, re.M)
    assert lab.external_id not in proc.stderr


def test_every_subscriber_flag_with_its_meaning(lab, engine, tmp_path, fault_proxy):
    """Profile, role with external id and duration, STS and S3 endpoints, debug 3: each one takes effect."""
    obj = lab.add_generated(120, seed=51)
    creds = tmp_path / "credentials"
    creds.write_text("[wazuh-lab]\naws_access_key_id = lab-access-key\naws_secret_access_key = lab-secret-key\n")
    env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SHARED_CREDENTIALS_FILE": str(creds),
           "AWS_CONFIG_FILE": str(tmp_path / "no-config")}
    fault_proxy.add(require_external_id(lab.external_id))  # STS that checks the external id, as AWS does
    argv = wazuh_command(_sub(lab, iam_role_duration="900", aws_profile="wazuh-lab", sts_endpoint=fault_proxy.endpoint,
                              service_endpoint=fault_proxy.endpoint), debug=3)
    proc = run_as_manager(lab, argv, tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(engine.wait_for(obj.rows, 5)) == obj.rows
    seen = {(s.service, s.action.split(" ")[0], s.faulted) for s in fault_proxy.seen}
    assert ("sts", "AssumeRole", False) in seen       # through --sts_endpoint, with the right external id
    assert ("s3", "GET", False) in seen               # the object through --service_endpoint
    assert not any(s.service == "sqs" for s in fault_proxy.seen)  # SQS is not the S3 endpoint's business
    _only_wazuh_lines(proc.stderr)
    assert "DEBUG: " in proc.stderr                  # --debug 3 shows debug lines (and botocore's)
    for secret in (lab.external_id, "lab-secret-key"):
        assert secret not in proc.stdout + proc.stderr


def test_wrong_external_id_is_refused(lab, engine, tmp_path, fault_proxy):
    lab.add_generated(10, seed=52)
    fault_proxy.add(require_external_id("the-one-in-the-trust-policy"))
    proc = run_as_manager(lab, wazuh_command(_sub(lab, sts_endpoint=fault_proxy.endpoint)), tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert re.search(r"^ERROR: .*AssumeRole.*AccessDenied \(HTTP 403\)", proc.stderr, re.M)
    assert engine.datagrams == [] and lab.queue_depth() == 1


def test_external_id_from_a_file_descriptor(lab, engine, tmp_path, fault_proxy):
    """The wrapper hands the external id over a pipe, so the long-running process never shows it in `ps`."""
    obj = lab.add_generated(30, seed=53)
    fault_proxy.add(require_external_id(lab.external_id))
    argv = [a for a in wazuh_command(_sub(lab, sts_endpoint=fault_proxy.endpoint)) if a not in ("--external_id",
                                                                                             lab.external_id)]
    r, w = os.pipe()
    os.write(w, (lab.external_id + "\n").encode())
    os.close(w)
    try:
        proc = run_as_manager(lab, argv, tmp_path, pass_fds=(r,), extra=("--sqs-wait", "1", "--external_id-fd", str(r)))
    finally:
        os.close(r)
    assert proc.returncode == 0, proc.stderr
    assert len(engine.wait_for(obj.rows, 5)) == obj.rows


@pytest.mark.parametrize("change,code,text", [
    (dict(sqs_name="AmazonSecurityLake-none-Main-Queue"), 3, "cannot be found"),
    (dict(iam_role_duration="60"), 2, "--iam_role_duration: invalid value '60'"),
    (dict(iam_role_arn="not-an-arn"), 2, "--iam_role_arn: invalid value"),
    (dict(discard_field="a", discard_regex="b"), 2, "not available for Security Lake"),
    (dict(type="guardduty"), 2, "--subscriber: unknown type 'guardduty'; supported: "),
    (dict(type="buckets", discard_field="action"), 2, "--discard-field and --discard-regex go together"),
    (dict(type="buckets", discard_field="action", discard_regex="(unclosed"), 2,
     "--discard-regex: not a valid regular expression"),
])
def test_distinct_exit_codes_and_error_lines(lab, tmp_path, change, code, text):
    proc = run_as_manager(lab, wazuh_command(_sub(lab, **change)), tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr
    _only_wazuh_lines(proc.stderr)
    assert any(l.startswith("ERROR: ") and text in l for l in proc.stderr.splitlines()), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_engine_down_is_exit_4_and_nothing_acknowledged(lab, tmp_path):
    lab.add_generated(10, seed=54)
    proc = run_as_manager(lab, wazuh_command(_sub(lab)), tmp_path, extra=("--sqs-wait", "1", "--engine-retry", "0.5"))
    assert proc.returncode == 4, proc.stderr
    _only_wazuh_lines(proc.stderr)
    assert lab.queue_depth() == 1


def service_command(svc: dict, debug: int = 0, skip_on_error: bool = True) -> list[str]:
    """The command string wm_aws.c (wm_aws_run_service) builds for a <service>, split on spaces as wm_exec does."""
    cmd = f"wodles/aws/aws-s3 --service {svc['type']}"
    for flag, key in (("--aws_profile", "aws_profile"), ("--iam_role_arn", "iam_role_arn"),
                      ("--iam_role_duration", "iam_role_duration"), ("--aws_account_id", "aws_account_id"),
                      ("--aws_account_alias", "aws_account_alias"), ("--only_logs_after", "only_logs_after"),
                      ("--regions", "regions"), ("--aws_log_groups", "aws_log_groups")):
        if svc.get(key):
            cmd += f" {flag} {svc[key]}"
    if svc.get("remove_log_streams"):
        cmd += " --remove-log-streams"
    for flag, key in (("--discard-field", "discard_field"), ("--discard-regex", "discard_regex"),
                      ("--sts_endpoint", "sts_endpoint"), ("--service_endpoint", "service_endpoint")):
        if svc.get(key):
            cmd += f" {flag} {svc[key]}"
    if debug:
        cmd += f" --debug {debug}"
    if skip_on_error:
        cmd += " --skip_on_error"
    return cmd.split(" ")


def test_service_command_lines_run_one_pass(services_lab, engine, tmp_path):
    """`--service cloudwatchlogs ...` and `--service inspector ...` as wm_aws.c builds them: one pass each, every
    event once; the same command again sends nothing (the state is under the Wazuh directory)."""
    import datetime as dt
    from aws_s3_wodle.config.buckets import format_log_date
    from aws_s3_wodle.lab.services import event_id
    lab = services_lab
    group = lab.group("app")
    lines = lab.put(group, "s-1", 9) + lab.put(group, "s-2", 3)
    yesterday = format_log_date(dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1))
    argv = service_command({"type": "cloudwatchlogs", "aws_log_groups": group, "regions": "us-east-1",
                            "only_logs_after": yesterday, "aws_account_id": "123456789012",
                            "aws_account_alias": "prod", "remove_log_streams": True,
                            "discard_field": "level", "discard_regex": "NOTHING"}, debug=1)
    assert argv[:3] == ["wodles/aws/aws-s3", "--service", "cloudwatchlogs"] and "--remove-log-streams" in argv
    proc = run_as_manager(lab, argv, tmp_path, extra=())
    assert proc.returncode == 0, proc.stderr
    _only_wazuh_lines(proc.stderr)
    got = [d[len(b"1:Wazuh-AWS:"):].decode() for d in engine.wait_for(len(lines), 5)]
    assert sorted(event_id(g) for g in got) == sorted(l.id for l in lines)
    assert re.search(r"^INFO: Run of cloudwatchlogs service .* 2 log streams \(2 removed\), 12 events", proc.stderr, re.M)
    assert lab.streams(group) == []

    findings = lab.findings(5)
    lab.queue_findings(findings)
    argv = service_command({"type": "inspector", "regions": "us-east-1", "only_logs_after": yesterday})
    proc = run_as_manager(lab, argv, tmp_path, extra=())
    assert proc.returncode == 0, proc.stderr
    _only_wazuh_lines(proc.stderr)
    engine.wait_for(len(lines) + 5, 5)
    assert len(engine.datagrams) == len(lines) + 5
    again = run_as_manager(lab, argv, tmp_path, extra=())
    assert again.returncode == 0 and "0 events" in again.stderr and len(engine.datagrams) == len(lines) + 5


def test_bucket_mode_runs_and_reports_a_missing_bucket(lab, tmp_path):
    argv = ("wodles/aws/aws-s3 --bucket no-such-trail-bucket --aws_account_id 123456789012 --regions us-east-1 "
            "--only_logs_after 2026-JAN-01 --type cloudtrail --skip_on_error").split(" ")
    proc = run_as_manager(lab, argv, tmp_path, extra=("--state-dir", str(tmp_path / "state")))
    assert proc.returncode == 3, proc.stderr
    _only_wazuh_lines(proc.stderr)
    assert "NoSuchBucket" in proc.stderr


def test_check_call_says_what_we_take_and_runs_nothing():
    def check(*argv: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # nothing listens: a check that called AWS would fail
        return subprocess.run([sys.executable, "-m", "aws_s3_wodle", *argv, "--check-call"], env=env,
                              capture_output=True, text=True, timeout=60)
    ok = check("--service", "cloudwatchlogs", "--aws_log_groups", "a,b", "--regions", "us-east-1")
    assert ok.returncode == 0 and ok.stderr == ""
    assert check("--service", "inspector", "--only_logs_after", "2026-JAN-01").returncode == 0
    for argv, text in ((("--service", "inspector", "--aws_log_groups", "x"), "does not apply to --service inspector"),
                       (("--service", "macie"), "unknown type 'macie'"),
                       (("--subscriber", "security_lake", "--queue", "q", "--access_key", "AK"), "--access_key is not "
                                                                                                "supported"),
                       (("--service", "inspector", "--a-flag-of-wazuh-5"), "unrecognized arguments")):
        proc = check(*argv)
        assert proc.returncode == 2 and proc.stderr.startswith("ERROR: ") and text in proc.stderr, proc.stderr


def test_skip_on_error_flag_sets_the_section_option():
    from aws_s3_wodle.cli.wazuh import build_parser, translate
    base = ["--subscriber", "security_lake", "--queue", "q"]
    with_flag, block, run = translate(build_parser().parse_args(base + ["--skip_on_error", "--debug", "2"]))
    without, _, _ = translate(build_parser().parse_args(base))
    assert with_flag.skip_on_error is True and without.skip_on_error is False
    assert block.sqs_name == "q" and run == {"debug": 2}


def test_flag_table_covers_every_flag_wm_aws_passes():
    """Every flag wm_aws.c passes for subscribers, buckets and services is known (no 'unrecognized')."""
    names = {n for f in FLAGS for n in f.names} | {n for m in MODES for n in m.flag.names} | \
        {n for names in REFUSED for n in names}
    wm_aws = ["--subscriber", "--queue", "--external_id", "--iam_role_arn", "--iam_role_duration", "--aws_profile",
              "--sts_endpoint", "--service_endpoint", "--discard-field", "--discard-regex", "--debug",
              "--skip_on_error", "--bucket", "--remove", "--access_key", "--secret_key", "--aws_organization_id",
              "--aws_account_id", "--aws_account_alias", "--trail_prefix", "--trail_suffix", "--only_logs_after",
              "--regions", "--type", "--service", "--aws_log_groups", "--remove-log-streams"]
    assert set(wm_aws) <= names
    assert is_wazuh_command_line(["--subscriber", "security_lake"]) and is_wazuh_command_line(["-b", "x"])
    assert not is_wazuh_command_line(["--config", "x", "--once"])


def test_our_own_command_line_is_untouched(lab, tmp_path):
    proc = run_cli(lab, "--config", str(tmp_path / "missing.conf"), "--once")
    assert proc.returncode == 1 and "cannot be read" in proc.stderr


def test_buckets_subscriber_with_discard_flags(moto_server, engine, tmp_path):
    """`--subscriber buckets` with Wazuh's --discard-field/--discard-regex: matching events are dropped."""
    lab = BucketsLab(endpoint=moto_server.endpoint).create()
    objects = lab.add_samples(("plain",), records=20)
    drop = re.compile("log(in|out)$")
    def dropped(r):
        return isinstance(r.get("action"), str) and drop.match(r["action"]) is not None
    kept = sum(1 for o in objects for r in o.records if not dropped(r))
    gone = sum(1 for o in objects for r in o.records if dropped(r))
    assert kept > 10 and gone > 10
    argv = wazuh_command({"type": "buckets", "sqs_name": lab.queue_name, "discard_field": "action",
                          "discard_regex": "log(in|out)$"})
    proc = run_as_manager(lab, argv, tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = received_events(engine, kept)
    assert len(events) == kept and all(not dropped(e["aws"]) for e in events)
    assert {e["aws"]["source"] for e in events} == {"custom"}
    assert f"{gone} discarded" in proc.stderr
    _only_wazuh_lines(proc.stderr)
    assert lab.queue_depth() == 0


def test_security_hub_subscriber_with_discard_flags(moto_server, engine, tmp_path):
    lab = BucketsLab(endpoint=moto_server.endpoint).create()
    obj = lab.add_security_hub(5, 4, seed=3)
    archived = [r for r in obj.records if r["finding"]["RecordState"] == "ARCHIVED"]
    active = len(obj.records) - len(archived)
    assert archived and active
    argv = wazuh_command({"type": "security_hub", "sqs_name": lab.queue_name, "discard_field": "finding.RecordState",
                          "discard_regex": "ARCHIVED"}, debug=1)
    proc = run_as_manager(lab, argv, tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = received_events(engine, active)
    assert len(events) == active and all(e["aws"]["finding"]["RecordState"] != "ARCHIVED" for e in events)
    assert {e["aws"]["source"] for e in events} == {"securityhub"}
    _only_wazuh_lines(proc.stderr)


def _switch_tree(tmp_path):
    """The switch as the package installs it (usr/sbin beside usr/bin/aws-s3-wodle, here a shim running this
    checkout), and a manager whose original aws-s3 script is a stand-in recording each call's arguments."""
    from pathlib import Path
    import shutil
    src = Path(__file__).resolve().parents[2] / "packaging" / "aws-s3-wodle-wazuh-switch"
    usr = tmp_path / "usr"
    (usr / "sbin").mkdir(parents=True)
    (usr / "bin").mkdir()
    switch = usr / "sbin" / "aws-s3-wodle-wazuh-switch"
    shutil.copy(src, switch)
    entry = usr / "bin" / "aws-s3-wodle"
    entry.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m aws_s3_wodle "$@"\n')
    entry.chmod(0o755)
    wazuh = tmp_path / "wazuh"
    (wazuh / "wodles" / "aws").mkdir(parents=True)
    calls = tmp_path / "original-calls.txt"
    original = wazuh / "wodles" / "aws" / "aws-s3"
    original.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{calls}"\necho "the manager\'s own script ran"\n')
    original.chmod(0o750)
    proc = subprocess.run([str(switch), "enable", "--wazuh-path", str(wazuh)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return wazuh, original, calls


def test_the_switch_hands_calls_we_do_not_take_to_the_original_script_and_says_so_once(tmp_path):
    wazuh, script, calls = _switch_tree(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

    def manager(argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["wodles/aws/aws-s3", *argv.split(" ")], cwd=wazuh, env=env, capture_output=True,
                              text=True, timeout=120)
    refused = "--service inspector --aws_log_groups x --regions us-east-1 --skip_on_error"
    first = manager(refused)
    assert first.returncode == 0, first.stderr
    warnings = [l for l in (first.stdout + first.stderr).splitlines() if l.startswith("WARNING: ")]
    assert len(warnings) == 1 and "does not apply to --service inspector" in warnings[0]
    assert "original script" in warnings[0] and "the manager's own script ran" in first.stdout
    second = manager(refused)
    assert second.returncode == 0 and "WARNING" not in second.stdout + second.stderr  # said once
    # a flag of a newer manager, and keys on the command line: other reasons, said once each
    newer = manager("--service cloudwatchlogs --aws_log_groups g --a-flag-of-wazuh-5 1")
    assert "unrecognized arguments" in newer.stdout
    keyed = manager("--subscriber security_lake --queue q --external_id s3cr3t-id --iam_role_arn "
                    "arn:aws:iam::123456789012:role/r --access_key AKIAEXAMPLE")
    assert "--access_key is not supported" in keyed.stdout and "s3cr3t-id" not in keyed.stdout + keyed.stderr
    recorded = calls.read_text().splitlines()
    assert recorded[:2] == [refused, refused]
    assert recorded[2] == "--service cloudwatchlogs --aws_log_groups g --a-flag-of-wazuh-5 1"
    # the original gets the external id as the manager gave it (it takes it on its command line)
    assert recorded[3].split(" ")[-2:] == ["--external_id", "s3cr3t-id"] and "--access_key AKIAEXAMPLE" in recorded[3]
    assert len(recorded) == 4


def test_the_switch_runs_service_calls_itself(services_lab, tmp_path):
    import datetime as dt
    from aws_s3_wodle.config.buckets import format_log_date
    from aws_s3_wodle.lab.engine import DatagramEngine
    wazuh, script, calls = _switch_tree(tmp_path)
    lab = services_lab
    group = lab.group("app")
    lines = lab.put(group, "s", 6)
    yesterday = format_log_date(dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1))
    argv = service_command({"type": "cloudwatchlogs", "aws_log_groups": group, "regions": "us-east-1",
                            "only_logs_after": yesterday})
    env = {**os.environ, **lab_env(lab.endpoint, lab.region)}
    with DatagramEngine(str(wazuh / "queue" / "sockets" / "queue")) as engine:
        proc = subprocess.run(argv, cwd=wazuh, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert len(engine.wait_for(len(lines), 5)) == len(lines)
    _only_wazuh_lines(proc.stdout + proc.stderr)
    assert not calls.exists()  # the original script was not called

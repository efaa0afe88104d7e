"""The command as an operator meets it: the scheduler mode, signals, and the README's commands."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aws_s3_wodle.lab.security_lake import lab_env

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line)
    assert command.strip() in readme


def test_scheduler_runs_on_interval_and_stops_cleanly_on_sigterm(lab, engine, tmp_path):
    lab.add_generated(20, seed=11)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf(interval="2s"))
    proc = subprocess.Popen([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--socket", engine.path,
                             "--sqs-wait", "0", "--state-dir", str(tmp_path / "state")], env={**os.environ, **lab_env(lab.endpoint, lab.region)},
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(engine.datagrams) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        lab.add_generated(5, seed=12)  # picked up by a later run of the same scheduler
        while len(engine.datagrams) < 25 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert len(engine.datagrams) == 25, err
    uids = {json.loads(d.split(b":", 2)[2])["metadata"]["uid"] for d in engine.datagrams}
    assert uids == {f"11-{i}" for i in range(20)} | {f"12-{i}" for i in range(5)}
    assert "Received SIGTERM" in err and "Traceback" not in err
    assert len(re.findall(r"INFO: Run of security_lake subscriber", err)) >= 2


def test_disabled_sections_do_nothing(tmp_path):
    conf = tmp_path / "ossec.conf"
    conf.write_text('<ossec_config><wodle name="aws-s3"><disabled>yes</disabled>'
                    '<subscriber type="security_lake"><sqs_name>q</sqs_name></subscriber></wodle></ossec_config>')
    proc = subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "disabled: nothing to do" in proc.stderr


def test_missing_queue_is_an_aws_error_with_a_hint(lab, tmp_path):
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf().replace(lab.queue_name, "no-such-queue"))
    proc = subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--output", "-"],
                          env={**os.environ, **lab_env(lab.endpoint, lab.region)}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3
    assert "SQS queue 'no-such-queue' cannot be found" in proc.stderr and "check <sqs_name>" in proc.stderr
    assert "Traceback" not in proc.stderr and lab.external_id not in proc.stderr


@pytest.mark.parametrize("argv,flag", [
    (["--batch-size", "0"], "--batch-size"), (["--batch-size", "-5"], "--batch-size"),
    (["--batch-size", "x"], "--batch-size"), (["--engine-retry", "nan"], "--engine-retry"),
    (["--engine-retry", "-1"], "--engine-retry"), (["--engine-retry", "inf"], "--engine-retry"),
])
@pytest.mark.parametrize("prefix", [[], ["--subscriber", "security_lake", "--queue", "q"]],
                         ids=["own", "wazuh"])
def test_bad_numbers_are_usage_errors(prefix, argv, flag, capsys):
    from aws_s3_wodle.cli import main as cli
    from aws_s3_wodle.cli import wazuh as wazuh_args
    parser = wazuh_args.build_parser() if prefix else cli.build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(prefix + argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and repr(argv[1]) in err and "Traceback" not in err
    ok = parser.parse_args(prefix + ["--batch-size", "1", "--engine-retry", "0"])
    assert ok.batch_size == 1 and ok.engine_retry == 0.0


@pytest.mark.parametrize("debug", [0, 1])
def test_an_unexpected_exception_is_one_line_and_exit_70(debug, monkeypatch, tmp_path, caplog):
    from aws_s3_wodle.cli import main as cli
    from aws_s3_wodle.errors import EXIT_INTERNAL

    def boom(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(cli, "run", boom)
    monkeypatch.setattr(cli.logsetup, "setup", lambda *a, **k: None)  # keep pytest's capture
    with caplog.at_level("DEBUG", logger="aws-s3-wodle"):
        code = cli.main(["--config", str(tmp_path / "ossec.conf"), "--debug", str(debug)])
    assert code == EXIT_INTERNAL == 70
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith("Internal error: ZeroDivisionError: division by zero; this is a bug")
    assert (record.exc_info is not None) == bool(debug)
    assert "| 70 | internal error" in (ROOT / "README.md").read_text()


def test_every_command_line_defaults_to_the_one_wazuh_path():
    from aws_s3_wodle.cli import main as cli
    from aws_s3_wodle.cli import check as connectivity
    from aws_s3_wodle.cli import wazuh as wazuh_args
    from aws_s3_wodle.config.wodle import DEFAULT_CONFIG, DEFAULT_WAZUH_PATH
    parsers = [cli.build_parser(), wazuh_args.build_parser(), connectivity.build_parser()]
    assert {p.get_default("wazuh_path") for p in parsers} == {DEFAULT_WAZUH_PATH}
    assert DEFAULT_CONFIG.startswith(DEFAULT_WAZUH_PATH + "/")
    sources = "".join(p.read_text() for p in (ROOT / "aws_s3_wodle").rglob("*.py"))
    assert sources.count('"/var/ossec"') == 1  # written once, in config.py


def test_a_first_signal_asks_for_a_stop_and_a_second_one_stops_at_once(caplog):
    """The first SIGTERM/SIGINT sets the run's stop (every wait of the run watches it); a second one raises
    KeyboardInterrupt wherever the main thread is, which `guarded` turns into exit 130 and one line."""
    import logging
    import threading

    from aws_s3_wodle.errors import EXIT_INTERRUPTED, guarded
    from aws_s3_wodle.run.process import _install_signals

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stop = threading.Event()
    try:
        _install_signals(stop)
        handler = signal.getsignal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) is handler
        handler(signal.SIGTERM, None)
        assert stop.is_set()

        def body() -> int:
            handler(signal.SIGINT, None)
            return 0
        log = logging.getLogger("aws-s3-wodle")
        with caplog.at_level(logging.WARNING, logger="aws-s3-wodle"):
            assert guarded(log, body, debug=False) == EXIT_INTERRUPTED
    finally:
        for sig, old in saved.items():
            signal.signal(sig, old)
    assert "Stopped at once by a second signal" in caplog.text

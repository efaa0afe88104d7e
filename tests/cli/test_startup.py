"""Start-up: a pass over an empty queue pays only for what it uses (CPU figures live in bench/)."""
from __future__ import annotations

import os
import subprocess
import sys

from ..conftest import run_wodle

IMPORT_LOG = {"PYTHONPROFILEIMPORTTIME": "1"}  # Python logs every module it imports to stderr


def _imported(stderr: str) -> set:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def test_empty_queue_pass_never_imports_pyarrow(lab, engine, tmp_path):
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    args = ("--once", "--run-on-start", "--socket", engine.path, "--sqs-wait", "0")
    proc = run_wodle(lab, conf, *args, env=IMPORT_LOG)
    assert proc.returncode == 0, proc.stderr
    assert "0 messages" in proc.stderr
    modules = _imported(proc.stderr)
    assert "botocore.session" in modules and "aws_s3_wodle.cli.main" in modules  # the import log is really there
    assert not {m for m in modules if m.split(".")[0] == "pyarrow"}
    # botocore's clients, not boto3's (which imports s3transfer and multiprocessing we never use); no
    # prometheus_client without --metrics-file
    assert not {m for m in modules if m.split(".")[0] in ("boto3", "s3transfer", "prometheus_client")}
    # an object to decode does bring pyarrow in
    lab.add_generated(5, seed=41)
    proc = run_wodle(lab, conf, *args, env=IMPORT_LOG)
    assert proc.returncode == 0, proc.stderr
    assert "pyarrow" in _imported(proc.stderr)
    assert len(engine.datagrams) == 5


def _exit_of(*args: str, close_stdout: bool = False) -> subprocess.CompletedProcess:
    """The executable's exit, run as `python -m aws_s3_wodle ...` (the console script calls the same entry)."""
    return subprocess.run([sys.executable, "-m", "aws_s3_wodle", *args], capture_output=not close_stdout,
                          stderr=subprocess.PIPE if close_stdout else None, text=True, timeout=60,
                          preexec_fn=(lambda: os.close(1)) if close_stdout else None)


def test_the_quick_exit_keeps_main_s_exit_code_and_its_last_words(tmp_path):
    """A pass ends with os._exit after flushing: the code and the last log line are still what main gave."""
    missing = tmp_path / "nowhere" / "ossec.conf"
    proc = _exit_of("--config", str(missing), "--once")
    assert proc.returncode == 1, proc.stderr  # a configuration error
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr
    # started with its standard output closed (a supervisor's `>&-`): still code 1, still no traceback
    proc = _exit_of("--config", str(missing), "--once", close_stdout=True)
    assert proc.returncode == 1, proc.stderr
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr


def test_the_output_of_a_pass_to_stdout_is_flushed_before_the_quick_exit(lab, tmp_path):
    """--output - : every event line reaches the pipe although the process skips its teardown."""
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    lab.add_generated(7, seed=43)
    proc = run_wodle(lab, conf, "--once", "--run-on-start", "--output", "-", "--sqs-wait", "0")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 7
    assert "done: 1 messages" in proc.stderr  # the run's last log line, flushed by the quick exit

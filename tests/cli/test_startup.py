"""Start-up: a pass over an empty queue pays only for what it uses (CPU figures live in bench/)."""
from __future__ import annotations

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

"""--metrics-file (Prometheus text format, atomic) and the live progress line (terminal only)."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading

from prometheus_client.parser import text_string_to_metric_families

from aws_s3_wodle.lab.security_lake import lab_env
from aws_s3_wodle.observe.metrics import Metrics
from aws_s3_wodle.observe.stats import RunStats

from ..conftest import run_wodle


def _samples(path) -> dict:
    """(name, frozenset(labels without type/name)) -> value."""
    out = {}
    for family in text_string_to_metric_families(open(path).read()):
        for s in family.samples:
            labels = {k: v for k, v in s.labels.items() if k not in ("type", "name")}
            out[(s.name, frozenset(labels.items()))] = s.value
    return out


def test_metrics_after_a_run(lab, engine, tmp_path):
    a = lab.add_generated(700, seed=60)
    b = lab.add_generated(300, version="1.0.0-rc.2", seed=61)
    lab.client("sqs").send_message(QueueUrl=lab.queue_url, MessageBody="not a notification")
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    prom = tmp_path / "metrics" / "wodle.prom"
    prom.parent.mkdir()
    proc = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", "--metrics-file", str(prom))
    assert proc.returncode == 5, proc.stderr  # one message could not be understood
    m = _samples(prom)
    one = frozenset()
    assert m[("aws_s3_wodle_messages_received_total", one)] == 3
    assert m[("aws_s3_wodle_messages_deleted_total", one)] == 2
    assert m[("aws_s3_wodle_messages_returned_total", one)] == 1
    assert m[("aws_s3_wodle_objects_total", one)] == 2
    assert m[("aws_s3_wodle_events_total", one)] == a.rows + b.rows == len(engine.datagrams)
    assert m[("aws_s3_wodle_bytes_total", one)] == sum(len(d) for d in engine.datagrams)
    assert m[("aws_s3_wodle_errors_total", frozenset({("class", "notification")}))] == 1
    assert m[("aws_s3_wodle_runs_total", frozenset({("result", "partial")}))] == 1
    assert m[("aws_s3_wodle_queue_messages", frozenset({("state", "in_flight")}))] == 1
    assert m[("aws_s3_wodle_queue_messages", frozenset({("state", "visible")}))] == 0
    assert 0 < m[("aws_s3_wodle_last_run_oldest_message_age_seconds", one)] < 120
    assert m[("aws_s3_wodle_last_run_seconds", one)] > 0
    labels = {s.labels["name"] for f in text_string_to_metric_families(prom.read_text()) for s in f.samples}
    assert labels == {lab.queue_name}
    assert os.listdir(prom.parent) == ["wodle.prom"]  # the temporary file was renamed, not left behind


def test_metrics_of_a_failed_run(lab, tmp_path):
    lab.add_generated(10, seed=62)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    prom = tmp_path / "wodle.prom"
    proc = run_wodle(lab, conf, "--once", "--socket", str(tmp_path / "nothing"), "--sqs-wait", "1",
                     "--engine-retry", "0.3", "--metrics-file", str(prom))
    assert proc.returncode == 4
    m = _samples(prom)
    assert m[("aws_s3_wodle_runs_total", frozenset({("result", "failed")}))] == 1
    assert m[("aws_s3_wodle_errors_total", frozenset({("class", "sink")}))] == 1
    assert m[("aws_s3_wodle_messages_deleted_total", frozenset())] == 0
    assert m[("aws_s3_wodle_messages_returned_total", frozenset())] == 1


def test_block_labels_name_the_queue():
    from aws_s3_wodle.observe.metrics import block_labels

    class Block:
        TYPE = "buckets"
        sqs_name = "arn:aws:sqs:eu-west-1:123456789012:app-logs"

    assert block_labels(Block()) == {"type": "buckets", "name": "app-logs"}
    Block.sqs_name = "https://sqs.eu-west-1.amazonaws.com/123456789012/app-logs"
    assert block_labels(Block())["name"] == "app-logs"


def test_metrics_file_is_replaced_atomically(tmp_path):
    """A reader polling the file while it is rewritten never sees a partial file."""
    path = tmp_path / "m.prom"
    metrics = Metrics(str(path))

    class Block:
        TYPE, sqs_name = "security_lake", "q"

    stats = RunStats("x", messages=5, deleted=5, objects=5, events=50000, bytes=10**8)
    metrics.observe(Block(), stats)
    metrics.run_done(Block(), "ok")
    stop = threading.Event()
    bad = []

    def reader():
        while not stop.is_set():
            try:
                text = path.read_text()
            except FileNotFoundError:
                bad.append("missing")
                continue
            if not text.endswith("\n") or "aws_s3_wodle_queue_messages" not in text:
                bad.append(text[-80:])

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(300):
        metrics.observe(Block(), stats)
        metrics.run_done(Block(), "ok")
    stop.set()
    t.join()
    assert bad == []
    assert _samples(path)[("aws_s3_wodle_runs_total", frozenset({("result", "ok")}))] == 301


def _run_on_pty(lab, conf, engine) -> tuple[int, bytes]:
    env = {**os.environ, **lab_env(lab.endpoint, lab.region)}
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--socket",
                             engine.path, "--sqs-wait", "1", "--batch-size", "500", "--state-dir",
                             str(conf.parent / "state")], env=env, stderr=slave,
                            stdout=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(), out


def test_progress_line_on_a_terminal_only(lab, engine, tmp_path):
    lab.add_generated(2000, seed=63)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    code, out = _run_on_pty(lab, conf, engine)
    assert code == 0
    text = out.decode()
    frames = [f for f in text.split("\r\x1b[K") if "events/s" in f and "\n" not in f]
    assert frames, text
    assert any("1 objects, 2000 events" in f for f in frames)          # the final count is drawn
    assert any(f"security_lake subscriber '{lab.queue_name}'" in f for f in frames)
    summary = [l for l in text.splitlines() if "INFO: Run of" in l]
    assert len(summary) == 1 and summary[0].lstrip("\r\x1b[K").split(" ")[0].count("/") == 2  # a clean log line
    # the same run with stderr on a pipe (a manager, a service, a redirect): no progress at all
    lab.add_generated(200, seed=64)
    proc = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1")
    assert proc.returncode == 0 and "\x1b[K" not in proc.stderr and "events/s" in proc.stderr  # only the summary
    assert "objects, 200 events (" not in proc.stderr

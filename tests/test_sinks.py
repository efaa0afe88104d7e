"""The analysisd sink on a real Unix datagram socket: wire format, size limit, reconnect, engine down."""
from __future__ import annotations

import json
import threading
import time

import pytest

from aws_s3_wodle.errors import SinkError
from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.sinks import OversizeRecorder
from aws_s3_wodle.sinks.analysisd import AnalysisdSink
from aws_s3_wodle.sinks.jsonl import JsonLinesSink


def test_wire_format_and_oversized_event_recorded(tmp_path):
    path = str(tmp_path / "queue")
    record = tmp_path / "state" / "oversized.jsonl"
    big = json.dumps({"x": "a" * 70000}).encode()
    with DatagramEngine(path) as engine:
        sink = AnalysisdSink(path, OversizeRecorder(record))
        result = sink.send_batch([b'{"a":1}', big, b'{"b":2}'], "s3://b/k")
        engine.wait_for(2, 5)
        sink.close()
    assert (result.sent, result.oversized) == (2, 1)
    assert engine.datagrams == [b'1:Wazuh-AWS:{"a":1}', b'1:Wazuh-AWS:{"b":2}']
    kept = json.loads(record.read_text())
    assert kept["object"] == "s3://b/k" and kept["event"] == json.loads(big) and kept["bytes"] > 65535


def test_exactly_the_limit_is_sent(tmp_path):
    path = str(tmp_path / "queue")
    event = b'"' + b"a" * (65535 - len(b"1:Wazuh-AWS:") - 2) + b'"'
    with DatagramEngine(path) as engine:
        sink = AnalysisdSink(path, OversizeRecorder(None))
        assert sink.send_batch([event], "o").sent == 1
        engine.wait_for(1, 5)
    assert len(engine.datagrams[0]) == 65535
    with pytest.raises(SinkError, match="no --state-dir"):
        AnalysisdSink(path, OversizeRecorder(None)).send_batch([event + b" "], "o")


def test_reconnects_when_the_engine_restarts(tmp_path):
    path = str(tmp_path / "queue")
    first = DatagramEngine(path).start()
    sink = AnalysisdSink(path, OversizeRecorder(None), retry_seconds=10)
    sink.send_batch([b"1"], "o")
    first.wait_for(1, 5)
    first.stop()  # the engine goes away; it comes back 0.5 s later on the same path
    second = DatagramEngine(path)
    threading.Timer(0.5, second.start).start()
    sink.send_batch([b"2", b"3"], "o")
    second.wait_for(2, 5)
    second.stop()
    sink.close()
    assert first.datagrams == [b"1:Wazuh-AWS:1"] and second.datagrams == [b"1:Wazuh-AWS:2", b"1:Wazuh-AWS:3"]


def test_engine_down_raises_after_retry_window(tmp_path):
    sink = AnalysisdSink(str(tmp_path / "missing"), OversizeRecorder(None), retry_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(SinkError, match="is wazuh-analysisd running"):
        sink.send_batch([b"1"], "o")
    assert 0.25 < time.monotonic() - started < 3


def test_jsonl_file_appends(tmp_path):
    out = tmp_path / "events.jsonl"
    sink = JsonLinesSink(str(out))
    sink.send_batch([b'{"a":1}', b'{"a":2}'], "o")
    sink.send_batch([b'{"a":3}'], "o")
    sink.close()
    assert out.read_text().splitlines() == ['{"a":1}', '{"a":2}', '{"a":3}']

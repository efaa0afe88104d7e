"""The analysisd sink on a real Unix datagram socket: wire format, size limit, reconnect, engine down."""
from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest

from aws_s3_wodle.errors import SinkError
from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.sinks.recorder import OversizeRecorder
from aws_s3_wodle.sinks.analysisd import AnalysisdSink
from aws_s3_wodle.sinks.jsonl import JsonLinesSink

from ..helpers import drain


def test_wire_format_and_oversized_event_recorded(tmp_path, as_batch):
    path = str(tmp_path / "queue")
    record = tmp_path / "state" / "oversized.jsonl"
    big = json.dumps({"x": "a" * 70000}).encode()
    with DatagramEngine(path) as engine:
        sink = AnalysisdSink(path, OversizeRecorder(record))
        result = sink.send_batch(as_batch([b'{"a":1}', big, b'{"b":2}']), "s3://b/k")
        engine.wait_for(2, 5)
        sink.close()
    assert (result.sent, result.oversized, result.bytes) == (2, 1, 2 * 12 + 14)
    assert engine.datagrams == [b'1:Wazuh-AWS:{"a":1}', b'1:Wazuh-AWS:{"b":2}']
    kept = json.loads(record.read_text())
    assert kept["object"] == "s3://b/k" and kept["bytes"] == len(big) + 12 > 65535
    # the head, size and hash of the event, not the event: a huge one must not fill the disk
    assert kept["head"] == big[:4096].decode() and kept["truncated"] is True
    assert kept["event_bytes"] == len(big) and kept["sha256"] == hashlib.sha256(big).hexdigest()
    assert len(record.read_bytes()) < 4096 + 400


def test_exactly_the_limit_is_sent(tmp_path, as_batch):
    path = str(tmp_path / "queue")
    event = b'"' + b"a" * (65535 - len(b"1:Wazuh-AWS:") - 2) + b'"'
    with DatagramEngine(path) as engine:
        sink = AnalysisdSink(path, OversizeRecorder(None))
        assert sink.send_batch(as_batch([event]), "o").sent == 1
        engine.wait_for(1, 5)
    assert len(engine.datagrams[0]) == 65535
    with pytest.raises(SinkError, match="no --state-dir"):
        AnalysisdSink(path, OversizeRecorder(None)).send_batch(as_batch([event + b" "]), "o")


def test_reconnects_when_the_engine_restarts(tmp_path, as_batch):
    path = str(tmp_path / "queue")
    first = DatagramEngine(path).start()
    sink = AnalysisdSink(path, OversizeRecorder(None), retry_seconds=10)
    sink.send_batch(as_batch([b"1"]), "o")
    first.wait_for(1, 5)
    first.stop()  # the engine goes away; it comes back 0.5 s later on the same path
    second = DatagramEngine(path)
    threading.Timer(0.5, second.start).start()
    sink.send_batch(as_batch([b"2", b"3"]), "o")
    second.wait_for(2, 5)
    second.stop()
    sink.close()
    assert first.datagrams == [b"1:Wazuh-AWS:1"] and second.datagrams == [b"1:Wazuh-AWS:2", b"1:Wazuh-AWS:3"]


def test_engine_down_raises_after_retry_window(tmp_path, as_batch):
    sink = AnalysisdSink(str(tmp_path / "missing"), OversizeRecorder(None), retry_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(SinkError, match="is wazuh-analysisd running"):
        sink.send_batch(as_batch([b"1"]), "o")
    assert 0.25 < time.monotonic() - started < 3


@pytest.mark.parametrize("batched", [True, False], ids=["sendmmsg", "one-by-one"])
def test_a_large_batch_goes_out_in_order_around_oversized_events(tmp_path, batched):
    """Thousands of events (several sendmmsg windows) with oversized ones at the edges and inside."""
    import pyarrow as pa

    from aws_s3_wodle.sinks.mmsg import WINDOW
    from aws_s3_wodle.decode.textbatch import TextBatch
    path = str(tmp_path / "queue")
    record = tmp_path / "oversized.jsonl"
    big = {0, 1, WINDOW - 1, WINDOW, 1500, 2999}
    events = [json.dumps({"i": i, "pad": "x" * (70000 if i in big else i % 50)}).encode() for i in range(3000)]
    with DatagramEngine(path) as engine:
        sink = AnalysisdSink(path, OversizeRecorder(record), batched=batched)
        result = sink.send_batch(TextBatch(pa.array(events, pa.binary())), "s3://b/k")
        engine.wait_for(3000 - len(big), 10)
        sink.close()
    assert (sink._batcher is not None) == batched  # on Linux the sendmmsg path carries it unless turned off
    assert (result.sent, result.oversized) == (3000 - len(big), len(big))
    assert result.bytes == sum(len(e) + 12 for i, e in enumerate(events) if i not in big)
    assert [json.loads(d[12:])["i"] for d in engine.datagrams] == [i for i in range(3000) if i not in big]
    assert all(d.startswith(b"1:Wazuh-AWS:{") for d in engine.datagrams)
    assert sorted(json.loads(line)["sha256"] for line in record.read_text().splitlines()) == \
        sorted(hashlib.sha256(events[i]).hexdigest() for i in big)


def test_without_sendmmsg_or_when_it_is_refused_events_go_one_by_one(tmp_path, monkeypatch, caplog):
    """No sendmmsg in the C library, or one the kernel (or a seccomp filter) refuses part-way: nothing is
    lost or sent twice, the rest of the batch and the later ones go one datagram at a time."""
    import ctypes
    import errno

    import pyarrow as pa

    from aws_s3_wodle.sinks import mmsg
    from aws_s3_wodle.decode.textbatch import TextBatch
    events = [json.dumps({"i": i}).encode() for i in range(3000)]
    batch = TextBatch(pa.array(events, pa.binary()))
    path = str(tmp_path / "queue")

    monkeypatch.setattr(mmsg, "_sendmmsg", lambda: None)  # a C library without it
    with DatagramEngine(path) as engine:
        sink = AnalysisdSink(path, OversizeRecorder(None))
        assert sink.send_batch(batch, "o").sent == 3000 and sink._batcher is None and not sink.batched
        engine.wait_for(3000, 10)
    assert [json.loads(d[12:])["i"] for d in engine.datagrams] == list(range(3000))

    monkeypatch.undo()
    real = mmsg._sendmmsg()
    calls = []

    def refused_after_one_window(fd, msgs, count, flags):
        calls.append(count)
        if len(calls) > 1:
            ctypes.set_errno(errno.ENOSYS)
            return -1
        return real(fd, msgs, count, flags)

    monkeypatch.setattr(mmsg, "_sendmmsg", lambda: refused_after_one_window)
    with DatagramEngine(path) as engine:
        sink = AnalysisdSink(path, OversizeRecorder(None))
        result = sink.send_batch(batch, "o")
        assert (result.sent, result.bytes) == (3000, sum(len(e) + 12 for e in events))
        assert not sink.batched and len(calls) == 2
        sink.send_batch(batch[:10], "o")  # later batches: one by one from the start
        assert len(calls) == 2
        engine.wait_for(3010, 10)
    assert [json.loads(d[12:])["i"] for d in engine.datagrams] == list(range(3000)) + list(range(10))
    assert "sendmmsg is refused here" in caplog.text


def test_jsonl_file_appends(tmp_path):
    out = tmp_path / "events.jsonl"
    sink = JsonLinesSink(str(out))
    sink.send_batch([b'{"a":1}', b'{"a":2}'], "o")
    sink.send_batch([b'{"a":3}'], "o")
    sink.close()
    assert out.read_text().splitlines() == ['{"a":1}', '{"a":2}', '{"a":3}']


def test_the_record_file_is_capped_and_rotated_keeping_n_files(tmp_path, caplog):
    """Oversized events are recorded as head + size + sha256; past --record-max-bytes the file rotates, and
    only --record-files older files are kept (the removal is logged): the disk use is bounded."""
    import logging

    from aws_s3_wodle.sinks.recorder import OversizeRecorder
    path = tmp_path / "state" / "oversized-events.jsonl"
    recorder = OversizeRecorder(path, max_bytes=64 * 1024, keep=2)
    events = [json.dumps({"n": i, "pad": "é" * 50_000}).encode() for i in range(100)]
    with caplog.at_level(logging.WARNING, logger="aws-s3-wodle"):
        for event in events:
            assert recorder.record("s3://b/k", event, len(event) + 12, 65535) == str(path)
    files = sorted(path.parent.iterdir())
    assert [f.name for f in files] == ["oversized-events.jsonl", "oversized-events.jsonl.1", "oversized-events.jsonl.2"]
    assert all(f.stat().st_size <= 64 * 1024 for f in files)
    kept = [json.loads(line) for f in reversed(files) for line in f.read_text().splitlines()]
    # the newest records survive, in order, each the head of its event (cut at a character boundary)
    assert [k["sha256"] for k in kept] == [hashlib.sha256(e).hexdigest() for e in events[-len(kept):]]
    assert all(events[100 - len(kept) + i].decode().startswith(k["head"]) and 4090 <= len(k["head"].encode()) <= 4096
               for i, k in enumerate(kept))
    assert any("were removed (--record-files 2)" in r.getMessage() for r in caplog.records)


def test_an_unwritable_record_file_keeps_the_object_queued(tmp_path):
    from aws_s3_wodle.errors import SinkError
    from aws_s3_wodle.sinks.recorder import OversizeRecorder
    (tmp_path / "state").write_text("a file where the directory should be")
    with pytest.raises(SinkError, match="cannot record an oversized event of s3://b/k .* the object stays queued"):
        OversizeRecorder(tmp_path / "state" / "oversized-events.jsonl").record("s3://b/k", b"{}" * 40000, 80012, 65535)


def test_an_oversized_text_event_is_recorded_as_valid_json(tmp_path):
    """CloudWatch Logs messages are sent as they are (any text, up to 256 KB): the record stays JSON lines."""
    from aws_s3_wodle.sinks.recorder import OversizeRecorder
    recorder = OversizeRecorder(tmp_path / "oversized-events.jsonl")
    recorder.record("log stream 's'", b"plain text line " * 5000, 80000, 65535)
    recorder.record("s3://b/k", b'{"a": 1}', 70000, 65535)
    rows = [json.loads(line) for line in (tmp_path / "oversized-events.jsonl").read_text().splitlines()]
    assert rows[0]["head"].startswith("plain text line") and rows[1]["head"] == '{"a": 1}'


def test_a_stop_ends_the_wait_for_a_busy_engine_and_says_how_much_of_the_batch_it_took(tmp_path, as_batch):
    """An engine that reads nothing (its socket's queue full): the sink backs off for up to busy_seconds, but a
    stop ends that wait within a send timeout; Interrupted says how many events of the batch the socket took,
    in order, so the object's checkpoint can keep exactly those."""
    import socket as socket_module

    from aws_s3_wodle.errors import Interrupted
    path = str(tmp_path / "stuck")
    stuck = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_DGRAM)
    stuck.bind(path)  # never read while the sink sends
    stop = threading.Event()
    sink = AnalysisdSink(path, OversizeRecorder(tmp_path / "oversized.jsonl"), send_timeout=0.1, busy_seconds=60,
                         stop=stop)
    events = [json.dumps({"n": i}).encode() for i in range(500)]
    events[3] = json.dumps({"n": 3, "big": "x" * 70000}).encode()  # over the datagram limit: recorded, not sent
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted, match="stopped while the engine was busy") as caught:
            sink.send_batch(as_batch(events), "s3://b/k")
        took = time.monotonic() - started
        queued = drain(stuck)
    finally:
        stuck.close()
        sink.close()
    assert took < 0.5 + 1.0  # the stop, then at most one send timeout and a back-off step
    handled = caught.value.handled
    assert 3 < handled < len(events)
    assert queued == [b"1:Wazuh-AWS:" + e for i, e in enumerate(events[:handled]) if i != 3]
    partial = caught.value.partial  # the counters of what it took
    assert (partial.sent, partial.oversized) == (handled - 1, 1)

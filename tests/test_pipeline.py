"""The pipelined run: objects in flight at once, messages settled only when all their objects are in."""
from __future__ import annotations

import collections
import random
import threading
import time

import pytest

from aws_s3_wodle.errors import SinkError
from aws_s3_wodle.notifications import ObjectRef
from aws_s3_wodle.pipeline import ObjectPipeline

from .conftest import run_wodle
from .helpers import Concurrency, received_events, received_payloads
from .test_delivery import sqs  # noqa: F401  (the fixture)


def refs(*keys: str) -> list:
    return [ObjectRef("bucket", k) for k in keys]


def test_messages_are_settled_once_after_all_their_objects_in_any_completion_order():
    rng = random.Random(3)
    delays = {f"m{m}/o{o}": rng.uniform(0, 0.03) for m in range(8) for o in range(3)}
    done_at: dict = {}
    calls = Concurrency()

    def deliver(ref):
        with calls:
            time.sleep(delays[ref.key])
        done_at[ref.key] = time.monotonic()
        return ref.key.upper()

    settled = []

    def settle(message, results):
        assert all(key in done_at for key in (r.key for r, _ in results))  # every object finished before
        settled.append((message, [(r.key, v) for r, v in results]))
        return True

    pipeline = ObjectPipeline(3, deliver, settle)
    for m in range(8):
        pipeline.submit(f"msg{m}", refs(*(f"m{m}/o{o}" for o in range(m % 3 + 1))))
    pipeline.finish()
    assert sorted(m for m, _ in settled) == [f"msg{m}" for m in range(8)]  # each once
    for message, results in settled:
        m = int(message[3:])
        assert results == [(f"m{m}/o{o}", f"M{m}/O{o}") for o in range(m % 3 + 1)]  # in ref order
    assert 2 <= calls.peak <= 3  # bounded: never more objects in flight than asked


def test_a_message_without_objects_is_settled_at_once():
    settled = []
    pipeline = ObjectPipeline(2, lambda ref: True, lambda m, r: settled.append((m, r)) or True)
    pipeline.submit("empty", [])
    pipeline.finish()
    assert settled == [("empty", [])]


def test_a_fatal_error_aborts_the_objects_in_flight_and_settles_nothing_unfinished():
    started = threading.Event()

    def deliver(ref):
        if ref.key == "bad":
            started.wait(2)
            raise SinkError("the engine does not take events")
        started.set()
        while not pipeline.abort.wait(0.01):  # a long object: stops when the run is aborted
            pass
        raise RuntimeError("aborted")  # what deliver raises when it sees the abort (not fatal itself)

    settled = []
    pipeline = ObjectPipeline(2, deliver, lambda m, r: settled.append(m) or True)
    pipeline.submit("long", refs("long"))
    pipeline.submit("fatal", refs("bad"))
    with pytest.raises(SinkError):
        pipeline.finish()
    assert settled == []  # neither message is deleted: both come back
    assert pipeline.abort.is_set()


def test_failed_settlement_is_reported():
    pipeline = ObjectPipeline(1, lambda ref: False, lambda m, r: all(v for _, v in r))
    pipeline.submit("m", refs("a"))
    pipeline.finish()
    assert pipeline.failed


# --- end to end: the CLI, moto's server, a real socket --------------------------------------------

@pytest.mark.parametrize("parallel", ["0", "1", "4"])
def test_every_event_of_many_objects_arrives_once_whatever_the_parallelism(lab, engine, tmp_path, parallel):
    sizes = [700, 40, 1500, 1, 300, 900]
    for i, rows in enumerate(sizes):
        lab.add_generated(rows, version="1.1.0" if i % 2 else "1.0.0-rc.2", seed=60 + i)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--run-on-start", "--socket", engine.path, "--sqs-wait", "1",
                     "--batch-size", "200", "--parallel-objects", parallel)
    assert proc.returncode == 0, proc.stderr
    uids = collections.Counter(e["metadata"]["uid"] for e in received_events(engine, sum(sizes), wait=10))
    assert set(uids.values()) == {1}
    assert set(uids) == {f"{60 + i}-{j}" for i, rows in enumerate(sizes) for j in range(rows)}
    assert lab.queue_depth() == 0
    assert f"{len(sizes)} messages ({len(sizes)} deleted), {len(sizes)} objects, {sum(sizes)} events" in proc.stderr


def test_a_bad_object_among_parallel_ones_keeps_only_its_message(lab, engine, tmp_path):
    good = [lab.add_generated(400, seed=70 + i) for i in range(3)]
    lab.put(lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), b"PAR1 not parquet at all", 0, "corrupt")
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--socket", engine.path, "--sqs-wait", "1", "--parallel-objects", "3")
    assert proc.returncode == 5, proc.stderr
    assert len(received_payloads(engine, 1200, wait=10)) == sum(o.rows for o in good)
    assert "truncated Parquet object" in proc.stderr and "Traceback" not in proc.stderr
    assert "4 messages (3 deleted)" in proc.stderr and "1 errors" in proc.stderr
    assert lab.queue_depth() == 1  # the corrupt object's message only


def test_engine_down_with_parallel_objects_acknowledges_nothing(lab, tmp_path):
    for i in range(3):
        lab.add_generated(200, seed=80 + i)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    proc = run_wodle(lab, conf, "--once", "--socket", str(tmp_path / "no-engine"), "--sqs-wait", "1",
                     "--engine-retry", "1", "--parallel-objects", "3")
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lab.queue_depth() == 3  # received, none deleted


def test_a_stopped_pipelined_run_hands_back_every_unfinished_message_and_resumes(sqs, moto_server,  # noqa: F811
                                                                                   tmp_path):
    """As test_delivery's serial version: a stop mid-object ends the run with nothing deleted; every
    message received is handed back at once; the next run resumes each object after its checkpoint."""
    from aws_s3_wodle.subscriber import RunOptions

    from .test_delivery import _next_run, _notified_objects, _stopped_run, _visible

    s3, queue = _notified_objects(sqs, moto_server, 5)

    def decoder(spool, ref):
        yield [f'{{"{ref.key}":1}}'.encode(), f'{{"{ref.key}":2}}'.encode()]
        yield [f'{{"{ref.key}":3}}'.encode()]

    options = RunOptions(wait_seconds=0, max_messages=10, visibility_timeout=60, state_dir=str(tmp_path),
                         parallel_objects=2)
    run, first = _stopped_run(queue, s3, decoder, options)
    assert 2 <= len(first) <= 4 and run.stats.deleted == 0  # the first batch of one or two objects, nothing acked
    assert run.stats.released == run.stats.messages >= 2  # every message received went back at once...
    assert _visible(sqs, queue) == 5  # ...not after the 60 s timeout
    stats, later = _next_run(queue, s3, decoder, options)
    assert stats.deleted == 5 and stats.resumed == len(first) // 2
    everything = collections.Counter(first + later)
    assert len(everything) == 15 and set(everything.values()) == {1}  # each event exactly once across the runs

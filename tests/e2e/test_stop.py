"""A stop during SQS's long poll is prompt and loses nothing.

The CLI in its own process against the lab (moto's server behind the fault proxy, which counts the calls so
the test knows the long poll is under way), the default 20 s long poll, SIGTERM while it waits: the process
ends within 2 s with the exit code the README gives a stop (130), and a message that arrives while (or after)
the abandoned poll waits is not lost: it is visible again, at once when the process could hand it back, or
after its visibility timeout when the process had already ended.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from aws_s3_wodle.errors import EXIT_INTERRUPTED
from aws_s3_wodle.lab.faults import FaultProxy, Latency, throttled
from aws_s3_wodle.lab.security_lake import SecurityLakeLab, lab_client, lab_env
from aws_s3_wodle.sources.sqs import queue as queue_module
from aws_s3_wodle.sources.sqs.queue import SqsQueue

from ..helpers import HEADER, terminate

PROMPT = 2.0        # seconds from SIGTERM to the process's end (issue 14)
VISIBILITY = 3      # the block's visibility timeout, so a message taken by an orphaned poll comes back soon


def _conf(lab: SecurityLakeLab, tmp_path: Path) -> Path:
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf().replace(
        "</subscriber>", f"  <visibility_timeout>{VISIBILITY}</visibility_timeout>\n    </subscriber>"))
    return conf


def _start(lab: SecurityLakeLab, proxy: FaultProxy, conf: Path, engine, tmp_path: Path) -> subprocess.Popen:
    """`--once` with the default 20 s long poll, its AWS through the proxy."""
    env = {**os.environ, **lab_env(proxy.endpoint, lab.region)}
    return subprocess.Popen([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once",
                             "--socket", engine.path, "--state-dir", str(tmp_path / "state")],
                            env=env, stderr=subprocess.PIPE, text=True)


def _in_long_poll(proxy: FaultProxy, proc: subprocess.Popen, receives: int = 1, timeout: float = 60) -> None:
    """Wait until the run has made `receives` ReceiveMessage calls, then a little more: it is waiting at SQS."""
    deadline = time.monotonic() + timeout
    while proxy.count("sqs", "ReceiveMessage") < receives:
        assert proc.poll() is None, f"the run ended before its long poll: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the run never long-polled its queue"
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "the long poll did not wait"


def _receive_again(lab: SecurityLakeLab, within: float) -> list[dict]:
    """What a consumer gets from the queue within `within` seconds (long polls, messages kept invisible)."""
    sqs = lab.client("sqs")
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        wait = max(1, min(20, int(deadline - time.monotonic())))
        got = sqs.receive_message(QueueUrl=lab.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                  VisibilityTimeout=60).get("Messages", [])
        if got:
            return got
    return []


def test_sigterm_during_the_final_empty_long_poll_ends_the_process_within_2s(lab, moto_server, engine, tmp_path):
    obj = lab.add_generated(5, seed=41)
    with FaultProxy(moto_server.endpoint) as proxy:
        proc = _start(lab, proxy, _conf(lab, tmp_path), engine, tmp_path)
        # the object is delivered (receive 1), then the run long-polls the empty queue: 1 s in the run's
        # thread (receive 2), then the 19 s rest in the poll thread (receive 3)
        _in_long_poll(proxy, proc, receives=3)
        took, err = terminate(proc)
    assert took < PROMPT, f"the process took {took:.1f} s to end after SIGTERM\n{err}"
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Received SIGTERM" in err and "Traceback" not in err
    assert "ending now" not in err  # a graceful stop, not the deadline's
    assert len(engine.datagrams) == obj.rows, err
    assert lab.queue_depth() == 0  # the delivered message was deleted, nothing else was there


def test_a_message_arriving_after_the_stop_is_not_lost(lab, moto_server, engine, tmp_path):
    """SQS (here moto) still serves the abandoned long poll after the process ended: the message it takes
    reappears after the receive's visibility timeout, and the next consumer gets it."""
    # each SQS call waits 1 s at the proxy before it reaches moto: the poll thread's long poll (receive 2,
    # after the 1 s first slice) reaches moto after the process ended, the worst case (no process left to
    # hand the message back)
    with FaultProxy(moto_server.endpoint, latency=Latency(0.0, {"sqs": 1.0})) as proxy:
        proc = _start(lab, proxy, _conf(lab, tmp_path), engine, tmp_path)
        _in_long_poll(proxy, proc, receives=2, timeout=90)
        took, err = terminate(proc)
        time.sleep(1.5)  # the orphaned receive is now waiting at moto
        lab.notify(lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), 100)
        got = _receive_again(lab, within=VISIBILITY + 15)
    assert took < PROMPT, f"the process took {took:.1f} s to end after SIGTERM\n{err}"
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    assert len(got) == 1, "the message that arrived during the abandoned long poll was lost"
    assert engine.datagrams == []


def test_an_abandoned_receive_hands_late_messages_back_at_once(lab, moto_server):
    """In a process that lives on, what the abandoned long poll brings back is made visible again at once
    (visibility 0), not after the receive's visibility timeout (here 10 minutes)."""
    stop = threading.Event()
    queue = SqsQueue(lab_client("sqs", moto_server.endpoint, lab.region), lab.queue_name, wait_seconds=20,
                     visibility_timeout=600, stop=stop)
    assert queue_module.FIRST_SLICE < 2
    got: list = []
    receiving = threading.Thread(target=lambda: got.append(queue.receive()))
    started = time.monotonic()
    receiving.start()
    time.sleep(2.0)  # past the first 1 s slice: the rest of the long poll waits at moto, in the poll thread
    stop.set()
    receiving.join(timeout=5)
    assert not receiving.is_alive() and got == [[]]
    assert time.monotonic() - started < 2.0 + PROMPT
    lab.notify(lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), 100)  # taken by the abandoned poll, then handed back
    again = _receive_again(lab, within=8)
    assert len(again) == 1, "the late message was not handed back (it would be invisible for 10 minutes)"


def test_a_receive_without_stop_is_unchanged(lab, moto_server):
    """Without a stop event (e.g. `aws-s3-wodle test`), receive is the plain synchronous call."""
    lab.add_generated(3, seed=42)
    queue = SqsQueue(lab_client("sqs", moto_server.endpoint, lab.region), lab.queue_name, wait_seconds=1,
                     visibility_timeout=30)
    got = queue.receive()
    assert len(got) == 1 and lab.bucket in got[0].body


def test_a_receive_error_reaches_the_caller_through_the_poll_thread(lab, moto_server):
    from aws_s3_wodle.errors import AwsAccessError
    from aws_s3_wodle.lab.faults import access_denied
    with FaultProxy(moto_server.endpoint) as proxy:
        queue = SqsQueue(lab_client("sqs", proxy.endpoint, lab.region), lab.queue_name, wait_seconds=3,
                         stop=threading.Event())
        # the first 1 s slice passes (empty queue); the rest of the long poll, in the poll thread, is refused
        proxy.add(access_denied("sqs", "ReceiveMessage", when=lambda params: params.get("WaitTimeSeconds") == "2"))
        with pytest.raises(AwsAccessError, match="cannot receive from SQS queue .*AccessDenied") as caught:
            queue.receive()
    assert caught.value.cause is not None  # the run can still tell a throttling from a refusal
    assert proxy.count("sqs", "ReceiveMessage") == 2 and proxy.count("sqs", "ReceiveMessage", faulted=True) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_scheduler_stops_within_2s_during_a_long_poll(lab, moto_server, engine, tmp_path, sig):
    """Without --once (the manager's way): a stop while a block's scheduler waits at SQS ends the process at
    once; the run was not cut short (the queue was empty), so the exit code is 0, as for test_cli's stop."""
    with FaultProxy(moto_server.endpoint) as proxy:
        env = {**os.environ, **lab_env(proxy.endpoint, lab.region)}
        proc = subprocess.Popen([sys.executable, "-m", "aws_s3_wodle", "--config", str(_conf(lab, tmp_path)),
                                 "--run-on-start", "--socket", engine.path, "--state-dir", str(tmp_path / "state")],
                                env=env, stderr=subprocess.PIPE, text=True)
        _in_long_poll(proxy, proc, receives=2)  # the 1 s first slice, then the poll thread's
        took, err = terminate(proc, sig)
    assert took < PROMPT, f"the process took {took:.1f} s to end after {sig.name}\n{err}"
    assert proc.returncode == 0, err
    assert f"Received {sig.name}" in err and "Traceback" not in err


def test_a_receive_with_messages_waiting_is_one_call_in_the_callers_thread(lab, moto_server):
    """A run draining its queue pays nothing for the prompt stop: no poll thread, no second call."""
    lab.add_generated(3, seed=43)
    with FaultProxy(moto_server.endpoint) as proxy:
        sqs = lab_client("sqs", proxy.endpoint, lab.region)
        callers: list[threading.Thread] = []  # botocore's own event hook: which thread made each call
        sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **_: callers.append(threading.current_thread()))
        queue = SqsQueue(sqs, lab.queue_name, wait_seconds=20, visibility_timeout=30, stop=threading.Event())
        got = queue.receive()
        assert len(got) == 1
        assert proxy.count("sqs", "ReceiveMessage") == 1
    assert callers == [threading.current_thread()]


def test_an_empty_long_poll_moves_to_the_poll_thread_after_its_first_second(lab, moto_server):
    sqs = lab_client("sqs", moto_server.endpoint, lab.region)
    callers: list[str] = []
    sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **_: callers.append(threading.current_thread().name))
    queue = SqsQueue(sqs, lab.queue_name, wait_seconds=2, visibility_timeout=30, stop=threading.Event())
    assert queue.receive() == []
    assert callers == [threading.current_thread().name, f"sqs-receive-{lab.queue_name}"]


@pytest.mark.parametrize("service, action", [("sqs", "ReceiveMessage"), ("s3", "GetObject")])
def test_sigterm_during_a_throttling_backoff_ends_within_2s(lab, moto_server, engine, tmp_path, service, action):
    """AWS throttles every call of one kind: botocore backs off between its tries (standard retry mode: up to
    20 s between two, 6 tries in all), in the thread that made the call. A stop must not wait those sleeps out;
    the message stays queued (its object was never delivered) and nothing reaches the engine."""
    lab.add_generated(5, seed=47)
    with FaultProxy(moto_server.endpoint, (throttled(service, action),)) as proxy:
        proc = _start(lab, proxy, _conf(lab, tmp_path), engine, tmp_path)
        deadline = time.monotonic() + 60
        while proxy.count(service, action, faulted=True) < 2:  # the second try failed too: botocore sleeps now
            assert proc.poll() is None, f"the run ended before its retries: {proc.stderr.read()}"
            assert time.monotonic() < deadline, f"{service}:{action} was never tried twice"
            time.sleep(0.02)
        took, err = terminate(proc)
        tries = proxy.count(service, action)
    assert took < PROMPT, f"the process took {took:.1f} s to end after SIGTERM ({tries} tries)\n{err}"
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Received SIGTERM" in err and "Traceback" not in err
    assert "trying again" not in err.split("Received SIGTERM", 1)[1]  # a stopped run promises no other try
    assert "ending now" not in err  # a graceful stop, not the deadline's
    assert engine.datagrams == []
    assert _receive_again(lab, within=VISIBILITY + 10), "the message was lost"


@pytest.mark.parametrize("service, action", [("sts", "AssumeRole"), ("sqs", "ReceiveMessage"),
                                             ("sqs", "DeleteMessageBatch")])
def test_sigterm_while_a_call_hangs_ends_within_2s_and_the_next_run_loses_nothing(lab, moto_server, engine, tmp_path,
                                                                                 service, action):
    """An AWS answer that never comes (the proxy sends half of it, then nothing for 30 s: a network that hangs)
    holds the calling thread up to botocore's read timeout, where no stop reaches it. The process still ends
    within 2 s of SIGTERM (its stop deadline, as after a crash), and the next run delivers every event once."""
    from aws_s3_wodle.lab.faults import Rule
    obj = lab.add_generated(5, seed=53)
    conf = _conf(lab, tmp_path)
    with FaultProxy(moto_server.endpoint, (Rule(service, action, stall=30.0),)) as proxy:
        proc = _start(lab, proxy, conf, engine, tmp_path)
        deadline = time.monotonic() + 60
        while not proxy.faults_seen():
            assert proc.poll() is None, f"the run ended before the hanging call: {proc.stderr.read()}"
            assert time.monotonic() < deadline, f"{service}:{action} was never called"
            time.sleep(0.02)
        time.sleep(0.3)  # the answer's first half is read: the caller waits for the rest
        took, err = terminate(proc)
    assert took < PROMPT, f"the process took {took:.1f} s to end after SIGTERM\n{err}"
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "ending now" in err and "Traceback" not in err
    time.sleep(VISIBILITY + 0.5)  # a message the hanging run held comes back
    with FaultProxy(moto_server.endpoint) as proxy:
        env = {**os.environ, **lab_env(proxy.endpoint, lab.region)}
        subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once", "--sqs-wait", "1",
                        "--socket", engine.path, "--state-dir", str(tmp_path / "state")],
                       env=env, capture_output=True, text=True, timeout=120, check=True)
    time.sleep(0.3)
    uids = [json.loads(d[len(HEADER):])["metadata"]["uid"] for d in engine.datagrams]
    assert sorted(uids) == sorted(set(uids)) and len(uids) == obj.rows  # each event once over the two runs
    assert lab.queue_depth() == 0

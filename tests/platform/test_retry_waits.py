"""botocore's retries, their waits ended by a stop: real clients (botocore, as the runtime makes them) against
moto's server behind the lab's fault proxy, which throttles every call of one kind and counts the tries."""
from __future__ import annotations

import inspect
import threading
import time

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.retries import standard as standard_retries

from aws_s3_wodle.lab.faults import FaultProxy, throttled
from aws_s3_wodle.lab.security_lake import lab_env
from aws_s3_wodle.platform.aws import AwsClients


def _clients(proxy: FaultProxy, stop: threading.Event, monkeypatch) -> AwsClients:
    for name, value in lab_env(proxy.endpoint, "us-east-1").items():
        monkeypatch.setenv(name, value)  # the process's environment, as an operator's AWS_* variables
    return AwsClients(botocore.session.Session(), "us-east-1", stop=stop)


def test_a_stop_ends_the_wait_between_two_tries_and_no_other_try_is_made(lab, moto_server, monkeypatch):
    stop = threading.Event()
    with FaultProxy(moto_server.endpoint, (throttled("sqs", "GetQueueUrl"),)) as proxy:
        sqs = _clients(proxy, stop, monkeypatch).sqs()
        timer = threading.Timer(0.3, stop.set)
        timer.start()
        started = time.monotonic()
        with pytest.raises(ClientError, match="Throttling"):
            sqs.get_queue_url(QueueName=lab.queue_name)
        took = time.monotonic() - started
        tries = proxy.count("sqs", "GetQueueUrl")
        proxy.clear()
        assert sqs.get_queue_url(QueueName=lab.queue_name)["QueueUrl"]  # AWS answers again: so does the client
    assert took < 0.3 + 0.5, f"{took:.2f} s: the stop did not end botocore's wait"
    assert 1 <= tries < 6  # botocore's 6 tries were not all made


def test_without_a_stop_botocore_tries_as_before(lab, moto_server, monkeypatch):
    """The policy is botocore's own: a throttled call is tried again, and succeeds once AWS answers."""
    stop = threading.Event()
    with FaultProxy(moto_server.endpoint, (throttled("sqs", "GetQueueUrl", times=2),)) as proxy:
        sqs = _clients(proxy, stop, monkeypatch).sqs()
        assert sqs.get_queue_url(QueueName=lab.queue_name)["QueueUrl"]
        assert proxy.count("sqs", "GetQueueUrl") == 3 and proxy.count("sqs", "GetQueueUrl", faulted=True) == 2


def test_botocore_still_has_the_wait_we_take_over():
    """stop_ends_retry_waits replaces the handler's own wait (botocore's RetryHandler `sleep` argument, kept as
    `_sleep`: the long poll's wait once the retry quota ran out). If botocore renames it, this says so."""
    assert "sleep" in inspect.signature(standard_retries.RetryHandler.__init__).parameters
    client = botocore.session.Session().create_client("sqs", region_name="us-east-1", aws_access_key_id="k",
                                                        aws_secret_access_key="s")
    handler = standard_retries.register_retry_handler(client)
    assert callable(getattr(handler, "_sleep", None))

"""`<subscriber type="buckets|security_hub">`: the queue by name, URL or ARN, discard_regex, clear errors."""
from __future__ import annotations

import pytest

from aws_s3_wodle.config.reader import KNOWN_UNSUPPORTED, parse_config_bytes
from aws_s3_wodle.errors import ConfigError
from aws_s3_wodle.config.subscribers import BucketsSubscriber, QueueRef, SecurityHubSubscriber, queue_ref

from ..helpers import one_block_conf


def conf(block: str, kind: str = "buckets") -> bytes:
    return one_block_conf("subscriber", kind, block)


def parse(block: str, kind: str = "buckets"):
    return parse_config_bytes(conf(block, kind), "ossec.conf").wodles[0].blocks[0]


def error(block: str, kind: str = "buckets") -> str:
    with pytest.raises(ConfigError) as info:
        parse(block, kind)
    return str(info.value)


@pytest.mark.parametrize("text, ref", [
    ("my-logs_queue", QueueRef("my-logs_queue")),
    ("orders.fifo", QueueRef("orders.fifo")),
    ("https://sqs.eu-west-1.amazonaws.com/123456789012/q1", QueueRef("q1", "eu-west-1", "123456789012")),
    ("https://eu-central-1.queue.amazonaws.com/123456789012/q1/", QueueRef("q1", "eu-central-1", "123456789012")),
    ("https://vpce-0a1b-c2d3.sqs.us-gov-west-1.vpce.amazonaws.com/123456789012/q1",
     QueueRef("q1", "us-gov-west-1", "123456789012")),
    ("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q1", QueueRef("q1", "cn-north-1", "123456789012")),
    ("http://127.0.0.1:4566/000000000000/q1", QueueRef("q1", None, "000000000000")),
    ("arn:aws:sqs:ap-southeast-2:123456789012:q1", QueueRef("q1", "ap-southeast-2", "123456789012")),
    ("arn:aws-us-gov:sqs:us-gov-east-1:123456789012:q1", QueueRef("q1", "us-gov-east-1", "123456789012")),
])
def test_queue_by_name_url_or_arn(text, ref):
    assert queue_ref(text) == ref
    block = parse(f"<sqs_name>{text}</sqs_name>")
    assert block.queue == ref and block.label == f"buckets subscriber '{ref.name}'"


_ACCEPTED = ("use the queue's name (1 to 80 letters, digits, '-' or '_'), its URL "
             "('https://sqs.us-east-1.amazonaws.com/123456789012/my-queue') or its ARN "
             "('arn:aws:sqs:us-east-1:123456789012:my-queue')")


@pytest.mark.parametrize("text,reason", [
    ("has space", _ACCEPTED),
    ("arn:aws:sqs:nowhere:123456789012:q", "'nowhere' in the queue ARN is not an AWS region name"),
    ("arn:aws:sns:us-east-1:123456789012:q", _ACCEPTED),
    ("https://sqs.us-east-1.amazonaws.com/q1", _ACCEPTED),
    ("ftp://host/123456789012/q", _ACCEPTED),
    ("x" * 81, _ACCEPTED),
])
def test_bad_queue_says_what_is_accepted(text, reason):
    assert error(f"<sqs_name>{text}</sqs_name>") == f"ossec.conf:4: <sqs_name> invalid value '{text[:80]}': {reason}"


def test_discard_regex_and_credentials():
    block = parse("""<sqs_name>q</sqs_name>
      <iam_role_arn>arn:aws:iam::123456789012:role/reader</iam_role_arn>
      <external_id>ext</external_id>
      <discard_regex field="detail.severity">^(LOW|INFO)</discard_regex>""")
    assert isinstance(block, BucketsSubscriber)
    assert block.iam_role_arn.endswith("role/reader") and block.secrets() == ["ext"]
    assert block.discard_regex.field == "detail.severity"
    assert block.discard_regex.matches({"detail": {"severity": "LOW"}})
    assert not block.discard_regex.matches({"detail": {"severity": "HIGH"}})


def test_security_hub_block():
    block = parse('<sqs_name>hub</sqs_name><discard_regex field="finding.RecordState">ARCHIVED</discard_regex>',
                  "security_hub")
    assert isinstance(block, SecurityHubSubscriber) and block.SOURCE == "securityhub"
    assert block.label == "security_hub subscriber 'hub'"


def test_no_longer_listed_as_unsupported():
    assert "subscriber" not in KNOWN_UNSUPPORTED  # every subscriber type Wazuh names is read


@pytest.mark.parametrize("element, reason", [
    ('<discard_regex field="a.b">(unclosed</discard_regex>', "not a valid regular expression"),
    ("<discard_regex>x</discard_regex>", "needs a field attribute"),
    ('<discard_regex field="a..b">x</discard_regex>', "needs a field attribute"),
    ('<discard_regex field="a" flags="i">x</discard_regex>', "unknown attribute flags"),
    ('<discard_regex field="a"></discard_regex>', "must not be empty"),
])
def test_bad_discard_regex(element, reason):
    msg = error(f"<sqs_name>q</sqs_name>\n{element}")
    assert msg.startswith("ossec.conf:5: <discard_regex>") and reason in msg, msg


def test_missing_queue_and_repeated_discard():
    assert "<sqs_name> is required" in error('<discard_regex field="a">x</discard_regex>')
    msg = error('<sqs_name>q</sqs_name><discard_regex field="a">x</discard_regex><discard_regex field="b">y</discard_regex>')
    assert "given twice" in msg


def test_security_lake_still_refuses_discard_regex():
    msg = error('<sqs_name>q</sqs_name><discard_regex field="a">x</discard_regex>', "security_lake")
    assert "unknown element" in msg

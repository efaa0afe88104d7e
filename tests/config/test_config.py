"""ossec.conf reading: the schema, the defaults, and one clear error line for each kind of mistake."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aws_s3_wodle.config.subscribers import SecurityLakeSubscriber
from aws_s3_wodle.config.wodle import Wodle
from aws_s3_wodle.config.reader import load_config, parse_config_bytes
from aws_s3_wodle.config.options import parse_interval
from aws_s3_wodle.errors import ConfigError

from ..helpers import one_block_conf

GOOD = """<?xml version="1.0"?>
<ossec_config>
  <global><jsonout_output>yes</jsonout_output></global>
</ossec_config>
<ossec_config>
  <!-- Security Lake -->
  <wodle name="aws-s3">
    <disabled>no</disabled>
    <interval>1h</interval>
    <run_on_start>no</run_on_start>
    <subscriber type="security_lake">
      <sqs_name>AmazonSecurityLake-abc-Main-Queue</sqs_name>
      <iam_role_arn>arn:aws:iam::123456789012:role/sub</iam_role_arn>
      <iam_role_duration>1200</iam_role_duration>
      <external_id>ext-secret-123</external_id>
      <sts_endpoint>sts.vpce-0123.amazonaws.com</sts_endpoint>
      <service_endpoint>https://bucket.vpce-0123.s3.us-east-1.vpce.amazonaws.com</service_endpoint>
      <aws_profile>lake</aws_profile>
    </subscriber>
  </wodle>
</ossec_config>
<ossec_config>
  <wodle name="aws-s3">
    <subscriber type="security_lake"><sqs_name>second</sqs_name></subscriber>
  </wodle>
  <wodle name="syscollector"><disabled>no</disabled></wodle>
</ossec_config>
"""


def test_reads_every_aws_s3_wodle_across_roots():
    config = parse_config_bytes(GOOD.encode(), "ossec.conf")
    assert len(config.wodles) == 2
    first, second = config.wodles
    assert (first.disabled, first.interval, first.run_on_start) == (False, 3600, False)
    block = first.blocks[0]
    assert isinstance(block, SecurityLakeSubscriber)
    assert block.sqs_name == "AmazonSecurityLake-abc-Main-Queue"
    assert block.iam_role_arn == "arn:aws:iam::123456789012:role/sub"
    assert block.iam_role_duration == 1200
    assert block.external_id == "ext-secret-123"
    assert block.sts_endpoint == "https://sts.vpce-0123.amazonaws.com"
    assert block.service_endpoint.startswith("https://bucket.vpce-0123")
    assert block.aws_profile == "lake"
    assert block.location.line == 11
    # defaults as in Wazuh: 10 minutes, run on start
    assert (second.interval, second.run_on_start, second.disabled) == (600, True, False)
    assert second.blocks[0].iam_role_arn is None


@pytest.mark.parametrize("text,seconds", [("30", 30), ("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400),
                                          ("1w", 604800), ("1M", 2592000)])
def test_interval_suffixes(text, seconds):
    assert parse_interval(text) == seconds


def _conf(inner: str, wodle_extra: str = "") -> bytes:
    return one_block_conf("subscriber", "security_lake", inner, wodle_extra)


BAD = [
    ("missing sqs_name", _conf("<iam_role_arn>arn:aws:iam::123456789012:role/x</iam_role_arn>"),
     3, "<sqs_name> is required"),
    ("bad interval", _conf("<sqs_name>q</sqs_name>", "\n    <interval>10x</interval>"), 3,
     "invalid value '10x'"),
    ("zero interval", _conf("<sqs_name>q</sqs_name>", "\n    <interval>0</interval>"), 3, "positive number"),
    ("unknown element", _conf("<sqs_name>q</sqs_name>\n<sqs_nam>q</sqs_nam>"), 5, "unknown element"),
    ("bad yes/no", _conf("<sqs_name>q</sqs_name>", "\n    <run_on_start>maybe</run_on_start>"), 3, "'yes' and 'no'"),
    ("bad role arn", _conf("<sqs_name>q</sqs_name><iam_role_arn>role/x</iam_role_arn>"), 4, "role ARN"),
    ("bad duration", _conf("<sqs_name>q</sqs_name><iam_role_duration>60</iam_role_duration>"), 4, "900 to 43200"),
    ("bad queue name", _conf("<sqs_name>bad name!</sqs_name>"), 4, "SQS queue name"),
    ("twice", _conf("<sqs_name>q</sqs_name>\n<sqs_name>r</sqs_name>"), 5, "given twice"),
    ("unknown type", b'<ossec_config><wodle name="aws-s3"><subscriber type="nope"/></wodle></ossec_config>', 1,
     "unknown type"),
    ("no type", b'<ossec_config><wodle name="aws-s3"><subscriber/></wodle></ossec_config>', 1, "type attribute"),
    ("malformed", b'<ossec_config>\n<wodle name="aws-s3">\n<interval>1m</interval>\n</ossec_config>', 4,
     "malformed XML"),
    ("entities", b'<!DOCTYPE x [<!ENTITY a "b">]><ossec_config/>', 1, "DTDs and entities"),
    ("empty wodle", b'<ossec_config><wodle name="aws-s3"></wodle></ossec_config>', 1, "no block to run"),
    ("empty value", _conf("<sqs_name></sqs_name>"), 4, "SQS queue name"),
    ("interval past a year", _conf("<sqs_name>q</sqs_name>", "\n    <interval>999999999M</interval>"), 3,
     "at most one year"),
    ("port out of range", _conf("<sqs_name>q</sqs_name><sts_endpoint>https://h:99999</sts_endpoint>"), 4,
     "port must be a number from 1 to 65535"),
    ("port zero", _conf("<sqs_name>q</sqs_name><service_endpoint>h:0</service_endpoint>"), 4, "port must be"),
    ("port not a number", _conf("<sqs_name>q</sqs_name><sts_endpoint>https://h:x1</sts_endpoint>"), 4,
     "port must be"),
    ("day with wday", _conf("<sqs_name>q</sqs_name>", "\n    <interval>1M</interval><day>1</day><wday>mon</wday>"),
     2, "<day> and <wday> cannot be used together"),
    ("day needs months", _conf("<sqs_name>q</sqs_name>", "\n    <interval>1w</interval><day>3</day>"), 2,
     "with <day>, <interval> must be a whole number of months (suffix M), e.g. '1M', not 604800 s"),
    ("wday needs weeks", _conf("<sqs_name>q</sqs_name>", "\n    <interval>1d</interval><wday>mon</wday>"), 2,
     "with <wday>, <interval> must be a whole number of weeks"),
    ("time needs days", _conf("<sqs_name>q</sqs_name>", "\n    <interval>12h</interval><time>02:00</time>"), 2,
     "with <time>, <interval> must be a whole number of days"),
    ("external id without role", _conf("<sqs_name>q</sqs_name><external_id>s3cr3t-x</external_id>"), 3,
     "has <external_id> but no <iam_role_arn>"),
    ("duration without role", _conf("<sqs_name>q</sqs_name><iam_role_duration>900</iam_role_duration>"), 3,
     "has <iam_role_duration> but no <iam_role_arn>"),
    ("attribute on a plain element", _conf('<sqs_name junk="1">q</sqs_name>'), 4,
     "unknown attribute junk; allowed: none"),
    ("access_key", _conf("<sqs_name>q</sqs_name>\n<access_key>AKIAEXAMPLE</access_key>"), 5,
     "Wazuh removed <access_key> and <secret_key>"),
    ("secret_key", _conf("<sqs_name>q</sqs_name>\n<secret_key>wJalrEXAMPLE</secret_key>"), 5, "<aws_profile>"),
]


@pytest.mark.parametrize("name,data,line,text", BAD, ids=[b[0] for b in BAD])
def test_bad_config_names_file_line_and_problem(name, data, line, text):
    with pytest.raises(ConfigError) as err:
        parse_config_bytes(data, "/etc/ossec.conf")
    msg = str(err.value)
    assert msg.startswith(f"/etc/ossec.conf:{line}: <"), msg
    assert text in msg
    assert "\n" not in msg


def test_secret_value_not_echoed_in_errors():
    data = _conf("<sqs_name>q</sqs_name><external_id></external_id>")
    with pytest.raises(ConfigError) as err:
        parse_config_bytes(data, "c")
    assert "<external_id>" in str(err.value) and "invalid value:" in str(err.value)


def test_missing_file_and_no_section(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(str(tmp_path / "nope.conf"))
    p = tmp_path / "ossec.conf"
    p.write_text("<ossec_config><global/></ossec_config>")
    with pytest.raises(ConfigError, match='no <wodle name="aws-s3"> section'):
        load_config(str(p))


@pytest.mark.parametrize("name,data,line,text", [BAD[0], BAD[1], BAD[3], BAD[11]], ids=["missing", "interval",
                                                                                       "unknown", "malformed"])
def test_cli_bad_config_one_line_exit_1(tmp_path, name, data, line, text):
    p = tmp_path / "ossec.conf"
    p.write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--config", str(p), "--once"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"ERROR: {p}:{line}: <" in lines[0] and text in lines[0]


def test_readme_reference_is_generated_from_the_declarations():
    """Nothing documented twice: the README's option tables are exactly what the dataclasses declare."""
    from aws_s3_wodle.config.reader import reference_markdown
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert reference_markdown() in readme, "regenerate the README table: python -c " \
        "'from aws_s3_wodle.config import reference_markdown; print(reference_markdown())'"


@pytest.mark.parametrize("extra", ["<interval>2M</interval><day>1</day>", "<interval>2w</interval><wday>fri</wday>",
                                   "<interval>3d</interval><time>01:00</time>", "<interval>12M</interval>",
                                   "<interval>365d</interval>"])
def test_schedules_wazuh_accepts(extra):
    parse_config_bytes(_conf("<sqs_name>q</sqs_name>", extra), "c")


def test_keys_in_the_config_are_never_echoed():
    for tag in ("access_key", "secret_key"):
        with pytest.raises(ConfigError) as err:
            parse_config_bytes(_conf(f"<sqs_name>q</sqs_name><{tag}>wJalrXUtnFEMI-K7MDENG</{tag}>"), "c")
        assert "wJalr" not in str(err.value)


def test_buckets_and_subscribers_agree_on_role_options():
    data = b"""<ossec_config><wodle name="aws-s3">
  <bucket type="cloudtrail"><name>b-1</name><external_id>x-secret</external_id></bucket>
</wodle></ossec_config>"""
    with pytest.raises(ConfigError, match="has <external_id> but no <iam_role_arn>"):
        parse_config_bytes(data, "c")

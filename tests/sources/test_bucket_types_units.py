"""Bucket blocks piece by piece: config, discard rules, line parsers, state, Wazuh flags.

The events each bucket type sends (Wazuh's, field for field) are held in tests/decode/test_wazuh_shapes.py.
"""
from __future__ import annotations

import datetime as dt
import gzip
import io
import re

import pytest

from aws_s3_wodle.config.buckets import BUCKET_TYPES, BucketConfig, format_log_date, parse_log_date
from aws_s3_wodle.config.reader import BLOCK_TYPES, parse_config_bytes, reference_markdown
from aws_s3_wodle.config.discard import DiscardRule
from aws_s3_wodle.errors import ConfigError
from aws_s3_wodle.decode.formats import DecodeError
from aws_s3_wodle.decode import log_lines as parsers
from aws_s3_wodle.sources.listing.layouts import TYPES, day_slashes_unpadded
from aws_s3_wodle.sources.listing.state import Scope, StateStore
from aws_s3_wodle.cli.wazuh import UsageError, build_parser, translate

from ..helpers import one_block_conf


def _bucket(inner: str, kind: str = "cloudtrail") -> bytes:
    return one_block_conf("bucket", kind, inner)


FULL = """      <name>my-trail-logs</name>
      <aws_account_id>123456789012, 210987654321</aws_account_id>
      <aws_organization_id>o-a1b2c3d4e5</aws_organization_id>
      <aws_account_alias>prod</aws_account_alias>
      <regions>us-east-1,eu-west-1</regions>
      <path>/trails/main</path>
      <path_suffix>edge/</path_suffix>
      <only_logs_after>2026-jan-05</only_logs_after>
      <remove_from_bucket>yes</remove_from_bucket>
      <discard_regex field="userIdentity.type">^AWSService$</discard_regex>
      <iam_role_arn>arn:aws:iam::123456789012:role/reader</iam_role_arn>
      <iam_role_duration>1800</iam_role_duration>
      <external_id>ext-secret-1</external_id>
      <sts_endpoint>sts.us-east-1.amazonaws.com</sts_endpoint>
      <service_endpoint>https://s3.us-east-1.amazonaws.com</service_endpoint>
      <aws_profile>logs</aws_profile>"""


def test_every_bucket_type_is_registered_and_described():
    assert set(TYPES) == set(BUCKET_TYPES)
    assert all(BLOCK_TYPES[("bucket", k)] is BucketConfig for k in BUCKET_TYPES)
    assert '#### `<bucket type="' + "|".join(BUCKET_TYPES) + '">`' in reference_markdown()


def test_bucket_block_reads_every_option():
    block = parse_config_bytes(_bucket(FULL, "vpcflow"), "ossec.conf").wodles[0].blocks[0]
    assert isinstance(block, BucketConfig) and block.kind == "vpcflow"
    assert block.name == "my-trail-logs" and block.aws_account_id == ("123456789012", "210987654321")
    assert block.aws_organization_id == "o-a1b2c3d4e5" and block.aws_account_alias == "prod"
    assert block.regions == ("us-east-1", "eu-west-1")
    assert (block.path, block.path_suffix) == ("trails/main/", "edge/")
    assert block.only_logs_after == dt.date(2026, 1, 5) and block.remove_from_bucket is True
    assert block.discard_regex.field == "userIdentity.type" and block.discard_regex.regex.pattern == "^AWSService$"
    assert (block.iam_role_duration, block.external_id, block.aws_profile) == (1800, "ext-secret-1", "logs")
    assert block.sts_endpoint == "https://sts.us-east-1.amazonaws.com"
    assert block.label == "vpcflow bucket 'my-trail-logs/trails/main/'"
    assert block.location.line == 3


BAD = [
    ("no name", "<regions>us-east-1</regions>", "<name> is required"),
    ("bad account", "<name>b-1</name><aws_account_id>1234</aws_account_id>", "12-digit AWS account ids"),
    ("bad region", "<name>b-1</name><regions>us-east-1,moon</regions>", "(not: moon)"),
    ("bad date", "<name>b-1</name><only_logs_after>2026-01-05</only_logs_after>", "YYYY-MMM-DD"),
    ("bad day", "<name>b-1</name><only_logs_after>2026-FEB-30</only_logs_after>", "YYYY-MMM-DD"),
    ("bad org", "<name>b-1</name><aws_organization_id>org1</aws_organization_id>", "o-a1b2c3d4e5"),
    ("bad bucket", "<name>My_Bucket</name>", "S3 bucket name"),
    ("discard without field", "<name>b-1</name><discard_regex>x</discard_regex>", "needs a field attribute"),
    ("discard bad regex", '<name>b-1</name><discard_regex field="a">(</discard_regex>', "not a valid regular"),
    ("discard other attribute", '<name>b-1</name><discard_regex fld="a">x</discard_regex>', "unknown attribute fld"),
    ("duration without role", "<name>b-1</name><iam_role_duration>900</iam_role_duration>", "no <iam_role_arn>"),
    ("bad path", "<name>b-1</name><path>a b</path>", "key prefix"),
    ("unknown element", "<name>b-1</name><bucket>b</bucket>", "unknown element"),
]


@pytest.mark.parametrize("name,inner,text", BAD, ids=[b[0] for b in BAD])
def test_bad_bucket_block_one_line_with_file_and_line(name, inner, text):
    with pytest.raises(ConfigError) as err:
        parse_config_bytes(_bucket(inner), "/etc/ossec.conf")
    msg = str(err.value)
    assert msg.startswith("/etc/ossec.conf:") and text in msg and "\n" not in msg


def test_umbrella_needs_its_log_folder():
    with pytest.raises(ConfigError, match="dnslogs, proxylogs or iplogs"):
        parse_config_bytes(_bucket("<name>b-1</name><path>umbrella</path>", "cisco_umbrella"), "c")
    block = parse_config_bytes(_bucket("<name>b-1</name><path>umbrella/proxylogs</path>", "cisco_umbrella"), "c")
    assert block.wodles[0].blocks[0].path == "umbrella/proxylogs/"


def test_log_dates_round_trip():
    assert parse_log_date("2026-JAN-31") == dt.date(2026, 1, 31) == parse_log_date("2026-jan-31")
    assert format_log_date(dt.date(2026, 3, 7)) == "2026-MAR-07"


# --- discard rules (Wazuh's semantics: dotted path, any list element, anchored at the start)

@pytest.mark.parametrize("field,pattern,record,hit", [
    ("a.b", "x", {"a": {"b": "xyz"}}, True),
    ("a.b", "y", {"a": {"b": "xyz"}}, False),          # anchored at the start
    ("a.b", "x", {"a": [{"b": "nope"}, {"b": "xx"}]}, True),
    ("a", "x", {"a": ["no", "xx"]}, True),
    ("a.b", "x", {"a": "xyz"}, False),
    ("a.b", "x", {}, False),
    ("severity", "[7-9]", {"severity": 8}, True),
    ("flag", "true", {"flag": True}, True),
    ("a", ".*", {"a": None}, False),
])
def test_discard_rule(field, pattern, record, hit):
    assert DiscardRule(field, re.compile(pattern)).matches(record) is hit


# --- line parsers

def _spool(text: str, compress: bool = True) -> io.BytesIO:
    data = text.encode()
    return io.BytesIO(gzip.compress(data) if compress else data)


def test_split_fields_quotes_brackets_escapes():
    line = 'a [06/Feb/2019:00:00:38 +0000] "GET /x?q=\\"y\\" HTTP/1.1" - "" 5'
    assert parsers.split_fields(line) == ["a", "06/Feb/2019:00:00:38 +0000", 'GET /x?q="y" HTTP/1.1', "-", "", "5"]


def test_vpcflow_header_names_fields_and_times_become_iso():
    text = "version vpc-id srcaddr start end action\n3 vpc-1 10.0.0.1 1700000000 1700000060 ACCEPT\n"
    (record,) = list(parsers.parse_vpcflow(_spool(text), "k.log.gz"))
    assert record == {"version": "3", "vpc_id": "vpc-1", "srcaddr": "10.0.0.1", "start": "2023-11-14T22:13:20Z",
                      "end": "2023-11-14T22:14:20Z", "action": "ACCEPT"}


def test_vpcflow_without_header_gets_default_fields_and_bad_width_is_an_error():
    line = "2 123456789012 eni-1 10.0.0.1 10.0.0.2 1 2 6 1 40 - - NODATA NODATA\n"
    (record,) = list(parsers.parse_vpcflow(_spool(line, compress=False), "k.log"))
    assert record["interface_id"] == "eni-1" and record["log_status"] == "NODATA" and record["start"] == "-"
    with pytest.raises(DecodeError, match="line 2 has 3 fields"):
        list(parsers.parse_vpcflow(_spool("version srcaddr dstaddr action\n1 2 3\n"), "k"))


def test_load_balancers_split_addresses_as_wazuh_and_keep_extra_fields():
    alb = ('h2 2026-01-01T00:00:00Z app/a/1 1.2.3.4:5678 10.0.0.1:80 0 0 0 200 200 1 2 "GET / HTTP/1.1" "ua" - - '
           'arn "Root=1" "-" "-" 0 2026-01-01T00:00:00Z "forward" "-" "-" "10.0.0.1:80 10.0.0.2:81" "200" "-" "-" '
           'TID_1 new-field')
    (record,) = list(parsers.parse_alb(_spool(alb), "k"))
    assert (record["client_ip"], record["client_port"]) == ("1.2.3.4", "5678")
    assert (record["target_ip_list"], record["target_port_list"]) == ("10.0.0.1 10.0.0.2", "80 81")
    assert record["conn_trace_id"] == "TID_1" and record["extra_fields"] == ["new-field"]
    (nlb,) = list(parsers.parse_nlb(_spool("tls 2.0 t net/n/1 l 9.9.9.9:1 [::1]:443 1 2 3 4 -\n"), "k"))
    assert (nlb["destination_ip"], nlb["destination_port"]) == ("::1", "443")
    assert (nlb["client_ip"], nlb["client_port"]) == ("9.9.9.9", "1")
    (nlb,) = list(parsers.parse_nlb(_spool("tls 2.0 t net/n/1 l - - 1\n"), "k"))  # no address: as Wazuh, whole
    assert (nlb["client_ip"], nlb["client_port"]) == ("-", "-")
    (no_target,) = list(parsers.parse_alb(_spool(alb.replace("10.0.0.1:80 0 0", "- 0 0")), "k"))
    assert no_target["target_port"] == "-" and "target_ip" not in no_target
    clb = '2026-01-01T00:00:00Z c 203.0.113.30:60000 - 1 1 1 504 0 0 0 "GET / HTTP/1.1" "ua" - -'
    (record,) = list(parsers.parse_clb(_spool(clb), "k"))  # Wazuh keeps ip:port in CLB's *_port fields
    assert (record["client_port"], record["client_ip"]) == ("203.0.113.30:60000", "203.0.113.30")
    assert record["backend_port"] == "-" and "backend_ip" not in record


def test_umbrella_fields_from_the_folder():
    row = '"2026-01-01 00:00:00","id1","10.0.0.1","5353","10.0.0.2","53","Malware"\n'
    (record,) = list(parsers.parse_cisco_umbrella(_spool(row), "u/iplogs/2026-01-01/x.csv.gz"))
    assert record == {"timestamp": "2026-01-01 00:00:00", "identity": "id1", "source_ip": "10.0.0.1",
                      "source_port": "5353", "destination_ip": "10.0.0.2", "destination_port": "53",
                      "categories": "Malware"}
    with pytest.raises(DecodeError, match="dnslogs"):
        list(parsers.parse_cisco_umbrella(_spool(row), "other/2026-01-01/x.csv.gz"))


def test_config_items_expanded_and_check_file_skipped():
    doc = '{"fileVersion": "1.0", "configurationItems": [{"resourceId": "a"}, {"resourceId": "b"}]}'
    assert [r["resourceId"] for r in parsers.parse_config(_spool(doc), "k.json.gz")] == ["a", "b"]
    assert list(parsers.parse_config(_spool('{"fileVersion": "1.0", "configSnapshotId": "x"}'), "k")) == []
    with pytest.raises(DecodeError, match="not a list"):
        list(parsers.parse_config(_spool('{"configurationItems": {"a": 1}}'), "k"))


# The event shapes of every bucket type (Wazuh's, field for field): tests/decode/test_wazuh_shapes.py


def test_config_layout_days_are_not_zero_padded():
    assert day_slashes_unpadded(dt.date(2026, 1, 5)) == "2026/1/5/"
    assert TYPES["clb"].layout.accepts("x/1_elasticloadbalancing_r_my-clb_2026.log")
    assert not TYPES["clb"].layout.accepts("x/1_elasticloadbalancing_r_app.my-alb.1_2026.log.gz")
    assert TYPES["alb"].layout.accepts("x/1_elasticloadbalancing_r_app.my-alb.1_2026.log.gz")


# --- state

def test_state_cursor_progress_prune_reset(tmp_path):
    store = StateStore(tmp_path / "s" / "state.db")
    scope = Scope("b", "cloudtrail", "AWSLogs/1/CloudTrail/us-east-1/", "1", "us-east-1")
    other = Scope("b", "vpcflow", "AWSLogs/1/vpcflowlogs/us-east-1/", "1", "us-east-1")
    assert store.cursor(scope) is None and not store.is_processed(scope, "k1")
    store.set_progress(scope, "k1", "etag1", 500)
    assert store.progress(scope, "k1", "etag1") == 500 and store.progress(scope, "k1", "changed") == 0
    store.mark(scope, "k1", day=dt.date(2026, 1, 1), etag="etag1", size=10, events=700)
    assert store.is_processed(scope, "k1") and store.progress(scope, "k1", "etag1") == 0
    assert not store.is_processed(other, "k1")
    store.mark(scope, "k2", day=dt.date(2026, 1, 9))
    store.set_cursor(scope, dt.date(2026, 1, 8))
    assert store.cursor(scope) == dt.date(2026, 1, 8)
    assert store.prune(scope, dt.date(2026, 1, 6)) == 1 and not store.is_processed(scope, "k1")
    store.mark(other, "k3", day=None)
    assert store.reset_bucket("b") == (2, 1) and store.count() == 0
    store.close()
    reopened = StateStore(tmp_path / "s" / "state.db")  # survives a reopen, schema in place
    assert reopened.count() == 0
    reopened.close()


# --- Wazuh's flags translate to the same block as ossec.conf

def test_wazuh_flags_and_xml_give_the_same_block():
    args = build_parser().parse_args([
        "--bucket", "my-trail-logs", "--type", "vpcflow", "--aws_account_id", "123456789012,210987654321",
        "--aws_organization_id", "o-a1b2c3d4e5", "--aws_account_alias", "prod", "--regions", "us-east-1,eu-west-1",
        "--trail_prefix", "/trails/main", "--trail_suffix", "edge/", "--only_logs_after", "2026-JAN-05", "--remove",
        "--discard-field", "userIdentity.type", "--discard-regex", "^AWSService$",
        "--iam_role_arn", "arn:aws:iam::123456789012:role/reader", "--iam_role_duration", "1800",
        "--external_id", "ext-secret-1", "--sts_endpoint", "sts.us-east-1.amazonaws.com",
        "--service_endpoint", "https://s3.us-east-1.amazonaws.com", "--aws_profile", "logs", "--reparse",
        "--debug", "2"])
    wodle, block, run = translate(args)
    xml = parse_config_bytes(_bucket(FULL, "vpcflow"), "ossec.conf").wodles[0].blocks[0]
    xml.location = None
    assert block == xml
    assert run == {"reparse": True, "debug": 2} and wodle.skip_on_error is False
    wodle, block, run = translate(build_parser().parse_args(["-b", "b-1", "-e", "-s", "2026-FEB-01"]))
    assert block.kind == "cloudtrail" and wodle.skip_on_error is True and block.only_logs_after == dt.date(2026, 2, 1)


def test_wazuh_flag_errors():
    with pytest.raises(UsageError, match="--type: unknown type 'waf2'"):
        translate(build_parser().parse_args(["--bucket", "b-1", "--type", "waf2"]))
    with pytest.raises(UsageError, match="--debug"):
        translate(build_parser().parse_args(["--bucket", "b-1", "--debug", "9"]))

"""`<service type="cloudwatchlogs|inspector">`: Wazuh's elements, and one clear error for anything else."""
from __future__ import annotations

import datetime as dt

import pytest

from aws_s3_wodle.config.reader import BLOCK_TYPES, KNOWN_UNSUPPORTED, parse_config_bytes
from aws_s3_wodle.config.services import CloudWatchLogsService, InspectorService
from aws_s3_wodle.errors import ConfigError

from ..helpers import one_block_conf


def parse(inner: str, kind: str):
    return parse_config_bytes(one_block_conf("service", kind, inner), "ossec.conf").wodles[0].blocks[0]


def error(inner: str, kind: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(inner, kind)
    return str(info.value)


def test_every_service_type_of_wazuhs_schema_is_read():
    assert BLOCK_TYPES[("service", "cloudwatchlogs")] is CloudWatchLogsService
    assert BLOCK_TYPES[("service", "inspector")] is InspectorService
    assert "service" not in KNOWN_UNSUPPORTED


def test_cloudwatchlogs_with_every_element():
    block = parse("""      <aws_log_groups>/aws/lambda/a, /ecs/b,,/aws/lambda/a</aws_log_groups>
      <only_logs_after>2026-jan-31</only_logs_after>
      <regions>us-east-1,eu-west-1</regions>
      <remove_log_streams>yes</remove_log_streams>
      <discard_regex field="level">DEBUG</discard_regex>
      <aws_account_id>123456789012</aws_account_id>
      <aws_account_alias>prod</aws_account_alias>
      <aws_profile>reader</aws_profile>
      <iam_role_arn>arn:aws:iam::123456789012:role/logs</iam_role_arn>
      <iam_role_duration>3600</iam_role_duration>
      <sts_endpoint>sts.us-east-1.amazonaws.com</sts_endpoint>
      <service_endpoint>https://logs.us-east-1.amazonaws.com</service_endpoint>""", "cloudwatchlogs")
    assert block.aws_log_groups == ("/aws/lambda/a", "/ecs/b")
    assert block.only_logs_after == dt.date(2026, 1, 31) and block.regions == ("us-east-1", "eu-west-1")
    assert block.remove_log_streams is True and block.discard_regex.field == "level"
    assert block.label == "cloudwatchlogs service '/aws/lambda/a,/ecs/b' (account 123456789012 'prod')"
    assert block.service_endpoint == "https://logs.us-east-1.amazonaws.com"


def test_inspector_needs_nothing():
    block = parse("      <!-- nothing -->", "inspector")
    assert isinstance(block, InspectorService) and block.regions is None and block.label == "inspector service"


@pytest.mark.parametrize("inner, kind, text", [
    ("      <regions>us-east-1</regions>", "cloudwatchlogs",
     "ossec.conf:3: <service type=\"cloudwatchlogs\"> <aws_log_groups> is required"),
    ("      <aws_log_groups>bad group!</aws_log_groups>", "cloudwatchlogs", "ossec.conf:4: <aws_log_groups> invalid value"),
    ("      <aws_log_groups>/a</aws_log_groups>", "inspector", "<aws_log_groups> unknown element in <service type=\"inspector\">"),
    ("      <aws_log_groups>/a</aws_log_groups>\n      <remove_log_streams>maybe</remove_log_streams>", "cloudwatchlogs",
     "ossec.conf:5: <remove_log_streams> invalid value 'maybe': allowed values are 'yes' and 'no'"),
    ("      <only_logs_after>31-01-2026</only_logs_after>", "inspector", "use a date as YYYY-MMM-DD"),
    ("      <regions>mars-1</regions>", "inspector", "use AWS region names"),
    ("      <access_key>AKIA</access_key>", "inspector", "Wazuh removed <access_key>"),
    ("", "guardduty", "<service type=\"guardduty\"> unknown type; supported: cloudwatchlogs, inspector"),
])
def test_errors_name_the_line_the_element_and_what_to_do(inner, kind, text):
    assert text in error(inner, kind)

"""Events of the service blocks shaped as Wazuh's module sends them."""
from __future__ import annotations

import datetime as dt
import json

from aws_s3_wodle.config.discard import parse_discard_regex
from aws_s3_wodle.decode.services import (inspector_event, inspector_record, log_event, log_message_discarded,
                                          rfc3339)

UTC = dt.timezone.utc


def test_a_log_event_is_its_message_as_it_is():
    assert log_event('{"a": 1,  "b": "x"}') == b'{"a": 1,  "b": "x"}'  # not re-serialized, not wrapped
    assert log_event("START RequestId: 1 Version: $LATEST\n") == b"START RequestId: 1 Version: $LATEST\n"
    assert log_event("caf\u00e9") == "caf\u00e9".encode()


def test_discard_matches_json_messages_by_field_and_text_messages_whole():
    rule = parse_discard_regex("DEBUG", {"field": "level"})
    assert log_message_discarded(rule, '{"level": "DEBUG", "msg": "x"}')
    assert not log_message_discarded(rule, '{"level": "INFO", "msg": "DEBUG"}')
    assert log_message_discarded(rule, "DEBUG something happened")      # text: matched whole, from its start
    assert not log_message_discarded(rule, "INFO DEBUG")
    assert not log_message_discarded(None, "DEBUG")
    nested = parse_discard_regex("^4", {"field": "http.status"})
    assert log_message_discarded(nested, '{"http": {"status": 404}}')   # numbers as their JSON text
    assert not log_message_discarded(nested, '"404"')                   # a JSON string is no record: text match


def test_an_inspector_finding_is_wrapped_with_wazuh_source_and_times():
    updated = dt.datetime(2026, 1, 31, 10, 0, 5, 123000, tzinfo=UTC)
    finding = {"findingArn": "arn:aws:inspector2:us-east-1:1:finding/f", "severity": "HIGH", "updatedAt": updated,
               "firstObservedAt": dt.datetime(2026, 1, 30, 9, 0, tzinfo=UTC), "fixAvailable": None,
               "resources": [{"details": {"awsEc2Instance": {"launchedAt": updated}}}]}
    record = inspector_record(finding)
    assert record["source"] == "inspector2"
    assert record["updatedAt"] == "2026-01-31T10:00:05Z"                  # Wazuh's own format for this one
    assert record["firstObservedAt"] == "2026-01-30T09:00:00Z"
    assert record["resources"][0]["details"]["awsEc2Instance"]["launchedAt"] == "2026-01-31T10:00:05.123Z"
    assert "fixAvailable" not in record                                   # nulls dropped
    assert "fixAvailable" in inspector_record(finding, keep_nulls=True)
    event = json.loads(inspector_event(record))
    assert event == {"integration": "aws", "aws": record}


def test_a_service_field_names_the_source_as_in_wazuh():
    assert inspector_record({"service": "Inspector", "title": "t"}) == {"title": "t", "source": "inspector"}


def test_rfc3339_is_utc_with_z():
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert rfc3339(dt.datetime(2026, 1, 1, 2, 0, tzinfo=plus2)) == "2026-01-01T00:00:00Z"
    assert rfc3339(dt.datetime(2026, 1, 1, 0, 0, 0, 1000)) == "2026-01-01T00:00:00.001Z"

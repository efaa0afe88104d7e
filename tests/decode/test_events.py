"""Records -> Wazuh events: wrapping, nulls, discard_regex, batching, Security Hub findings."""
from __future__ import annotations

import io
import json
import re

import pytest

from aws_s3_wodle.config.discard import DiscardRule
from aws_s3_wodle.decode.events import drop_nulls, event_batches, wrap
from aws_s3_wodle.decode.formats import DecodeError, iter_records
from aws_s3_wodle.lab.buckets import security_hub_object
from aws_s3_wodle.decode.events import bucket_records, jsonl_records, subscriber_expand, wazuh_nulls
from aws_s3_wodle.decode.securityhub import finding_events


def rule(field: str, regex: str) -> DiscardRule:
    return DiscardRule(field, re.compile(regex))


def batches(records, **kwargs):
    kwargs.setdefault("expand", lambda r: (r,))
    return list(event_batches(records, source="custom", bucket="b", key="k/x.json", **kwargs))


def test_wrap_as_the_rules_expect():
    assert wrap({"a": 1, "source": "theirs"}, source="custom", bucket="b", key="k") == {
        "integration": "aws", "aws": {"a": 1, "source": "custom", "log_info": {"log_file": "k", "s3bucket": "b"}}}
    assert wrap({"a": 1, "source": "theirs"}, source=None, bucket="b", key="k")["aws"]["source"] == "theirs"
    assert wrap({"log_info": "x"}, source="custom", bucket="b", key="k")["aws"]["log_info"] == {
        "log_file": "k", "s3bucket": "b"}


def test_nulls_dropped_at_every_depth_unless_kept():
    def rec():
        return {"a": None, "b": {"c": None, "d": [None, {"e": None, "f": 1}]}, "g": 0, "h": ""}
    assert drop_nulls(rec()) == {"b": {"d": [None, {"f": 1}]}, "g": 0, "h": ""}
    [kept] = batches([rec()], keep_nulls=True)
    assert json.loads(kept[0])["aws"]["a"] is None


def test_subscriber_events_drop_nulls_only_through_objects_as_wazuh_does():
    def rec():
        return {"a": None, "b": {"c": None, "d": [None, {"e": None, "f": 1}], "x": {"y": None}}, "g": [{"h": None}]}
    assert wazuh_nulls(rec()) == {"b": {"d": [None, {"e": None, "f": 1}], "x": {}}, "g": [{"h": None}]}
    [batch] = batches([rec()])
    assert json.loads(batch[0])["aws"] == {"log_info": {"log_file": "k/x.json", "s3bucket": "b"},
                                           "b": {"d": [None, {"e": None, "f": 1}], "x": {}}, "g": [{"h": None}],
                                           "source": "custom"}


def test_batches_hold_json_and_count_discards():
    recs = [{"n": i, "level": "debug" if i % 3 == 0 else "info"} for i in range(10)]
    out = batches(recs, batch_size=3, discard=rule("level", "debug"))
    assert [(len(b), b.discarded) for b in out] == [(3, 2), (3, 1), (0, 1)]
    events = [json.loads(e) for b in out for e in b]
    assert [e["aws"]["n"] for e in events] == [1, 2, 4, 5, 7, 8]
    assert all(e["aws"]["log_info"] == {"log_file": "k/x.json", "s3bucket": "b"} for e in events)


def test_an_object_of_only_discarded_events_still_reports_its_count():
    out = batches([{"x": "drop"}] * 5, discard=rule("x", "drop"))
    assert len(out) == 1 and len(out[0]) == 0 and out[0].discarded == 5


def test_discard_semantics():
    r = rule("detail.findings.Severity", "HIGH")
    assert r.matches({"detail": {"findings": [{"Severity": "LOW"}, {"Severity": "HIGHEST"}]}})  # any list item
    assert not r.matches({"detail": {"findings": [{"Severity": "VERY HIGH"}]}})  # from the start only
    assert not r.matches({"detail": {}})
    assert rule("code", "40").matches({"code": 404})  # numbers as their JSON text


def test_text_lines_are_matched_whole_whatever_the_field():
    out = batches([{"full_log": "DEBUG noisy"}, {"full_log": "ERROR real"}], discard=rule("msg", "DEBUG"))
    assert [json.loads(e)["aws"]["full_log"] for e in out[0]] == ["ERROR real"] and out[0].discarded == 1


def test_records_with_a_detail_object_stand_for_it_but_not_in_jsonl_gz_objects():
    ev = {"detail-type": "GuardDuty Finding", "source": "aws.guardduty", "detail": {"id": "x", "severity": 5}}
    assert list(bucket_records(ev)) == [{"id": "x", "severity": 5}]
    assert list(bucket_records({"detail": {"a": 1}, "other": 2})) == [{"a": 1}]  # Wazuh: any `detail` object
    assert list(bucket_records({"detail": "text", "other": 2})) == [{"detail": "text", "other": 2}]
    assert subscriber_expand("a/b.jsonl.gz") is jsonl_records and list(jsonl_records(ev)) == [ev]  # sent whole
    assert subscriber_expand("a/b.json.gz") is bucket_records


def test_jsonl_gz_objects_keep_the_records_own_source():
    records = [{"n": 1, "source": "app"}, {"n": 2}]
    out = [json.loads(e)["aws"]["source"] for b in event_batches(
        records, source="custom", bucket="b", key="k/x.jsonl.gz", expand=jsonl_records) for e in b]
    assert out == ["app", "custom"]
    out = [json.loads(e)["aws"]["source"] for b in event_batches(
        records, source="custom", bucket="b", key="k/x.json.gz", expand=bucket_records) for e in b]
    assert out == ["custom", "custom"]


def test_security_hub_findings_one_event_each():
    data, expected = security_hub_object(3, 4, layout="concatenated", seed=9)
    events = [e for r in iter_records(io.BytesIO(data), format="json") for e in finding_events(r)]
    assert events == expected and len(events) == 12
    assert len({e["finding"]["Id"] for e in events}) == 12


def test_security_hub_custom_actions_and_insights():
    action = {"detail-type": "Security Hub Findings - Custom Action",
              "detail": {"actionName": "send", "actionDescription": "d", "findings": [{"Id": "1"}, {"Id": "2"}]}}
    assert list(finding_events(action)) == [
        {"detail_type": "Security Hub Findings - Custom Action", "actionName": "send", "actionDescription": "d",
         "finding": {"Id": str(i)}} for i in (1, 2)]
    insight = {"detail-type": "Security Hub Insight Results",
               "detail": {"actionName": "a", "insightName": "n", "insightArn": "arn", "resultType": "ResourceAwsS3Bucket",
                          "insightResults": [{"b": 3}]}}
    assert list(finding_events(insight)) == [{"detail_type": "Security Hub Insight Results", "actionName": "a",
                                              "insightName": "n", "insightArn": "arn",
                                              "resultType": "ResourceAwsS3Bucket", "insightResults": [{"b": 3}]}]


def test_security_hub_raw_asff_and_foreign_records():
    finding = {"SchemaVersion": "2018-10-08", "Id": "f", "ProductArn": "p", "AwsAccountId": "1"}
    assert list(finding_events(finding)) == [{"finding": finding}]
    with pytest.raises(DecodeError, match="neither an EventBridge event of Security Hub"):
        list(finding_events({"hello": "world"}))


def test_object_decoder_batches_stay_small_and_wrap_with_the_blocks_source():
    import threading

    from aws_s3_wodle.run.wiring import object_decoder
    from aws_s3_wodle.decode.events import MAX_BATCH
    from aws_s3_wodle.seams import ObjectRef
    from aws_s3_wodle.run.wiring import Context
    from aws_s3_wodle.config.subscribers import BucketsSubscriber

    lines = b"".join(b'{"n": %d}\n' % i for i in range(1234))
    ctx = Context(sink=None, options=None, stop=threading.Event(), batch_size=5000)
    out = list(object_decoder(BucketsSubscriber(sqs_name="q"), ctx)(io.BytesIO(lines), ObjectRef("b", "k.jsonl")))
    assert [len(b) for b in out] == [MAX_BATCH, MAX_BATCH, 1234 - 2 * MAX_BATCH]
    first = json.loads(out[0][0])
    assert first == {"integration": "aws", "aws": {"n": 0, "source": "custom",
                                                   "log_info": {"log_file": "k.jsonl", "s3bucket": "b"}}}


def test_deep_nesting_is_a_decode_error_not_a_recursion_error():
    from aws_s3_wodle.decode.events import MAX_DEPTH
    from aws_s3_wodle.decode import shape

    def deep(levels):
        value: dict = {"x": None}
        for _ in range(levels - 1):
            value = {"a": [value, None]}
        return value

    for levels in (3000, 2 * MAX_DEPTH):
        with pytest.raises(DecodeError, match="nested deeper than"):
            drop_nulls(deep(levels))
        with pytest.raises(DecodeError, match="nested deeper than"):
            list(shape.generic(deep(levels), "custom"))
    assert drop_nulls(deep(MAX_DEPTH // 2))  # a deep but sane record is kept
    with pytest.raises(DecodeError):
        batches([deep(3000)])


def test_bucket_shapes_drop_nulls_and_collapse_lists_only_through_objects():
    from aws_s3_wodle.decode import shape

    record = {"a": [[{"b": None, "c": [1]}]], "d": [1, [2], None], "e": [None], "f": None, "g": {"h": [3], "i": None}}
    [event] = shape.generic(record, "custom")
    # Wazuh's walk: only through objects; a collapsed element is not walked; [null] becomes null and stays
    assert event == {"a": [{"b": None, "c": [1]}], "d": [1, [2], None], "e": None, "g": {"h": 3},
                     "source": "custom"}
    assert "source" not in record  # the event's own top level

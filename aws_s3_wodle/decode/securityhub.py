"""Security Hub objects -> one event per finding.

What EventBridge delivers (and Firehose writes to S3, back to back or as JSON lines) is one event per
`detail-type` ("Security Hub Findings - Imported", "... - Custom Action", "Security Hub Insight
Results") whose `detail.findings` may hold several findings. Wazuh's rules read `aws.finding.*`,
`aws.detail_type` and, for custom actions and insights, `aws.actionName`, `aws.insightName`, ...;
Wazuh's own module sends only the first finding of each event; here every finding is an event.
"""
from __future__ import annotations

from typing import Iterator

from aws_s3_wodle.decode.formats import DecodeError

# detail members that describe the event rather than one finding: kept on every event of it
_CONTEXT = ("actionName", "actionDescription", "insightName", "insightArn", "resultType", "insightResults")
# members every ASFF finding has: such a record is a finding written without its EventBridge envelope
_ASFF = ("SchemaVersion", "Id", "ProductArn", "AwsAccountId")


def finding_events(record: dict) -> Iterator[dict]:
    detail = record.get("detail")
    if not isinstance(detail, dict):
        if all(k in record for k in _ASFF):
            yield {"finding": record}
            return
        raise DecodeError("a record is neither an EventBridge event of Security Hub (no 'detail' object) nor an "
                          f"ASFF finding (keys: {', '.join(list(record)[:8])})")
    base = {"detail_type": record.get("detail-type")}
    base.update((k, detail[k]) for k in _CONTEXT if k in detail)
    findings = detail.get("findings")
    if isinstance(findings, list) and findings:
        for finding in findings:
            yield {**base, "finding": finding}
    else:
        yield base

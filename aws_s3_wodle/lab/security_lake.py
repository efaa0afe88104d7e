"""What Security Lake creates for a subscriber, built in the local AWS (moto).

A bucket `aws-security-data-lake-<region>-<id>`, OCSF Parquet objects under
`aws/<SOURCE>/<version>/region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/<uuid>.gz.parquet`, the subscriber
role (trust policy with the external id), the SQS queue, and one EventBridge-style notification per object,
the body Security Lake itself sends (`detail.bucket.name`, `detail.object.key`, requester securitylake).
"""
from __future__ import annotations

import datetime as dt
import io
import json
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import boto3

from aws_s3_wodle.lab.ocsf import write_ocsf_parquet

ACCOUNT = "123456789012"

# Sample file prefixes -> Security Lake source names.
SOURCE_NAMES = {"CLOUD_TRAIL": "CLOUD_TRAIL_MGMT", "ROUTE53": "ROUTE53", "SH_FINDINGS": "SH_FINDINGS",
                "VPC_FLOW": "VPC_FLOW", "EKS_AUDIT": "EKS_AUDIT", "LAMBDA": "LAMBDA_EXECUTION", "WAF": "WAF"}


def lab_env(endpoint: str, region: str) -> dict[str, str]:
    """Environment for any AWS client that should talk to the lab: fake keys, the endpoint, the region."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "lab-access-key", "AWS_SECRET_ACCESS_KEY": "lab-secret-key",
            "AWS_DEFAULT_REGION": region, "AWS_REGION": region, "AWS_EC2_METADATA_DISABLED": "true"}


def lab_client(service: str, endpoint: str, region: str) -> Any:
    """A boto3 client of the lab (moto's server) with the lab's keys: what every lab builds its AWS with."""
    env = lab_env(endpoint, region)
    return boto3.client(service, region_name=region, endpoint_url=endpoint,
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def wodle_conf(blocks: str, interval: str = "5m") -> str:
    """An ossec.conf with one enabled aws-s3 wodle that runs `blocks` (their XML, indented four spaces) at
    start, then every `interval`: what every lab hands the wodle."""
    return ("<ossec_config>\n  <wodle name=\"aws-s3\">\n    <disabled>no</disabled>\n"
            f"    <interval>{interval}</interval>\n    <run_on_start>yes</run_on_start>\n"
            f"{blocks}\n  </wodle>\n</ossec_config>\n")


@dataclass
class LabObject:
    key: str
    rows: int
    source: str  # sample file name or "generated"


@dataclass
class SecurityLakeLab:
    endpoint: str
    region: str = "us-east-1"
    queue_name: str = "AmazonSecurityLake-lab-Main-Queue"
    role_name: str = "AmazonSecurityLake-lab-subscriber"
    external_id: str = field(default_factory=lambda: "lab-" + secrets.token_hex(8))
    bucket: str = ""
    queue_url: str = ""
    objects: list[LabObject] = field(default_factory=list)

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{self.role_name}"

    def client(self, service: str) -> Any:
        return lab_client(service, self.endpoint, self.region)

    def create(self) -> "SecurityLakeLab":
        """Bucket, queue (with a redrive policy to a DLQ, as Security Lake sets up) and the subscriber role."""
        if not self.bucket:
            self.bucket = f"aws-security-data-lake-{self.region}-{secrets.token_hex(15)}"
        s3 = self.client("s3")
        if self.region == "us-east-1":
            s3.create_bucket(Bucket=self.bucket)
        else:
            s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        sqs = self.client("sqs")
        dlq_url = sqs.create_queue(QueueName=self.queue_name + "-DLQ")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queue_url = sqs.create_queue(QueueName=self.queue_name, Attributes={
            "VisibilityTimeout": "300",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "10"})})["QueueUrl"]
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": self.external_id}}}]}
        iam = self.client("iam")
        iam.create_role(RoleName=self.role_name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=self.role_name, PolicyName="subscriber", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                 "Resource": f"arn:aws:s3:::{self.bucket}/*"},
                {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueUrl",
                                               "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
                 "Resource": "*"}]}))
        return self

    def key_for(self, source: str, version: str, day: Optional[dt.date] = None) -> str:
        day = day or dt.date.today()
        return (f"aws/{source}/{version}/region={self.region}/accountId={ACCOUNT}/"
                f"eventDay={day:%Y%m%d}/{uuid.uuid4().hex}.gz.parquet")

    def put(self, key: str, body: bytes, rows: int, source: str, notify: bool = True) -> LabObject:
        etag = self.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)["ETag"].strip('"')
        if notify:
            self.notify(key, len(body), etag)
        obj = LabObject(key, rows, source)
        self.objects.append(obj)
        return obj

    def notification(self, key: str, size: int, etag: Optional[str] = None) -> dict:
        """The body Security Lake puts on a subscriber's queue (no version, id or detail-type)."""
        return {"source": "aws.s3", "time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "account": ACCOUNT, "region": self.region, "resources": [f"arn:aws:s3:::{self.bucket}"],
                "detail": {"bucket": {"name": self.bucket},
                           "object": {"key": key, "size": size, "etag": etag or uuid.uuid4().hex},
                           "request-id": uuid.uuid4().hex[:16].upper(), "requester": "securitylake.amazonaws.com"}}

    def notify(self, key: str, size: int, etag: Optional[str] = None) -> None:
        self.client("sqs").send_message(QueueUrl=self.queue_url,
                                        MessageBody=json.dumps(self.notification(key, size, etag)))

    def add_sample(self, path: Path) -> LabObject:
        """A real Security Lake sample file; its source and version come from its name and folder."""
        import pyarrow.parquet as pq
        prefix = next((p for p in SOURCE_NAMES if path.name.startswith(p)), None)
        source = SOURCE_NAMES.get(prefix or "", "CLOUD_TRAIL_MGMT")
        version = "2.0" if "1.1" in path.parent.name else "1.0"
        rows = pq.ParquetFile(path).metadata.num_rows
        return self.put(self.key_for(source, version), path.read_bytes(), rows, path.name)

    def add_generated(self, rows: int, *, version: str = "1.1.0", seed: int = 0, start_index: int = 0) -> LabObject:
        """A generated OCSF CloudTrail-like object of `rows` rows (uids `<seed>-<index>`)."""
        buf = io.BytesIO()
        write_ocsf_parquet(buf, rows, version=version, seed=seed, start_index=start_index)
        lake_version = "2.0" if version.startswith("1.1") else "1.0"
        return self.put(self.key_for("CLOUD_TRAIL_MGMT", lake_version), buf.getvalue(), rows, f"generated-{seed}")

    def queue_depth(self) -> int:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def ossec_conf(self, interval: str = "5m") -> str:
        return wodle_conf(f"""    <subscriber type="security_lake">
      <sqs_name>{self.queue_name}</sqs_name>
      <iam_role_arn>{self.role_arn}</iam_role_arn>
      <iam_role_duration>3600</iam_role_duration>
      <external_id>{self.external_id}</external_id>
    </subscriber>""", interval)


def find_samples(shared: Optional[Path] = None) -> list[Path]:
    """The real AWS samples in the team's ../shared folder, when this is the team's workspace."""
    import os
    root = shared or Path(os.environ.get("AWS_S3_WODLE_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    return sorted((root / "samples" / "security-lake").glob("*/*.parquet"))

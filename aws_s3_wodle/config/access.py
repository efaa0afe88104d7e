"""What every AWS block shares: how to reach AWS, and how an SQS subscriber holds its messages."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from aws_s3_wodle.config.options import option, parse_endpoint, parse_receive_count, parse_role_arn, parse_role_duration, parse_visibility

@dataclass
class AwsAccess:
    """How to reach AWS: the standard boto3 credential chain, an optional profile and role to assume."""

    aws_profile: Optional[str] = option(help="Profile of the shared AWS credentials/config files to start from; "
                                             "the standard chain (environment, files, instance role) when absent.")
    iam_role_arn: Optional[str] = option(parse_role_arn, help="Role to assume (for Security Lake, the subscriber role); "
                                                             "credentials are refreshed before they expire.")
    iam_role_duration: Optional[int] = option(parse_role_duration, help="Session length of the assumed role in "
                                                                        "seconds, 900 to 43200 (AWS default 3600).")
    external_id: Optional[str] = option(secret=True, help="External ID the role's trust policy requires "
                                                          "(for Security Lake, given when the subscriber was created). "
                                                          "Never logged.")
    sts_endpoint: Optional[str] = option(parse_endpoint, help="STS endpoint for AssumeRole, e.g. a VPC endpoint "
                                                              "or a regional one.")
    service_endpoint: Optional[str] = option(parse_endpoint, help="S3 endpoint to download objects through "
                                                                  "(applies to S3 only), e.g. a VPC endpoint.")

    def secrets(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self) if f.metadata.get("secret") and getattr(self, f.name)]

    def validate(self) -> None:
        """Options that only mean something together: a role's duration and external id need the role."""
        for name in ("iam_role_duration", "external_id"):
            if getattr(self, name) and not self.iam_role_arn:
                raise ValueError(f"has <{name}> but no <iam_role_arn>; it applies to an assumed role: add the "
                                 "role, or remove it")


@dataclass
class SqsDelivery:
    """How a subscriber holds its SQS messages and what it does with one that can never be delivered."""

    visibility_timeout: int = option(parse_visibility, default=120, help=(
        "Visibility timeout set on each received message (interval syntax, at most 12h). It is renewed while the "
        "object is being delivered, so it only bounds how soon a message comes back after a crash."))
    visibility_limit: int = option(parse_visibility, default=3600, help=(
        "Longest time one message is kept invisible in all (at most 12h); past it, a delivery still running lets "
        "the message reappear."))
    dead_letter_after: Optional[int] = option(parse_receive_count, help=(
        "Unset: a message that can never succeed (object missing, denied or corrupt, body not a notification) "
        "is left to the queue's redrive policy. N: once received N times, it is recorded with its body in "
        "STATE_DIR/dead-letter.jsonl and deleted (the file is capped at 64 MiB and never rotated: once full, "
        "messages stay for the redrive policy until its lines are replayed or moved)."))

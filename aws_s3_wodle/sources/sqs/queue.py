"""The SQS side of a subscriber: find the queue, long-poll it, keep messages invisible, delete what was delivered."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.platform.aws_errors import describe_client_error, error_code
from aws_s3_wodle.errors import AwsAccessError

BATCH = 10  # SQS's limit of entries per batch call


@dataclass
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    sent_timestamp_ms: Optional[int] = None


class SqsQueue:
    """One queue, looked up by name once per run."""

    def __init__(self, sqs: Any, name: str, *, wait_seconds: int = 20, max_messages: int = 10,
                 visibility_timeout: Optional[int] = None, owner_account: Optional[str] = None) -> None:
        self.sqs = sqs
        self.name = name
        self.owner_account = owner_account  # another account's queue (from a queue URL or ARN)
        self.wait_seconds = wait_seconds
        self.max_messages = max_messages
        self.visibility_timeout = visibility_timeout
        self.url = self._lookup()

    def _lookup(self) -> str:
        try:
            owner = {"QueueOwnerAWSAccountId": self.owner_account} if self.owner_account else {}
            return self.sqs.get_queue_url(QueueName=self.name, **owner)["QueueUrl"]
        except ClientError as exc:
            code = error_code(exc)
            hint = ("check <sqs_name> and the region (AWS_DEFAULT_REGION or the profile's region)"
                    if "NonExistentQueue" in code or "QueueDoesNotExist" in code
                    else "check the credentials and the sqs:GetQueueUrl permission")
            raise AwsAccessError(f"SQS queue '{self.name}' cannot be found: {describe_client_error(exc)}; {hint}") from None
        except BotoCoreError as exc:
            raise AwsAccessError(f"SQS is unreachable while looking up queue '{self.name}': {exc}") from None

    def receive(self, max_messages: Optional[int] = None) -> list[Message]:
        """One long poll for up to `max_messages` (default: the queue's own, at most 10) messages."""
        wanted = min(BATCH, max(1, max_messages if max_messages is not None else self.max_messages))
        kwargs: dict[str, Any] = {"QueueUrl": self.url, "MaxNumberOfMessages": wanted,
                                  "WaitTimeSeconds": self.wait_seconds,
                                  "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"]}
        if self.visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = self.visibility_timeout
        try:
            response = self.sqs.receive_message(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            error = AwsAccessError(f"cannot receive from SQS queue '{self.name}': {describe_client_error(exc)}; "
                                   "check the sqs:ReceiveMessage permission")
            error.cause = exc  # the run decides whether to try again (throttling, 5xx) or stop
            raise error from None
        out = []
        for m in response.get("Messages", []):
            attrs = m.get("Attributes", {})
            out.append(Message(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""),
                               int(attrs.get("ApproximateReceiveCount", 1)),
                               int(attrs["SentTimestamp"]) if "SentTimestamp" in attrs else None))
        return out

    def delete(self, message: Message) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message.receipt_handle)
        except (ClientError, BotoCoreError) as exc:
            raise AwsAccessError(f"cannot delete message {message.message_id} from '{self.name}': "
                                 f"{describe_client_error(exc)}; check the sqs:DeleteMessage permission "
                                 "(the message will be received again)") from None

    def change_visibility(self, messages: Sequence[Message], seconds: int) -> dict[str, str]:
        """Set the visibility of messages (batched, 10 a call); returns {message_id: reason} for those refused.

        Never raises: a message whose visibility could not be changed is reported back, the caller decides.
        """
        failed: dict[str, str] = {}
        for start in range(0, len(messages), BATCH):
            chunk = list(messages[start:start + BATCH])
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                       for i, m in enumerate(chunk)]
            try:
                response = self.sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                reason = describe_client_error(exc)
                failed.update((m.message_id, reason) for m in chunk)
                continue
            for entry in response.get("Failed", []):
                try:
                    m = chunk[int(entry.get("Id", -1))]
                except (ValueError, IndexError):
                    continue
                failed[m.message_id] = f"{entry.get('Code', 'Error')}: {entry.get('Message', '')}".rstrip(": ")
        return failed

    def approximate_depth(self) -> dict[str, int]:
        """Messages waiting, in flight and delayed (SQS's approximate counts), for the metrics."""
        names = {"ApproximateNumberOfMessages": "visible", "ApproximateNumberOfMessagesNotVisible": "in_flight",
                 "ApproximateNumberOfMessagesDelayed": "delayed"}
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=list(names))["Attributes"]
        return {state: int(attrs.get(name, 0)) for name, state in names.items()}

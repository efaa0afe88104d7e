"""The SQS side of a subscriber: find the queue, long-poll it, keep messages invisible, delete what was delivered.

A long poll waits up to 20 s at SQS for a message; a run asked to stop must not wait that out. With the run's
`stop` event, a receive first waits at most FIRST_SLICE (1 s) in the calling thread: while the queue has
messages (a run draining it) that call returns them at once, as before, with no thread and no hand-over
between threads (measured: a thread per receive cost ~5% of the rate on 1k-row objects). Only when that
finds nothing does the rest of the long poll run in a short-lived daemon thread while the caller watches both
the call and `stop` (`_Poll`): on a stop the caller goes on at once with nothing received, and whatever that
abandoned call still brings back is handed back to the queue at once (visibility 0) if the process still
lives; if it does not, SQS shows those messages again after the receive's visibility timeout. Nothing is lost
either way; a stop waits at most FIRST_SLICE plus one round trip; an idle queue costs one more call per long
poll (2 per 20 s, where short polls in slices would cost 10-20 and still wait out each slice).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.platform.aws_errors import describe_client_error, error_code, is_transient
from aws_s3_wodle.errors import AwsAccessError

log = logging.getLogger("aws-s3-wodle")

BATCH = 10  # SQS's limit of entries per batch call
STOP_CHECK = 0.05  # seconds between two looks at the stop event while a receive is under way
FIRST_SLICE = 1   # seconds of a long poll waited in the calling thread, before the rest moves to a thread


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
                 visibility_timeout: Optional[int] = None, owner_account: Optional[str] = None,
                 stop: Optional[threading.Event] = None) -> None:
        self.sqs = sqs
        self.stop = stop  # the run's stop request: a receive under way is abandoned when it is set
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

    def receive(self, max_messages: Optional[int] = None, wait_seconds: Optional[int] = None) -> list[Message]:
        """One long poll for up to `max_messages` (default: the queue's own, at most 10) messages, waiting up to
        `wait_seconds` (default: the queue's own; 0 for a look that must not wait, e.g. receiving ahead)."""
        wanted = min(BATCH, max(1, max_messages if max_messages is not None else self.max_messages))
        wait = self.wait_seconds if wait_seconds is None else min(wait_seconds, self.wait_seconds)
        kwargs: dict[str, Any] = {"QueueUrl": self.url, "MaxNumberOfMessages": wanted,
                                  "WaitTimeSeconds": wait,
                                  "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"]}
        if self.visibility_timeout is not None:
            kwargs["VisibilityTimeout"] = self.visibility_timeout
        if self.stop is None or wait <= FIRST_SLICE:
            return self._receive(kwargs)
        if self.stop.is_set():
            return []
        first = self._receive({**kwargs, "WaitTimeSeconds": FIRST_SLICE})
        if first or self.stop.is_set():
            return first
        return _Poll(self, {**kwargs, "WaitTimeSeconds": wait - FIRST_SLICE}).wait(self.stop)

    def _receive(self, kwargs: dict[str, Any]) -> list[Message]:
        try:
            response = self.sqs.receive_message(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            advice = "" if is_transient(exc) else "; check the sqs:ReceiveMessage permission"  # throttled, 5xx
            error = AwsAccessError(f"cannot receive from SQS queue '{self.name}': {describe_client_error(exc)}{advice}")
            error.cause = exc  # the run decides whether to try again (throttling, 5xx) or stop
            raise error from None
        out = []
        for m in response.get("Messages", []):
            attrs = m.get("Attributes", {})
            out.append(Message(m["MessageId"], m["ReceiptHandle"], m.get("Body", ""),
                               int(attrs.get("ApproximateReceiveCount", 1)),
                               int(attrs["SentTimestamp"]) if "SentTimestamp" in attrs else None))
        return out

    def hand_back_late(self, messages: list[Message]) -> None:
        """Messages an abandoned receive got after the run stopped: visible again at once, for the next run."""
        failed = self.change_visibility(messages, 0)
        log.info("Handed %d SQS message(s) received after the stop back to queue '%s' at once%s", len(messages),
                 self.name, f" ({len(failed)} refused: they reappear after their visibility timeout)" if failed else "")

    def delete_batch(self, messages: Sequence[Message]) -> dict[str, str]:
        """Delete messages (DeleteMessageBatch, 10 a call); returns {message_id: reason} for those not deleted.

        Never raises: a refused entry, or a whole call that failed, is reported back; the caller decides.
        """
        return self._batch(self.sqs.delete_message_batch, messages, {})

    def change_visibility(self, messages: Sequence[Message], seconds: int) -> dict[str, str]:
        """Set the visibility of messages (batched, 10 a call); returns {message_id: reason} for those refused.

        Never raises: a message whose visibility could not be changed is reported back, the caller decides.
        """
        return self._batch(self.sqs.change_message_visibility_batch, messages, {"VisibilityTimeout": seconds})

    def _batch(self, call: Any, messages: Sequence[Message], extra: dict[str, Any]) -> dict[str, str]:
        """One SQS batch call per 10 messages; {message_id: reason} of the entries it refused."""
        failed: dict[str, str] = {}
        for start in range(0, len(messages), BATCH):
            chunk = list(messages[start:start + BATCH])
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle, **extra} for i, m in enumerate(chunk)]
            try:
                response = call(QueueUrl=self.url, Entries=entries)
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


class _Poll:
    """One receive in a daemon thread, abandoned when the run stops (see the module's docstring)."""

    def __init__(self, queue: SqsQueue, kwargs: dict[str, Any]) -> None:
        self.queue = queue
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.abandoned = False
        self.result: list[Message] = []
        self.error: Optional[BaseException] = None
        threading.Thread(target=self._run, args=(kwargs,), name=f"sqs-receive-{queue.name}", daemon=True).start()

    def _run(self, kwargs: dict[str, Any]) -> None:
        try:
            result, error = self.queue._receive(kwargs), None
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result, error = [], exc
        with self.lock:
            self.result, self.error = result, error
            self.done.set()
            late = self.abandoned
        if late and result:
            self.queue.hand_back_late(result)

    def wait(self, stop: threading.Event) -> list[Message]:
        """The call's messages (or its error, raised here); [] at once when `stop` is set first."""
        while not self.done.wait(STOP_CHECK):
            if stop.is_set():
                with self.lock:
                    if not self.done.is_set():
                        self.abandoned = True
                        return []
                break
        if self.error is not None:
            raise self.error
        return self.result

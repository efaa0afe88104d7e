"""`aws-s3-wodle test`: check, step by step, that every configured block can reach what it needs.

For each block: the credentials (sts:GetCallerIdentity, then sts:AssumeRole with the external id), the
queue (found, its visibility timeout and redrive policy), a pending notification peeked without
consuming it (received with a short visibility timeout, then handed back at once), and the bucket of
that notification (the first bytes of its object). Then the engine's socket (or the output file).
Each step prints OK or FAILED; a failure names the AWS error code, the HTTP status and what to check.
Nothing is deleted and no event is sent. Exit 0 only when every step passed.
"""
from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TextIO

from aws_s3_wodle.config.datepath import DatePath, has_variables
from aws_s3_wodle.observe import log as logsetup
from aws_s3_wodle.errors import EXIT_AWS, EXIT_OK, EXIT_SINK, WodleError

# How long a peeked message stays hidden if it cannot be handed back (ChangeMessageVisibility fails).
PEEK_VISIBILITY = 30

# What each step needs from IAM, named in its failure so the operator can fix the policy.
NEEDS = {
    "credentials": ["sts:GetCallerIdentity (always allowed; a refusal means the keys themselves are wrong)"],
    "assume role": ["sts:AssumeRole on the role for the caller", "a trust policy naming the caller, with the "
                    "configured external id in its external-id condition"],
    "queue": ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"],
    "notification": ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "(for runs also sqs:DeleteMessage)"],
    "bucket": ["s3:GetObject on the bucket's objects", "kms:Decrypt on the bucket's KMS key when it uses SSE-KMS"],
    "bucket listing": ["s3:ListBucket on the bucket", "(for runs also s3:GetObject, and s3:DeleteObject with "
                       "<remove_from_bucket>)"],
}

_THROTTLING = {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "SlowDown",
               "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottledException"}
_BAD_KEYS = {"InvalidClientTokenId", "UnrecognizedClientException", "InvalidAccessKeyId", "SignatureDoesNotMatch",
             "IncompleteSignature", "AuthFailure"}
_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}


def explain(exc: BaseException, step: str, context: dict[str, str]) -> str:
    """One line: the AWS error code and HTTP status, its message, and what to check for this step."""
    from aws_s3_wodle.platform.aws_errors import aws_error
    from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError, NoCredentialsError,
                                     ProfileNotFound, ReadTimeoutError)
    if isinstance(exc, NoCredentialsError):
        return ("no AWS credentials found. Check: set <aws_profile>, the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "environment variables, the shared credentials file, or an instance/container role")
    if isinstance(exc, ProfileNotFound):
        return f"{exc}. Check: <aws_profile> names a profile of ~/.aws/credentials or ~/.aws/config"
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return (f"{exc}. Check: the network path and proxy to that endpoint, and the endpoint settings "
                f"({context.get('endpoints', 'AWS_ENDPOINT_URL*, <sts_endpoint>, <service_endpoint>')})")
    if not isinstance(exc, ClientError):
        return f"{type(exc).__name__}: {exc}"
    parsed = aws_error(exc)
    assert parsed is not None
    code, status, message = parsed.code or "Error", parsed.status, parsed.message.strip().rstrip(".")
    head = f"{code} (HTTP {status or '?'})" + (f": {message}" if message else "")
    return f"{head}. Check: {_hint(code, int(status), step, context)}"


def _hint(code: str, status: int, step: str, context: dict[str, str]) -> str:
    needs = "; ".join(NEEDS.get(step, []))
    if code in _THROTTLING or status == 429:
        return ("AWS is throttling these calls: retry later, run fewer consumers on this account, or ask AWS "
                "for a higher quota")
    if code in _EXPIRED:
        return "the credentials expired: refresh the session token or the profile's credentials"
    if code in _BAD_KEYS:
        return ("the access key or secret key is not valid in this partition/region (wrong keys, deleted keys or "
                "a wrong region/endpoint)")
    if code in _NO_QUEUE:
        return (f"the queue name <sqs_name> '{context.get('queue', '?')}' and the region "
                f"'{context.get('region', '?')}' (AWS_DEFAULT_REGION or the profile's region): the queue must be "
                "in that region and that account")
    if code == "NoSuchBucket":
        return (f"the bucket '{context.get('bucket', '?')}' named by the notification does not exist where the "
                "S3 endpoint looks; check <service_endpoint> and the region")
    if code in ("NoSuchKey", "404") and step == "bucket":
        return ("the object named by the notification is gone (expired by a lifecycle rule or deleted); the bucket "
                "itself answered, so access works; such messages are left to the queue's redrive policy")
    if code.startswith("KMS.") or "KMS" in code:
        return "KMS refused to decrypt the object: grant kms:Decrypt on the bucket's key to the role"
    if status in (401, 403) or code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        if step == "assume role":
            return ("the role's trust policy: the caller must be a trusted principal, and its external-id "
                    "condition (sts:ExternalId) must equal the configured external id; and the caller's own "
                    f"permission sts:AssumeRole on {context.get('role', 'the role')}")
        return f"credentials and IAM permissions: the identity ({context.get('identity', 'the caller')}) needs {needs}"
    if status == 404:
        return ("a name or an endpoint: the resource does not exist there; check the names in the configuration and "
                f"the endpoint URLs ({context.get('endpoints', 'AWS_ENDPOINT_URL*, <sts_endpoint>, <service_endpoint>')})")
    if 500 <= status < 600:
        return "an error on AWS's side: retry; if it persists, check the AWS Health Dashboard for the region"
    if status == 400:
        return ("the configuration: a value was refused as invalid (<iam_role_arn>, <iam_role_duration> 900-43200 "
                "and within the role's maximum session, <sqs_name>, the region)")
    return f"the AWS error above; this step needs {needs}"


@dataclass
class StepResult:
    name: str
    ok: Optional[bool]  # None: skipped, because an earlier step failed or there was nothing to check
    detail: str
    category: str = "aws"

    @property
    def mark(self) -> str:
        return "OK" if self.ok else "SKIPPED" if self.ok is None else "FAILED"


class Report:
    """Prints each step as it completes, so a hanging call shows where it hangs."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.results: list[StepResult] = []

    def title(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def add(self, result: StepResult) -> StepResult:
        self.results.append(result)
        print(f"  {result.mark:<8}{result.name:<16}{logsetup.scrub(result.detail)}", file=self.out, flush=True)
        return result

    def step(self, name: str, call: Callable[[], str], context: dict[str, str], category: str = "aws") -> bool:
        try:
            detail = call()
        except Exception as exc:  # noqa: BLE001 - every failure is reported as a line, never a traceback
            if category == "sink" and isinstance(exc, OSError) and exc.strerror:
                why = exc.strerror
            else:
                why = explain(exc, name, context)
            self.add(StepResult(name, False, why, category))
            return False
        self.add(StepResult(name, True, detail, category))
        return True

    def skip(self, name: str, why: str) -> None:
        self.add(StepResult(name, None, why))

    @property
    def failed(self) -> list[StepResult]:
        return [r for r in self.results if r.ok is False]


class BlockCheck:
    """The steps for one subscriber block; each later step uses what the earlier ones established."""

    def __init__(self, block: Any, report: Report, wait_seconds: int) -> None:
        self.block, self.report, self.wait = block, report, wait_seconds
        self.where = _queue_ref(getattr(block, "sqs_name", "") or "")
        self.context: dict[str, str] = {"queue": self.where.name,
                                        "role": getattr(block, "iam_role_arn", None) or "the role",
                                        "endpoints": _endpoints(block)}
        self.base: Any = None
        self.clients: Any = None
        self.queue_url = ""
        self.ref: Any = None

    def run(self) -> None:
        r = self.report
        if not r.step("credentials", self.credentials, self.context):
            if self.block.iam_role_arn:
                r.skip("assume role", "needs credentials")
            return self._skip_rest("needs credentials")
        if self.block.iam_role_arn and not r.step("assume role", self.assume_role, self.context):
            return self._skip_rest("needs the assumed role")
        if not self.block.iam_role_arn:
            self.clients = self._clients_from(None)
        if getattr(self.block, "TAG", "") == "bucket":
            r.step("bucket listing", self.listing, self.context)
            return
        if not getattr(self.block, "sqs_name", None):
            return
        if not r.step("queue", self.queue, self.context):
            return self._skip_rest("needs the queue", start=1)
        if not r.step("notification", self.peek, self.context):
            return r.skip("bucket", "needs a readable queue")
        if self.ref is None:
            return r.skip("bucket", "no object notification pending: nothing to fetch (runs will show it)")
        r.step("bucket", self.bucket, self.context)

    def _skip_rest(self, why: str, start: int = 0) -> None:
        names = ["queue", "notification", "bucket"] if getattr(self.block, "sqs_name", None) else []
        for name in names[start:]:
            self.report.skip(name, why)

    # --- steps: each returns its OK detail or raises

    def credentials(self) -> str:
        from botocore.exceptions import NoCredentialsError
        from aws_s3_wodle.platform.aws import base_session, region_of
        b = self.block
        self.base = base_session(b)
        self.region = region_of(self.base, self.where.region)
        self.context["region"] = self.region
        if self.base.get_credentials() is None:
            raise NoCredentialsError()
        ident = self._sts().get_caller_identity()
        self.context["identity"] = ident.get("Arn", "?")
        how = f"profile '{b.aws_profile}'" if b.aws_profile else "the default credential chain"
        return f"sts:GetCallerIdentity as {ident.get('Arn')} (account {ident.get('Account')}) from {how}, region {self.region}"

    def assume_role(self) -> str:
        from aws_s3_wodle.platform.aws import assume_role_args
        b = self.block
        creds = self._sts().assume_role(RoleArn=b.iam_role_arn, **assume_role_args(b, "aws-s3-wodle-test"))
        c = creds["Credentials"]
        self.clients = self._clients_from(c)
        self.context["identity"] = creds.get("AssumedRoleUser", {}).get("Arn", b.iam_role_arn)
        expiry = c["Expiration"]
        when = expiry.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(expiry, "strftime") else str(expiry)
        with_id = " with the external id" if b.external_id else " (no external id configured)"
        return f"sts:AssumeRole {b.iam_role_arn}{with_id}: session as {self.context['identity']} until {when}"

    def queue(self) -> str:
        sqs = self.clients.sqs()
        lookup = {"QueueName": self.where.name}
        if self.where.account:
            lookup["QueueOwnerAWSAccountId"] = self.where.account
        self.queue_url = sqs.get_queue_url(**lookup)["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
            "VisibilityTimeout", "RedrivePolicy", "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible", "MessageRetentionPeriod"])["Attributes"]
        parts = [f"'{self.where.name}' found ({self.queue_url})",
                 f"visibility timeout {attrs.get('VisibilityTimeout', '?')} s"]
        redrive = attrs.get("RedrivePolicy")
        if redrive:
            import json
            try:
                policy = json.loads(redrive)
                target = str(policy.get("deadLetterTargetArn", "?")).rsplit(":", 1)[-1]
                parts.append(f"redrive policy: to '{target}' after {policy.get('maxReceiveCount', '?')} receives")
            except ValueError:
                parts.append("redrive policy present")
        else:
            parts.append("no redrive policy (a message that can never be processed comes back until it expires; "
                         "consider a dead-letter queue)")
        parts.append(f"about {attrs.get('ApproximateNumberOfMessages', '?')} waiting, "
                     f"{attrs.get('ApproximateNumberOfMessagesNotVisible', '?')} in flight")
        return "; ".join(parts)

    def peek(self) -> str:
        from aws_s3_wodle.sources.sqs.notifications import NotificationError, parse_body
        sqs = self.clients.sqs()
        got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self.wait,
                                  VisibilityTimeout=PEEK_VISIBILITY).get("Messages", [])
        noise = unknown = 0
        try:
            for m in got:
                try:
                    note = parse_body(m.get("Body", ""))
                except NotificationError:
                    unknown += 1
                    continue
                if note.is_noise or not note.objects:
                    noise += 1
                elif self.ref is None:
                    self.ref = note.objects[0]
        finally:
            for m in got:  # hand every peeked message back at once: nothing is consumed
                sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"],
                                              VisibilityTimeout=0)
        if not got:
            return f"sqs:ReceiveMessage works; no message pending (waited {self.wait} s)"
        self.context["bucket"] = self.ref.bucket if self.ref else ""
        extra = "".join([f", {noise} test/empty" if noise else "", f", {unknown} not understood" if unknown else ""])
        first = f"; first object s3://{self.ref.bucket}/{self.ref.key}" if self.ref else ""
        return (f"peeked {len(got)} message(s){extra} and handed them back (visibility 0; their receive count "
                f"went up by one){first}")

    def listing(self) -> str:
        """Bucket blocks read by listing: one page of the bucket under the block's path."""
        prefix = getattr(self.block, "path", None) or ""
        if has_variables(prefix):
            prefix = DatePath.parse(prefix).head  # the part before the first date variable
        self.context["bucket"] = self.block.name
        resp = self.clients.s3().list_objects_v2(Bucket=self.block.name, Prefix=prefix, MaxKeys=5, Delimiter="/")
        folders = [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
        keys = [o["Key"] for o in resp.get("Contents", [])]
        seen = ", ".join(folders + keys) or "nothing yet"
        return f"s3:ListBucket s3://{self.block.name}/{prefix}: {seen}"

    def bucket(self) -> str:
        s3 = self.clients.s3()
        resp = s3.get_object(Bucket=self.ref.bucket, Key=self.ref.key, Range="bytes=0-3")
        head = resp["Body"].read()
        size = str(resp.get("ContentRange", "")).rsplit("/", 1)[-1] or str(resp.get("ContentLength", "?"))
        kind = next((name for magic, name in _MAGIC if head.startswith(magic)), "not compressed")
        if getattr(self.block, "TYPE", "") == "security_lake" and kind != "Parquet":
            kind = f"not Parquet (starts with {head!r}): Security Lake objects are Parquet"
        return f"s3:GetObject s3://{self.ref.bucket}/{self.ref.key}: readable, {size} bytes, {kind}"

    # --- helpers

    def _sts(self) -> Any:
        from aws_s3_wodle.platform.aws import client_config, sts_client
        return sts_client(self.base, self.block, self.region, config=client_config())

    def _clients_from(self, creds: Optional[dict]) -> Any:
        from aws_s3_wodle.platform.aws import AwsClients
        return AwsClients.of(self.base, self.region, self.block, creds)


_MAGIC = ((b"PAR1", "Parquet"), (b"\x1f\x8b", "gzip"), (b"PK\x03\x04", "zip"))


def _queue_ref(text: str) -> Any:
    """The queue's name, and its region and owner when the block gives a URL or ARN."""
    try:
        from aws_s3_wodle.config.subscribers import queue_ref
        return queue_ref(text)
    except (ImportError, ValueError):
        from types import SimpleNamespace
        return SimpleNamespace(name=text, region=None, account=None)


def _endpoints(block: Any) -> str:
    shown = [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("AWS_ENDPOINT_URL")]
    for name in ("sts_endpoint", "service_endpoint"):
        if getattr(block, name, None):
            shown.append(f"<{name}> {getattr(block, name)}")
    return ", ".join(shown) or "the AWS default endpoints of the region"


def check_engine(report: Report, args: argparse.Namespace) -> None:
    report.title("engine")
    if args.output:
        report.step("output", lambda: _check_output(args.output), {}, category="sink")
        return
    from aws_s3_wodle.sinks.analysisd import default_socket
    path = args.socket or default_socket(args.wazuh_path)
    report.step("engine socket", lambda: _check_socket(path), {}, category="sink")


def _check_socket(path: str) -> str:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(path)
    except OSError as exc:
        why = {errno.ENOENT: "does not exist: is wazuh-analysisd running, and is --wazuh-path (or --socket) right?",
               errno.ECONNREFUSED: "exists but nobody is listening: wazuh-analysisd is stopped or restarting",
               errno.EACCES: "permission denied: run as root or as a member of the wazuh group",
               errno.ENOTSOCK: "is not a socket: check --socket"}.get(exc.errno, exc.strerror or str(exc))
        raise OSError(exc.errno, f"{path} {why}") from None
    finally:
        sock.close()
    return f"{path} accepts datagrams (nothing was sent)"


def _check_output(path: str) -> str:
    if path == "-":
        return "events go to stdout"
    p = Path(path)
    if p.exists() and not os.access(p, os.W_OK) or not p.exists() and not os.access(p.parent if str(p.parent) else ".", os.W_OK):
        raise OSError(errno.EACCES, f"{path} is not writable by this user")
    return f"{path} is writable"


def build_parser() -> argparse.ArgumentParser:
    from aws_s3_wodle.config.wodle import DEFAULT_CONFIG, DEFAULT_WAZUH_PATH
    p = argparse.ArgumentParser(prog="aws-s3-wodle test",
                                description="Check, step by step, that every configured block reaches AWS and the "
                                            "engine: credentials, AssumeRole, the queue, a pending notification "
                                            "(peeked, not consumed), its bucket, and the engine's socket. "
                                            "Exit 0 only when every step passed.")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG, help="ossec.conf to read (default %(default)s)")
    p.add_argument("--wazuh-path", default=DEFAULT_WAZUH_PATH, help="Wazuh directory (default %(default)s); the engine's "
                   "socket is WAZUH_PATH/queue/sockets/queue")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--socket", help="the engine's datagram socket, overriding --wazuh-path")
    out.add_argument("--output", "-o", help="check this JSON-lines output file instead of the engine ('-' = stdout)")
    p.add_argument("--wait", type=int, default=2, choices=range(0, 21), metavar="{0..20}",
                   help="seconds to long-poll for a pending notification (default %(default)s)")
    p.add_argument("--debug", "-d", type=int, choices=range(0, 4), default=0, metavar="{0..3}",
                   help="verbosity of the log lines (3 also shows the AWS SDK's)")
    return p


def main(argv: Optional[Sequence[str]] = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    logsetup.setup(args.debug)
    from aws_s3_wodle.config.reader import load_config
    try:
        config = load_config(args.config)
    except WodleError as exc:
        logsetup.log.error("%s", exc)
        return exc.exit_code
    report = Report(out)
    report.title(f"aws-s3-wodle test of {args.config}")
    blocks = config.enabled_blocks()
    if not blocks:
        report.title("every aws-s3 section is disabled: no block to check")
    for _wodle, block in blocks:
        logsetup.register_secrets(block.secrets())
        where = f" ({block.location})" if getattr(block, "location", None) else ""
        report.title(f"{block.label}{where}")
        BlockCheck(block, report, args.wait).run()
    check_engine(report, args)
    failed = report.failed
    if not failed:
        report.title("result: every step passed")
        return EXIT_OK
    report.title(f"result: {len(failed)} step(s) FAILED: " + ", ".join(r.name for r in failed))
    return EXIT_AWS if any(r.category == "aws" for r in failed) else EXIT_SINK

"""The one reading of an AWS error: code, HTTP status, message, and whether a later try may pass.

botocore raises `ClientError` with a `response` dict; every module that needs to tell an operator what
AWS said, or to decide whether to try again, reads it here instead of digging into that dict itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

# Codes that mean "try again later" rather than "you are not allowed / it does not exist".
TRANSIENT_CODES = frozenset({
    "InternalError", "InternalFailure", "ServiceUnavailable", "RequestThrottled", "ThrottlingException",
    "Throttling", "KmsThrottled", "OverLimit", "SlowDown", "RequestTimeout", "ExpiredToken",
    "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottledException"})


@dataclass(frozen=True)
class AwsError:
    """What an AWS call answered: its error code ('' when it is no ClientError), HTTP status (0 unknown)."""

    code: str
    status: int
    message: str

    @property
    def transient(self) -> bool:
        """May pass on a later try: throttling, 5xx, a timeout."""
        return (self.code in TRANSIENT_CODES or self.code.endswith("Throttled") or self.status >= 500
                or self.status == 429)


def aws_error(exc: BaseException) -> Optional[AwsError]:
    """The code, status and message of a ClientError; None for any other exception."""
    if not isinstance(exc, ClientError):
        return None
    err = exc.response.get("Error", {}) or {}
    try:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    except (TypeError, ValueError):
        status = 0
    return AwsError(str(err.get("Code") or ""), status, str(err.get("Message") or ""))


def error_code(exc: BaseException) -> str:
    """The AWS error code of exc ('' when it is no ClientError)."""
    parsed = aws_error(exc)
    return parsed.code if parsed else ""


def is_transient(exc: BaseException) -> bool:
    """True for errors that may pass on a later try (throttling, 5xx, network), False for refusals."""
    parsed = aws_error(exc)
    if parsed is not None:
        return parsed.transient
    return isinstance(exc, (BotoCoreError, OSError))


def describe_client_error(exc: BaseException) -> str:
    """One line for an operator: code, HTTP status and message of a ClientError, or the exception's text."""
    parsed = aws_error(exc)
    if parsed is not None:
        return f"{parsed.code or 'Error'} (HTTP {parsed.status or '?'}): {parsed.message or exc}"
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found: set aws_profile, the AWS_* environment variables or an instance role"
    return str(exc)

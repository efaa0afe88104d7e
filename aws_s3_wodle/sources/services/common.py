"""What both service sources share: the regions to read, times in milliseconds, the run's options, and how
an AWS error of a service call becomes one line that says what to check."""
from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Optional

from botocore.exceptions import BotoCoreError, ClientError

from aws_s3_wodle.delivery.outcome import DENIED, MISSING, THROTTLED, FailureClass, is_transient
from aws_s3_wodle.platform.aws import describe_client_error
from aws_s3_wodle.platform.aws_errors import error_code
from aws_s3_wodle.seams import Sink
from aws_s3_wodle.sources.services.state import ServiceState


@dataclass
class ServiceOptions:
    batch_size: int = 500          # events per batch handed to the sink (and per state commit)
    skip_on_error: bool = True     # 'no': the run ends at the first failed stream or region
    reparse: bool = False          # read again from only_logs_after, whatever was delivered
    keep_nulls: bool = False


@dataclass
class ServiceRun:
    """What a service source needs for one run: where events go, where positions live, when to stop."""

    sink: Sink
    state: ServiceState
    options: ServiceOptions
    stop: threading.Event


class EndRun(Exception):
    """skip_on_error is 'no' and something failed."""


def to_ms(when: dt.datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)


def day_start_ms(day: dt.date) -> int:
    return to_ms(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc))


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def shown(ms: Optional[int]) -> str:
    return "-" if ms is None else from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


_MISSING = {"ResourceNotFoundException", "NoSuchEntity", "NotFoundException"}
_DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnrecognizedClientException",
           "InvalidClientTokenId", "ExpiredTokenException", "ExpiredToken"}


def classify(exc: BaseException, needs: str) -> tuple[FailureClass, str]:
    """A service call's error -> its class and one line: the AWS code, status and message, and what to check."""
    what = describe_client_error(exc) if isinstance(exc, ClientError) else f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in _MISSING:
            return MISSING, f"{what}; check the names and <regions>"
        if code in _DENIED:
            return DENIED, f"{what}; the identity needs {needs}"
    if is_transient(exc) or isinstance(exc, BotoCoreError):
        return THROTTLED, f"{what}; retried on the next run"
    return THROTTLED, what

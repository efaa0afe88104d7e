"""What happens to an object or a message that fails: one table, one place.

Every failure has a class. The class says how it is counted and logged, and whether it can ever
succeed: a missing, denied or corrupt object, or a body that is no notification, will fail the same way
however often it is received (``permanent``); throttling, 5xx and network trouble may pass on the next
try (``transient``). Only permanent failures may be dead-lettered (see ``deadletter.py``); transient ones
are always left in the queue.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from botocore.exceptions import BotoCoreError

from aws_s3_wodle.errors import Interrupted, ObjectError
from aws_s3_wodle.platform.aws_errors import aws_error, is_transient


@dataclass(frozen=True)
class FailureClass:
    name: str         # counted under this name in the run stats
    label: str        # what an operator reads in the log line
    permanent: bool   # can never succeed, however often the message is received


MISSING = FailureClass("missing", "object missing (NoSuchKey)", True)
DENIED = FailureClass("denied", "access denied", True)
THROTTLED = FailureClass("throttled", "throttling or server error (retries exhausted)", False)
CORRUPT = FailureClass("corrupt", "corrupt or truncated object", True)
UNPARSEABLE = FailureClass("notification", "unparseable notification", True)
# An object that would cost the host more than a limit allows (decode.limits.LimitExceeded: a 1 GB value, a
# compression bomb, 100k columns). Apart from "corrupt": the bytes may be well formed, and the fix may be a
# flag (the reason names it) rather than the object's writer.
REFUSED = FailureClass("refused", "refused by a limit", True)
# An event too big for the engine is not a failure of its object: the sink records it whole
# (sinks.OversizeRecorder), the object is delivered, and the run counts it apart ("oversized").

CLASSES = {c.name: c for c in (MISSING, DENIED, THROTTLED, CORRUPT, UNPARSEABLE, REFUSED)}


def class_of(kind: str) -> FailureClass:
    """The class of an ObjectError kind; kinds we do not know are treated as transient (never dead-lettered)."""
    return CLASSES.get(kind, THROTTLED)


# S3 error codes (and the bare HTTP statuses HEAD answers with) -> class.
_S3_CODES = {
    "NoSuchKey": MISSING, "404": MISSING, "NoSuchBucket": MISSING, "NoSuchVersion": MISSING,
    "AccessDenied": DENIED, "403": DENIED, "AllAccessDisabled": DENIED, "InvalidObjectState": DENIED,
    "KMS.AccessDeniedException": DENIED, "KMS.DisabledException": DENIED, "KMS.NotFoundException": DENIED,
    "KMS.KMSInvalidStateException": DENIED,
}

_HINTS = {
    "missing": "the object does not exist (expired by a lifecycle rule, or deleted); check the bucket's "
               "lifecycle rules and the notification's source",
    "denied": "the role needs s3:GetObject on the bucket",
    "kms": "KMS denied decryption: grant kms:Decrypt on the bucket's key to the role",
    "archived": "the object is archived (Glacier): restore it or read only current storage classes",
    "throttled": "S3 kept throttling or failing; it is retried on the next run",
}


def classify_s3_error(exc: BaseException) -> tuple[FailureClass, str]:
    """An S3 GET error (after botocore's own retries) -> its class and a one-line reason with a hint."""
    parsed = aws_error(exc)
    if parsed is not None:
        code, message, status = parsed.code, parsed.message, parsed.status or "?"
        named = {"404": "NoSuchKey", "403": "AccessDenied"}.get(code, code)  # HEAD answers without a body
        cls = _S3_CODES.get(code, THROTTLED)
        if cls is DENIED:
            hint = _HINTS["archived"] if code == "InvalidObjectState" else \
                _HINTS["kms"] if "kms" in (code + message).lower() else _HINTS["denied"] + \
                " (and kms:Decrypt on its key if it is encrypted with KMS)"
        else:
            hint = _HINTS[cls.name]
        detail = f"{named} (HTTP {status})" + (f": {message[:200].rstrip('.')}" if message else "")
        return cls, f"{detail}; {hint}"
    if isinstance(exc, (BotoCoreError, OSError)):
        return THROTTLED, f"{type(exc).__name__}: {str(exc)[:200]}; {_HINTS['throttled']}"
    return THROTTLED, f"{type(exc).__name__}: {str(exc)[:200]}"


def object_error(bucket: str, key: str, exc: BaseException, what: str = "download failed") -> ObjectError:
    cls, reason = classify_s3_error(exc)
    return ObjectError(bucket, key, f"{what} with {reason}", kind=cls.name)


@dataclass
class Outcome:
    """How delivering one object ended: delivered (possibly skipped as already delivered) or failed."""

    delivered: bool
    failure: Optional[FailureClass] = None
    reason: str = ""
    skipped: bool = False  # already delivered before: nothing sent
    events: int = 0        # events the sink accepted for this object in this delivery


__all__ = ["CLASSES", "CORRUPT", "DENIED", "FailureClass", "Interrupted", "MISSING", "Outcome", "THROTTLED",
           "UNPARSEABLE", "class_of", "classify_s3_error", "is_transient", "object_error"]

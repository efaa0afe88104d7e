"""Log lines in the Wazuh manager's style, on stderr, with secrets scrubbed.

`2026/11/21 10:00:00 aws-s3-wodle: INFO: message` is what an operator greps in ossec.log;
`--debug 1..3` raises the verbosity (3 also shows botocore's own debug lines).
"""
from __future__ import annotations

import logging
import re
import sys
from typing import Iterable

NAME = "aws-s3-wodle"
log = logging.getLogger(NAME)

# Values that must never reach a log line, whatever code path formats them.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(aws_secret_access_key|secretaccesskey|secret_access_key|sessiontoken|session_token|"
               r"x-amz-security-token|externalid|external_id|accesskeyid)([\"'=:\s>]+(?:b['\"])?)([^\s\"'&,}<]+)"),
    re.compile(r"(?i)(Signature=|Credential=)([^\s,&\"']+)"),
]


class _Redactor(logging.Filter):
    """Removes secret values (and any literal registered secret) from every record."""

    def __init__(self) -> None:
        super().__init__()
        self.literals: set[str] = set()

    def scrub(self, text: str) -> str:
        for secret in self.literals:
            if secret and secret in text:
                text = text.replace(secret, "***")
        for pat in _SECRET_PATTERNS:
            text = pat.sub(lambda m: m.group(1) + (m.group(2) if m.lastindex and m.lastindex >= 3 else "") + "***", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self.scrub(msg)
        record.args = ()
        return True


_redactor = _Redactor()


def register_secrets(values: Iterable[str | None]) -> None:
    """Remember literal secrets (external ids, keys) so no log line ever shows them."""
    for value in values:
        if value and len(value) >= 4:
            _redactor.literals.add(value)


def scrub(text: str) -> str:
    """Scrub a string that leaves the process by another way than logging (errors, files)."""
    return _redactor.scrub(text)


class _Formatter(logging.Formatter):
    def __init__(self, timestamps: bool) -> None:
        fmt = "%(asctime)s " + NAME + ": %(levelname)s: %(message)s" if timestamps else "%(levelname)s: %(message)s"
        super().__init__(fmt, datefmt="%Y/%m/%d %H:%M:%S")
        self.timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if self.timestamps or "\n" not in text:
            return text
        # Wazuh's manager reads one message per line: each line of a multi-line record keeps the level prefix.
        first, *rest = text.splitlines()
        return "\n".join([first] + [f"{record.levelname}: {line}" for line in rest])


def setup(debug: int = 0, *, timestamps: bool = True, stream=None) -> None:
    """Configure the root of our loggers. debug: 0 INFO, 1-2 DEBUG, 3 DEBUG with botocore."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(timestamps))
    handler.addFilter(_redactor)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    log.setLevel(logging.DEBUG if debug >= 1 else logging.INFO)
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug >= 3 else logging.WARNING)

"""Errors that end up in front of an operator: each carries what went wrong and what to do."""
from __future__ import annotations

from typing import Callable

# Exit codes, documented in the README; distinct per cause so a manager can tell them apart.
EXIT_OK = 0
EXIT_CONFIG = 1          # bad configuration file or flags
EXIT_USAGE = 2           # command-line usage (argparse)
EXIT_AWS = 3             # AWS unreachable, credentials refused, queue/bucket not found
EXIT_SINK = 4            # the analysis engine's socket or the output file cannot take events
EXIT_PARTIAL = 5         # the run finished, but some objects or messages failed (they stay queued)
EXIT_INTERNAL = 70       # an unexpected error (a bug): one ERROR line names it (EX_SOFTWARE of sysexits.h)
EXIT_INTERRUPTED = 130   # stopped by SIGINT/SIGTERM before the run ended


def one_line(text: str) -> str:
    """text with line breaks and other control characters escaped, fit for one log line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def internal_error(log, exc: BaseException, debug: bool) -> int:
    """The last resort of a command's main: one ERROR line naming the exception (the traceback only with
    --debug), and an exit code no handled error uses (Python's own for an uncaught exception is 1, ours
    for a bad configuration)."""
    log.error("Internal error: %s: %s; this is a bug: rerun with --debug 1 for the traceback and report it",
              type(exc).__name__, exc, exc_info=exc if debug else None)
    return EXIT_INTERNAL


class WodleError(Exception):
    """Base class: str(exc) is the one line the operator sees."""

    exit_code = EXIT_PARTIAL


class ConfigError(WodleError):
    exit_code = EXIT_CONFIG

    def __init__(self, path: str, line: int, element: str, problem: str) -> None:
        self.path, self.line, self.element, self.problem = path, line, element, problem
        where = f"{path}:{line}" if line else path
        # one line, whatever the file held: values quoted in the message may carry newlines or control bytes
        super().__init__(one_line(f"{where}: <{element}> {problem}"))


class AwsAccessError(WodleError):
    """Credentials, the queue or the bucket cannot be reached: nothing can be done this run."""

    exit_code = EXIT_AWS
    cause = None  # the botocore error behind it, when the caller may want to try again


class SinkError(WodleError):
    """The engine (or output file) does not take events: stop without acknowledging anything."""

    exit_code = EXIT_SINK


class Interrupted(WodleError):
    """A stop was requested mid-object (during its download, between its batches, while the engine took nothing):
    its progress is kept, and its source hands it back (message released, listing cursor not moved) for a later
    run. Here, not in delivery/, because the sink raises it too."""

    exit_code = EXIT_INTERRUPTED
    partial = None  # raised by a sink: its SendResult of the events of the batch it took before the stop, in order

    @property
    def handled(self) -> int:
        """How many events of the batch the sink took (sent or recorded), from its first: what a checkpoint keeps."""
        return self.partial.sent + self.partial.oversized if self.partial is not None else 0


class StateError(WodleError):
    """The state database cannot be opened or written. Bucket blocks stop (their cursor is their only memory);
    subscribers go on without deduplication (the queue still holds what was not acknowledged)."""

    exit_code = EXIT_SINK  # 4, as before the store was shared


class ObjectError(WodleError):
    """One object cannot be delivered (missing, denied, corrupt): reported, the others go on."""

    def __init__(self, bucket: str, key: str, reason: str, kind: str = "object") -> None:
        self.bucket, self.key, self.reason, self.kind = bucket, key, reason, kind
        super().__init__(f"s3://{bucket}/{key}: {reason}")


def guarded(log, body: Callable[[], int], debug: bool) -> int:
    """The exit code of a command's body, with the endings every main shares: a WodleError is its one line
    and its own code, a second signal says where the messages went, anything else is `internal_error`."""
    try:
        return body()
    except WodleError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        log.warning("Stopped at once by a second signal; unacknowledged messages return to the queue")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - last resort: one line and a distinct exit code, not a traceback
        return internal_error(log, exc, debug)

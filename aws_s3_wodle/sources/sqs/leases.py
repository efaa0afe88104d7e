"""Keeps received SQS messages invisible to other consumers while this run holds them.

A message is received with a visibility timeout T. While its object is being fetched and sent, a
background thread renews the timeout (ChangeMessageVisibilityBatch, up to 10 messages a call) each
time a third of T has passed, so the message never reappears for another consumer mid-delivery,
however long the object takes. A hard limit caps how long one message is held in all: past it
the message is left to reappear (a stuck delivery must not hide a message for ever). Messages
received but not started when a run ends are released at once (visibility 0), so another consumer can
take them without waiting T.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from aws_s3_wodle.sources.sqs.queue import Message, SqsQueue

log = logging.getLogger("aws-s3-wodle")

SQS_MAX_HOLD = 12 * 3600  # SQS refuses to extend past 12 hours after a receive


@dataclass
class Lease:
    message: Message
    received_at: float   # monotonic time the receive call was made (visibility counts from about then)
    expires_at: float    # when the message reappears unless renewed (conservative: from before the call)
    capped: bool = False
    lost: bool = False


class LeaseKeeper:
    """Hold with hold(), stop holding with done() (delivered or left for a retry) or release()."""

    def __init__(self, queue: SqsQueue, timeout: int, limit: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.timeout = max(1, int(timeout))
        self.limit = min(float(limit), SQS_MAX_HOLD)
        self.tick = max(0.3, self.timeout / 3)
        self.clock = clock
        self.leases: dict[str, Lease] = {}
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.closing = False
        self.renewals = 0       # messages renewed, summed over calls (for the run stats and tests)
        self.calls = 0          # ChangeMessageVisibilityBatch calls made to renew
        self.thread: Optional[threading.Thread] = None

    # --- the run's side

    def start(self) -> "LeaseKeeper":
        self.thread = threading.Thread(target=self._loop, name=f"visibility {self.queue.name}", daemon=True)
        self.thread.start()
        return self

    def hold(self, messages: Iterable[Message], received_at: float) -> None:
        with self.lock:
            for m in messages:
                self.leases[m.message_id] = Lease(m, received_at, received_at + self.timeout)
        self.wake.set()

    def done(self, message: Message) -> None:
        """Stop renewing: the message was deleted, or is left to reappear after its timeout."""
        with self.lock:
            self.leases.pop(message.message_id, None)

    def release(self, messages: Iterable[Message]) -> int:
        """Make messages visible again at once (not started, or stopped half-way); returns how many."""
        messages = list(messages)
        with self.lock:
            for m in messages:
                self.leases.pop(m.message_id, None)
        if not messages:
            return 0
        failed = self.queue.change_visibility(messages, 0)
        for mid, reason in failed.items():
            log.warning("Could not release SQS message %s at once (%s): it reappears when its visibility "
                        "timeout ends", mid, reason)
        return len(messages) - len(failed)

    def stop(self) -> None:
        self.closing = True
        self.wake.set()
        if self.thread:
            self.thread.join(30)

    def __enter__(self) -> "LeaseKeeper":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- the renewing thread

    def _loop(self) -> None:
        while not self.closing:
            self.wake.wait(self.tick / 2)
            self.wake.clear()
            if self.closing:
                return
            try:
                self.renew_due()
            except Exception:  # the keeper must outlive any one failure; the next tick tries again
                log.exception("Renewing SQS visibility failed; trying again in %.1f s", self.tick / 2)

    def renew_due(self) -> None:
        """Renew every lease at least a tick old; leases at the hold limit are let go with one warning."""
        now = self.clock()
        due: list[tuple[Lease, int]] = []
        with self.lock:
            for lease in self.leases.values():
                if lease.capped or lease.lost or lease.expires_at - now > self.timeout - self.tick:
                    continue
                left = lease.received_at + self.limit - now
                if left < 1:
                    lease.capped = True
                    log.warning("SQS message %s was held %.0f s, the visibility limit: it is no longer kept "
                                "invisible and may be received again (by this or another consumer)",
                                lease.message.message_id, now - lease.received_at)
                    continue
                due.append((lease, int(min(self.timeout, left))))
        for seconds in sorted({s for _, s in due}):
            group = [lease for lease, s in due if s == seconds]
            started = self.clock()
            failed = self.queue.change_visibility([lease.message for lease in group], seconds)
            self.calls += (len(group) + 9) // 10
            with self.lock:
                for lease in group:
                    if lease.message.message_id not in self.leases:
                        continue  # done meanwhile (deleted): a refused renewal means nothing
                    reason = failed.get(lease.message.message_id)
                    if reason is None:
                        lease.expires_at = started + seconds
                        self.renewals += 1
                    elif _gone(reason):
                        lease.lost = True
                        log.warning("SQS message %s can no longer be kept invisible (%s): another consumer may "
                                    "receive it", lease.message.message_id, reason)
                    else:
                        log.debug("Renewing the visibility of SQS message %s failed (%s); trying again",
                                  lease.message.message_id, reason)

    def held(self) -> list[Message]:
        with self.lock:
            return [lease.message for lease in self.leases.values()]


def _gone(reason: str) -> bool:
    """Refusals that no retry can fix: the receipt handle is stale or the message is no longer in flight."""
    return any(code in reason for code in ("ReceiptHandleIsInvalid", "MessageNotInflight", "InvalidParameterValue",
                                           "NonExistentQueue", "QueueDoesNotExist"))

"""argparse value types shared by every command line (ours, Wazuh's flags, `test`): a bad number is one
usage error naming the flag, not a traceback or a busy loop later."""
from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """An integer of at least 1 (batch sizes: 0 divides by zero, a negative size reads nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer (at least 1)")
    return value


def seconds(text: str) -> float:
    """A finite number of seconds, 0 or more (nan or a negative wait would spin without sleeping)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds, 0 or more")
    return value

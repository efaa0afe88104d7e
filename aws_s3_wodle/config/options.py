"""How an option is declared (element, check, default, help) and the value parsers the blocks share.

Each option is declared once, as a dataclass field whose metadata holds its XML element, its parser
(the check) and its help text; the reader, `--help` and the README's reference table all read them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000}
DAY, WEEK, MONTH = _UNITS["d"], _UNITS["w"], _UNITS["M"]
MAX_INTERVAL = 365 * DAY  # longer ones are no schedule (and overflow the scheduler's clock arithmetic)


# --- value parsers: each takes the element text and returns the value or raises ValueError(what is allowed)

def matching(pattern: str, hint: str) -> Callable[[str], str]:
    """The parser of a value taken as written when `pattern` matches all of it; ValueError(hint) otherwise."""
    regex = re.compile(pattern)

    def parse(text: str) -> str:
        if not regex.fullmatch(text):
            raise ValueError(hint)
        return text
    return parse


def whole_number(low: int, high: int, hint: str) -> Callable[[str], int]:
    """The parser of a whole number from `low` to `high`, in digits (no sign, no more digits than `high`
    has); ValueError(hint) otherwise."""
    regex = re.compile(rf"\d{{1,{len(str(high))}}}")

    def parse(text: str) -> int:
        if not regex.fullmatch(text) or not low <= int(text) <= high:
            raise ValueError(hint)
        return int(text)
    return parse


def parse_yes_no(text: str) -> bool:
    if text in ("yes", "no"):
        return text == "yes"
    raise ValueError("allowed values are 'yes' and 'no'")


def parse_interval(text: str) -> int:
    """Seconds from `10m`, `1h`, `600`: suffixes s, m, h, d, w, M (30 days); a bare number is seconds."""
    m = re.fullmatch(r"(\d{1,9})([smhdwM]?)", text)
    if not m or int(m.group(1)) == 0:
        raise ValueError("use a positive number with an optional suffix s, m, h, d, w or M, e.g. '10m'")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_INTERVAL:
        raise ValueError("the interval is at most one year (365d, 52w or 12M)")
    return seconds


parse_time_of_day = matching(r"([01]\d|2[0-3]):[0-5]\d", "use HH:MM in 24-hour time, e.g. '03:30'")


_WDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_wday(text: str) -> int:
    name = text.lower()
    for i, day in enumerate(_WDAYS):
        if name in (day, day[:3]):
            return i
    raise ValueError("use a day name, e.g. 'monday' or 'mon'")


parse_day_of_month = whole_number(1, 31, "use a day of the month from 1 to 31")

SQS_NAME = r"[A-Za-z0-9_-]{1,80}(\.fifo)?"
AWS_REGION = r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d"  # us-east-1, us-gov-west-1, us-isob-east-1
parse_sqs_name = matching(SQS_NAME, "an SQS queue name has 1 to 80 letters, digits, '-' or '_' (optionally "
                                    "ending in .fifo)")
parse_role_arn = matching(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}",
                          "use a role ARN like 'arn:aws:iam::123456789012:role/SecurityLakeSubscriber'")
parse_role_duration = whole_number(900, 43200, "use a number of seconds from 900 to 43200 (the limits of "
                                               "sts:AssumeRole)")


def parse_endpoint(text: str) -> str:
    """An endpoint URL or a bare host name (VPC endpoints are often given so); bare hosts get https://."""
    url = text if "://" in text else "https://" + text
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", text):
        raise ValueError("use a host name or an http(s) URL, e.g. 'https://sts.us-east-1.amazonaws.com'")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and re.search(r":\d*$", parts.netloc)):
        raise ValueError("the port must be a number from 1 to 65535, e.g. 'https://vpce.example:443'")
    return url


def parse_visibility(text: str) -> int:
    """An interval (`30`, `2m`, `1h`) of at most 12 hours, SQS's longest visibility."""
    seconds = parse_interval(text)
    if seconds > 43200:
        raise ValueError("use at most 12h (43200 s), SQS's longest visibility")
    return seconds


parse_receive_count = whole_number(1, 1000, "use a number of receives from 1 to 1000")


def parse_text(text: str) -> str:
    if not text:
        raise ValueError("the value must not be empty")
    return text


def option(parse: Callable[[str], Any] = parse_text, *, help: str, default: Any = None,
           required: bool = False, secret: bool = False, element: Optional[str] = None,
           attributes: tuple = ()) -> Any:
    """Declare a config option: element name (the field name unless given), check, default and help.

    With `attributes` (e.g. ("field",)), the parser is called as parse(text, {name: value}) so an element
    like `<discard_regex field="a.b">` is checked as one value.
    """
    return field(default=default, metadata={"parse": parse, "help": help, "required": required,
                                            "secret": secret, "element": element, "attributes": attributes})


@dataclass
class Location:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"

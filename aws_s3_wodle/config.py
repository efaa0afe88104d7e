"""ossec.conf -> dataclasses, with one clear `file:line` error for anything we do not accept.

Each option is declared once, as a dataclass field whose metadata holds its XML element, its parser
(the check) and its help text; the README's reference table is tested against these declarations.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional
from urllib.parse import urlsplit

from lxml import etree

from .errors import ConfigError

DEFAULT_WAZUH_PATH = "/var/ossec"  # the one place this default is written; every --wazuh-path takes it
DEFAULT_CONFIG = f"{DEFAULT_WAZUH_PATH}/etc/ossec.conf"

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


@dataclass
class AwsAccess:
    """How to reach AWS: the standard boto3 credential chain, an optional profile and role to assume."""

    aws_profile: Optional[str] = option(help="Profile of the shared AWS credentials/config files to start from; "
                                             "the standard chain (environment, files, instance role) when absent.")
    iam_role_arn: Optional[str] = option(parse_role_arn, help="Role to assume (for Security Lake, the subscriber role); "
                                                             "credentials are refreshed before they expire.")
    iam_role_duration: Optional[int] = option(parse_role_duration, help="Session length of the assumed role in "
                                                                        "seconds, 900 to 43200 (AWS default 3600).")
    external_id: Optional[str] = option(secret=True, help="External ID the role's trust policy requires "
                                                          "(for Security Lake, given when the subscriber was created). "
                                                          "Never logged.")
    sts_endpoint: Optional[str] = option(parse_endpoint, help="STS endpoint for AssumeRole, e.g. a VPC endpoint "
                                                              "or a regional one.")
    service_endpoint: Optional[str] = option(parse_endpoint, help="S3 endpoint to download objects through "
                                                                  "(applies to S3 only), e.g. a VPC endpoint.")

    def secrets(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self) if f.metadata.get("secret") and getattr(self, f.name)]

    def validate(self) -> None:
        """Options that only mean something together: a role's duration and external id need the role."""
        for name in ("iam_role_duration", "external_id"):
            if getattr(self, name) and not self.iam_role_arn:
                raise ValueError(f"has <{name}> but no <iam_role_arn>; it applies to an assumed role: add the "
                                 "role, or remove it")


@dataclass
class SqsDelivery:
    """How a subscriber holds its SQS messages and what it does with one that can never be delivered."""

    visibility_timeout: int = option(parse_visibility, default=120, help=(
        "Visibility timeout set on each received message (interval syntax, at most 12h). It is renewed while the "
        "object is being delivered, so it only bounds how soon a message comes back after a crash."))
    visibility_limit: int = option(parse_visibility, default=3600, help=(
        "Longest time one message is kept invisible in all (at most 12h); past it, a delivery still running lets "
        "the message reappear."))
    dead_letter_after: Optional[int] = option(parse_receive_count, help=(
        "Unset: a message that can never succeed (object missing, denied or corrupt, body not a notification) "
        "is left to the queue's redrive policy. N: once received N times, it is recorded with its body in "
        "STATE_DIR/dead-letter.jsonl and deleted."))


@dataclass
class SecurityLakeSubscriber(SqsDelivery, AwsAccess):
    """`<subscriber type="security_lake">`: Security Lake's SQS notifications of new OCSF Parquet objects."""

    TAG: ClassVar[str] = "subscriber"
    TYPE: ClassVar[str] = "security_lake"

    sqs_name: str = option(parse_sqs_name, required=True, default="",
                           help="Name of the SQS queue Security Lake created for the subscriber.")
    location: Optional[Location] = None

    @property
    def label(self) -> str:
        return f"security_lake subscriber '{self.sqs_name}'"


# Block types we read: (tag, type) -> dataclass. Other modules register more.
BLOCK_TYPES: dict[tuple[str, str], type] = {("subscriber", "security_lake"): SecurityLakeSubscriber}

# Types Wazuh's schema names that this version does not read yet: a clear error, not "unknown".
KNOWN_UNSUPPORTED = {
    "service": {"inspector", "cloudwatchlogs"},
}

# Elements Wazuh's aws-s3 module took once and removed: a specific message, not "unknown element".
REMOVED_ELEMENTS = {
    "access_key": "Wazuh removed <access_key> and <secret_key>: keys no longer go in ossec.conf; put them in a "
                  "profile of the AWS credentials file and name it with <aws_profile>, or use the standard chain "
                  "(environment, instance or task role)",
}
REMOVED_ELEMENTS["secret_key"] = REMOVED_ELEMENTS["access_key"]


@dataclass
class Wodle:
    """One `<wodle name="aws-s3">` section: its schedule and its blocks."""

    disabled: bool = option(parse_yes_no, default=False, help="'yes' turns the whole section off.")
    interval: int = option(parse_interval, default=600, help="Time between runs of each block: a number with "
                                                             "suffix s, m, h, d, w or M (30 days); bare = seconds; at "
                                                             "most one year. Whole months with day, whole weeks with "
                                                             "wday, whole days with time (as Wazuh).")
    run_on_start: bool = option(parse_yes_no, default=True, help="'yes' runs every block as soon as the wodle "
                                                                "starts; 'no' waits one interval (or the schedule).")
    skip_on_error: bool = option(parse_yes_no, default=True, help="'yes' goes on with the next object when one "
                                                                  "fails; 'no' ends the run at the first failure.")
    time: Optional[str] = option(parse_time_of_day, help="HH:MM of the first run; later runs follow the interval.")
    day: Optional[int] = option(parse_day_of_month, help="Day of the month of the first run (with time); not with "
                                                         "wday.")
    wday: Optional[int] = option(parse_wday, help="Day of the week of the first run (with time).")
    blocks: list = field(default_factory=list)
    location: Optional[Location] = None

    def validate(self) -> None:
        """Wazuh's scheduling rules: `day` and `wday` exclude each other, and the interval must be whole
        months with `day`, whole weeks with `wday`, whole days with `time`."""
        if self.day is not None and self.wday is not None:
            raise ValueError("<day> and <wday> cannot be used together; keep one")
        for given, unit, name, example in ((self.day, MONTH, "months (suffix M)", "1M"),
                                           (self.wday, WEEK, "weeks (suffix w)", "1w"),
                                           (self.time, DAY, "days (suffix d)", "1d")):
            if given is not None:
                if self.interval % unit:
                    what = "day" if unit == MONTH else "wday" if unit == WEEK else "time"
                    raise ValueError(f"with <{what}>, <interval> must be a whole number of {name}, e.g. "
                                     f"'{example}', not {self.interval} s")
                break


@dataclass
class Config:
    path: str
    wodles: list[Wodle]

    def enabled_blocks(self) -> list[tuple[Wodle, Any]]:
        return [(w, b) for w in self.wodles if not w.disabled for b in w.blocks]


# --- reading

def _options(cls: type) -> dict[str, Any]:
    return {(f.metadata.get("element") or f.name): f for f in fields(cls) if "parse" in f.metadata}


def _allowed(names) -> str:
    return ", ".join(f"<{n}>" for n in sorted(names))


def _fill(obj: Any, element: etree._Element, path: str, where: str, skip: set[str] = frozenset()) -> None:
    """Set obj's options from element's children; unknown, repeated, empty or bad ones are errors."""
    opts = _options(type(obj))
    seen: set[str] = set()
    for child in element:
        if not isinstance(child.tag, str):  # comments, processing instructions
            continue
        line = child.sourceline or 0
        if child.tag in skip:
            continue
        f = opts.get(child.tag)
        if f is None and child.tag in REMOVED_ELEMENTS:
            raise ConfigError(path, line, child.tag, f"not supported in {where}: {REMOVED_ELEMENTS[child.tag]}")
        if f is None:
            raise ConfigError(path, line, child.tag, f"unknown element in {where}; allowed: {_allowed(set(opts) | skip)}")
        if child.tag in seen:
            raise ConfigError(path, line, child.tag, f"given twice in {where}; give it once")
        seen.add(child.tag)
        if len(child):
            raise ConfigError(path, line, child.tag, "must hold a plain value, not other elements")
        text = (child.text or "").strip()
        attributes = f.metadata.get("attributes") or ()
        extra = set(child.attrib) - set(attributes)
        if extra:
            raise ConfigError(path, line, child.tag, f"unknown attribute {', '.join(sorted(extra))}; allowed: "
                                                     f"{', '.join(attributes) or 'none'}")
        try:
            value = f.metadata["parse"](text, dict(child.attrib)) if attributes else f.metadata["parse"](text)
        except ValueError as exc:
            shown = "" if f.metadata.get("secret") else f" '{text[:80]}'"
            raise ConfigError(path, line, child.tag, f"invalid value{shown}: {exc}") from None
        setattr(obj, f.name, value)
    for name, f in opts.items():
        if f.metadata.get("required") and name not in seen:
            raise ConfigError(path, element.sourceline or 0, f"{element.tag} type=\"{element.get('type')}\"",
                              f"<{name}> is required: {f.metadata['help']}")


def _parse_block(child: etree._Element, path: str) -> Any:
    line = child.sourceline or 0
    kind = child.get("type")
    tag = child.tag
    types = sorted(t for (g, t) in BLOCK_TYPES if g == tag)
    if not kind:
        raise ConfigError(path, line, tag, f"needs a type attribute; supported: {', '.join(types) or 'none'}")
    cls = BLOCK_TYPES.get((tag, kind))
    if cls is None:
        if kind in KNOWN_UNSUPPORTED.get(tag, ()):
            raise ConfigError(path, line, f'{tag} type="{kind}"',
                              f"is not supported by this version of aws-s3-wodle; supported: {', '.join(types)}")
        raise ConfigError(path, line, f'{tag} type="{kind}"', f"unknown type; supported: {', '.join(types)}")
    block = cls()
    if "kind" in {f.name for f in fields(cls)}:  # one dataclass may serve several types (the bucket types)
        block.kind = kind
    block.location = Location(path, line)
    _fill(block, child, path, f'<{tag} type="{kind}">')
    check = getattr(block, "validate", None)
    if check:
        try:
            check()
        except ValueError as exc:
            raise ConfigError(path, line, f'{tag} type="{kind}"', str(exc)) from None
    return block


_BLOCK_TAGS = {"subscriber", "bucket", "service"}


def parse_wodle(element: etree._Element, path: str) -> Wodle:
    wodle = Wodle(location=Location(path, element.sourceline or 0))
    _fill(wodle, element, path, '<wodle name="aws-s3">', skip=_BLOCK_TAGS)
    try:
        wodle.validate()
    except ValueError as exc:
        raise ConfigError(path, element.sourceline or 0, 'wodle name="aws-s3"', str(exc)) from None
    for child in element:
        if isinstance(child.tag, str) and child.tag in _BLOCK_TAGS:
            wodle.blocks.append(_parse_block(child, path))
    if not wodle.blocks and not wodle.disabled:
        raise ConfigError(path, element.sourceline or 0, 'wodle name="aws-s3"',
                          "has no block to run; add a <subscriber type=\"security_lake\"> (or set <disabled>yes)")
    return wodle


def _xml_parser() -> etree.XMLParser:
    # No entity expansion, no DTD, no network: a config file must never fetch or blow up anything.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True)


def parse_config_bytes(data: bytes, path: str) -> Config:
    # A file may hold several <ossec_config> roots: wrap them in one, on the same line so line numbers hold.
    data = re.sub(rb"^\s*<\?xml[^>]*\?>", b"", data, count=1)
    if re.search(rb"<!(DOCTYPE|ENTITY)", data):
        line = data[: re.search(rb"<!(DOCTYPE|ENTITY)", data).start()].count(b"\n") + 1
        raise ConfigError(path, line, "!DOCTYPE", "DTDs and entities are not allowed in the configuration; remove them")
    try:
        root = etree.fromstring(b"<aws_s3_wodle_root>" + data + b"</aws_s3_wodle_root>", _xml_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 0
        msg = str(exc.msg if hasattr(exc, "msg") else exc)
        msg = re.sub(r",? line \d+, column \d+", "", msg).replace("aws_s3_wodle_root", "end of file")
        msg = " ".join(msg.split())
        raise ConfigError(path, line, "xml", f"malformed XML: {msg}; fix the file's syntax") from None
    wodles = [parse_wodle(el, path) for el in root.iter("wodle") if el.get("name") == "aws-s3"]
    return Config(path=path, wodles=wodles)


def load_config(path: str) -> Config:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(path, 0, "file", f"cannot be read ({exc.strerror}); give an existing file with --config") from None
    config = parse_config_bytes(data, path)
    if not config.wodles:
        raise ConfigError(path, 0, 'wodle name="aws-s3"', 'no <wodle name="aws-s3"> section found; add one '
                                                         "inside <ossec_config>")
    return config


def reference_markdown() -> str:
    """The README's option reference, generated from the declarations (a test keeps the README in sync)."""
    out = []
    sections = [('`<wodle name="aws-s3">`', Wodle)]
    kinds: dict[tuple[str, type], list[str]] = {}
    for (tag, kind), cls in BLOCK_TYPES.items():  # a class serving several types gets one table
        kinds.setdefault((tag, cls), []).append(kind)
    sections += [(f'`<{tag} type="{"|".join(names)}">`', cls) for (tag, cls), names in kinds.items()]
    for title, cls in sections:
        out += [f"#### {title}", "", "| element | default | meaning |", "|---|---|---|"]
        for f in fields(cls):
            if "help" not in f.metadata:
                continue
            default = "required" if f.metadata["required"] else ("none" if f.default is None else
                      ("yes" if f.default is True else "no" if f.default is False else str(f.default)))
            attrs = "".join(f' {a}="..."' for a in f.metadata.get("attributes") or ())
            out.append(f"| `{f.metadata.get('element') or f.name}{attrs}` | {default} | {f.metadata['help']} |")
        out.append("")
    return "\n".join(out)


from . import subscriber_config  # noqa: E402,F401  (registers <subscriber type="buckets|security_hub">)
from . import bucket_config  # noqa: E402,F401  (registers the <bucket type="..."> blocks)

"""`<discard_regex field="a.b">REGEX</discard_regex>`: drop the records (events) whose field matches, counted.

As in Wazuh: the field is a dotted path into the record; a list on the way matches when any element
matches; the regex must match at the start of the value (`re.match`). Numbers and booleans are matched
as their JSON text; a missing field never matches.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DiscardRule:
    field: str
    regex: re.Pattern

    def __str__(self) -> str:
        return f'field "{self.field}" matching "{self.regex.pattern}"'

    def matches(self, record: Any) -> bool:
        return _match(record, self.field.split("."), self.regex)


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _match(value: Any, path: list[str], regex: re.Pattern) -> bool:
    if isinstance(value, list):
        return any(_match(v, path, regex) for v in value)
    if not path:
        text = _scalar_text(value)
        return text is not None and regex.match(text) is not None
    if not isinstance(value, dict) or path[0] not in value:
        return False
    return _match(value[path[0]], path[1:], regex)


def parse_discard_regex(text: str, attributes: dict[str, str]) -> DiscardRule:
    """The element's text is the regex, its `field` attribute the dotted field it applies to."""
    field_name = (attributes.get("field") or "").strip()
    if not field_name or not re.fullmatch(r"[^.\s]+(\.[^.\s]+)*", field_name):
        raise ValueError('needs a field attribute naming the record field, e.g. <discard_regex field="data.action">')
    if not text:
        raise ValueError("the regular expression must not be empty")
    try:
        regex = re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    return DiscardRule(field_name, regex)

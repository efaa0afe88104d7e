"""A small evaluator of the Wazuh rule features our rule files use, to test them without a manager.

What it implements, as wazuh-analysisd does:
- rule files hold several top-level `<group name="a,b,">` elements; a rule's groups are its enclosing
  group's names plus its own `<group>` element;
- `<decoded_as>json</decoded_as>` (our events are JSON, decoded by the built-in JSON decoder);
- `<field name="a.b.c" type="pcre2" [negate="yes"]>REGEX</field>` on the decoded JSON, flattened with dots:
  numbers as their decimal text, booleans as `true`/`false`, arrays of scalars joined with commas; the
  regex is searched (not anchored); a missing field never matches (negate included);
- `<if_sid>` chains: a rule is tried only after its parent matched; among the children of a matched rule
  (and among the top-level rules) the rules are ordered by level, highest first, ties in file order
  (rules_list.c inserts each rule before the first sibling of lower level); the first that matches wins and
  its own children are tried next; the deepest match is the alert.
Anything else in a rule is refused (`Unsupported`), so a rule file cannot quietly rely on a feature the
tests do not check.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from lxml import etree

SUPPORTED_CHILDREN = {"decoded_as", "field", "if_sid", "description", "group", "options", "mitre"}
SUPPORTED_FIELD_ATTRS = {"name", "type", "negate"}


class Unsupported(ValueError):
    pass


@dataclass
class FieldCond:
    name: str
    regex: re.Pattern
    negate: bool = False

    def matches(self, fields: dict[str, str]) -> bool:
        value = fields.get(self.name)
        if value is None:
            return False
        found = self.regex.search(value) is not None
        return found != self.negate


@dataclass
class Rule:
    id: int
    level: int
    groups: list[str]
    description: str
    decoded_as: Optional[str] = None
    if_sid: list[int] = field(default_factory=list)
    fields: list[FieldCond] = field(default_factory=list)
    order: int = 0
    children: list["Rule"] = field(default_factory=list)

    def matches(self, fields: dict[str, str]) -> bool:
        if self.decoded_as is not None and self.decoded_as != "json":
            return False
        return all(c.matches(fields) for c in self.fields)


def parse_rules(paths: Iterable[Path]) -> list[Rule]:
    rules: list[Rule] = []
    for path in paths:
        data = Path(path).read_bytes()
        root = etree.fromstring(b"<root>" + data + b"</root>", etree.XMLParser(remove_comments=True,
                                                                                resolve_entities=False))
        for group in root:
            if group.tag != "group":
                raise Unsupported(f"{path}: top-level <{group.tag}>")
            names = [g for g in (group.get("name") or "").split(",") if g]
            for el in group:
                if el.tag != "rule":
                    raise Unsupported(f"{path}: <{el.tag}> inside <group>")
                rules.append(_rule(el, names, len(rules)))
    return rules


def _rule(el: Any, group_names: list[str], order: int) -> Rule:
    extra_attrs = set(el.attrib) - {"id", "level"}
    if extra_attrs:
        raise Unsupported(f"rule {el.get('id')}: attributes {sorted(extra_attrs)}")
    rule = Rule(id=int(el.get("id")), level=int(el.get("level")), groups=list(group_names), description="",
                order=order)
    for child in el:
        tag = child.tag
        if tag not in SUPPORTED_CHILDREN:
            raise Unsupported(f"rule {rule.id}: <{tag}>")
        text = (child.text or "").strip()
        if tag == "decoded_as":
            rule.decoded_as = text
        elif tag == "if_sid":
            rule.if_sid += [int(x) for x in re.split(r"[,\s]+", text) if x]
        elif tag == "description":
            rule.description = text
        elif tag == "group":
            rule.groups += [g for g in text.split(",") if g]
        elif tag == "field":
            if set(child.attrib) - SUPPORTED_FIELD_ATTRS:
                raise Unsupported(f"rule {rule.id}: <field> attributes {sorted(child.attrib)}")
            if child.get("type") != "pcre2":
                raise Unsupported(f"rule {rule.id}: <field> without type=\"pcre2\" (osregex is not evaluated)")
            rule.fields.append(FieldCond(child.get("name"), re.compile(text), child.get("negate") == "yes"))
    return rule


def flatten(event: Any, prefix: str = "") -> dict[str, str]:
    """The JSON decoder's view of an event: dotted names -> text."""
    out: dict[str, str] = {}
    if isinstance(event, dict):
        for k, v in event.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    name = prefix[:-1]
    if event is None:
        return out
    if isinstance(event, bool):
        out[name] = "true" if event else "false"
    elif isinstance(event, (int, float, str)):
        out[name] = str(event)
    elif isinstance(event, list):
        if all(not isinstance(x, (dict, list)) for x in event):
            out[name] = ",".join("true" if x is True else "false" if x is False else str(x)
                                 for x in event if x is not None)
    return out


class RuleSet:
    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.by_id = {r.id: r for r in rules}
        self.top: list[Rule] = []
        for r in rules:
            if r.if_sid:
                for parent in r.if_sid:
                    _insert(self.by_id[parent].children, r)
            else:
                _insert(self.top, r)

    @classmethod
    def load(cls, paths: Iterable[Path]) -> "RuleSet":
        return cls(parse_rules(paths))

    def match(self, event: dict) -> Optional[Rule]:
        """The rule that fires for the event (the deepest match), or None."""
        fields = flatten(event)
        return _descend(self.top, fields)

    def chain(self, rule: Rule) -> list[int]:
        ids = [rule.id]
        while rule.if_sid:
            rule = self.by_id[rule.if_sid[0]]
            ids.append(rule.id)
        return ids[::-1]


def _insert(siblings: list[Rule], rule: Rule) -> None:
    """rules_list.c: before the first sibling of lower level, else at the end."""
    for i, other in enumerate(siblings):
        if rule.level > other.level:
            siblings.insert(i, rule)
            return
    siblings.append(rule)


def _descend(candidates: list[Rule], fields: dict[str, str]) -> Optional[Rule]:
    for rule in candidates:
        if rule.matches(fields):
            deeper = _descend(rule.children, fields)
            return deeper or rule
    return None

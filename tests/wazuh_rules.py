r"""A small evaluator of the Wazuh rule features our rule files use, loading and matching as wazuh-analysisd does.

Facts modelled, with where they come from (Wazuh v4.14.7, src/analysisd/ and src/shared/; read for facts only):
- Load order: `ruleset/rules/` first (sorted by file name), then `etc/rules/`. The stock rules our tree depends on
  are stated by the fixture tests/stock_rules.py (interface facts, not a copy of Wazuh's files).
- Tree (rules_list.c, OS_AddChild/_OS_AddRule; rules.c, OS_ReadXMLRules): a rule without if_sid/if_group/if_level
  becomes a child of the template rule of its category (rule 1 "syslog" here: the JSON decoder's events, and every
  rule's default category); a rule with `<if_sid>a, b</if_sid>` becomes a child of each listed rule that exists (a
  missing one is warned about; none found: the rule is skipped); `<if_matched_sid>` without `<if_sid>` sets the
  if_sid to it (rules.c: "If_matched_sid, we need to get the if_sid").
- Sibling order (rules.c loads a level-0 rule as level 99 "to have high priority", _OS_AddRule inserts a rule before
  the first sibling of strictly lower level): level-0 rules first, then by level, highest first; ties in load order.
- overwrite="yes" (rules.c + rules_list.c, OS_AddRuleInfo): the existing rule keeps its place in the tree (its
  parent and its position among its siblings, which are not re-sorted), and takes the new level, conditions,
  description, groups, frequency, timeframe and same/different fields; a different <if_sid>, <if_group> or
  <if_matched_sid> is refused with a warning (the old one stays). overwrite of a rule that does not exist: warned,
  loaded as a new rule. The same id twice without overwrite: warned, the second one skipped.
- Matching (rules.c, OS_CheckIfRuleMatch; analysisd.c): depth first from the template rule; a rule matches when its
  `decoded_as` is the event's decoder and every <field> matches (a missing field never matches, negated or not);
  `type="pcre2"` is a PCRE2 search compiled with no option (case-sensitive, unanchored); a frequency rule also needs
  its history (below) before its children are tried; among the children of a matched rule the first that matches
  (in sibling order) is descended into, the deepest match is the result. A result of level 0 raises no alert.
- Frequency (eventinfo.c, Search_LastSids; rules.c getattributes): `frequency="N"` is stored as N-2; walking the
  events that *ended* (alerted, level > 0) on the `<if_matched_sid>` rule, newest first: stop at the first one older
  than `timeframe` seconds (default 360) by the manager's clock (not the event's own time); skip one whose
  <same_field> values are missing or differ, or one whose <different_field> value equals the current event's
  (analysisd.c adds an event to that list only when that rule is the one it alerted on); stop at one already used by
  an alert of this level or higher (`matched`); the rule fires when N-1 earlier events qualify (N with the current
  one), and then marks the current event and the newest counted one as matched at its level.
- The JSON decoder (decoders/plugins/json_decoder.c, defaults in decoders/decoder.h): nested keys joined with dots;
  the keys srcip, dstip, srcport, dstport, protocol, action, srcuser, dstuser, id, status, url, data, extra_data and
  systemname (whole key, so a top-level OCSF `status` or `action`) fill the event's static fields, which <field>
  does not see (FindField in decoders/decoder.c reads the dynamic ones only, key compared case-insensitively) and
  <status> reads; at most analysisd.decoder_order_size (256) dynamic fields are kept, in document order;
  a number that is an integer within C `int` range as `%i`, any other number as `%f` (so a millisecond epoch becomes
  "1709251200000.000000"); true/false as text; null as the text "null" (json_null_field default "string"); an array
  as its JSON text, printed by cJSON_Print (json_array_structure default "array"): formatted, `"key":<TAB>value`
  inside objects, `, ` between array items; the tab indentation of nested objects is approximated here, so a rule
  must not depend on it (ours only search `"key":\s*value`).
Anything else in a rule is refused (`Unsupported`), so a rule file cannot quietly rely on a feature the tests do not
check.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from lxml import etree

SUPPORTED_CHILDREN = {"decoded_as", "field", "status", "if_sid", "if_matched_sid", "same_field", "different_field",
                      "not_same_field", "description", "group", "options", "mitre"}
SUPPORTED_FIELD_ATTRS = {"name", "type", "negate"}
SUPPORTED_RULE_ATTRS = {"id", "level", "frequency", "timeframe", "overwrite"}
DEFAULT_TIMEFRAME = 360  # rules.c: default_timeframe
DECODER_ORDER_SIZE = 256  # etc/internal_options.conf: analysisd.decoder_order_size, the most dynamic fields kept
# json_decoder.c fillData: these keys (the whole dotted key) go to the event's static fields, not the dynamic ones
STATIC_KEYS = {"srcip", "dstip", "dstport", "srcport", "protocol", "action", "srcuser", "dstuser", "id", "status",
               "url", "data", "extra_data", "systemname"}
TEMPLATE = 1             # 0010-rules_config.xml: the syslog template rule, parent of every root rule here


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
    if_matched_sid: Optional[int] = None
    frequency: Optional[int] = None          # as written in the XML
    timeframe: int = DEFAULT_TIMEFRAME
    same_fields: list[str] = field(default_factory=list)
    different_fields: list[str] = field(default_factory=list)
    fields: list[FieldCond] = field(default_factory=list)
    status: Optional[FieldCond] = None       # <status>: the static field
    overwrite: bool = False
    origin: str = "ours"                     # "ours" or "stock"
    source: str = ""                         # file it comes from
    order: int = 0
    children: list["Rule"] = field(default_factory=list)
    parents: list["Rule"] = field(default_factory=list)

    def conditions_match(self, fields: "Decoded") -> bool:
        if self.decoded_as is not None and self.decoded_as != "json":
            return False
        if self.status is not None and not self.status.matches(fields.static):
            return False
        return all(c.matches(fields) for c in self.fields)

    @property
    def sort_level(self) -> int:
        return 99 if self.level == 0 else self.level

    @property
    def unconditional(self) -> bool:
        return not self.fields and self.status is None and self.decoded_as is None and self.if_matched_sid is None


# --- reading rule files

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
                rules.append(_rule(el, names, len(rules), Path(path).name))
    return rules


def _ids(text: str) -> list[int]:
    if not re.fullmatch(r"[\d, ]+", text):  # rules.c validates if_sid with ^[\d, ]+$
        raise Unsupported(f"invalid if_sid {text!r}")
    return [int(x) for x in re.split(r"[,\s]+", text) if x]


def _rule(el: Any, group_names: list[str], order: int, source: str) -> Rule:
    extra_attrs = set(el.attrib) - SUPPORTED_RULE_ATTRS
    if extra_attrs:
        raise Unsupported(f"rule {el.get('id')}: attributes {sorted(extra_attrs)}")
    rule = Rule(id=int(el.get("id")), level=int(el.get("level")), groups=list(group_names), description="",
                order=order, source=source, overwrite=el.get("overwrite") == "yes")
    if el.get("frequency") is not None:
        rule.frequency = int(el.get("frequency"))
        if not 2 <= rule.frequency <= 9999:  # rules.c getattributes
            raise Unsupported(f"rule {rule.id}: frequency must be 2..9999")
    if el.get("timeframe") is not None:
        rule.timeframe = int(el.get("timeframe"))
    for child in el:
        tag = child.tag
        if tag not in SUPPORTED_CHILDREN:
            raise Unsupported(f"rule {rule.id}: <{tag}>")
        text = (child.text or "").strip()
        if tag == "decoded_as":
            rule.decoded_as = text
        elif tag == "if_sid":
            rule.if_sid += _ids(text)
        elif tag == "if_matched_sid":
            if not text.isdigit():
                raise Unsupported(f"rule {rule.id}: if_matched_sid {text!r} is one rule id")
            rule.if_matched_sid = int(text)
        elif tag == "same_field":
            rule.same_fields.append(text)
        elif tag in ("different_field", "not_same_field"):
            rule.different_fields.append(text)
        elif tag == "description":
            rule.description = text
        elif tag == "group":
            rule.groups += [g for g in text.split(",") if g]
        elif tag == "status":
            if child.get("type") != "pcre2" or set(child.attrib) - {"type", "negate"}:
                raise Unsupported(f"rule {rule.id}: <status> without type=\"pcre2\"")
            rule.status = FieldCond("status", re.compile(text), child.get("negate") == "yes")
        elif tag == "field":
            if set(child.attrib) - SUPPORTED_FIELD_ATTRS:
                raise Unsupported(f"rule {rule.id}: <field> attributes {sorted(child.attrib)}")
            if child.get("type") != "pcre2":
                raise Unsupported(f"rule {rule.id}: <field> without type=\"pcre2\" (osregex is not evaluated)")
            rule.fields.append(FieldCond(child.get("name"), re.compile(text), child.get("negate") == "yes"))
    if (rule.frequency is None) != (rule.if_matched_sid is None):
        raise Unsupported(f"rule {rule.id}: frequency and if_matched_sid go together here")
    if rule.if_matched_sid is not None and not rule.if_sid:
        rule.if_sid = [rule.if_matched_sid]
    return rule


def stock_rules(entries: Iterable[dict]) -> list[Rule]:
    """Rules from the interface facts of tests/stock_rules.py."""
    out = []
    for e in entries:
        out.append(Rule(id=e["id"], level=e["level"], groups=list(e["groups"]), description=e["description"],
                        decoded_as=e.get("decoded_as"), if_sid=[e["parent"]] if e["parent"] else [],
                        fields=[FieldCond(n, re.compile(rx), neg) for n, rx, neg in e["fields"]],
                        origin="stock", source=e["file"]))
    return out


# --- the JSON decoder's view of an event

def _number(v: Any) -> str:
    if isinstance(v, int) and -2**31 <= v < 2**31:
        return str(v)
    f = float(v)
    if f.is_integer() and -2**31 <= f < 2**31:
        return str(int(f))
    return "%f" % f


def _cjson_number(v: Any) -> str:
    f = float(v)
    if f.is_integer() and abs(f) < 2**63:
        return str(int(f))
    text = "%1.15g" % f
    return text if float(text) == f else "%1.17g" % f


def cjson_print(v: Any, depth: int = 1) -> str:
    """cJSON_Print (formatted): objects on several lines, tab-indented, `"key":\\tvalue`; arrays `[a, b]`."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return _cjson_number(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(cjson_print(x, depth) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{\n" + "\t" * (depth - 1) + "}"
        items = [("\t" * depth) + json.dumps(k, ensure_ascii=False) + ":\t" + cjson_print(x, depth + 1)
                 for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + "\t" * (depth - 1) + "}"
    raise TypeError(type(v))


def _leaves(event: Any, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(event, dict):
        for k, v in event.items():
            out += _leaves(v, f"{prefix}{k}.")
        return out
    name = prefix[:-1]
    if event is None:
        out.append((name, "null"))
    elif isinstance(event, bool):
        out.append((name, "true" if event else "false"))
    elif isinstance(event, (int, float)):
        out.append((name, _number(event)))
    elif isinstance(event, str):
        out.append((name, event))
    elif isinstance(event, list):
        out.append((name, cjson_print(event)))
    return out


class Decoded(dict):
    """The dynamic fields (what <field> and same_field read: FindField, key compared case-insensitively), with the
    static fields the JSON decoder filled in `.static`."""

    def __init__(self, dynamic: list[tuple[str, str]], static: dict[str, str]) -> None:
        super().__init__()
        for k, v in dynamic:
            self.setdefault(k.lower(), v)
        self.static = static

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


def decode(event: Any) -> Decoded:
    dynamic: list[tuple[str, str]] = []
    static: dict[str, str] = {}
    for key, value in _leaves(event):
        if key in STATIC_KEYS:
            static[key] = value
        elif len(dynamic) < DECODER_ORDER_SIZE:  # further ones: "Too many fields for JSON decoder."
            dynamic.append((key, value))
    return Decoded(dynamic, static)


def flatten(event: Any) -> dict[str, str]:
    """The JSON decoder's dynamic fields of an event: dotted names -> text."""
    return dict(decode(event))


# --- the loaded tree and the engine

@dataclass
class Alert:
    rule: Rule
    level: int
    alerted: bool  # level > 0


@dataclass
class _Past:
    fields: "Decoded"
    time: float
    matched: int = 0


class RuleSet:
    def __init__(self, rules: list[Rule], stock: Optional[list[Rule]] = None) -> None:
        self.warnings: list[str] = []
        self.template = Rule(id=TEMPLATE, level=0, groups=["syslog"], description="Generic template.",
                             origin="stock", source="0010-rules_config.xml")
        self.by_id: dict[int, Rule] = {TEMPLATE: self.template}
        self.rules: list[Rule] = []     # ours, as loaded
        self.stock: list[Rule] = []
        self._history: dict[int, list[_Past]] = {}
        for r in (stock or []):
            self._add(r)
        for r in rules:
            self._add(r)

    @classmethod
    def load(cls, paths: Iterable[Path], stock: Optional[list[Rule]] = None) -> "RuleSet":
        return cls(parse_rules(paths), stock)

    @property
    def top(self) -> list[Rule]:
        return self.template.children

    def _add(self, rule: Rule) -> None:
        existing = self.by_id.get(rule.id)
        if existing is not None:
            if not rule.overwrite:
                self.warnings.append(f"rule {rule.id}: duplicated id, skipped")
                return
            self._overwrite(existing, rule)
            return
        if rule.overwrite:
            self.warnings.append(f"rule {rule.id}: overwrite of a rule that does not exist, loaded as new")
        parents = [self.by_id[p] for p in rule.if_sid if p in self.by_id] if rule.if_sid else [self.template]
        for p in rule.if_sid:
            if p not in self.by_id:
                self.warnings.append(f"rule {rule.id}: if_sid {p} not found")
        if not parents:
            self.warnings.append(f"rule {rule.id}: no parent found, skipped")
            return
        if rule.if_matched_sid is not None and rule.if_matched_sid not in self.by_id:
            self.warnings.append(f"rule {rule.id}: if_matched_sid {rule.if_matched_sid} not found, skipped")
            return
        for p in parents:
            _insert(p.children, rule)
            rule.parents.append(p)
        self.by_id[rule.id] = rule
        (self.rules if rule.origin == "ours" else self.stock).append(rule)

    def _overwrite(self, old: Rule, new: Rule) -> None:
        if new.if_sid and new.if_matched_sid is None and new.if_sid != old.if_sid:
            self.warnings.append(f"rule {old.id}: overwrite cannot change if_sid (kept {old.if_sid})")
        if new.if_matched_sid is not None and new.if_matched_sid != old.if_matched_sid:
            self.warnings.append(f"rule {old.id}: overwrite cannot change if_matched_sid")
        for attr in ("level", "description", "groups", "decoded_as", "fields", "frequency", "timeframe",
                     "same_fields", "different_fields"):
            setattr(old, attr, getattr(new, attr))
        old.origin, old.source = new.origin, new.source
        if old.origin == "ours" and old not in self.rules:
            self.rules.append(old)

    # -- matching

    def reset(self) -> None:
        """Forget the frequency history (a new manager run / wazuh-logtest session)."""
        self._history.clear()

    def process(self, event: dict, now: float = 0.0) -> Optional[Alert]:
        """The event as analysisd takes it at manager time `now` (seconds); updates the frequency history."""
        fields = decode(event)
        current = _Past(fields, now)
        rule = self._descend(self.template, fields, current, now)
        if rule is None:
            return None
        alert = Alert(rule, rule.level, rule.level > 0)
        if alert.alerted and any(r.if_matched_sid == rule.id for r in self.by_id.values()):
            self._history.setdefault(rule.id, []).append(current)
        return alert

    def match(self, event: dict) -> Optional[Rule]:
        """The rule an event ends on, with no frequency history (one event on its own)."""
        self.reset()
        alert = self.process(event)
        self.reset()
        return alert.rule if alert else None

    def _descend(self, node: Rule, fields: Decoded, current: _Past, now: float) -> Optional[Rule]:
        if node is not self.template:
            if not node.conditions_match(fields):
                return None
            if node.if_matched_sid is not None and not self._search_last_sids(node, current, now):
                return None
        for child in node.children:
            found = self._descend(child, fields, current, now)
            if found is not None:
                return found
        if node is self.template:  # noalert template: nothing below it matched
            return None
        return node

    def _search_last_sids(self, rule: Rule, current: _Past, now: float) -> bool:
        past = self._history.get(rule.if_matched_sid, [])
        needed = rule.frequency - 2
        count = 0
        first: Optional[_Past] = None
        for prev in reversed(past):
            if now - prev.time > rule.timeframe:
                return False
            if rule.same_fields:
                if not all(current.fields.get(f) is not None and current.fields.get(f) == prev.fields.get(f)
                           for f in rule.same_fields):
                    continue
            if rule.different_fields:
                if any(current.fields.get(f) is not None and current.fields.get(f) == prev.fields.get(f)
                       for f in rule.different_fields):
                    continue
            if prev.matched >= rule.level:
                return False
            if count < needed:
                count += 1
                first = first or prev
                continue
            current.matched = rule.level
            if first is not None:
                first.matched = rule.level
            return True
        return False

    # -- structure

    def chain(self, rule: Rule) -> list[int]:
        ids = [rule.id]
        while rule.parents:
            rule = rule.parents[0]
            ids.append(rule.id)
        return ids[::-1]

    def ancestors(self, rule: Rule) -> set[int]:
        out: set[int] = set()
        todo = list(rule.parents)
        while todo:
            r = todo.pop()
            if r.id not in out:
                out.add(r.id)
                todo += r.parents
        return out


def _insert(siblings: list[Rule], rule: Rule) -> None:
    """_OS_AddRule: before the first sibling of strictly lower level (level 0 counted as 99), else at the end."""
    for i, other in enumerate(siblings):
        if rule.sort_level > other.sort_level:
            siblings.insert(i, rule)
            return
    siblings.append(rule)

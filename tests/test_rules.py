"""The Wazuh rules in etc/rules, loaded as a manager loads them (stock rules first, ours after), fire for every
Security Lake event of both OCSF lines and for OCSF events of other products, as the README's rule table says.

Evaluated with tests/wazuh_rules.py (analysisd's load order, sibling order, overwrite and frequency, as documented
there) on top of tests/stock_rules.py (the interface facts of the stock rules ours hang under), on events converted
by the wodle itself: the team's real samples when ../shared is there, and always the lab's generated rows (every
source and notable case, both schema lines), other products' events of every OCSF line (tests/rules_fixtures), and
the operator-runnable rule tests of etc/rules/tests/*.ini.
"""
from __future__ import annotations

import configparser
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from aws_s3_wodle.decode.formats.parquet import iter_parquet_events
from aws_s3_wodle.lab import ocsf_sources
from aws_s3_wodle.lab.ocsf import write_ocsf_parquet

from .conftest import SAMPLES, SKIP_NO_SHARED
from .rules_fixtures import custom_sources, sequences
from .stock_rules import OUR_ANCHORS, STOCK_RULES
from .wazuh_rules import RuleSet, cjson_print, decode, flatten, parse_rules, stock_rules

RULES_DIR = Path(__file__).resolve().parents[1] / "etc" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.xml"))
INI_FILES = sorted((RULES_DIR / "tests").glob("*.ini"))
ID_RANGE = range(111000, 112000)
SOURCE_GROUPS = {"asl_cloudtrail", "asl_vpcflow", "asl_route53", "asl_securityhub", "asl_eks", "asl_lambda",
                 "asl_waf", "asl_custom"}
# Security Lake source (sample file prefix or lab source) -> the child group its events must land in
GROUP_OF = {"CLOUD_TRAIL": "asl_cloudtrail", "CLOUD_TRAIL_MGMT": "asl_cloudtrail", "VPC_FLOW": "asl_vpcflow",
            "ROUTE53": "asl_route53", "SH_FINDINGS": "asl_securityhub", "EKS_AUDIT": "asl_eks",
            "LAMBDA_EXECUTION": "asl_lambda", "WAF": "asl_waf"}


def _load() -> RuleSet:
    return RuleSet.load(RULE_FILES, stock_rules(STOCK_RULES))


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return _load()


def _convert(parquet: bytes) -> list[dict]:
    """Through the wodle's own decoder and converter, as the events reach the engine."""
    return [json.loads(e) for batch in iter_parquet_events(io.BytesIO(parquet)) for e in batch]


def _assert_alerts_in_our_tree(rules: RuleSet, rule, what: str, group: str) -> None:
    assert rule is not None, f"{what}: no rule matched"
    assert rule.level >= 3, f"{what}: ends on {rule.id} level {rule.level} (no alert below 3)"
    assert "amazon_security_lake" in rule.groups, (what, rule.id, rule.groups)
    assert group in rule.groups, f"{what}: rule {rule.id} {rule.groups}, expected {group}"
    assert rules.chain(rule)[:3] == [1, 99000, 111000], (what, rules.chain(rule))


# --- the file itself and its place in the stock tree

def test_rule_files_are_well_formed_and_use_only_evaluated_features():
    assert RULE_FILES, "no rule file in etc/rules"
    for path in RULE_FILES:
        etree.fromstring(b"<root>" + path.read_bytes() + b"</root>")  # raises on malformed XML
    assert parse_rules(RULE_FILES)  # raises Unsupported for any feature the evaluator does not implement


def test_ids_in_our_range_and_loaded_without_warning(rules):
    ours = parse_rules(RULE_FILES)
    ids = [r.id for r in ours]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert all(i in ID_RANGE for i in ids), [i for i in ids if i not in ID_RANGE]
    assert all(0 <= r.level <= 16 for r in ours)
    assert not any(r.overwrite for r in ours)  # the design overwrites no stock rule (README)
    # every if_sid / if_matched_sid found, no duplicate, nothing skipped: analysisd would warn otherwise
    assert rules.warnings == []
    assert sorted(r.id for r in rules.rules) == sorted(ids)


def test_every_rule_of_ours_hangs_under_a_stock_root(rules):
    """Loaded after the stock rules, a root rule of ours would never be tried for an OCSF event: the stock 99000
    matches them all first. So every rule of ours descends from a stock anchor."""
    for r in rules.rules:
        assert rules.ancestors(r) & OUR_ANCHORS, f"rule {r.id} cannot be reached from {sorted(OUR_ANCHORS)}"
        assert rules.template not in r.parents, f"rule {r.id} is a root rule"
    # 111000 is level 0, so it is tried before the stock children of 99000 (level 3)
    assert [c.id for c in rules.by_id[99000].children] == [111000, 99001, 99002, 99003]


def test_no_event_can_end_on_a_level_0_rule_of_ours(rules):
    """A level-0 rule raises no alert when an event ends on it: each one needs a child without conditions."""
    level0 = [r for r in rules.rules if r.level == 0]
    assert [r.id for r in level0] == [111000]
    for r in level0:
        assert any(c.unconditional and c.level >= 3 for c in r.children), r.id


def test_groups_parent_and_one_source_group_each(rules):
    for r in rules.rules:
        assert "amazon_security_lake" in r.groups, r.id
        sources = SOURCE_GROUPS & set(r.groups)
        if r.id == 111000:
            assert not sources
        else:
            assert len(sources) == 1, (r.id, r.groups)
    for r in rules.rules:  # a child stays in its parent's source group
        for parent in r.parents:
            if parent.origin == "ours" and parent.id != 111000:
                assert SOURCE_GROUPS & set(r.groups) == SOURCE_GROUPS & set(parent.groups), r.id


def test_non_ocsf_events_do_not_reach_our_rules(rules):
    wazuh_aws = {"integration": "aws", "aws": {"source": "cloudtrail", "eventName": "ConsoleLogin"}}
    assert rules.match(wazuh_aws).id == 80200  # the stock AWS root, level 0
    assert rules.match({"metadata": {"version": "1.1.0"}, "class_uid": 3002}) is None  # no activity_id/category
    no_version = {"class_uid": 3002, "activity_id": 1, "category_uid": 3}
    assert rules.match(no_version).id == 99000  # OCSF-like, no schema version: the stock root, no alert


def test_without_our_rules_the_stock_tree_leaves_events_without_alert():
    """The problem the rules solve, measured on the stock facts alone: these sources end on level 0."""
    stock_only = RuleSet([], stock_rules(STOCK_RULES))
    ended = {}
    for v in (ocsf_sources.V10, ocsf_sources.V11):
        for _, name, row in ocsf_sources.all_cases(v):
            [event] = _convert(ocsf_sources.to_parquet([row]))
            ended[f"{v} {name}"] = stock_only.match(event)
    assert ended["1.1.0 securityhub/critical"].id == 99000 and ended["1.1.0 securityhub/critical"].level == 0
    assert ended["1.1.0 eks/anonymous"].level == 0 and ended["1.1.0 waf/blocked"].level == 0
    assert ended["1.0.0-rc.2 cloudtrail/root-console-login"].id == 99001  # level 3, whatever the event
    assert all(r.origin == "stock" for r in ended.values())


def test_flatten_as_the_json_decoder():
    assert flatten({"a": {"b": 1, "c": True, "d": None, "e": [1, "x"], "f": [{"g": 1}], "t": 1709251200000,
                          "s": 7.5}}) == {"a.b": "1", "a.c": "true", "a.d": "null", "a.e": '[1, "x"]',
                                          "a.f": '[{\n\t"g":\t1\n}]', "a.t": "1709251200000.000000",
                                          "a.s": "7.500000"}
    # a top-level `status` or `action` is a static field of the decoder: <field name="status"> never sees it
    decoded = decode({"status": "Failure", "action": "Denied", "api": {"status": "x"}})
    assert dict(decoded) == {"api.status": "x"} and decoded.static == {"status": "Failure", "action": "Denied"}
    assert len(flatten({f"k{i}": i for i in range(300)})) == 256  # analysisd.decoder_order_size
    assert flatten({"A": {"B": "v"}}) == {"a.b": "v"} and decode({"A": {"B": "v"}}).get("a.B") == "v"
    text = cjson_print([{"cve": {"cvss": [{"base_score": 9.8}, {"base_score": 10}]}}])
    assert json.loads(text) == [{"cve": {"cvss": [{"base_score": 9.8}, {"base_score": 10}]}}]
    assert '"base_score":\t9.8' in text and '"base_score":\t10\n' in text  # what rule 111856 relies on


# --- the evaluator's analysisd semantics, on small rule sets

def _tiny(tmp_path: Path, xml: str) -> RuleSet:
    path = tmp_path / "r.xml"
    path.write_text(f'<group name="t,">{xml}</group>')
    return RuleSet.load([path], stock_rules(STOCK_RULES))


def _r(rid: int, level: int, body: str, attrs: str = "") -> str:
    return f'<rule id="{rid}" level="{level}"{attrs}>{body}<description>r{rid}</description></rule>'


def test_sibling_order_level_0_first_then_by_level_ties_in_load_order(tmp_path):
    cond = '<if_sid>99000</if_sid><field name="class_uid" type="pcre2">.</field>'
    rs = _tiny(tmp_path, _r(111001, 3, cond) + _r(111002, 5, cond) + _r(111003, 0, cond) + _r(111004, 5, cond))
    assert [c.id for c in rs.by_id[99000].children] == [111003, 111002, 111004, 99001, 99002, 99003, 111001]
    event = {"class_uid": 1, "activity_id": 1, "category_uid": 1}
    assert rs.match(event).id == 111003 and rs.match(event).level == 0  # the level-0 sibling wins: no alert


def test_overwrite_keeps_the_place_and_the_parent(tmp_path):
    rs = _tiny(tmp_path, _r(111001, 3, '<if_sid>99000</if_sid>')
               + _r(99002, 9, '<if_sid>99001</if_sid><field name="x" type="pcre2">^y$</field>',
                    ' overwrite="yes"'))
    rule = rs.by_id[99002]
    assert rule.level == 9 and rule.origin == "ours" and [p.id for p in rule.parents] == [99000]
    assert rs.warnings == ["rule 99002: overwrite cannot change if_sid (kept [99000])"]
    # its place among the children of 99000 is kept (not re-sorted to the front for level 9)
    assert [c.id for c in rs.by_id[99000].children] == [99001, 99002, 99003, 111001]
    event = {"class_uid": 1, "activity_id": 1, "category_uid": 1, "x": "y", "metadata": {"product": {"name": "z"}}}
    assert rs.match(event).id == 99002
    dup = _tiny(tmp_path, _r(99001, 12, '<if_sid>99000</if_sid>'))
    assert dup.by_id[99001].level == 3 and dup.warnings == ["rule 99001: duplicated id, skipped"]


def test_frequency_counts_n_events_within_the_timeframe(tmp_path):
    rs = _tiny(tmp_path, _r(111001, 5, '<if_sid>99000</if_sid><field name="k" type="pcre2">^f$</field>')
               + _r(111002, 10, '<if_matched_sid>111001</if_matched_sid><same_field>u</same_field>',
                    ' frequency="4" timeframe="60"'))
    ev = {"activity_id": 1, "category_uid": 1, "k": "f", "u": "a"}
    assert [rs.process(ev, t).rule.id for t in (0, 10, 20, 30)] == [111001, 111001, 111001, 111002]
    # the events that fired are used up: the count starts again after them
    assert [rs.process(ev, t).rule.id for t in (31, 32, 33)] == [111001, 111001, 111001]
    assert rs.process(ev, 34).rule.id == 111002
    rs.reset()  # spread out: 25 s apart, the 4th is 75 s after the 1st
    assert [rs.process(ev, t).rule.id for t in (0, 25, 50, 75)] == [111001] * 4
    rs.reset()  # same_field: another value does not count
    other = dict(ev, u="b")
    assert [rs.process(e, t).rule.id for t, e in enumerate([ev, other, ev, other, ev])] == [111001] * 5
    assert rs.process(ev, 6).rule.id == 111002
    rs.reset()  # a missing same_field never counts
    bare = {k: v for k, v in ev.items() if k != "u"}
    assert [rs.process(bare, t).rule.id for t in range(5)] == [111001] * 5


def test_different_field_counts_events_whose_value_differs_from_the_current_one(tmp_path):
    rs = _tiny(tmp_path, _r(111001, 5, '<if_sid>99000</if_sid><field name="k" type="pcre2">^f$</field>')
               + _r(111002, 10, '<if_matched_sid>111001</if_matched_sid><same_field>ip</same_field>'
                                '<different_field>u</different_field>', ' frequency="3" timeframe="60"'))
    base = {"activity_id": 1, "category_uid": 1, "k": "f", "ip": "1.2.3.4"}
    same_user = [dict(base, u="a")] * 3
    assert [rs.process(e, t).rule.id for t, e in enumerate(same_user)] == [111001] * 3
    rs.reset()
    users = [dict(base, u=u) for u in "abc"]
    assert [rs.process(e, t).rule.id for t, e in enumerate(users)] == [111001, 111001, 111002]


# --- the team's real samples, both OCSF lines

SAMPLE_EXPECT = {  # file name fragment -> rule that must fire (both OCSF lines where the sample exists)
    "ConsoleLogin-mfa-failure": 111112,   # failed console login
    "ConsoleLogin-mfa.": 111101,          # console login with MFA
    "_ConsoleLogin.": 111117,             # 1.0: `mfa` false -> login without MFA (1.1 below)
    "AttachRolePolicy": 111111, "AttachUserPolicy": 111111,   # IAM policy changes
    "CreateRole": 111113, "CreateServiceRole": 111113, "CreateUser": 111113, "DeleteRole": 111113,
    "AddroletoInstanceProfile": 111113,   # IAM account changes
    "UpdateTrail": 111110,                # audit logging changed
    "GetVpcLinks": 111118,                # access denied
    "UnknownAPI": 111119,                 # failed call
    "DescribeDirectConnectGateways": 111100, "ListCloudFrontOriginAccessIdentities": 111100,  # read-only: level 3
    "CreateLoadBalancer": 111103, "DeleteLoadBalancer": 111103,  # writes
    "AssumeRole.": 111102, "AssumeRoleWithSAML": 111102, "AssumeRoleWithWebIdentity": 111102, "CheckMfa": 111102,
    "SH_FINDINGS_example0": 111400, "SH_FINDINGS_example1": 111400, "SH_FINDINGS_example2": 111403,
    "SH_FINDINGS_example3": 111405,       # findings by severity
    "ROUTE53_example0": 111300, "ROUTE53_example2": 111300,   # DNS queries: level 3
    "ROUTE53_example1": 111301, "ROUTE53_example3": 111301,   # blocked by DNS Firewall
    "VPC_FLOW_example0": 111201, "vpc_flow-input0": 111201,  # rejected flows
    "VPC_FLOW_example1": 111200, "vpc_flow-input1": 111200,  # accepted flows: level 3
}


def _sample_source(path: Path) -> str:
    return next(p for p in sorted(GROUP_OF, key=len, reverse=True) if path.name.startswith(p))


@pytest.mark.skipif(not SAMPLES, reason=SKIP_NO_SHARED)
def test_every_sample_of_both_ocsf_lines_alerts_on_our_rules(rules):
    versions = Counter()
    ended = Counter()
    named = 0
    for path in SAMPLES:
        events = _convert(path.read_bytes())
        assert events, path
        for event in events:
            versions[event["metadata"]["version"]] += 1
            rule = rules.match(event)
            _assert_alerts_in_our_tree(rules, rule, path.name, GROUP_OF[_sample_source(path)])
            ended[rule.origin] += 1
            expected = [rid for frag, rid in SAMPLE_EXPECT.items() if frag in path.name]
            if path.parent.name.endswith("1.1.0") and "_ConsoleLogin." in path.name:
                expected = [111114]   # 1.1.0: `is_mfa` false -> login without MFA
            if expected:
                named += 1
                assert rule.id == expected[0], f"{path.name}: rule {rule.id} fired, expected {expected[0]}"
    assert set(versions) == {"1.0.0-rc.2", "1.1.0"}
    assert named >= 50
    total = sum(ended.values())
    assert ended["ours"] >= 0.9 * total, ended  # the issue's bar; the design reaches all of them
    assert ended["stock"] == 0, ended


# --- generated rows: every source and notable case, both OCSF lines (no ../shared needed)

CASE_EXPECT = {
    "cloudtrail/root-console-login": 111120, "cloudtrail/root-console-login-identity-layout": 111121,
    "cloudtrail/root-api-call": 111115, "cloudtrail/root-api-call-identity-layout": 111116,
    "cloudtrail/console-login-failed": 111112,
    "cloudtrail/console-login-no-mfa": (111117, 111114),  # (1.0.0-rc.2 `mfa`, 1.1.0 `is_mfa`)
    "cloudtrail/console-login-mfa": 111101, "cloudtrail/put-user-policy": 111111,
    "cloudtrail/create-policy-version": 111111, "cloudtrail/stop-logging": 111110, "cloudtrail/create-user": 111113,
    "cloudtrail/access-denied": 111118, "cloudtrail/failed-write": 111119, "cloudtrail/write": 111103,
    "cloudtrail/read": 111100, "cloudtrail/assume-role": 111102,
    "lambda/invoke": 111600, "lambda/invoke-failed": 111601,
    "vpcflow/accepted": 111200, "vpcflow/rejected": 111201,
    "route53/query": 111300, "route53/blocked": 111301, "route53/alert": 111302,
    "securityhub/informational": 111400, "securityhub/low": 111402, "securityhub/medium": 111403,
    "securityhub/high": 111404, "securityhub/critical": 111405, "securityhub/fatal": 111406,
    "securityhub/guardduty-high": 111404,
    "eks/get-pods": 111500, "eks/anonymous": 111502, "eks/exec": 111503, "eks/rbac-change": 111504,
    "eks/forbidden": 111501,
    "waf/allowed": 111700, "waf/blocked": 111701,
}


@pytest.mark.parametrize("version", [ocsf_sources.V10, ocsf_sources.V11])
def test_generated_cases_of_every_source(rules, version):
    cases = ocsf_sources.all_cases(version)
    seen_sources = set()
    for source, name, row in cases:
        [event] = _convert(ocsf_sources.to_parquet([row]))
        assert event["metadata"]["version"] == version
        rule = rules.match(event)
        _assert_alerts_in_our_tree(rules, rule, name, GROUP_OF[source])
        expected = CASE_EXPECT[name]
        if isinstance(expected, tuple):
            expected = expected[0] if version == ocsf_sources.V10 else expected[1]
        assert rule.id == expected, f"{version} {name}: rule {rule.id} ({rule.description}) fired, expected {expected}"
        seen_sources.add(source)
    expected_sources = set(ocsf_sources.SOURCES) - ({"EKS_AUDIT", "WAF"} if version == ocsf_sources.V10 else set())
    assert seen_sources == expected_sources
    assert all(name in CASE_EXPECT for _, name, _ in cases)


def _expected_for_generated(row: dict, version: str) -> int:
    """What the rule table in the README says for a lab.ocsf CloudTrail row."""
    op = row["api"]["operation"]
    service = row["api"]["service"]["name"]
    failed = row["status"] == "Failure"
    error = (row["api"].get("response") or {}).get("error") or ""
    mfa = row.get("is_mfa" if version == "1.1.0" else "mfa")
    if service == "cloudtrail.amazonaws.com" and op in ("UpdateTrail", "StopLogging", "DeleteTrail"):
        return 111110
    if service == "iam.amazonaws.com" and op in ("AttachRolePolicy", "PutUserPolicy", "CreatePolicyVersion"):
        return 111111
    if op == "ConsoleLogin" and failed:
        return 111112
    if row["class_uid"] == 3001:
        return 111113
    if op == "ConsoleLogin" and row["status"] == "Success" and mfa is False:
        return 111117 if version == "1.0.0-rc.2" else 111114
    if "AccessDenied" in error:
        return 111118
    if failed:
        return 111119
    if op == "ConsoleLogin" and row["status"] == "Success":
        return 111101
    if row["class_uid"] == 3002:
        return 111102
    if row["activity_id"] != 2:
        return 111103
    return 111100


@pytest.mark.parametrize("version", ["1.0.0-rc.2", "1.1.0"])
def test_generated_cloudtrail_rows(rules, version):
    buf = io.BytesIO()
    write_ocsf_parquet(buf, 1500, version=version, seed=7)
    fired = Counter()
    for event in _convert(buf.getvalue()):
        rule = rules.match(event)
        _assert_alerts_in_our_tree(rules, rule, str(event["api"]), "asl_cloudtrail")
        assert rule.id == _expected_for_generated(event, version), (event["api"], event.get("status"), rule.id)
        fired[rule.id] += 1
    # the generated mix reaches failed logins, policy changes, trail changes, denials, failures, reads and writes
    assert {111110, 111111, 111112, 111118, 111119, 111102, 111103, 111100} <= set(fired)


# --- other products (Security Lake custom sources), OCSF 0.x to 1.3

@pytest.mark.parametrize("version", custom_sources.VERSIONS)
def test_other_products_by_ocsf_class(rules, version):
    cases = list(custom_sources.cases(version))
    assert len(cases) >= 15
    for name, event, expected in cases:
        rule = rules.match(event)
        _assert_alerts_in_our_tree(rules, rule, f"{version} {name}", "asl_custom")
        assert rule.id == expected, f"{version} {name}: rule {rule.id} ({rule.description}), expected {expected}"


# --- correlation: sequences of events with their arrival times

def _feed(rules: RuleSet, events: list[dict], times: list[float]) -> list[int]:
    rules.reset()
    try:
        return [rules.process(e, t).rule.id for e, t in zip(events, times)]
    finally:
        rules.reset()


def _every(seconds: float, n: int) -> list[float]:
    return [i * seconds for i in range(n)]


@pytest.mark.parametrize("version", [ocsf_sources.V10, ocsf_sources.V11])
def test_console_brute_force(rules, version):
    events = sequences.ct_failed_logins(version, 5)
    assert _feed(rules, events, _every(30, 5)) == [111112] * 4 + [111130]
    assert _feed(rules, events[:4], _every(30, 4)) == [111112] * 4            # 4 failures are not enough
    assert _feed(rules, events, _every(80, 5)) == [111112] * 5                # 5 over 320 s: beyond 300 s
    mixed = [sequences.ct_failed_logins(version, 1, user=u)[0] for u in "ababa"]
    assert _feed(rules, mixed, _every(10, 5)) == [111112] * 5                 # not the same user


def test_console_password_spray(rules):
    events = sequences.ct_spray(ocsf_sources.V11, 6)
    assert _feed(rules, events, _every(60, 6)) == [111112] * 5 + [111131]
    assert _feed(rules, events, _every(150, 6)) == [111112] * 6               # 6 over 750 s: beyond 600 s
    other_ips = [sequences.ct_spray(ocsf_sources.V11, 1, ip=f"203.0.113.{i}")[0] for i in range(6)]
    for i, e in enumerate(other_ips):
        e["actor"]["user"]["name"] = f"user{i}"
    assert _feed(rules, other_ips, _every(10, 6)) == [111112] * 6             # not from one source


@pytest.mark.parametrize("version", [ocsf_sources.V10, ocsf_sources.V11])
def test_console_login_without_mfa_after_failures(rules, version):
    no_mfa = 111117 if version == ocsf_sources.V10 else 111114
    events = sequences.ct_no_mfa_after_failures(version, 2)
    assert _feed(rules, events, [0, 60, 120]) == [111112, 111112, 111132]
    assert _feed(rules, events[1:], [0, 60]) == [111112, no_mfa]                    # one failure only
    assert _feed(rules, events, [0, 500, 1200]) == [111112, 111112, no_mfa]         # failures too long before
    assert _feed(rules, sequences.ct_no_mfa_after_failures(version, 0), [0]) == [no_mfa]


@pytest.mark.parametrize("version", [ocsf_sources.V10, ocsf_sources.V11])
def test_access_denied_burst(rules, version):
    events = sequences.ct_access_denied(version, 10)
    assert _feed(rules, events, _every(20, 10)) == [111118] * 9 + [111133]
    assert _feed(rules, events, _every(40, 10)) == [111118] * 10              # 10 over 360 s: beyond 300 s
    others = [sequences.ct_access_denied(version, 1, user=f"u{i}")[0] for i in range(10)]
    if version == ocsf_sources.V11:  # 1.1 identifies the principal by its ARN, 1.0 by its principal id
        for i, e in enumerate(others):
            e["actor"]["user"]["uid"] = f"arn:aws:iam::123456789012:user/u{i}"
    else:
        for i, e in enumerate(others):
            e["actor"]["user"]["uid"] = f"AIDAEXAMPLE{i}"
    assert _feed(rules, others, _every(5, 10)) == [111118] * 10              # not one principal


@pytest.mark.parametrize("version", ["0.26.0", "1.1.0", "1.3.0"])
def test_custom_source_brute_force_and_spray(rules, version):
    events = sequences.custom_failed_logins(version, 5)
    assert _feed(rules, events, _every(60, 5)) == [111810] * 4 + [111812]
    assert _feed(rules, events, _every(90, 5)) == [111810] * 5                # 5 over 360 s: beyond 300 s
    spray = sequences.custom_spray(version, 6)
    assert _feed(rules, spray, _every(100, 6)) == [111810] * 5 + [111813]
    assert _feed(rules, spray, _every(130, 6)) == [111810] * 6                # 6 over 650 s: beyond 600 s


# --- the operator's rule tests (etc/rules/tests/*.ini), through the evaluator

def _ini_tests() -> list[tuple[str, str, str, list[str], bool, int, int, str]]:
    """(file, section, log name, event lines, pass?, rule, alert, decoder), as runtests.py reads them."""
    out = []
    for path in INI_FILES:
        cp = configparser.RawConfigParser(strict=True)  # runtests.py: RawConfigParser; our files repeat no key
        cp.read(path)
        for section in cp.sections():
            rid, level, decoder = cp.getint(section, "rule"), cp.getint(section, "alert"), cp.get(section, "decoder")
            for name, value in cp.items(section):
                if name.startswith("log "):
                    out.append((path.name, section, name, value.strip().splitlines(), not name.endswith("fail"),
                                rid, level, decoder))
    return out


def test_ini_rule_tests_pass_and_cover_every_rule(rules):
    tests = _ini_tests()
    assert {p.name for p in INI_FILES} >= {"amazon_security_lake.ini", "custom_sources.ini", "correlation.ini"}
    assert len(tests) >= 100
    covered = Counter()
    for file, section, name, lines, should_pass, rid, level, decoder in tests:
        assert decoder == "json"
        rules.reset()  # one wazuh-logtest session per log: the events of one log share it
        alert = None
        for t, text in enumerate(lines):
            assert text.startswith('{"'), f"{file} [{section}]: the JSON decoder's prematch is ^{{\\s*\""
            alert = rules.process(json.loads(text), float(t))
        rules.reset()
        got = (alert.rule.id, alert.level) if alert else None
        assert (got == (rid, level)) == should_pass, f"{file} [{section}] {name}: got {got}, expected {(rid, level)}"
        if should_pass:
            covered[rid] += 1
    ours = {r.id for r in rules.rules}
    assert ours - {111000} <= set(covered), f"rules no .ini test fires: {sorted(ours - set(covered) - {111000})}"
    assert set(covered) <= ours
    # each rule's level in the .ini is the level in the rule file
    assert all(rules.by_id[rid].level == level for _, _, _, _, ok, rid, level, _ in tests if ok)


def test_every_rule_of_ours_ends_some_test_event(rules):
    """Every rule but the level-0 111000 (which never ends an event: 111800 takes what no source takes) is the
    final rule of at least one event of the .ini tests, which the previous test runs."""
    final = set()
    for _, _, _, lines, ok, _, _, _ in _ini_tests():
        rules.reset()
        for t, text in enumerate(lines):
            alert = rules.process(json.loads(text), float(t))
        final.add(alert.rule.id)
    rules.reset()
    never = sorted({r.id for r in rules.rules} - final - {111000})
    assert never == [], f"rules that no test event ends on: {never}"

"""The Wazuh rules in etc/rules fire for Security Lake events of both OCSF lines, as documented.

Evaluated with tests/wazuh_rules.py (the rule features our file uses, with analysisd's order of evaluation)
on events converted by the wodle itself: the team's real samples when ../shared is there, and always the
lab's generated rows (every source and notable case, both schema lines) so the test means something in a
user's clone too.
"""
from __future__ import annotations

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
from .wazuh_rules import RuleSet, flatten, parse_rules

RULES_DIR = Path(__file__).resolve().parents[1] / "etc" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.xml"))
ID_RANGE = range(111000, 112000)
SOURCE_GROUPS = {"asl_cloudtrail", "asl_vpcflow", "asl_route53", "asl_securityhub", "asl_eks", "asl_lambda",
                 "asl_waf"}
# Security Lake source (sample file prefix or lab source) -> the child group its events must land in
GROUP_OF = {"CLOUD_TRAIL": "asl_cloudtrail", "CLOUD_TRAIL_MGMT": "asl_cloudtrail", "VPC_FLOW": "asl_vpcflow",
            "ROUTE53": "asl_route53", "SH_FINDINGS": "asl_securityhub", "EKS_AUDIT": "asl_eks",
            "LAMBDA_EXECUTION": "asl_lambda", "WAF": "asl_waf"}

FIRED: Counter = Counter()  # every rule that fired in this module, for the reachability check


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet.load(RULE_FILES)


def _fire(rules: RuleSet, event: dict):
    rule = rules.match(event)
    if rule is not None:
        FIRED[rule.id] += 1
    return rule


def _convert(parquet: bytes) -> list[dict]:
    """Through the wodle's own decoder and converter, as the events reach the engine."""
    return [json.loads(e) for batch in iter_parquet_events(io.BytesIO(parquet)) for e in batch]


# --- the file itself

def test_rule_files_are_well_formed_and_use_only_evaluated_features():
    assert RULE_FILES, "no rule file in etc/rules"
    for path in RULE_FILES:
        etree.fromstring(b"<root>" + path.read_bytes() + b"</root>")  # raises on malformed XML
    assert parse_rules(RULE_FILES)  # raises Unsupported for any feature the evaluator does not implement


def test_ids_unique_in_our_range_and_every_if_sid_exists():
    rules = parse_rules(RULE_FILES)
    ids = [r.id for r in rules]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert all(i in ID_RANGE for i in ids), [i for i in ids if i not in ID_RANGE]
    known = set(ids)
    assert all(parent in known for r in rules for parent in r.if_sid)
    levels = {r.id: r.level for r in rules}
    assert all(0 <= lvl <= 16 for lvl in levels.values())


def test_groups_parent_and_one_source_group_each():
    rules = parse_rules(RULE_FILES)
    for r in rules:
        assert "amazon_security_lake" in r.groups, r.id
        sources = SOURCE_GROUPS & set(r.groups)
        if r.id == 111000:
            assert not sources
        else:
            assert len(sources) == 1, (r.id, r.groups)
    by_id = {r.id: r for r in rules}
    for r in rules:  # a child stays in its parent's source group
        for parent in r.if_sid:
            if parent != 111000:
                assert SOURCE_GROUPS & set(r.groups) == SOURCE_GROUPS & set(by_id[parent].groups), r.id


def test_non_security_lake_events_do_not_match(rules):
    wazuh_aws = {"integration": "aws", "aws": {"source": "cloudtrail", "eventName": "ConsoleLogin"}}
    assert rules.match(wazuh_aws) is None
    assert rules.match({"metadata": {"version": "1.1.0", "product": {"name": "CloudTrail"}}}) is None  # no class_uid
    assert rules.match({"class_uid": 3002, "metadata": {"product": {"name": "CloudTrail"}}}) is None  # no version


def test_flatten_as_the_json_decoder():
    assert flatten({"a": {"b": 1, "c": True, "d": None, "e": [1, "x"], "f": [{"g": 1}]}}) == \
        {"a.b": "1", "a.c": "true", "a.e": "1,x"}


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
    "DescribeDirectConnectGateways": 111104, "ListCloudFrontOriginAccessIdentities": 111104,  # read-only
    "CreateLoadBalancer": 111103, "DeleteLoadBalancer": 111103,  # writes
    "AssumeRole.": 111102, "AssumeRoleWithSAML": 111102, "AssumeRoleWithWebIdentity": 111102, "CheckMfa": 111102,
    "SH_FINDINGS_example0": 111401, "SH_FINDINGS_example1": 111401, "SH_FINDINGS_example2": 111403,
    "SH_FINDINGS_example3": 111405,       # findings by severity
    "ROUTE53_example1": 111301,           # blocked by DNS Firewall
    "VPC_FLOW_example0": 111201, "vpc_flow-input0": 111201,  # rejected flows
}


def _sample_source(path: Path) -> str:
    return next(p for p in sorted(GROUP_OF, key=len, reverse=True) if path.name.startswith(p))


@pytest.mark.skipif(not SAMPLES, reason=SKIP_NO_SHARED)
def test_every_sample_of_both_ocsf_lines_fires_a_rule_of_its_source(rules):
    versions = Counter()
    named = 0
    for path in SAMPLES:
        events = _convert(path.read_bytes())
        assert events, path
        for event in events:
            versions[event["metadata"]["version"]] += 1
            rule = _fire(rules, event)
            assert rule is not None, f"{path.name}: no rule fired"
            group = GROUP_OF[_sample_source(path)]
            assert group in rule.groups, f"{path.name}: rule {rule.id} {rule.groups}, expected {group}"
            assert rules.chain(rule)[0] == 111000
            expected = [rid for frag, rid in SAMPLE_EXPECT.items() if frag in path.name]
            if path.parent.name.endswith("1.1.0") and "_ConsoleLogin." in path.name:
                expected = [111114]   # 1.1.0: `is_mfa` false -> login without MFA
            if expected:
                named += 1
                assert rule.id == expected[0], f"{path.name}: rule {rule.id} fired, expected {expected[0]}"
    assert set(versions) == {"1.0.0-rc.2", "1.1.0"}
    assert named >= 40


# --- generated rows: every source and notable case, both OCSF lines (no ../shared needed)

CASE_EXPECT = {
    "cloudtrail/root-console-login": 111120, "cloudtrail/root-console-login-identity-layout": 111121,
    "cloudtrail/root-api-call": 111115, "cloudtrail/root-api-call-identity-layout": 111116,
    "cloudtrail/console-login-failed": 111112,
    "cloudtrail/console-login-no-mfa": (111117, 111114),  # (1.0.0-rc.2 `mfa`, 1.1.0 `is_mfa`)
    "cloudtrail/console-login-mfa": 111101, "cloudtrail/put-user-policy": 111111,
    "cloudtrail/create-policy-version": 111111, "cloudtrail/stop-logging": 111110, "cloudtrail/create-user": 111113,
    "cloudtrail/access-denied": 111118, "cloudtrail/failed-write": 111119, "cloudtrail/write": 111103,
    "cloudtrail/read": 111104, "cloudtrail/assume-role": 111102,
    "lambda/invoke": 111600, "lambda/invoke-failed": 111601,
    "vpcflow/accepted": 111200, "vpcflow/rejected": (111201, 111201),
    "route53/query": 111300, "route53/blocked": 111301, "route53/alert": 111302,
    "securityhub/informational": 111401, "securityhub/low": 111402, "securityhub/medium": 111403,
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
        rule = _fire(rules, event)
        assert rule is not None, name
        assert GROUP_OF[source] in rule.groups, (name, rule.id, rule.groups)
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
    return 111104


@pytest.mark.parametrize("version", ["1.0.0-rc.2", "1.1.0"])
def test_generated_cloudtrail_rows(rules, version):
    buf = io.BytesIO()
    write_ocsf_parquet(buf, 1500, version=version, seed=7)
    fired = Counter()
    for event in _convert(buf.getvalue()):
        rule = _fire(rules, event)
        assert rule is not None and "asl_cloudtrail" in rule.groups
        assert rule.id == _expected_for_generated(event, version), (event["api"], event.get("status"), rule.id)
        fired[rule.id] += 1
    # the generated mix reaches failed logins, policy changes, trail changes, denials, failures, reads and writes
    assert {111110, 111111, 111112, 111118, 111119, 111102, 111103, 111104} <= set(fired)


def test_every_rule_can_fire(rules):
    """Run last in this module: each rule fired, or matched on the way to a child that fired."""
    exercised = {rid for fired in FIRED for rid in rules.chain(rules.by_id[fired])}
    never = [r.id for r in rules.rules if r.id not in exercised]
    assert never == [], f"rules that no sample or generated event reaches: {never}"

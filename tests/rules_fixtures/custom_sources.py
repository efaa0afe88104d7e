"""OCSF events of products other than AWS's (Security Lake custom sources), written as dicts for the rule tests.

Every OCSF line from 0.x to 1.3: the base attributes every class carries in each (class_uid, category_uid,
activity_id, severity_id, time, type_uid, metadata.version, metadata.product), and the class attributes the rules
read. Where the schema moved an attribute, the event of that version carries it where that version puts it: API
Activity is class 3005 before 1.1 and 6003 from 1.1; the 0.x line's cloud API class is 5001; finding titles are
`finding.title` before 1.1 and `finding_info.title` from 1.1; Detection/Compliance/Vulnerability Findings exist from
1.1 (Vulnerability from 1.0), Incident and Data Security Findings from 1.2/1.3.
"""
from __future__ import annotations

from typing import Any, Iterator

VERSIONS = ["0.26.0", "1.0.0", "1.1.0", "1.2.0", "1.3.0"]
T0 = 1_709_251_200_000

PRODUCTS = {  # a custom source per kind of product
    "idp": {"name": "Okta", "vendor_name": "Okta"},
    "edr": {"name": "Falcon", "vendor_name": "CrowdStrike"},
    "firewall": {"name": "PAN-OS", "vendor_name": "Palo Alto Networks"},
    "app": {"name": "Jira Cloud", "vendor_name": "Atlassian"},
}

CATEGORY = {1: "System Activity", 2: "Findings", 3: "Identity & Access Management", 4: "Network Activity", 5: "Discovery",
            6: "Application Activity"}
CLASS_NAME = {1007: "Process Activity", 3001: "Account Change", 3002: "Authentication", 3005: "API Activity", 6003: "API Activity",
              5001: "Cloud API", 4001: "Network Activity", 4002: "HTTP Activity", 4003: "DNS Activity",
              2001: "Security Finding", 2002: "Vulnerability Finding", 2003: "Compliance Finding",
              2004: "Detection Finding", 2005: "Incident Finding", 2006: "Data Security Finding"}


def event(version: str, kind: str, class_uid: int, activity_id: int = 1, severity_id: int = 1, **extra: Any) -> dict:
    category_uid = class_uid // 1000
    ev: dict[str, Any] = {
        "metadata": {"version": version, "product": dict(PRODUCTS[kind]), "uid": f"{kind}-{class_uid}-{activity_id}"},
        "time": T0, "class_uid": class_uid, "class_name": CLASS_NAME[class_uid], "category_uid": category_uid,
        "category_name": CATEGORY.get(category_uid, "Other"), "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id, "severity_id": severity_id,
    }
    ev.update(extra)
    return ev


def api_class(version: str) -> int:
    if version.startswith("0."):
        return 5001
    return 3005 if version == "1.0.0" else 6003


def auth(version: str, user: str, ok: bool, ip: str = "198.51.100.20") -> dict:
    return event(version, "idp", 3002, 1, user={"name": user, "type": "User"}, src_endpoint={"ip": ip},
                 status="Success" if ok else "Failure", status_id=1 if ok else 2,
                 status_detail="" if ok else "INVALID_CREDENTIALS", activity_name="Logon")


def finding(version: str, class_uid: int, severity_id: int, cvss: float | None = None) -> dict:
    title = {"title": f"finding of severity {severity_id}", "uid": f"f-{class_uid}-{severity_id}"}
    extra: dict[str, Any] = {"finding_info": title} if version >= "1.1" else {"finding": title}
    if cvss is not None:
        score = {"base_score": cvss, "version": "3.1"}
        extra["vulnerabilities"] = [{"cve": {"uid": "CVE-2024-3094", "cvss": [score] if version >= "1.1" else score}}]
    return event(version, "edr", class_uid, 1, severity_id, **extra)


def finding_classes(version: str) -> list[int]:
    if version.startswith("0."):
        return [2001]
    if version == "1.0.0":
        return [2001, 2002]
    if version == "1.1.0":
        return [2001, 2002, 2003, 2004]
    return [2001, 2002, 2003, 2004, 2005] + ([2006] if version >= "1.3" else [])


def cases(version: str) -> Iterator[tuple[str, dict, int]]:
    """(name, event, the rule the README's table says it ends on)."""
    api = api_class(version)
    yield "auth-failure", auth(version, "bob", False), 111810
    yield "auth-success", auth(version, "bob", True), 111811
    yield "account-change", event(version, "idp", 3001, 3, user={"name": "bob"}, actor={"user": {"name": "admin"}},
                                  activity_name="Password Change", status_id=1), 111815
    if version >= "1.1":  # MFA Factor Disable (activity 11) exists from OCSF 1.1
        yield "mfa-disabled", event(version, "idp", 3001, 11, user={"name": "bob"},
                                    actor={"user": {"name": "admin"}}, activity_name="MFA Factor Disable"), 111816
    yield "api-call", event(version, "app", api, 1, api={"operation": "issue.create"},
                            actor={"user": {"name": "carol"}}, status_id=1), 111820
    yield "api-call-failed", event(version, "app", api, 3, api={"operation": "project.delete"},
                                   actor={"user": {"name": "carol"}}, status_id=2, status_detail="forbidden"), 111821
    yield "network", event(version, "firewall", 4001, 6, src_endpoint={"ip": "10.0.0.5", "port": 50000},
                           dst_endpoint={"ip": "93.184.216.34", "port": 443}, disposition_id=1,
                           activity_name="Traffic"), 111825
    yield "network-blocked", event(version, "firewall", 4001, 5, src_endpoint={"ip": "203.0.113.80"},
                                   dst_endpoint={"ip": "10.0.0.5", "port": 3389}, disposition_id=2,
                                   activity_name="Refuse"), 111826
    yield "dns", event(version, "firewall", 4003, 1, query={"hostname": "example.com", "type": "A"},
                       src_endpoint={"ip": "10.0.0.5"}, disposition_id=1), 111827
    yield "dns-blocked", event(version, "firewall", 4003, 1, query={"hostname": "malware.example", "type": "A"},
                               src_endpoint={"ip": "10.0.0.5"}, disposition_id=2), 111828
    yield "http", event(version, "firewall", 4002, 3, http_request={"http_method": "GET", "url": {"path": "/"}},
                        src_endpoint={"ip": "198.51.100.3"}, disposition_id=1), 111829
    yield "http-blocked", event(version, "firewall", 4002, 3,
                                http_request={"http_method": "POST", "url": {"path": "/wp-login.php"}},
                                src_endpoint={"ip": "198.51.100.3"}, disposition_id=2), 111830
    by_severity = {1: 111850, 2: 111851, 3: 111852, 4: 111853, 5: 111854, 6: 111855}
    classes = finding_classes(version)
    for sev, rid in by_severity.items():  # every severity, on the classes in turn
        cls = classes[sev % len(classes)]
        yield f"finding-{cls}-severity-{sev}", finding(version, cls, sev), rid
    for cls in classes:  # and every finding class of this version
        yield f"finding-{cls}-high", finding(version, cls, 4), 111853
    if version >= "1.0":
        yield "vulnerability-cvss-critical", finding(version, 2002, 2, cvss=9.8), 111856
        yield "vulnerability-cvss-10", finding(version, 2002, 3, cvss=10.0), 111856
        yield "vulnerability-cvss-high", finding(version, 2002, 3, cvss=8.1), 111852
    yield "other-class", event(version, "edr", 1007, 1, activity_name="Launch"), 111800

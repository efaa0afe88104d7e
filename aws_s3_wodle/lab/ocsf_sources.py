"""One OCSF row per notable case of every Security Lake source, in the schema lines each source uses.

`lab.ocsf` makes volumes of CloudTrail-like rows; this module makes the other sources Security Lake
delivers (VPC Flow Logs, Route 53 resolver query logs, Security Hub findings, EKS audit logs, Lambda data
events, AWS WAF) and the CloudTrail cases the rules single out (root activity, a failed console login,
policy changes, audit logging stopped), so the rules in `etc/rules/` can be tested, and shown in the lab,
without the team's sample folder.

Field names follow Security Lake's mapping for each schema line: OCSF 1.0.0-rc.2 (source version 1:
CloudTrail, Lambda, Route 53, Security Hub, VPC flow) and OCSF 1.1.0 (source version 2: all, EKS audit and
WAF only there). Where the two lines differ the rows differ too: `cloud.account_uid` / `cloud.account.uid`,
`mfa` / `is_mfa`, API Activity class 3005 / 6003, Security Hub `finding` (class 2001) / `finding_info`
(classes 2002-2004), epoch times / `*_dt` timestamps.
"""
from __future__ import annotations

import io
from typing import Any, Callable, Iterator

ACCOUNT = "123456789012"
_T = 1_709_251_200_000  # 2024-03-01T00:00:00Z

V10, V11 = "1.0.0-rc.2", "1.1.0"


def _meta(version: str, product: str, feature: str | None = None, **extra: Any) -> dict:
    meta: dict[str, Any] = {"product": {"name": product, "vendor_name": "AWS", "version": "1"},
                            "version": version, "profiles": ["cloud"] if version == V10 else ["cloud", "datetime"]}
    if feature:
        meta["product"]["feature"] = {"name": feature}
    meta.update(extra)
    return meta


def _cloud(version: str) -> dict:
    account = {"account_uid": ACCOUNT} if version == V10 else {"account": {"uid": ACCOUNT}}
    return {"region": "us-east-1", "provider": "AWS", **account}


def _times(version: str, row: dict, offset: int = 0) -> dict:
    row["time"] = _T + offset
    if version == V11:
        row["time_dt"] = _T + offset  # timestamp[ms] in the Parquet, RFC 3339 once converted
    return row


def _api_class(version: str) -> tuple[int, int, str]:
    return (3005, 3, "Audit Activity") if version == V10 else (6003, 6, "Application Activity")


def _cloudtrail(version: str, operation: str, service: str, *, activity: tuple[int, str], status: str = "Success",
                user_type: str = "IAMUser", user: str = "alice", error: str | None = None,
                class_uid: int | None = None, feature: str = "Management", mfa: bool | None = None,
                identity_layout: bool = False) -> dict:
    api_uid, cat_uid, cat_name = _api_class(version)
    cls = class_uid or api_uid
    names = {3001: "Account Change", 3002: "Authentication", api_uid: "API Activity"}
    if cls in (3001, 3002):
        cat_uid, cat_name = 3, ("Audit Activity" if version == V10 else "Identity & Access Management")
    arn = f"arn:aws:iam::{ACCOUNT}:root" if user_type == "Root" else f"arn:aws:iam::{ACCOUNT}:user/{user}"
    if version == V10:
        who = {"type": user_type, "name": user, "uid": "AIDAEXAMPLE", "uuid": arn, "account_uid": ACCOUNT}
    else:
        who = {"type": user_type, "name": user, "uid_alt": "AIDAEXAMPLE", "uid": arn, "account": {"uid": ACCOUNT}}
    row: dict[str, Any] = {
        "metadata": _meta(version, "CloudTrail", feature, uid=f"ct-{operation}-{status}"),
        "cloud": _cloud(version),
        "api": {"operation": operation, "service": {"name": f"{service}.amazonaws.com"},
                "request": {"uid": "req-1"}},
        "src_endpoint": {"ip": "198.51.100.7"},
        "http_request": {"user_agent": "aws-cli/2.15"},
        "class_uid": cls, "class_name": names[cls], "category_uid": cat_uid, "category_name": cat_name,
        "activity_id": activity[0], "activity_name": activity[1], "type_uid": cls * 100 + activity[0],
        "type_name": f"{names[cls]}: {activity[1]}", "severity_id": 1, "severity": "Informational",
        "status": status,
    }
    # Security Lake's first preview put the caller under `identity`; later 1.0.0-rc.2 output and 1.1.0 use `actor`.
    row["identity" if identity_layout else "actor"] = {"user": who}
    if version == V10:
        row["status_id"] = {"Success": 1, "Failure": 2}.get(status, 0)
    if error:
        row["api"]["response"] = {"error": error, "message": f"{error} for {operation}"}
    if mfa is not None:
        row["mfa" if version == V10 else "is_mfa"] = mfa
    return _times(version, row)


def cloudtrail_cases(version: str) -> Iterator[tuple[str, dict]]:
    ct = _cloudtrail
    yield "cloudtrail/root-console-login", ct(version, "ConsoleLogin", "signin", activity=(1, "Logon"),
                                               user_type="Root", user="root", class_uid=3002, mfa=True)
    yield "cloudtrail/root-api-call", ct(version, "CreateAccessKey", "iam", activity=(1, "Create"), user_type="Root",
                                         user="root")
    yield "cloudtrail/console-login-failed", ct(version, "ConsoleLogin", "signin", activity=(1, "Logon"),
                                                status="Failure", class_uid=3002, mfa=False)
    yield "cloudtrail/console-login-no-mfa", ct(version, "ConsoleLogin", "signin", activity=(1, "Logon"),
                                                class_uid=3002, mfa=False)
    yield "cloudtrail/console-login-mfa", ct(version, "ConsoleLogin", "signin", activity=(1, "Logon"), class_uid=3002,
                                             mfa=True)
    yield "cloudtrail/put-user-policy", ct(version, "PutUserPolicy", "iam", activity=(7, "Attach Policy"),
                                           class_uid=3001)
    yield "cloudtrail/create-policy-version", ct(version, "CreatePolicyVersion", "iam", activity=(3, "Update"))
    yield "cloudtrail/stop-logging", ct(version, "StopLogging", "cloudtrail", activity=(3, "Update"))
    yield "cloudtrail/create-user", ct(version, "CreateUser", "iam", activity=(1, "Create"), class_uid=3001)
    yield "cloudtrail/access-denied", ct(version, "DescribeInstances", "ec2", activity=(2, "Read"), status="Failure",
                                         error="Client.UnauthorizedOperation")
    yield "cloudtrail/failed-write", ct(version, "RunInstances", "ec2", activity=(1, "Create"), status="Failure",
                                        error="InsufficientInstanceCapacity")
    yield "cloudtrail/write", ct(version, "RunInstances", "ec2", activity=(1, "Create"))
    yield "cloudtrail/read", ct(version, "DescribeInstances", "ec2", activity=(2, "Read"))
    yield "cloudtrail/assume-role", ct(version, "AssumeRole", "sts", activity=(1, "Logon"), class_uid=3002,
                                       status="Other")
    if version == V10:
        yield "cloudtrail/root-console-login-identity-layout", ct(version, "ConsoleLogin", "signin",
                                                                  activity=(1, "Logon"), user_type="Root",
                                                                  user="root", class_uid=3002,
                                                                  identity_layout=True)
        yield "cloudtrail/root-api-call-identity-layout", ct(version, "CreateAccessKey", "iam", activity=(1, "Create"),
                                                             user_type="Root", user="root", identity_layout=True)


def lambda_cases(version: str) -> Iterator[tuple[str, dict]]:
    ok = _cloudtrail(version, "Invoke", "lambda", activity=(99, "Other"), feature="Data")
    ok["resources"] = [{"uid": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:resize", "type": "AWS::Lambda::Function"}]
    yield "lambda/invoke", ok
    failed = _cloudtrail(version, "Invoke", "lambda", activity=(99, "Other"), feature="Data", status="Failure",
                         error="ResourceNotFoundException")
    yield "lambda/invoke-failed", failed


def _vpc(version: str, allowed: bool, dst_port: int) -> dict:
    row: dict[str, Any] = {
        "metadata": _meta(version, "Amazon VPC", "Flowlogs"),
        "cloud": {**_cloud(version), "zone": "use1-az1"},
        "src_endpoint": {"ip": "203.0.113.9", "port": 51515, "interface_uid": "eni-0a1b", "vpc_uid": "vpc-0a1b",
                         "instance_uid": "i-0a1b"},
        "dst_endpoint": {"ip": "10.0.1.20", "port": dst_port},
        "connection_info": {"protocol_num": 6, "direction": "Inbound", "direction_id": 1},
        "traffic": {"packets": 3, "bytes": 180},
        "class_uid": 4001, "class_name": "Network Activity", "category_uid": 4, "category_name": "Network Activity",
        "activity_id": 6 if allowed else 5, "activity_name": "Traffic" if allowed else "Refuse",
        "type_uid": 400106 if allowed else 400105, "severity_id": 1, "severity": "Informational",
        "disposition": "Allowed" if allowed else "Blocked", "disposition_id": 1 if allowed else 2,
        "status_code": "OK",
    }
    if version == V11:
        row["action"], row["action_id"] = ("Allowed", 1) if allowed else ("Denied", 2)
        row["start_time_dt"], row["end_time_dt"] = _T - 60_000, _T
    else:
        row["start_time"], row["end_time"] = _T - 60_000, _T
    return _times(version, row)


def vpc_cases(version: str) -> Iterator[tuple[str, dict]]:
    yield "vpcflow/accepted", _vpc(version, True, 443)
    yield "vpcflow/rejected", _vpc(version, False, 22)


def _dns(version: str, blocked: bool, disposition: str = "") -> dict:
    row: dict[str, Any] = {
        "metadata": _meta(version, "Route 53", "Resolver Query Logs"),
        "cloud": _cloud(version),
        "src_endpoint": {"ip": "10.0.1.20", "port": 40123, "vpc_uid": "vpc-0a1b"},
        "query": {"hostname": "bad.example.com." if blocked else "aws.amazon.com.", "type": "A", "class": "IN"},
        "connection_info": {"protocol_name": "UDP", "direction": "Unknown", "direction_id": 0},
        "class_uid": 4003, "class_name": "DNS Activity", "category_uid": 4, "category_name": "Network Activity",
        "activity_id": 5 if blocked else 2, "activity_name": "Refuse" if blocked else "Response",
        "type_uid": 400305 if blocked else 400302, "severity_id": 1, "severity": "Informational",
        "rcode": "Refused" if blocked else "NoError", "rcode_id": 5 if blocked else 0,
        "disposition": "Blocked" if blocked else "No Action", "disposition_id": 2 if blocked else 16,
    }
    if disposition == "Alert":  # DNS Firewall rule with action ALERT: answered, but flagged
        row["disposition"], row["disposition_id"] = "Alert", 19
        row["query"]["hostname"] = "suspicious.example.net."
    if not blocked:
        row["answers"] = [{"type": "A", "rdata": "54.239.28.85", "class": "IN"}]
    return _times(version, row)


def route53_cases(version: str) -> Iterator[tuple[str, dict]]:
    yield "route53/query", _dns(version, False)
    yield "route53/blocked", _dns(version, True)
    yield "route53/alert", _dns(version, False, "Alert")


_SEVERITIES = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Fatal"}


def _finding(version: str, severity_id: int, source: str = "Security Hub") -> dict:
    title = f"{_SEVERITIES[severity_id]} finding from {source}"
    row: dict[str, Any] = {
        "metadata": _meta(version, "Security Hub", source),
        "cloud": _cloud(version),
        "severity_id": severity_id, "severity": _SEVERITIES[severity_id],
        "category_uid": 2, "category_name": "Findings", "activity_id": 1, "activity_name": "Create",
        "resources": [{"type": "AwsEc2SecurityGroup", "uid": f"arn:aws:ec2:us-east-1:{ACCOUNT}:security-group/sg-1"}],
    }
    if version == V10:
        row.update(class_uid=2001, class_name="Security Finding", type_uid=200101, state="New", state_id=1,
                   finding={"uid": f"finding-{severity_id}", "title": title, "types": ["Software and Configuration "
                                                                                      "Checks"],
                            "created_time": _T})
    else:
        cls, name = (2004, "Detection Finding") if source == "GuardDuty" else (2003, "Compliance Finding")
        row.update(class_uid=cls, class_name=name, type_uid=cls * 100 + 1, status="New", status_id=1,
                   finding_info={"uid": f"finding-{severity_id}", "title": title, "types": ["Software and "
                                                                                           "Configuration Checks"],
                                 "created_time_dt": _T})
        if cls == 2003:
            row["compliance"] = {"status": "Failed", "control": "EC2.19"}
    return _times(version, row)


def securityhub_cases(version: str) -> Iterator[tuple[str, dict]]:
    for sev in range(1, 7):
        yield f"securityhub/{_SEVERITIES[sev].lower()}", _finding(version, sev)
    yield "securityhub/guardduty-high", _finding(version, 4, "GuardDuty")


def _eks(verb: str, path: str, user: str = "kubernetes-admin", code: int = 200) -> dict:
    version = V11
    api_uid, cat_uid, cat_name = _api_class(version)
    row = {
        "metadata": _meta(version, "Amazon EKS", "Elastic Kubernetes Service"),
        "cloud": _cloud(version),
        "api": {"operation": verb, "request": {"uid": "0b7c-audit"}, "response": {"code": code}},
        "actor": {"user": {"name": user, "uid": f"aws-iam-authenticator:{ACCOUNT}:AROAEXAMPLE"}},
        "http_request": {"url": {"path": path}, "user_agent": "kubectl/v1.29.0"},
        "src_endpoint": {"ip": "192.0.2.44"},
        "class_uid": api_uid, "class_name": "API Activity", "category_uid": cat_uid, "category_name": cat_name,
        "activity_id": {"get": 2, "list": 2, "create": 1, "delete": 4}.get(verb, 3),
        "activity_name": verb.capitalize(), "severity_id": 1, "severity": "Informational",
        "status": "Success" if code < 400 else "Failure", "status_code": str(code),
    }
    row["type_uid"] = api_uid * 100 + row["activity_id"]
    return _times(version, row)


def eks_cases(version: str) -> Iterator[tuple[str, dict]]:
    if version != V11:
        return
    yield "eks/get-pods", _eks("get", "/api/v1/namespaces/default/pods")
    yield "eks/anonymous", _eks("get", "/version", user="system:anonymous")
    yield "eks/exec", _eks("create", "/api/v1/namespaces/default/pods/web-0/exec")
    yield "eks/rbac-change", _eks("create", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")
    yield "eks/forbidden", _eks("list", "/api/v1/secrets", user="dev", code=403)


def _waf(blocked: bool) -> dict:
    version = V11
    row = {
        "metadata": _meta(version, "AWS WAF"),
        "cloud": _cloud(version),
        "http_request": {"http_method": "GET", "url": {"path": "/login.php" if blocked else "/", "hostname":
                                                       "shop.example.com"}, "user_agent": "curl/8.5.0"},
        "src_endpoint": {"ip": "203.0.113.66"},
        "firewall_rule": {"uid": "AWS-AWSManagedRulesSQLiRuleSet" if blocked else "Default_Action",
                          "type": "MANAGED_RULE_GROUP" if blocked else "REGULAR"},
        "class_uid": 4002, "class_name": "HTTP Activity", "category_uid": 4, "category_name": "Network Activity",
        "activity_id": 3, "activity_name": "Get", "type_uid": 400203, "severity_id": 1, "severity": "Informational",
        "action": "Denied" if blocked else "Allowed", "action_id": 2 if blocked else 1,
        "disposition": "Blocked" if blocked else "Allowed", "disposition_id": 2 if blocked else 1,
    }
    return _times(version, row)


def waf_cases(version: str) -> Iterator[tuple[str, dict]]:
    if version != V11:
        return
    yield "waf/allowed", _waf(False)
    yield "waf/blocked", _waf(True)


SOURCES: dict[str, Callable[[str], Iterator[tuple[str, dict]]]] = {
    "CLOUD_TRAIL_MGMT": cloudtrail_cases, "LAMBDA_EXECUTION": lambda_cases, "VPC_FLOW": vpc_cases,
    "ROUTE53": route53_cases, "SH_FINDINGS": securityhub_cases, "EKS_AUDIT": eks_cases, "WAF": waf_cases,
}


def all_cases(version: str) -> list[tuple[str, str, dict]]:
    """(Security Lake source, case name, row) for every case of this schema line."""
    return [(source, name, row) for source, make in SOURCES.items() for name, row in make(version)]


def to_parquet(rows: list[dict]) -> bytes:
    """Rows as a Parquet object (types inferred, times as timestamp[ms, UTC] for the `*_dt` columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.Table.from_pylist(rows)
    table = _dt_columns(table)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="gzip")
    return buf.getvalue()


def _dt_columns(table: Any) -> Any:
    """Cast every `*_dt` int64 (also inside structs) to timestamp[ms, tz=UTC], as Security Lake writes them."""
    import pyarrow as pa

    def cast_type(name: str, t: Any) -> Any:
        if name.endswith("_dt") and pa.types.is_integer(t):
            return pa.timestamp("ms", tz="UTC")
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, cast_type(f.name, f.type)) for f in t])
        if pa.types.is_list(t):
            return pa.list_(cast_type("", t.value_type))
        return t

    schema = pa.schema([pa.field(f.name, cast_type(f.name, f.type)) for f in table.schema])
    return table.cast(schema)

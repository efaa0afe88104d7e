"""Event sequences for the correlation (frequency) rules, for tests/test_rules.py and etc/rules/tests/correlation.ini.

Each builder returns the events in the order they arrive; the test gives them their arrival times (analysisd counts
frequency on the manager's clock, not on the event's own `time`).
"""
from __future__ import annotations

from aws_s3_wodle.lab import ocsf_sources

from . import custom_sources as cs

V10, V11 = ocsf_sources.V10, ocsf_sources.V11


def _login(version: str, user: str, ok: bool, ip: str = "198.51.100.7", mfa: bool = False) -> dict:
    row = ocsf_sources._cloudtrail(version, "ConsoleLogin", "signin", activity=(1, "Logon"), user=user,
                                   status="Success" if ok else "Failure", class_uid=3002, mfa=mfa)
    row["src_endpoint"] = {"ip": ip}
    return row


def ct_failed_logins(version: str, n: int, user: str = "alice", ip: str = "198.51.100.7") -> list[dict]:
    return [_login(version, user, False, ip) for _ in range(n)]


def ct_spray(version: str, n: int, ip: str = "203.0.113.50") -> list[dict]:
    return [_login(version, f"user{i}", False, ip) for i in range(n)]


def ct_no_mfa_after_failures(version: str, failures: int, user: str = "alice") -> list[dict]:
    return ct_failed_logins(version, failures, user) + [_login(version, user, True, mfa=False)]


def ct_access_denied(version: str, n: int, user: str = "mallory") -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(ocsf_sources._cloudtrail(version, f"Describe{['Instances', 'Volumes', 'Snapshots'][i % 3]}",
                                             "ec2", activity=(2, "Read"), status="Failure", user=user,
                                             error="Client.UnauthorizedOperation"))
    return rows


def custom_failed_logins(version: str, n: int, user: str = "bob", ip: str = "198.51.100.20") -> list[dict]:
    return [cs.auth(version, user, False, ip) for _ in range(n)]


def custom_spray(version: str, n: int, ip: str = "203.0.113.60") -> list[dict]:
    return [cs.auth(version, f"user{i}", False, ip) for i in range(n)]


def ini_sequences() -> list[tuple[str, list[dict], int]]:
    """(name, events, the rule the last event fires) for the .ini file: one wazuh-logtest session each."""
    return [
        (f"cloudtrail/brute-force (OCSF {V10})", ct_failed_logins(V10, 5), 111130),
        (f"cloudtrail/brute-force (OCSF {V11})", ct_failed_logins(V11, 5), 111130),
        (f"cloudtrail/password-spray (OCSF {V11})", ct_spray(V11, 6), 111131),
        (f"cloudtrail/no-mfa-login-after-failures (OCSF {V10})", ct_no_mfa_after_failures(V10, 2), 111132),
        (f"cloudtrail/no-mfa-login-after-failures (OCSF {V11})", ct_no_mfa_after_failures(V11, 2), 111132),
        (f"cloudtrail/access-denied-burst (OCSF {V10})", ct_access_denied(V10, 10), 111133),
        (f"cloudtrail/access-denied-burst (OCSF {V11})", ct_access_denied(V11, 10), 111133),
        ("custom/brute-force (OCSF 1.1.0)", custom_failed_logins("1.1.0", 5), 111812),
        ("custom/brute-force (OCSF 0.26.0)", custom_failed_logins("0.26.0", 5), 111812),
        ("custom/password-spray (OCSF 1.3.0)", custom_spray("1.3.0", 6), 111813),
    ]

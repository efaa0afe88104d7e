"""Interface facts of the stock Wazuh rules our rules depend on: a test fixture written by us.

Not a copy of Wazuh's rule files: for each stock rule that an OCSF event can reach before or around ours, only its
id, level, parent, groups and the conditions on the decoded event, restated as Python regular expressions. Source:
the Wazuh repository, tag v4.14.7, `ruleset/rules/` (file named on each entry). Load order: analysisd reads
`ruleset/rules/*.xml` sorted by file name, then `etc/rules/`; the order of this list is that load order.

How the stock conditions are restated: a stock <field> without `type` is an OS_Regex (src/os_regex), compiled without
OS_CASE_SENSITIVE, so it is searched case-insensitively and unanchored: `(?i)` below; OS_Regex `\\.` is "any
character", so `\\.+` is `.+`. A missing field never matches, negated or not (rules.c, OS_CheckIfRuleMatch).

Which stock roots are listed: every root rule of `ruleset/rules/` (no if_sid/if_group/if_level, so a child of the
syslog template rule 1) that conditions only on decoded JSON fields and could be tried before 99000 (level 0 roots
sort first, ties in load order): 80200, 86600, 23501. No OCSF event carries the fields they need (`integration`,
`timestamp` + `event_type`, `vulnerability.cve`), which the suite checks on every event. The other level-0 roots
loaded before 0990 condition on other decoders (`decoded_as`), on the raw log (`match` anchored at the start, which a
JSON event does not satisfy) or on other categories. Stock children of 99001-99003 that an OCSF event could end on
are listed too (99020, 99050, 99080-99082), so that the share of events ending on a stock rule is measured, not
assumed. 99021-99030 and 99051-99058 hang below those and only matter for events that reach them, which ours never
do (the suite checks that no event ends on a stock rule).
"""
from __future__ import annotations

SOURCE_TAG = "v4.14.7"

# id, level, parent (None: a child of the syslog template rule 1), file, groups, conditions
# conditions: (field, python regex, negate)
STOCK_RULES: list[dict] = [
    {"id": 80200, "level": 0, "parent": None, "file": "0350-amazon_rules.xml", "groups": ["amazon", "aws"],
     "decoded_as": "json", "fields": [("integration", r"(?i)aws", False)],
     "description": "AWS alert."},
    {"id": 86600, "level": 0, "parent": None, "file": "0475-suricata_rules.xml", "groups": ["ids", "suricata"],
     "decoded_as": "json", "fields": [("timestamp", r".+", False), ("event_type", r".+", False)],
     "description": "Suricata messages."},
    {"id": 23501, "level": 0, "parent": None, "file": "0520-vulnerability-detector_rules.xml",
     "groups": ["vulnerability-detector"], "decoded_as": "json", "fields": [("vulnerability.cve", r".+", False)],
     "description": "Vulnerability detector."},
    # 0990-amazon-security-lake_rules.xml: the OCSF root and its source children
    {"id": 99000, "level": 0, "parent": None, "file": "0990-amazon-security-lake_rules.xml",
     "groups": ["amazon_security_lake"], "decoded_as": "json",
     "fields": [("activity_id", r".+", False), ("category_uid", r".+", False)],
     "description": "Amazon Security Lake rules grouped."},
    {"id": 99001, "level": 3, "parent": 99000, "file": "0990-amazon-security-lake_rules.xml",
     "groups": ["amazon_security_lake"], "fields": [("metadata.product.name", r"(?i)CloudTrail", False)],
     "description": "Amazon Security Lake - CloudTrail rules grouped."},
    {"id": 99002, "level": 3, "parent": 99000, "file": "0990-amazon-security-lake_rules.xml",
     "groups": ["amazon_security_lake"], "fields": [("metadata.product.name", r"(?i)Amazon VPC", False)],
     "description": "Amazon Security Lake - Amazon VPC rules grouped."},
    {"id": 99003, "level": 3, "parent": 99000, "file": "0990-amazon-security-lake_rules.xml",
     "groups": ["amazon_security_lake"], "fields": [("metadata.product.name", r"(?i)Route 53", False)],
     "description": "Amazon Security Lake - Route 53 rules grouped."},
    {"id": 99020, "level": 3, "parent": 99001, "file": "0990-amazon-security-lake_rules.xml",
     "groups": ["amazon_security_lake", "asl_api_operation", "asl_cloudtrail"],
     "fields": [("api.response.error", r"(?i)null", True)],
     "description": "Amazon Security Lake - CloudTrail - Failed API Operation."},
    {"id": 99050, "level": 0, "parent": 99002, "file": "0990-amazon-security-lake_rules.xml",
     "groups": ["amazon_security_lake", "asl_vpc"],
     "fields": [("activity_name", r"(?i)Established", False), ("category_name", r"(?i)Network Activity", False)],
     "description": "Amazon Security Lake - VPC - Network activity, connection established."},
    {"id": 99080, "level": 3, "parent": 99003, "file": "0990-amazon-security-lake_rules.xml",
     "groups": ["amazon_security_lake"], "fields": [("query.type", r"", False), ("rcode", r"(?i)NOERROR", False)],
     "description": "Amazon Security Lake - Route 53 - Successful DNS request."},
    {"id": 99081, "level": 3, "parent": 99003, "file": "0990-amazon-security-lake_rules.xml",
     "groups": ["amazon_security_lake"], "fields": [("query.type", r"", False), ("rcode", r"(?i)NXDOMAIN", False)],
     "description": "Amazon Security Lake - Route 53 - Failed DNS request for a Non-Existent Domain."},
    {"id": 99082, "level": 3, "parent": 99003, "file": "0990-amazon-security-lake_rules.xml",
     "groups": ["amazon_security_lake"], "fields": [("query.type", r"", False), ("rcode_id", r"-1", False)],
     "description": "Amazon Security Lake - Route 53 - Failed DNS request."},
]

# The stock root rules our tree hangs under (every rule of ours must be reachable from one of them).
OUR_ANCHORS = {99000}

"""Security Lake-shaped OCSF Parquet for the lab, the tests and the benchmarks.

The project must not depend on the team's sample folder, so this module makes rows
that look like what Amazon Security Lake writes for CloudTrail management events
(API activity and authentication), in the two schema lines Security Lake uses:

* ``"1.0.0-rc.2"`` (source version 1): ``type_uid`` int32, API activity is class 3005,
  times are int64 epoch milliseconds only;
* ``"1.1.0"`` (source version 2): ``type_uid`` int64, API activity is class 6003, plus
  ``time_dt`` and ``actor.session.created_time_dt`` as ``timestamp[ms, tz=UTC]``.

Both keep the shapes of the real files: lists in the old Avro form (item field named
``array``), ``unmapped`` as ``map<string, string>``, nested structs several levels deep.
A few columns the real CloudTrail files lack are added so every branch of the Arrow ->
JSON mapping is exercised on realistic data: ``risk_score`` decimal128(5, 2),
``raw_data_hash`` binary, ``src_endpoint.location.lat/long`` float64 that are sometimes NaN.

Every row carries ``metadata.uid == f"{seed}-{index}"`` so a test can check that each
event was delivered exactly once. A row depends only on ``(version, seed, index)``, so
tables made in pieces with ``start_index`` equal one table made at once.
"""

from __future__ import annotations

import decimal
import hashlib
import os
import random
from typing import Any, BinaryIO, Dict, List, Union

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["VERSIONS", "ocsf_schema", "ocsf_table", "write_ocsf_parquet"]

VERSIONS = ("1.0.0-rc.2", "1.1.0")

_CHUNK = 2048
_BASE_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z: a fixed origin keeps output deterministic


def _s(name: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, pa.string(), nullable)


def _struct(name: str, fields: List[pa.Field], nullable: bool = True) -> pa.Field:
    return pa.field(name, pa.struct(fields), nullable)


def _avro_list(name: str, item: pa.DataType) -> pa.Field:
    """A list the way parquet-mr's Avro writer stores it: the item field is called ``array``."""
    return pa.field(name, pa.list_(pa.field("array", item, nullable=False)))


def ocsf_schema(version: str = "1.1.0") -> pa.Schema:
    """The Arrow schema of the generated rows for one Security Lake schema line."""
    if version not in VERSIONS:
        raise ValueError(f"unknown OCSF version {version!r}; expected one of {VERSIONS}")
    v11 = version == "1.1.0"
    ts = pa.timestamp("ms", tz="UTC")
    metadata = _struct("metadata", [
        _struct("product", [
            _s("version", False), _s("name", False), _s("vendor_name", False),
            _struct("feature", [_s("name", False)]),
        ]),
        _s("event_code"),
        _s("uid"),
        _avro_list("profiles", pa.string()),
        _s("version", False),
    ])
    if v11:
        user = _struct("user", [
            _s("type"), _s("name"), _s("uid_alt"), _s("uid"),
            _struct("account", [_s("uid")]), _s("credential_uid"),
        ])
        session = _struct("session", [
            pa.field("created_time_dt", ts), pa.field("is_mfa", pa.bool_()), _s("issuer"),
        ])
        resource = pa.struct([
            _s("uid"), _struct("owner", [_struct("account", [_s("uid")])]), _s("type"),
        ])
    else:
        user = _struct("user", [
            _s("type"), _s("name"), _s("uid"), _s("uuid"), _s("account_uid"), _s("credential_uid"),
        ])
        session = _struct("session", [
            pa.field("created_time", pa.int64()), pa.field("mfa", pa.bool_()), _s("issuer"),
        ])
        resource = pa.struct([_s("uid"), _s("account_uid"), _s("type")])
    fields = [
        metadata,
        pa.field("time", pa.int64(), False),
    ]
    if v11:
        fields.append(pa.field("time_dt", ts))
    fields += [
        _struct("cloud", [_s("region"), _s("provider", False)]),
        _struct("api", [
            _struct("response", [_s("error"), _s("message")]),
            _s("operation"), _s("version"),
            _struct("service", [_s("name")]),
            _struct("request", [_s("uid")]),
        ]),
        _avro_list("resources", resource),
        _struct("actor", [user, session, _s("invoked_by"), _struct("idp", [_s("name")])]),
        _struct("http_request", [_s("user_agent")]),
        _struct("src_endpoint", [
            _s("uid"), _s("ip"), _s("domain"),
            _struct("location", [
                pa.field("lat", pa.float64()), pa.field("long", pa.float64()), _s("country"),
            ]),
        ]),
        _s("class_name", False),
        pa.field("class_uid", pa.int32(), False),
        _s("category_name", False),
        pa.field("category_uid", pa.int32(), False),
        pa.field("severity_id", pa.int32(), False),
        _s("severity", False),
        _struct("user", [_s("uid_alt" if v11 else "uuid"), _s("uid"), _s("name")]),
        _s("activity_name", False),
        pa.field("activity_id", pa.int32(), False),
        pa.field("type_uid", pa.int64() if v11 else pa.int32(), False),
        _s("type_name", False),
        _s("status"),
        pa.field("status_id", pa.int32()),
        pa.field("is_mfa" if v11 else "mfa", pa.bool_()),
        pa.field("risk_score", pa.decimal128(5, 2)),
        pa.field("raw_data_hash", pa.binary()),
        pa.field("unmapped", pa.map_(pa.string(), pa.string())),
    ]
    if v11:
        fields += [_s("accountid"), _s("region"), _s("asl_version")]
    fields.append(_avro_list("observables", pa.struct([
        _s("name"), _s("value"), _s("type"), pa.field("type_id", pa.int32()),
    ])))
    return pa.schema(fields)


# --- vocabulary ---------------------------------------------------------------------

_API = {  # activity_id -> (activity_name, [(operation, service), ...])
    1: ("Create", [("CreateUser", "iam"), ("CreateRole", "iam"), ("RunInstances", "ec2"),
                   ("CreateBucket", "s3"), ("CreateLoadBalancer", "elasticloadbalancing")]),
    2: ("Read", [("DescribeInstances", "ec2"), ("GetObject", "s3"), ("ListBuckets", "s3"),
                 ("GetCallerIdentity", "sts"), ("DescribeTrails", "cloudtrail")]),
    3: ("Update", [("PutBucketPolicy", "s3"), ("UpdateTrail", "cloudtrail"),
                   ("AttachRolePolicy", "iam"), ("ModifyInstanceAttribute", "ec2")]),
    4: ("Delete", [("DeleteRole", "iam"), ("DeleteBucket", "s3"), ("TerminateInstances", "ec2")]),
    99: ("Other", [("UnknownAPI", "example")]),
}
_AUTH_OPS = [("ConsoleLogin", "signin"), ("AssumeRole", "sts"), ("AssumeRoleWithSAML", "sts"),
             ("AssumeRoleWithWebIdentity", "sts"), ("CheckMfa", "signin")]
_REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
_USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
_AGENTS = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023 prompt/off command/s3.ls",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.12.2",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Safari/605.1.15",
    "console.amazonaws.com",
    'Tri\u00e9dge "quoted" agent\\with\\backslashes',  # non-ASCII and characters JSON must escape
]
_COUNTRIES = ["US", "DE", "IE", "AU", "BR", None]
_ERRORS = [("AccessDenied", "User is not authorized to perform this operation"),
           ("ThrottlingException", "Rate exceeded"), ("NoSuchEntity", None)]


class _Rng(random.Random):
    """random.Random with cheaper choice/randrange (the stdlib ones dominate generation time)."""

    def pick(self, seq):
        return seq[int(self.random() * len(seq))]

    def below(self, n: int) -> int:
        return int(self.random() * n)


def _ip(rng: _Rng) -> str:
    if rng.random() < 0.1:
        return "2001:db8::%x:%x" % (rng.getrandbits(16), rng.getrandbits(16))
    return "%d.%d.%d.%d" % (rng.pick((192, 198, 203)), rng.below(256), rng.below(256),
                            1 + rng.below(254))


def _row(version: str, seed: int, index: int) -> Dict[str, Any]:
    """One event; its own RNG seeded from (seed, index) keeps rows independent of batching."""
    v11 = version == "1.1.0"
    rng = _Rng(seed * 1_000_003 + index * 7_919 + (1 if v11 else 0))
    account = "1111%08d" % rng.below(100_000_000)
    region = rng.pick(_REGIONS)
    name = rng.pick(_USERS)
    time_ms = _BASE_MS + index * 250 + rng.below(250)
    auth = rng.random() < 0.3
    failed = rng.random() < 0.12
    if auth:
        class_uid, class_name = 3002, "Authentication"
        category_uid = 3
        category_name = "Identity & Access Management" if v11 else "Audit Activity"
        activity_id, activity_name = 1, "Logon"
        operation, service = rng.pick(_AUTH_OPS)
    else:
        class_uid, class_name = (6003 if v11 else 3005), "API Activity"
        category_uid, category_name = (6, "Application Activity") if v11 else (3, "Audit Activity")
        activity_id = rng.pick((1, 2, 2, 2, 3, 4, 99))
        activity_name, ops = _API[activity_id]
        operation, service = rng.pick(ops)
    assumed = rng.random() < 0.4
    user_type = "AssumedRole" if assumed else "IAMUser"
    user_arn = (f"arn:aws:sts::{account}:assumed-role/Admin/{name}" if assumed
                else f"arn:aws:iam::{account}:user/{name}")
    uid_alt = "AIDA%016X" % rng.getrandbits(64)
    mfa = None if rng.random() < 0.3 else rng.random() < 0.5
    session = None
    if assumed:
        created = time_ms - rng.below(3_600_000)
        session = {("created_time_dt" if v11 else "created_time"):
                   created,  # epoch ms; Arrow takes ints for timestamp[ms] as well
                   ("is_mfa" if v11 else "mfa"): mfa,
                   "issuer": f"arn:aws:iam::{account}:role/Admin"}
    lat = long = None
    if rng.random() < 0.7:
        lat, long = round(rng.uniform(-60, 70), 4), round(rng.uniform(-180, 180), 4)
        if rng.random() < 0.1:
            lat = float("nan")  # geo lookup failed: Spark-based writers leave NaN, not null
    ip = _ip(rng)
    event_code = "AwsConsoleSignIn" if operation == "ConsoleLogin" else "AwsApiCall"
    unmapped = {"eventType": event_code, "recipientAccountId": account}
    if rng.random() < 0.5:
        unmapped[f"requestParameters.{service}Name"] = f"{name}-{rng.below(1000)}"
    if rng.random() < 0.05:
        unmapped = {}
    resources = None
    if not auth and rng.random() < 0.6:
        resources = []
        for _ in range(1 + rng.below(3)):
            uid = f"arn:aws:{service}:{region}:{account}:resource/{rng.getrandbits(32):08x}"
            if v11:
                resources.append({"uid": uid, "owner": {"account": {"uid": account}},
                                  "type": f"AWS::{service.upper()}::Resource"})
            else:
                resources.append({"uid": uid, "account_uid": account,
                                  "type": f"AWS::{service.upper()}::Resource"})
    observables = None
    if rng.random() < 0.8:
        observables = [{"name": "src_endpoint.ip", "value": ip, "type": "IP Address", "type_id": 2},
                       {"name": "actor.user.name", "value": name, "type": "User Name", "type_id": 4}]
        if rng.random() < 0.2:
            observables.append({"name": "unmapped.note", "value": None, "type": None, "type_id": 0})
    error = rng.pick(_ERRORS) if failed else None
    risk = None if rng.random() < 0.25 else decimal.Decimal(rng.below(10001)).scaleb(-2)
    row = {
        "metadata": {
            "product": {"version": "1.09", "name": "CloudTrail", "vendor_name": "AWS",
                        "feature": {"name": "Management"}},
            "event_code": event_code if v11 else None,
            "uid": f"{seed}-{index}",
            "profiles": ["cloud", "datetime"] if v11 else ["cloud"],
            "version": version,
        },
        "time": time_ms,
        "cloud": {"region": region, "provider": "AWS"},
        "api": {
            "response": {"error": error[0], "message": error[1]} if error else None,
            "operation": operation,
            "version": None if rng.random() < 0.7 else "2016-11-15",
            "service": {"name": f"{service}.amazonaws.com"},
            "request": {"uid": "%032x" % rng.getrandbits(128)},
        },
        "resources": resources,
        "actor": {
            "user": ({"type": user_type, "name": name, "uid_alt": uid_alt, "uid": user_arn,
                      "account": {"uid": account},
                      "credential_uid": "ASIA%016X" % rng.getrandbits(64) if assumed else None}
                     if v11 else
                     {"type": user_type, "name": name, "uid": uid_alt, "uuid": user_arn,
                      "account_uid": account,
                      "credential_uid": "ASIA%016X" % rng.getrandbits(64) if assumed else None}),
            "session": session,
            "invoked_by": "cloudformation.amazonaws.com" if rng.random() < 0.05 else None,
            "idp": {"name": "okta"} if operation == "AssumeRoleWithSAML" else None,
        },
        "http_request": {"user_agent": rng.pick(_AGENTS)},
        "src_endpoint": {"uid": None, "ip": ip,
                         "domain": "ec2.amazonaws.com" if rng.random() < 0.1 else None,
                         "location": None if lat is None else
                         {"lat": lat, "long": long, "country": rng.pick(_COUNTRIES)}},
        "class_name": class_name, "class_uid": class_uid,
        "category_name": category_name, "category_uid": category_uid,
        "severity_id": 3 if failed else 1, "severity": "Medium" if failed else "Informational",
        "user": ({"uid_alt" if v11 else "uuid": user_arn, "uid": uid_alt,
                  "name": None if rng.random() < 0.5 else name} if auth else None),
        "activity_name": activity_name, "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "type_name": f"{class_name}: {activity_name}",
        "status": "Failure" if failed else "Success", "status_id": 2 if failed else 1,
        ("is_mfa" if v11 else "mfa"): mfa if auth else None,
        "risk_score": risk,
        "raw_data_hash": (None if rng.random() < 0.2 else
                          hashlib.sha256(f"{seed}-{index}".encode()).digest()),
        "unmapped": unmapped,
        "observables": observables,
    }
    if v11:
        row["time_dt"] = time_ms
        row["accountid"] = account
        row["region"] = region
        row["asl_version"] = "2"
    return row


def ocsf_table(rows: int, *, version: str = "1.1.0", seed: int = 0, start_index: int = 0) -> pa.Table:
    """``rows`` generated events with indexes ``start_index ..``, as one Arrow table."""
    schema = ocsf_schema(version)
    # Converted in chunks: a few thousand live row dicts at a time keep the garbage
    # collector's passes cheap (one list of 100k nested dicts makes generation 2x slower).
    chunks = []
    for lo in range(start_index, start_index + rows, _CHUNK):
        hi = min(lo + _CHUNK, start_index + rows)
        chunks.append(pa.Table.from_pylist([_row(version, seed, i) for i in range(lo, hi)],
                                           schema=schema))
    if not chunks:
        return schema.empty_table()
    return pa.concat_tables(chunks).combine_chunks()


def write_ocsf_parquet(path_or_file: Union[str, os.PathLike, BinaryIO], rows: int, *,
                       version: str = "1.1.0", seed: int = 0, row_group_size: int = 10000,
                       compression: str = "gzip", start_index: int = 0) -> int:
    """Write ``rows`` events as Parquet, one row group at a time; return the rows written.

    Row indexes (and so ``metadata.uid``) run from ``start_index``: several objects of one
    seed can hold disjoint, recognisable events.

    GZIP is the default because that is what Security Lake writes. Only one row group
    is ever held in memory, so the lab can make objects much larger than RAM would allow
    as a whole table.
    """
    if row_group_size < 1:
        raise ValueError("row_group_size must be at least 1")
    written = 0
    with pq.ParquetWriter(path_or_file, ocsf_schema(version), compression=compression) as writer:
        while written < rows:
            n = min(row_group_size, rows - written)
            writer.write_table(ocsf_table(n, version=version, seed=seed, start_index=start_index + written),
                               row_group_size=n)
            written += n
    return written

"""Real Amazon Security Lake objects (AWS's published samples) through the Arrow -> JSON mapping.

Each converted row is compared with an independent reference: ``to_pylist()`` followed by
a plain recursive mapping written here, value by value, with no Arrow compute.
"""
from __future__ import annotations

import base64
import datetime as dt
import math
import os
import struct
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aws_s3_wodle.decode.formats.parquet import iter_parquet_events, parquet_row_count

SHARED = Path(os.environ.get("AWS_S3_WODLE_SHARED", Path(__file__).resolve().parents[3] / "shared"))
LAKE = SHARED / "samples" / "security-lake"
SAMPLES = sorted(LAKE.glob("*/*.parquet"))
SKIP = "../shared/samples not present (a user's clone): real Security Lake samples are only in the team's workspace"

pytestmark = pytest.mark.skipif(not SAMPLES, reason=SKIP)


# --- the reference mapping -------------------------------------------------------------

def _float32_shortest(x: float) -> float:
    """The shortest decimal that reads back as the same float32 (what the JSON should say)."""
    target = struct.pack("<f", x)
    for digits in range(1, 10):
        candidate = float(f"{x:.{digits}g}")
        if struct.pack("<f", candidate) == target:
            return candidate
    return x


def _timestamp(value: dt.datetime, unit: str) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = {"s": "", "ms": f".{value.microsecond // 1000:03d}", "us": f".{value.microsecond:06d}"}[unit]
    return text + fraction + "Z"


def reference(value, typ: pa.DataType, keep_nulls: bool):
    """What the mapping in DESIGN.md says ``value`` (from to_pylist) becomes in JSON."""
    T = pa.types
    if value is None:
        return None
    if T.is_struct(typ):
        out = {}
        for f in typ:
            v = reference(value[f.name], f.type, keep_nulls)
            if v is not None or keep_nulls:
                out[f.name] = v
        return out
    if T.is_map(typ):
        out = {}
        for k, v in value:
            v = reference(v, typ.item_type, keep_nulls)
            if v is not None or keep_nulls:
                out[str(k)] = v
        return out
    if T.is_list(typ) or T.is_large_list(typ):
        return [reference(v, typ.value_type, keep_nulls) for v in value]
    if T.is_timestamp(typ):
        assert typ.unit != "ns"  # to_pylist would not give a datetime
        return _timestamp(value, typ.unit)
    if T.is_floating(typ):
        if math.isnan(value) or math.isinf(value):
            return None
        return _float32_shortest(value) if T.is_float32(typ) else value
    if T.is_decimal(typ):
        assert isinstance(value, Decimal)
        return str(value)
    if T.is_binary(typ) or T.is_large_binary(typ) or T.is_fixed_size_binary(typ):
        return base64.b64encode(value).decode()
    if T.is_date(typ):
        return value.isoformat()
    if T.is_string(typ) or T.is_integer(typ) or T.is_boolean(typ):
        return value
    raise AssertionError(f"sample has a type this reference does not know yet: {typ}")


def reference_rows(table: pa.Table, keep_nulls: bool = False) -> list:
    rows = []
    for row in table.to_pylist():
        out = {}
        for f in table.schema:
            v = reference(row[f.name], f.type, keep_nulls)
            if v is not None or keep_nulls:
                out[f.name] = v
        rows.append(orjson.dumps(out))
    return rows


def events(path: Path, **kw) -> list:
    return [e for batch in iter_parquet_events(str(path), **kw) for e in batch]


def sample(relative: str) -> dict:
    path = LAKE / relative
    (doc,) = events(path)
    return orjson.loads(doc)


# --- every sample --------------------------------------------------------------------

def test_both_schema_lines_are_present():
    assert {p.parent.name for p in SAMPLES} >= {"ocsf-1.0.0-rc.2", "ocsf-1.1.0"}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("keep_nulls", [False, True], ids=["drop_nulls", "keep_nulls"])
def test_sample_converts_exactly_like_the_reference(path, keep_nulls):
    table = pq.read_table(path)
    got = events(path, keep_nulls=keep_nulls)
    assert len(got) == table.num_rows == parquet_row_count(path) >= 1
    assert got == reference_rows(table, keep_nulls)  # same bytes: same values, same key order
    for doc in got:
        assert b"NaN" not in doc and b"Infinity" not in doc


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sample_has_the_fields_the_rules_match(path):
    for doc in map(orjson.loads, events(path)):
        assert isinstance(doc["class_uid"], int) and isinstance(doc["category_uid"], int)
        assert doc["type_uid"] == doc["class_uid"] * 100 + doc["activity_id"]
        assert isinstance(doc["metadata"]["product"]["name"], str)
        assert isinstance(doc["metadata"]["profiles"], list)
        assert isinstance(doc.get("unmapped", {}), dict)
        assert isinstance(doc["time"], int)
        if path.parent.name == "ocsf-1.1.0":
            assert doc["metadata"]["version"] == "1.1.0"
            assert doc["time_dt"].endswith("Z")
        else:
            assert doc["metadata"]["version"] == "1.0.0-rc.2"
            assert "time_dt" not in doc


# --- named samples, explicit values ------------------------------------------------------

def test_v11_console_login():
    doc = sample("ocsf-1.1.0/CLOUD_TRAIL_authentication_tests_ConsoleLogin.test.parquet")
    assert doc["time"] == 1668097474000
    assert doc["time_dt"] == "2022-11-10T16:24:34.000Z"
    parsed = dt.datetime.strptime(doc["time_dt"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    assert int(parsed.timestamp() * 1000) == doc["time"]
    assert doc["unmapped"] == {"additionalEventData.MobileVersion": "No"}
    assert doc["metadata"]["profiles"] == ["cloud", "datetime"]
    assert doc["metadata"]["product"] == {"version": "1.08", "name": "CloudTrail", "vendor_name": "AWS",
                                          "feature": {"name": "Management"}}
    assert (doc["class_uid"], doc["category_uid"], doc["activity_id"], doc["type_uid"]) == (3002, 3, 1, 300201)
    assert doc["category_name"] == "Identity & Access Management"
    assert doc["is_mfa"] is False  # a false boolean is a value, not a null
    assert doc["actor"]["user"]["name"] == "anaya"
    assert "session" not in doc["actor"] and "session" not in doc  # null structs dropped
    assert "response" not in doc["api"]
    assert doc["api"]["request"] == {"uid": "''"}  # AWS's sample really holds two quote characters
    assert doc["src_endpoint"] == {"ip": "192.0.2.0"}


def test_v11_api_activity_class_ids():
    doc = sample("ocsf-1.1.0/CLOUD_TRAIL_api_activity_tests_CreateLoadBalancer.test.parquet")
    assert (doc["class_uid"], doc["category_uid"], doc["type_uid"]) == (6003, 6, 600301)
    assert doc["api"]["operation"] == "CreateLoadBalancer"
    assert doc["unmapped"]["requestParameters.name"] == "my-load-balancer"
    assert doc["time_dt"] == "2016-04-01T15:31:48.000Z"


def test_rc2_api_activity_class_ids_and_empty_structs():
    doc = sample("ocsf-1.0.0-rc.2/CLOUD_TRAIL_api_activity_CreateLoadBalancer.test.gz.parquet")
    assert (doc["class_uid"], doc["category_uid"], doc["type_uid"]) == (3005, 3, 300501)
    assert doc["metadata"]["profiles"] == ["cloud"]
    # rc.2 files write structs that are present with every member null: they stay as {}
    assert doc["actor"]["session"] == {} and doc["actor"]["idp"] == {}
    assert doc["api"]["response"] == {}
    assert "resources" not in doc


def test_rc2_security_hub_finding():
    path = LAKE / "ocsf-1.0.0-rc.2/SH_FINDINGS_example0.json.gz.parquet"
    (raw,) = events(path)
    doc = orjson.loads(raw)
    assert doc["finding"]["title"] == ("EC2.19 Security groups should not allow unrestricted access to ports "
                                       "with high risk")
    assert doc["finding"]["types"] == [
        "Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundational-Security-Best-Practices"]
    vuln = doc["vulnerabilities"][0]
    # base_score is a float32 column: 4.7, not 4.699999809265137
    assert vuln["cve"]["cvss"]["base_score"] == 4.7 and b'"base_score":4.7,' in raw
    assert vuln["cve"]["uid"] == "CVE-2020-12345"
    assert [p["name"] for p in vuln["packages"]] == ["openssl", "yaml"]
    assert doc["malware"][0]["classification_ids"] == [1]
    assert doc["unmapped"]["Vulnerabilities[].Cvss[].BaseScore"] == "4.7,4.4"
    # a JSON document held in a string column stays a string, escaped
    assert orjson.loads(doc["resources"][0]["details"])["AwsEc2SecurityGroup"]["GroupName"] == "eks-cluster-sg"
    assert doc["process"]["file"]["name"] == "''"
    assert "confidence" not in doc


def test_v11_vpc_flow():
    doc = sample("ocsf-1.1.0/VPC_FLOW_tests_vpc_flow-input0.test.parquet")
    assert doc["traffic"] == {"packets": 1, "bytes": 40}
    assert (doc["start_time_dt"], doc["end_time_dt"]) == ("2022-04-12T00:02:12.000Z", "2022-04-12T00:03:08.000Z")
    assert doc["src_endpoint"]["port"] == 56858
    assert doc["unmapped"] == {"sublocation_id": "-", "sublocation_type": "-"}

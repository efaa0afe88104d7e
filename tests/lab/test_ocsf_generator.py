"""The lab's Security Lake-shaped Parquet generator, and Parquet decoding end to end."""
from __future__ import annotations

import io
import math

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from aws_s3_wodle.decode.arrow_json import batch_to_json
from aws_s3_wodle.decode.formats import DecodeError
from aws_s3_wodle.decode.formats.parquet import iter_parquet_events, parquet_row_count
from aws_s3_wodle.lab import ocsf
from aws_s3_wodle.lab.ocsf import ocsf_schema, ocsf_table, write_ocsf_parquet

VERSIONS = ["1.1.0", "1.0.0-rc.2"]


def _type(schema: pa.Schema, dotted: str) -> pa.DataType:
    first, *rest = dotted.split(".")
    typ = schema.field(first).type
    for name in rest:
        typ = typ.value_type if name == "[]" else typ.field(name).type
    return typ


def _json(table: pa.Table, **kw) -> list:
    return [doc for batch in table.to_batches() for doc in batch_to_json(batch, **kw)]


@pytest.fixture(scope="module", params=VERSIONS)
def table(request) -> pa.Table:
    return ocsf_table(1500, version=request.param, seed=7)


# --- shape ---------------------------------------------------------------------------

def test_lists_are_avro_style_with_item_field_named_array(table):
    for name in ("metadata", "observables", "resources"):
        typ = table.schema.field(name).type
        lists = [typ] if pa.types.is_list(typ) else [typ.field("profiles").type]
        for lst in lists:
            assert pa.types.is_list(lst) and lst.value_field.name == "array" and not lst.value_field.nullable
    assert pa.types.is_struct(_type(table.schema, "observables.[]"))


def test_types_of_the_mapping_are_all_there(table):
    s = table.schema
    assert s.field("unmapped").type == pa.map_(pa.string(), pa.string())
    assert s.field("risk_score").type == pa.decimal128(5, 2)
    assert s.field("raw_data_hash").type == pa.binary()
    assert s.field("time").type == pa.int64() and not s.field("time").nullable
    assert _type(s, "src_endpoint.location.lat") == pa.float64()
    assert _type(s, "metadata.product.feature.name") == pa.string()
    assert _type(s, "api.operation") == pa.string() and _type(s, "http_request.user_agent") == pa.string()
    assert _type(s, "actor.user.name") == pa.string() and _type(s, "src_endpoint.ip") == pa.string()
    assert s.field("class_uid").type == pa.int32()


def test_version_specific_columns():
    v11, rc2 = ocsf_schema("1.1.0"), ocsf_schema("1.0.0-rc.2")
    ts = pa.timestamp("ms", tz="UTC")
    assert v11.field("time_dt").type == ts and _type(v11, "actor.session.created_time_dt") == ts
    assert v11.field("type_uid").type == pa.int64() and rc2.field("type_uid").type == pa.int32()
    assert "time_dt" not in rc2.names and _type(rc2, "actor.session.created_time") == pa.int64()
    assert _type(rc2, "actor.user.uuid") == pa.string() and _type(v11, "actor.user.account.uid") == pa.string()
    with pytest.raises(ValueError, match="unknown OCSF version"):
        ocsf_schema("2.0")


@pytest.mark.parametrize("version, api_class, category", [("1.1.0", 6003, 6), ("1.0.0-rc.2", 3005, 3)])
def test_rows_are_cloudtrail_api_activity_and_authentication(version, api_class, category):
    docs = [orjson.loads(d) for d in _json(ocsf_table(600, version=version))]
    classes = {d["class_uid"] for d in docs}
    assert classes == {api_class, 3002}
    for d in docs:
        assert d["type_uid"] == d["class_uid"] * 100 + d["activity_id"]
        assert d["type_name"] == f'{d["class_name"]}: {d["activity_name"]}'
        assert d["metadata"]["version"] == version and d["metadata"]["product"]["name"] == "CloudTrail"
        if d["class_uid"] == api_class:
            assert d["category_uid"] == category
        if version == "1.1.0":
            assert d["time_dt"].endswith("Z")
            ms = pa.array([d["time_dt"]]).cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())[0].as_py()
            assert ms == d["time"]
    assert {d["activity_id"] for d in docs if d["class_uid"] == api_class} == {1, 2, 3, 4, 99}


def test_nulls_nans_and_empties_at_several_depths(table):
    assert 0 < table.column("api").combine_chunks().field("response").null_count < table.num_rows
    assert 0 < table.column("raw_data_hash").null_count < table.num_rows
    assert 0 < table.column("risk_score").null_count < table.num_rows
    assert 0 < table.column("observables").null_count < table.num_rows
    assert 0 < table.column("user").null_count < table.num_rows
    lat = pc.struct_field(pc.struct_field(table.column("src_endpoint"), "location"), "lat")
    assert pc.sum(pc.is_nan(lat)).as_py() > 0
    obs_values = pc.struct_field(pc.list_flatten(table.column("observables")), "value")
    assert 0 < obs_values.null_count
    assert sum(1 for m in table.column("unmapped").to_pylist() if m == []) > 0
    agents = set(pc.struct_field(table.column("http_request"), "user_agent").to_pylist())
    assert any('"' in a and "\\" in a for a in agents)


def test_uids_are_seed_dash_index_and_unique():
    t = ocsf_table(3000, seed=42, start_index=100)
    uids = pc.struct_field(t.column("metadata"), "uid").to_pylist()
    assert uids == [f"42-{i}" for i in range(100, 3100)]


def test_deterministic_and_independent_of_batching():
    whole = ocsf_table(5000, seed=3)
    assert _json(whole) == _json(ocsf_table(5000, seed=3))
    pieces = [ocsf_table(1234, seed=3, start_index=0), ocsf_table(3766, seed=3, start_index=1234)]
    assert [d for p in pieces for d in _json(p)] == _json(whole)
    assert _json(ocsf_table(50, seed=4)) != _json(ocsf_table(50, seed=3))


def test_empty_table():
    t = ocsf_table(0)
    assert t.num_rows == 0 and t.schema == ocsf_schema()


# --- writing and reading back ----------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_write_then_decode_round_trip(tmp_path, version):
    path = tmp_path / "lake.gz.parquet"
    assert write_ocsf_parquet(path, 2500, version=version, seed=9, row_group_size=1000, start_index=5) == 2500
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 3 and [meta.row_group(i).num_rows for i in range(3)] == [1000, 1000, 500]
    assert meta.row_group(0).column(0).compression == "GZIP"
    assert parquet_row_count(path) == 2500

    batches = list(iter_parquet_events(path, batch_size=700))
    assert all(len(b) <= 700 for b in batches)
    got = [doc for b in batches for doc in b]
    assert got == _json(ocsf_table(2500, version=version, seed=9, start_index=5))
    uids = [orjson.loads(d)["metadata"]["uid"] for d in got]
    assert sorted(uids) == sorted(f"9-{i}" for i in range(5, 2505))  # each event exactly once


def test_decode_from_a_file_object_leaves_it_open(tmp_path):
    buf = io.BytesIO()
    write_ocsf_parquet(buf, 300, row_group_size=128)
    buf.seek(0)
    got = [doc for b in iter_parquet_events(buf, batch_size=100, keep_nulls=True) for doc in b]
    assert len(got) == 300 and not buf.closed
    assert got == _json(ocsf_table(300), keep_nulls=True)
    assert all(b'"user":null' in d or b'"user":{' in d for d in got)
    assert parquet_row_count(buf) == 300


def test_writer_builds_one_row_group_at_a_time(monkeypatch):
    sizes = []
    real = ocsf.ocsf_table

    def spy(rows, **kw):
        sizes.append(rows)
        return real(rows, **kw)

    monkeypatch.setattr(ocsf, "ocsf_table", spy)
    assert write_ocsf_parquet(io.BytesIO(), 2100, row_group_size=1000, compression="snappy") == 2100
    assert sizes == [1000, 1000, 100]


# --- broken objects -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_bytes() -> bytes:
    buf = io.BytesIO()
    write_ocsf_parquet(buf, 2000, row_group_size=1000)
    return buf.getvalue()


def _decode(data: bytes) -> int:
    return sum(len(b) for b in iter_parquet_events(io.BytesIO(data), batch_size=500))


@pytest.mark.parametrize("cut", [0.5, 0.99, 10])
def test_truncated_object_raises_decode_error(good_bytes, cut, tmp_path):
    data = good_bytes[:int(len(good_bytes) * cut)] if cut < 1 else good_bytes[:cut]
    with pytest.raises(DecodeError, match="truncated Parquet object"):
        _decode(data)
    path = tmp_path / "cut.parquet"
    path.write_bytes(data)
    with pytest.raises(DecodeError, match="truncated"):
        list(iter_parquet_events(path))
    with pytest.raises(DecodeError, match="truncated"):
        parquet_row_count(path)


@pytest.mark.parametrize("data, words", [
    (b"", "empty object"),
    (b'{"not": "parquet"}', "not a Parquet file .*looks like JSON"),
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "looks like gzip"),
    (b"PAR1" + bytes(64) + b"PAR1", "unreadable Parquet footer"),
])
def test_not_parquet_raises_decode_error_saying_why(data, words):
    with pytest.raises(DecodeError, match=words):
        _decode(data)


def test_missing_path_raises_decode_error(tmp_path):
    with pytest.raises(DecodeError, match="cannot open"):
        list(iter_parquet_events(tmp_path / "nope.parquet"))


def test_corrupt_second_row_group_fails_after_the_first_was_delivered(good_bytes):
    meta = pq.ParquetFile(io.BytesIO(good_bytes)).metadata
    chunk = meta.row_group(1).column(0)  # metadata.product.version of rows 1000..1999
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    end = start + chunk.total_compressed_size
    broken = good_bytes[:start] + bytes(end - start) + good_bytes[end:]
    delivered = []
    with pytest.raises(DecodeError, match="corrupt Parquet data after 1000 of 2000 rows") as info:
        for batch in iter_parquet_events(io.BytesIO(broken), batch_size=500):
            delivered += batch
    assert len(delivered) == 1000
    assert "Traceback" not in str(info.value) and "\n" not in str(info.value)


def test_float_nan_in_generated_rows_never_reaches_json(table):
    for doc in _json(table):
        assert b"NaN" not in doc
    lat = pc.struct_field(pc.struct_field(table.column("src_endpoint"), "location"), "lat").to_pylist()
    docs = [orjson.loads(d) for d in _json(table)]
    for value, doc in zip(lat, docs):
        loc = doc["src_endpoint"].get("location", {})
        if value is None or math.isnan(value):
            assert "lat" not in loc
        else:
            assert loc["lat"] == value


def test_schema_with_duplicate_names_is_refused_before_any_row(tmp_path):
    dup = pa.StructArray.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"s": dup}), path)
    with pytest.raises(DecodeError, match="schema cannot be mapped to JSON: duplicate field names"):
        list(iter_parquet_events(path))

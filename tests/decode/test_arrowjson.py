"""The Arrow-native writer (arrowjson) against the reference converter, byte for byte.

test_convert.py pins the mapping value by value through ``batch_to_json``; here we check
that the fast path really is the one taking those batches, that it writes exactly what the
reference writes on random nested schemas and data, and that what it cannot write falls
back to the reference.
"""
from __future__ import annotations

import datetime as dt
import math
import struct
from decimal import Decimal

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aws_s3_wodle.decode import arrow_kernels as arrowjson
from aws_s3_wodle.decode.arrow_json import batch_to_json, batch_to_text, reference_batch_to_json
from aws_s3_wodle.lab.ocsf import VERSIONS, ocsf_table


def fast(batch: pa.RecordBatch, keep_nulls: bool = False) -> list:
    return arrowjson.compile_schema(batch.schema, keep_nulls)(batch).cast(pa.binary()).to_pylist()


def same_as_reference(batch: pa.RecordBatch) -> None:
    for keep_nulls in (False, True):
        assert fast(batch, keep_nulls) == reference_batch_to_json(batch, keep_nulls=keep_nulls)


# --- random schemas and data ---------------------------------------------------------------

LEAVES = [pa.int8(), pa.int32(), pa.int64(), pa.uint64(), pa.bool_(), pa.float32(), pa.float64(),
          pa.string(), pa.large_string(), pa.binary(), pa.decimal128(7, 3), pa.date32(),
          pa.timestamp("ms", tz="UTC"), pa.timestamp("us"), pa.timestamp("s", tz="+05:30"),
          pa.time64("us"), pa.duration("s"), pa.null(), pa.dictionary(pa.int32(), pa.string()),
          pa.dictionary(pa.int8(), pa.float64())]
TEXT = st.text(alphabet=st.sampled_from(list('ab\u00e9"\\\n\x01\x1f/{},:\u2028\U0001f600 ')), max_size=6)
NAMES = st.text(alphabet=st.sampled_from(list('xyz"\\{,:')), min_size=1, max_size=3)


def types(depth: int = 3) -> st.SearchStrategy:
    leaf = st.sampled_from(LEAVES)
    if depth == 0:
        return leaf
    inner = types(depth - 1)
    return st.one_of(
        leaf,
        st.lists(st.tuples(NAMES, inner), min_size=0, max_size=4, unique_by=lambda f: f[0]).map(
            lambda fs: pa.struct([pa.field(n, t) for n, t in fs])),
        inner.map(pa.list_),
        inner.map(pa.large_list),
        inner.map(lambda t: pa.list_(t, 2)),
        inner.map(lambda t: pa.map_(pa.string(), t)),
        st.sampled_from([pa.int32(), pa.bool_(), pa.date32(), pa.float64(), pa.dictionary(pa.int32(), pa.string())]).map(
            lambda k: pa.map_(k, pa.int64())),
    )


def floats() -> st.SearchStrategy:
    return st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0.0, -0.0, 1.0, 1e15, 1e16, 1e21, 1e-5, 1e-6, 1.5e-7, 123.0, 4.7]))


def values(t: pa.DataType) -> st.SearchStrategy:
    T = pa.types
    if T.is_null(t):
        return st.none()
    if T.is_struct(t):
        fields = {t.field(i).name: values(t.field(i).type) for i in range(t.num_fields)}
        value = st.fixed_dictionaries(fields)
    elif T.is_map(t):
        value = st.lists(st.tuples(values_not_null(t.key_type), values(t.item_type)), max_size=3,
                         unique_by=lambda kv: repr(kv[0]))  # NaN keys are distinct: repr, not ==
    elif T.is_fixed_size_list(t):
        value = st.lists(values(t.value_type), min_size=t.list_size, max_size=t.list_size)
    elif T.is_list(t) or T.is_large_list(t):
        value = st.lists(values(t.value_type), max_size=3)
    else:
        value = values_not_null(t)
    return st.one_of(st.none(), value)


def values_not_null(t: pa.DataType) -> st.SearchStrategy:
    T = pa.types
    if T.is_dictionary(t):
        return values_not_null(t.value_type)
    if T.is_integer(t):
        info = {8: 2**7, 32: 2**31, 64: 2**63}[t.bit_width]
        lo, hi = (0, 2**64 - 1) if not T.is_signed_integer(t) else (-info, info - 1)
        return st.integers(lo, hi)
    if T.is_boolean(t):
        return st.booleans()
    if T.is_floating(t):
        return floats()
    if T.is_string(t) or T.is_large_string(t):
        return TEXT
    if T.is_binary(t):
        return st.binary(max_size=7)
    if T.is_decimal(t):
        return st.decimals(min_value=-9999, max_value=9999, places=3, allow_nan=False, allow_infinity=False)
    if T.is_date(t):
        return st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2200, 1, 1))
    if T.is_timestamp(t) or T.is_duration(t) or T.is_time(t):
        return st.integers(-2**40 if not T.is_time(t) else 0, 2**40 if not T.is_time(t) else 86_399_000_000)
    raise AssertionError(t)


@st.composite
def batches(draw) -> pa.RecordBatch:
    fields = draw(st.lists(st.tuples(NAMES, types()), min_size=1, max_size=4, unique_by=lambda f: f[0]))
    schema = pa.schema([pa.field(n, t) for n, t in fields])
    rows = draw(st.lists(st.fixed_dictionaries({n: values(t) for n, t in fields}), max_size=6))
    batch = pa.RecordBatch.from_pylist(rows, schema=schema)
    try:  # pyarrow 26 may build a dictionary child with an index past its (empty) dictionary
        batch.validate(full=True)
    except pa.ArrowInvalid:
        assume(False)
    start = draw(st.integers(0, batch.num_rows))
    return batch.slice(start, draw(st.integers(0, batch.num_rows - start)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_random_nested_batches_give_the_reference_bytes(batch):
    same_as_reference(batch)


@pytest.mark.parametrize("version", VERSIONS)
def test_generated_ocsf_rows_give_the_reference_bytes(version):
    table = ocsf_table(3000, version=version, seed=11)
    for batch in table.slice(7, 2500).to_batches(max_chunksize=1000):
        same_as_reference(batch)


# --- pieces the random data rarely reaches --------------------------------------------------

def _float32_shortest(x: float) -> float:
    target = struct.pack("<f", x)
    return next(float(f"{x:.{d}g}") for d in range(1, 10) if struct.pack("<f", float(f"{x:.{d}g}")) == target)


@pytest.mark.parametrize("seed", range(4))
def test_floats_are_spelled_as_orjson_spells_them(seed):
    import random
    rng = random.Random(seed)
    values = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(3000)]
    values += [rng.uniform(-10, 10) * 10 ** rng.uniform(-25, 25) for _ in range(3000)]
    values += [float(round(rng.uniform(-1e7, 1e7), rng.randint(0, 5))) for _ in range(3000)]
    arr = pa.array(values, pa.float64())
    got = fast(pa.RecordBatch.from_arrays([arr], names=["v"]))
    want = [b"{}" if not math.isfinite(v) else b'{"v":' + orjson.dumps(v) + b"}" for v in values]
    assert got == want
    f32 = arr.cast(pa.float32(), safe=False)
    got32 = fast(pa.RecordBatch.from_arrays([f32], names=["v"]))
    want32 = [b"{}" if v is None or not math.isfinite(v) else b'{"v":' + orjson.dumps(_float32_shortest(v)) + b"}"
              for v in f32.to_pylist()]
    assert got32 == want32


def test_every_character_that_needs_escaping_is_escaped_like_orjson():
    texts = [chr(c) for c in range(0x80)] + ["a\x00b", '"', "\\", "\u2028", "\U0001f600", "é\"\n"]
    arr = pa.array(texts)
    assert fast(pa.RecordBatch.from_arrays([arr], names=["v"])) == [
        b'{"v":' + orjson.dumps(t) + b"}" for t in texts]


def test_map_keys_needing_escapes_and_keys_of_other_types():
    arr = pa.array([[('k"\n', 1), ("{,", None)], [], None], pa.map_(pa.string(), pa.int64()))
    batch = pa.RecordBatch.from_arrays([arr], names=["m{,"])
    same_as_reference(batch)
    assert fast(batch) == [b'{"m{,":{"k\\"\\n":1}}', b'{"m{,":{}}', b"{}"]


def test_struct_whose_only_members_are_sometimes_null_keeps_its_commas_right():
    typ = pa.struct([("a", pa.int64()), ("b", pa.string()), ("c", pa.float64())])
    arr = pa.array([{"a": 1, "b": None, "c": None}, {"a": None, "b": "x", "c": 2.0},
                    {"a": None, "b": None, "c": math.nan}, {"a": 3, "b": "y", "c": 1.5}], typ)
    batch = pa.RecordBatch.from_arrays([arr, pa.array(["{,", None, "z", None])], names=["s", "t"])
    assert fast(batch) == [b'{"s":{"a":1},"t":"{,"}', b'{"s":{"b":"x","c":2.0}}', b'{"s":{},"t":"z"}',
                           b'{"s":{"a":3,"b":"y","c":1.5}}']
    same_as_reference(batch)


def test_the_fast_path_takes_the_types_the_mapping_names():
    # no silent fallback for what Security Lake writes: every type of the generated rows compiles
    for version in VERSIONS:
        arrowjson.compile_schema(ocsf_table(1, version=version).schema, False)
    for t in [pa.decimal256(60, 10), pa.date64(), pa.time32("ms"), pa.float16(), pa.binary(3),
              pa.dictionary(pa.int8(), pa.string()), pa.list_(pa.int8(), 3)]:
        arrowjson.compile_schema(pa.schema([("v", t)]), False)


@pytest.mark.skipif(not hasattr(pa, "list_view"), reason="list_view needs pyarrow >= 16")
def test_types_it_cannot_write_fall_back_to_the_reference():
    schema = pa.schema([("v", pa.list_view(pa.int64()))])
    with pytest.raises(arrowjson.Unsupported):
        arrowjson.compile_schema(schema, False)
    batch = pa.RecordBatch.from_pylist([{"v": [1, None]}, {"v": None}], schema=schema)
    assert batch_to_json(batch) == [b'{"v":[1,null]}', b"{}"]
    assert batch_to_text(batch).to_pylist() == ['{"v":[1,null]}', "{}"]


def test_a_map_repeating_a_key_is_written_as_the_reference_writes_it():
    arr = pa.array([[("a", 1), ("b", 2), ("a", 3)]], pa.map_(pa.string(), pa.int64()))
    batch = pa.RecordBatch.from_arrays([arr], names=["m"])
    with pytest.raises(arrowjson.DuplicateMapKeys):
        fast(batch)
    assert batch_to_json(batch) == reference_batch_to_json(batch) == [b'{"m":{"a":3,"b":2}}']


def test_batches_larger_than_one_text_array_are_written_in_slices(monkeypatch):
    from aws_s3_wodle.decode import arrow_json as convert
    monkeypatch.setattr(convert, "_TEXT_ROWS", 7)
    table = ocsf_table(30, seed=5)
    batch = table.to_batches()[0]
    assert batch_to_json(batch) == reference_batch_to_json(batch)
    assert len(batch_to_text(batch)) == 30


def test_dictionaries_constant_or_with_nulls_in_their_values():
    constant = pa.DictionaryArray.from_arrays(pa.array([0, 0, 0], pa.int32()), pa.array(["only", "unused"]))
    with_nulls = pa.DictionaryArray.from_arrays(pa.array([0, 1, None], pa.int32()), pa.array(["a", None]))
    nan_values = pa.DictionaryArray.from_arrays(pa.array([1, 0, 1], pa.int8()), pa.array([1.5, float("nan")]))
    batch = pa.RecordBatch.from_arrays([constant, with_nulls, nan_values], names=["c", "n", "f"])
    assert fast(batch) == [b'{"c":"only","n":"a"}', b'{"c":"only","f":1.5}', b'{"c":"only"}']
    same_as_reference(batch)
    same_as_reference(batch.slice(1))


def test_decimal_text_keeps_the_scale():
    arr = pa.array([Decimal("1.50"), Decimal("-0.001")], pa.decimal128(6, 3))
    assert fast(pa.RecordBatch.from_arrays([arr], names=["d"])) == [b'{"d":"1.500"}', b'{"d":"-0.001"}']


@pytest.mark.parametrize("version", VERSIONS)
def test_parquet_read_with_dictionaries_gives_the_reference_bytes(tmp_path, version):
    import pyarrow.parquet as pq

    from aws_s3_wodle.decode.formats.parquet import _open, iter_parquet_events
    from aws_s3_wodle.lab.ocsf import write_ocsf_parquet

    path = tmp_path / "ocsf.parquet"
    write_ocsf_parquet(str(path), 2500, version=version, seed=13, row_group_size=1000)
    pf = _open(str(path), dictionaries=True)
    types = {f.name: f.type for f in pf.schema_arrow}
    assert pa.types.is_dictionary(types["class_name"])  # low-cardinality strings come as dictionaries
    got = [e for batch in iter_parquet_events(str(path), batch_size=700) for e in batch]
    table = pq.read_table(str(path))  # plain strings
    assert got == [e for b in table.to_batches(max_chunksize=700) for e in reference_batch_to_json(b)]

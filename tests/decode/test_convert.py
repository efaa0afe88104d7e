"""The Arrow -> JSON mapping, one Arrow type at a time, on small hand-made arrays."""
from __future__ import annotations

import datetime as dt
import gc
from decimal import Decimal

import orjson
import pyarrow as pa
import pytest

from aws_s3_wodle.decode.arrow_json import batch_to_json, batch_to_rows

NAN, INF = float("nan"), float("inf")


def one(arr: pa.Array, **kw) -> list:
    """Each row of a one-column batch, parsed back; a dropped value shows as a missing key."""
    batch = pa.RecordBatch.from_arrays([arr], names=["v"])
    return [orjson.loads(doc).get("v", "<dropped>") for doc in batch_to_json(batch, **kw)]


def docs(batch: pa.RecordBatch, **kw) -> list:
    return [orjson.loads(doc) for doc in batch_to_json(batch, **kw)]


# --- timestamps, dates, times ------------------------------------------------------

MS = 1668097474123  # 2022-11-10T16:24:34.123Z


@pytest.mark.parametrize("unit, value, text", [
    ("s", MS // 1000, "2022-11-10T16:24:34Z"),
    ("ms", MS, "2022-11-10T16:24:34.123Z"),
    ("us", MS * 1000 + 456, "2022-11-10T16:24:34.123456Z"),
    ("ns", MS * 1_000_000 + 456_789, "2022-11-10T16:24:34.123456789Z"),
])
@pytest.mark.parametrize("tz", ["UTC", None, "America/New_York", "+05:30"])
def test_timestamps_are_rfc3339_utc_with_the_column_precision(unit, value, text, tz):
    # Arrow stores UTC instants whatever the zone; naive timestamps are taken as UTC.
    assert one(pa.array([value, None], pa.timestamp(unit, tz=tz))) == [text, "<dropped>"]


def test_timestamps_before_1970_and_whole_seconds_keep_their_digits():
    arr = pa.array([-1, 0, 1000], pa.timestamp("ms", tz="UTC"))
    assert one(arr) == ["1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:01.000Z"]


def test_dates():
    day = dt.date(2024, 2, 29)
    assert one(pa.array([day, None], pa.date32())) == ["2024-02-29", "<dropped>"]
    assert one(pa.array([day], pa.date64())) == ["2024-02-29"]
    assert one(pa.array([dt.date(1969, 12, 31)], pa.date32())) == ["1969-12-31"]


@pytest.mark.parametrize("typ, value, text", [
    (pa.time32("s"), 3723, "01:02:03"),
    (pa.time32("ms"), 3723004, "01:02:03.004"),
    (pa.time64("us"), 3723000004, "01:02:03.000004"),
    (pa.time64("ns"), 3723000000004, "01:02:03.000000004"),
])
def test_times(typ, value, text):
    assert one(pa.array([value, None], typ)) == [text, "<dropped>"]


def test_duration_is_a_count_of_its_unit():
    assert one(pa.array([1500, None], pa.duration("ms"))) == [1500, "<dropped>"]


# --- numbers -------------------------------------------------------------------------

def test_int64_stays_a_number_beyond_float_precision():
    big = 2**53 + 1
    arr = pa.array([big, -(2**63), None], pa.int64())
    assert batch_to_json(pa.RecordBatch.from_arrays([arr], names=["v"])) == [
        b'{"v":9007199254740993}', b'{"v":-9223372036854775808}', b"{}"]
    assert one(pa.array([2**64 - 1], pa.uint64())) == [2**64 - 1]
    assert one(pa.array([-5, 7], pa.int8())) == [-5, 7]


def test_float_nan_and_infinities_become_null_then_dropped():
    assert one(pa.array([1.5, NAN, INF, -INF, None, -0.25], pa.float64())) == [
        1.5, "<dropped>", "<dropped>", "<dropped>", "<dropped>", -0.25]
    assert one(pa.array([NAN, INF], pa.float64()), keep_nulls=True) == [None, None]
    # inside an array they stay as null items
    assert one(pa.array([[1.0, NAN, INF, 2.0]], pa.list_(pa.float64()))) == [[1.0, None, None, 2.0]]


def test_float32_gives_its_shortest_decimal_not_the_widened_double():
    batch = pa.RecordBatch.from_arrays([pa.array([4.7, 0.1, NAN, 16777217.0], pa.float32())], names=["v"])
    assert batch_to_json(batch) == [b'{"v":4.7}', b'{"v":0.1}', b"{}", b'{"v":16777216.0}']


def test_float16():
    try:
        half = pa.array([1.5, None, INF], pa.float32()).cast(pa.float16())
    except pa.ArrowNotImplementedError:
        pytest.skip("this pyarrow cannot make float16 arrays from floats")
    assert one(half) == [1.5, "<dropped>", "<dropped>"]


@pytest.mark.parametrize("typ, values, texts", [
    (pa.decimal128(5, 2), [Decimal("7.50"), Decimal("-0.01"), Decimal("0.00"), Decimal("999.99")],
     ["7.50", "-0.01", "0.00", "999.99"]),
    (pa.decimal128(38, 0), [Decimal(10**37 + 1)], [str(10**37 + 1)]),
    (pa.decimal256(60, 10), [Decimal("12345678901234567890123456789012345678901234567890.0123456789")],
     ["12345678901234567890123456789012345678901234567890.0123456789"]),
])
def test_decimals_are_exact_strings_keeping_their_scale(typ, values, texts):
    assert one(pa.array(values + [None], typ)) == texts + ["<dropped>"]


def test_bool():
    assert one(pa.array([True, False, None])) == [True, False, "<dropped>"]


# --- text and bytes --------------------------------------------------------------------

@pytest.mark.parametrize("typ", [pa.string(), pa.large_string()])
def test_strings_are_escaped_and_stay_utf8(typ):
    text = 'Tri\u00e9dge "q" \\ back\nline \x01 \u2028 \U0001f600'
    batch = pa.RecordBatch.from_arrays([pa.array([text, ""], typ)], names=["v"])
    out = batch_to_json(batch)
    assert [orjson.loads(d)["v"] for d in out] == [text, ""]
    assert "é".encode() in out[0] and b"\\u0001" in out[0] and b'\\"q\\"' in out[0]


@pytest.mark.parametrize("typ", [pa.binary(), pa.large_binary(), pa.binary(3)])
def test_binary_is_base64(typ):
    values = [b"\x00\xff\x10", b"abc", None]
    assert one(pa.array(values, typ)) == ["AP8Q", "YWJj", "<dropped>"]


def test_empty_binary():
    assert one(pa.array([b""], pa.binary())) == [""]


# --- containers ------------------------------------------------------------------------

def test_struct_is_an_object_in_schema_order_without_null_members():
    arr = pa.array([{"z": 1, "a": "x", "m": None}, {"z": None, "a": None, "m": 2.5}, None],
                   pa.struct([("z", pa.int64()), ("a", pa.string()), ("m", pa.float64())]))
    batch = pa.RecordBatch.from_arrays([arr], names=["s"])
    assert batch_to_json(batch) == [b'{"s":{"z":1,"a":"x"}}', b'{"s":{"m":2.5}}', b"{}"]
    assert batch_to_json(batch, keep_nulls=True) == [
        b'{"s":{"z":1,"a":"x","m":null}}', b'{"s":{"z":null,"a":null,"m":2.5}}', b'{"s":null}']


def test_struct_whose_members_are_all_null_stays_an_empty_object():
    typ = pa.struct([("a", pa.string()), ("b", pa.int32())])
    assert one(pa.array([{"a": None, "b": None}], typ)) == [{}]
    assert one(pa.array([{}], pa.struct([]))) == [{}]


@pytest.mark.parametrize("typ", [pa.list_(pa.int64()), pa.large_list(pa.int64()),
                                 pa.list_(pa.field("array", pa.int64(), nullable=True))])
def test_lists_keep_null_items(typ):
    assert one(pa.array([[1, None, 3], [], None], typ)) == [[1, None, 3], [], "<dropped>"]
    assert one(pa.array([None], typ), keep_nulls=True) == [None]


def test_fixed_size_list():
    typ = pa.list_(pa.int32(), 2)
    assert one(pa.array([[1, 2], None, [None, 4]], typ)) == [[1, 2], "<dropped>", [None, 4]]


@pytest.mark.skipif(not hasattr(pa, "list_view"), reason="list_view needs pyarrow >= 16")
def test_list_view():
    arr = pa.array([[1, 2], None, [3], [None, 5]], pa.list_view(pa.int64()))
    assert one(arr) == [[1, 2], "<dropped>", [3], [None, 5]]
    assert one(arr.slice(2)) == [[3], [None, 5]]
    assert one(pa.array([[1.5, NAN]], pa.large_list_view(pa.float64()))) == [[1.5, None]]


def test_map_is_an_object_with_string_keys():
    typ = pa.map_(pa.string(), pa.string())
    arr = pa.array([[("a", "1"), ("b", "2")], [], None], typ)
    assert one(arr) == [{"a": "1", "b": "2"}, {}, "<dropped>"]
    batch = pa.RecordBatch.from_arrays([arr], names=["v"])
    assert batch_to_json(batch)[:2] == [b'{"v":{"a":"1","b":"2"}}', b'{"v":{}}']


def test_map_non_string_keys_and_null_values():
    arr = pa.array([[(1, 0.5), (2, None), (3, NAN)]], pa.map_(pa.int32(), pa.float64()))
    assert one(arr) == [{"1": 0.5}]
    assert one(arr, keep_nulls=True) == [{"1": 0.5, "2": None, "3": None}]
    ts_keys = pa.array([[(0, True)]], pa.map_(pa.timestamp("s", tz="UTC"), pa.bool_()))
    assert one(ts_keys) == [{"1970-01-01T00:00:00Z": True}]


def test_map_of_structs_and_lists():
    typ = pa.map_(pa.string(), pa.struct([("n", pa.list_(pa.int64())), ("x", pa.string())]))
    arr = pa.array([[("k", {"n": [1, 2], "x": None})]], typ)
    assert one(arr) == [{"k": {"n": [1, 2]}}]


def test_dictionary_encoded_gives_its_values():
    arr = pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 0], pa.int8()), pa.array(["a", "b"]))
    assert one(arr) == ["a", "b", "<dropped>", "a"]
    nested = pa.DictionaryArray.from_arrays(pa.array([1, 0]), pa.array([1.5, NAN]))
    assert one(nested) == ["<dropped>", 1.5]


def test_null_type_column():
    assert one(pa.nulls(2)) == ["<dropped>", "<dropped>"]
    assert one(pa.nulls(1), keep_nulls=True) == [None]


# --- nesting, slicing, null dropping at depth ----------------------------------------------

INNER = pa.struct([("b", pa.int64()), ("c", pa.string()), ("t", pa.timestamp("ms", tz="UTC"))])
OUTER = pa.struct([("name", pa.string()), ("items", pa.list_(pa.field("array", INNER))),
                   ("tags", pa.map_(pa.string(), pa.string()))])
NESTED_ROWS = [
    {"name": "r0", "items": [{"b": 1, "c": "x", "t": 0}, {"b": None, "c": None, "t": None}, None],
     "tags": [("k", "v")]},
    None,
    {"name": None, "items": None, "tags": []},
    {"name": "r3", "items": [], "tags": None},
    {"name": "r4", "items": [{"b": 4, "c": None, "t": 1000}], "tags": [("a", "1"), ("b", "2")]},
]
NESTED_EXPECTED = [
    {"o": {"name": "r0", "items": [{"b": 1, "c": "x", "t": "1970-01-01T00:00:00.000Z"}, {}, None],
           "tags": {"k": "v"}}, "n": 0},
    {"n": 1},
    {"o": {"tags": {}}, "n": 2},
    {"o": {"name": "r3", "items": []}, "n": 3},
    {"o": {"name": "r4", "items": [{"b": 4, "t": "1970-01-01T00:00:01.000Z"}], "tags": {"a": "1", "b": "2"}},
     "n": 4},
]


def nested_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(NESTED_ROWS, OUTER), pa.array(range(5), pa.int64())],
                                      names=["o", "n"])


def test_struct_in_list_in_struct_drops_nulls_at_every_depth():
    assert docs(nested_batch()) == NESTED_EXPECTED


def test_keep_nulls_keeps_every_member():
    out = docs(nested_batch(), keep_nulls=True)
    assert out[0] == {"o": {"name": "r0", "items": [{"b": 1, "c": "x", "t": "1970-01-01T00:00:00.000Z"},
                                                    {"b": None, "c": None, "t": None}, None],
                            "tags": {"k": "v"}}, "n": 0}
    assert out[1] == {"o": None, "n": 1}
    assert out[2] == {"o": {"name": None, "items": None, "tags": {}}, "n": 2}
    assert out[4]["o"]["items"] == [{"b": 4, "c": None, "t": "1970-01-01T00:00:01.000Z"}]


@pytest.mark.parametrize("start, length", [(0, 5), (1, 3), (2, 2), (3, 2), (4, 1), (5, 0), (1, 1)])
def test_sliced_batches_convert_like_their_rows(start, length):
    sliced = nested_batch().slice(start, length)
    assert docs(sliced) == NESTED_EXPECTED[start:start + length]
    # the same rows, copied into fresh unsliced arrays, give the same bytes
    fresh = pa.RecordBatch.from_pylist(sliced.to_pylist(), schema=sliced.schema)
    assert batch_to_json(sliced) == batch_to_json(fresh)
    assert batch_to_json(sliced, keep_nulls=True) == batch_to_json(fresh, keep_nulls=True)


def test_sliced_fixed_size_list_and_map_in_struct():
    typ = pa.struct([("f", pa.list_(pa.int64(), 2)), ("m", pa.map_(pa.string(), pa.int64()))])
    arr = pa.array([{"f": [1, 2], "m": [("a", 1)]}, {"f": [3, 4], "m": [("b", 2), ("c", 3)]},
                    {"f": None, "m": [("d", 4)]}], typ)
    batch = pa.RecordBatch.from_arrays([arr], names=["s"]).slice(1, 2)
    assert docs(batch) == [{"s": {"f": [3, 4], "m": {"b": 2, "c": 3}}}, {"s": {"m": {"d": 4}}}]


def test_struct_array_with_nulls_built_from_children_with_values():
    # The struct's validity hides child values that are present: they must not leak.
    child = pa.array([1, 2, 3])
    arr = pa.StructArray.from_arrays([child], names=["x"], mask=pa.array([False, True, False]))
    assert one(arr) == [{"x": 1}, "<dropped>", {"x": 3}]
    assert one(arr.slice(1), keep_nulls=True) == [None, {"x": 3}]


def test_list_whose_null_slots_have_values_behind_them():
    # A null list entry may still span values in the child array: they must not show.
    arr = pa.ListArray.from_arrays(pa.array([0, 2, 4]), pa.array([1, 2, 3, 4]), mask=pa.array([True, False]))
    assert one(arr) == ["<dropped>", [3, 4]]


def test_key_order_is_schema_order_and_output_is_compact():
    batch = pa.RecordBatch.from_pydict({"z": [1], "a": [None], "m": ["x"], "b": [[1, 2]]})
    assert batch_to_json(batch) == [b'{"z":1,"m":"x","b":[1,2]}']


def test_more_rows_than_one_internal_slice_keep_their_order():
    n = 2000
    batch = pa.RecordBatch.from_pydict({"i": list(range(n)), "s": [{"v": i if i % 3 else None} for i in range(n)]})
    out = docs(batch)
    assert [d["i"] for d in out] == list(range(n))
    assert [d["s"].get("v") for d in out] == [i if i % 3 else None for i in range(n)]


def test_empty_batch():
    assert batch_to_json(pa.RecordBatch.from_pydict({"a": pa.array([], pa.int64())})) == []


def test_batch_to_rows_gives_the_dicts_that_are_serialised():
    rows = batch_to_rows(nested_batch())
    assert [orjson.dumps(r) for r in rows] == batch_to_json(nested_batch())


def test_duplicate_field_names_are_refused_with_a_reason():
    arr = pa.StructArray.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(ValueError, match="duplicate field names"):
        batch_to_json(pa.RecordBatch.from_arrays([arr], names=["s"]))


def test_garbage_collector_is_enabled_again_afterwards():
    batch = nested_batch()
    assert gc.isenabled()
    batch_to_json(batch)
    assert gc.isenabled()
    gc.disable()
    try:
        batch_to_json(batch)
        assert not gc.isenabled()  # someone else's choice is left alone
    finally:
        gc.enable()


class _Meters(pa.ExtensionType):
    def __init__(self):
        super().__init__(pa.int64(), "test.meters")

    def __arrow_ext_serialize__(self):
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):
        return cls()


def test_extension_type_is_mapped_as_its_storage():
    arr = pa.ExtensionArray.from_storage(_Meters(), pa.array([3, None]))
    assert one(arr) == [3, "<dropped>"]

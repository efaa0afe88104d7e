"""The generic object decoders: compression by magic bytes, every JSON shape, CSV, text, errors."""
from __future__ import annotations

import bz2
import gzip
import io
import json
import tempfile
import zipfile

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_s3_wodle.decode.formats import DecodeError, batched, dump_batch, dumps, iter_records

RECS = [{"id": 1, "user": {"name": "alice", "groups": ["a", "b"]}, "ok": True},
        {"id": 2, "user": {"name": "bob"}, "score": 1.5, "note": None},
        {"id": 3, "msg": "caf\u00e9 \"quoted\" \\ tab\t"}]


def records(data: bytes, key: str = "", **kwargs) -> list:
    return list(iter_records(io.BytesIO(data), key=key, **kwargs))


def jsonl(recs) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in recs)


def zipped(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# --- JSON shapes

JSON_SHAPES = {
    "object": orjson.dumps(RECS[0]),
    "pretty object": json.dumps(RECS[0], indent=2).encode(),
    "array": orjson.dumps(RECS),
    "pretty array": json.dumps(RECS, indent=4).encode(),
    "json lines": jsonl(RECS),
    "json lines, CRLF and blank lines": b"\r\n".join(orjson.dumps(r) for r in RECS).replace(b"}\r\n{", b"}\r\n\r\n{"),
    "concatenated": b"".join(orjson.dumps(r) for r in RECS),
    "concatenated pretty": b"\n".join(json.dumps(r, indent=2).encode() for r in RECS),
    "concatenated with spaces": b"  ".join(orjson.dumps(r) for r in RECS) + b"\n",
    "cloudtrail": orjson.dumps({"Records": RECS}),
    "cloudtrail pretty": json.dumps({"Records": RECS}, indent=2).encode(),
    "cloudtrail concatenated": orjson.dumps({"Records": RECS[:1]}) + b"\n" + orjson.dumps({"Records": RECS[1:]}),
    "byte order mark": b"\xef\xbb\xbf" + jsonl(RECS),
}


@pytest.mark.parametrize("shape", sorted(JSON_SHAPES))
@pytest.mark.parametrize("compression", ["plain", "gzip", "zip"])
def test_json_shapes(shape, compression):
    data = JSON_SHAPES[shape]
    data = {"plain": lambda d: d, "gzip": gzip.compress, "zip": lambda d: zipped({"logs/x.json": d})}[compression](data)
    expected = RECS[:1] if shape.endswith("object") else RECS
    assert records(data, key="no-suffix") == expected


def test_records_keeps_other_cloudtrail_fields_out_and_items_whole():
    doc = {"Records": [{"eventName": "GetObject", "resources": [{"ARN": "arn:aws:s3:::b/k"}]}]}
    assert records(orjson.dumps(doc)) == doc["Records"]


def test_non_object_values_are_refused_with_their_position():
    with pytest.raises(DecodeError, match="array item 2 is a string, not a JSON object"):
        records(b'[{"a": 1}, "text"]')
    with pytest.raises(DecodeError, match="line 2 is an array, not a JSON object"):
        records(b'{"a": 1}\n[1, 2]\n')


def test_unicode_and_numbers_survive():
    rec = {"s": "\u65e5\u672c \U0001F600", "f": 0.1, "neg": -7, "exp": 1e-7, "big": 2**63 - 1}
    for data in (orjson.dumps(rec), b"[" + orjson.dumps(rec) + b"]", orjson.dumps(rec) * 2):
        assert records(data)[0] == rec


# --- CSV and text

def test_csv_with_header():
    data = b'time,user,action\n2024-01-01T00:00:00Z,alice,"login, then logout"\n2024-01-02T00:00:00Z,bob,"multi\nline"\n'
    assert records(data) == [
        {"time": "2024-01-01T00:00:00Z", "user": "alice", "action": "login, then logout"},
        {"time": "2024-01-02T00:00:00Z", "user": "bob", "action": "multi\nline"}]


def test_csv_quotes_the_standard_way():
    data = b'uid,message\n1,"did x, then ""waited"""\n2,"say ""hi"""\n3,plain\n'
    assert records(data) == [{"uid": "1", "message": 'did x, then "waited"'}, {"uid": "2", "message": 'say "hi"'},
                             {"uid": "3", "message": "plain"}]


@pytest.mark.parametrize("sep", [b"\t", b";", b"|"])
def test_csv_other_delimiters_are_sniffed(sep):
    data = sep.join([b"src", b"dst", b"port"]) + b"\n" + sep.join([b"10.0.0.1", b"10.0.0.2", b"443"]) + b"\n"
    assert records(data) == [{"src": "10.0.0.1", "dst": "10.0.0.2", "port": "443"}]


def test_csv_rows_of_another_width_lose_nothing():
    data = b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n"
    assert records(data, key="x.csv") == [{"a": "1", "b": "2", "c": "3"}, {"a": "4", "b": "5"},
                                          {"a": "6", "b": "7", "c": "8", "_extra": ["9"]}]


def test_csv_forced_with_delimiter_and_field_names():
    data = b"2 123456789012 eni-1 10.0.0.1 10.0.0.2 443 ACCEPT\n2 123456789012 eni-2 10.0.0.3 10.0.0.4 22 REJECT\n"
    names = ["version", "account", "eni", "src", "dst", "port", "action"]
    got = records(data, format="csv", delimiter=" ", fieldnames=names)
    assert [r["action"] for r in got] == ["ACCEPT", "REJECT"] and got[0]["account"] == "123456789012"


def test_csv_suffix_decides_when_the_sample_is_too_small():
    assert records(b"name,value\n", key="a/b.CSV.gz") == []
    assert records(b"name\tvalue\nx\t1\n", key="a/b.tsv") == [{"name": "x", "value": "1"}]


def test_text_lines():
    data = b"Jan  1 00:00:00 host sshd[1]: Accepted key, from 1.2.3.4\r\n\n[2024-01-01 00:00:01] ERROR x, y\n" \
           b"{host} not json\nlatin-1 \xe9 byte\n"
    assert records(data) == [{"full_log": "Jan  1 00:00:00 host sshd[1]: Accepted key, from 1.2.3.4"},
                             {"full_log": "[2024-01-01 00:00:01] ERROR x, y"},
                             {"full_log": "{host} not json"},
                             {"full_log": "latin-1 \ufffd byte"}]


def test_a_text_line_over_the_limit_fails_the_object_with_its_size():
    from aws_s3_wodle.decode.formats.text import MAX_LINE, iter_text
    assert list(iter_text(io.BytesIO(b"ab\r\nabc\n"), max_line=3)) == [{"full_log": "ab"}, {"full_log": "abc"}]
    with pytest.raises(DecodeError, match="line 2 is 10 bytes long, over the 3-byte limit"):
        list(iter_text(io.BytesIO(b"ok\n" + b"x" * 10 + b"\r\nlater\n"), max_line=3))
    got = []
    huge = b"first line\n" + b"y" * (MAX_LINE + 5)  # no newline at all: measured to the end
    with pytest.raises(DecodeError, match=f"line 2 is {MAX_LINE + 5} bytes long"):
        for record in iter_records(io.BytesIO(huge), key="app.log"):
            got.append(record)
    assert got == [{"full_log": "first line"}]  # the lines before it are read


def test_a_line_without_newline_is_never_held_whole():
    import tracemalloc
    from aws_s3_wodle.decode.formats.text import iter_text
    size = 32 << 20
    with tempfile.TemporaryFile() as f:
        f.write(b"z" * size)
        f.seek(0)
        tracemalloc.start()
        try:
            with pytest.raises(DecodeError, match=f"is {size} bytes long"):
                list(iter_text(f, max_line=1 << 20))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < size // 8  # bounded by the line limit, not by the line


def test_text_with_commas_is_not_taken_for_csv():
    data = b"GET /index.html, 200\nGET /about.html, 404\nPOST /login, 302\n"
    assert records(data) == [{"full_log": line} for line in data.decode().splitlines()]


def test_log_suffix_means_text_even_if_it_looks_like_csv():
    assert records(b"a,b\nc,d\n", key="app.log.gz") == [{"full_log": "a,b"}, {"full_log": "c,d"}]


def test_empty_and_blank_objects_have_no_records():
    for data in (b"", b"\n\n  \n", gzip.compress(b""), zipped({})):
        assert records(data) == []


def test_zip_with_several_members_of_different_formats():
    data = zipped({"a.json": jsonl(RECS[:2]), "dir/b.csv": b"x,y\n1,2\n", "c.txt": b"hello\n"})
    assert records(data) == RECS[:2] + [{"x": "1", "y": "2"}, {"full_log": "hello"}]


# --- errors: one clear reason, also part-way through

def test_truncated_gzip_after_some_records():
    data = gzip.compress(jsonl({"n": i, "pad": "x" * 100} for i in range(5000)))
    it = iter_records(io.BytesIO(data[: len(data) // 2]))
    got = []
    with pytest.raises(DecodeError, match=r"truncated gzip data .* after \d+ records"):
        for rec in it:
            got.append(rec)
    assert len(got) > 100 and [r["n"] for r in got] == list(range(len(got)))


def test_corrupt_gzip():
    data = bytearray(gzip.compress(jsonl(RECS * 200)))
    data[10] = 0xFF  # the first deflate block header: block type 3 does not exist
    with pytest.raises(DecodeError, match=r"corrupt gzip data \(invalid block type\) after 0 records"):
        records(bytes(data))


def test_corruption_that_inflates_to_garbage_is_caught_by_the_parser():
    data = bytearray(gzip.compress(jsonl({"n": i, "v": "x%d" % (i * 7919 % 10007)} for i in range(20000))))
    data[len(data) // 2: len(data) // 2 + 20] = b"\xff" * 20
    with pytest.raises(DecodeError, match=r"invalid JSON .* after \d+ records \(read as a stream of values from line \d+ on"):
        records(bytes(data))


def test_gzip_crc_mismatch():
    data = bytearray(gzip.compress(jsonl(RECS)))
    data[-8] ^= 0xFF  # the CRC32 in the trailer
    with pytest.raises(DecodeError, match="corrupt gzip data .*CRC"):
        records(bytes(data))


def test_corrupt_zip():
    data = zipped({"a.json": jsonl(RECS)})
    with pytest.raises(DecodeError, match="zip"):
        records(data[:30])


@pytest.mark.parametrize("data, reason", [
    (b'{"a": 1}\n{"a": 2\n', r"truncated JSON .* after 1 record \(read as a stream of values from line 2 on\)"),
    (b'{"a": 1}\n{"a": 2}\n{"a": x}\n', r"invalid JSON \(lexical error: invalid char in json text.\) after 2 records"),
    (b'[{"big": 18446744073709551616}]', r"invalid JSON \(parse error: integer overflow\)"),
    (b'{"a": 1}{"a": ', "truncated JSON .* after 1 record$"),
    (b'[{"a": 1}, {"a": 2} {"a": 3}]', r"invalid JSON .* after 2 records"),
    (b'{"Records": [{"a": 1}, {"a": ', "truncated JSON"),
    (b'{\n "a": tru }', "invalid JSON"),
    (b"\x00\x01\x02\x03binary", "binary data"),
    (bz2.compress(b"{}"), "bzip2-compressed data"),
    (b"PAR1xxxxPAR1", "Parquet data"),
])
def test_bad_data_gets_one_clear_reason(data, reason):
    with pytest.raises(DecodeError, match=reason):
        records(data)


def test_a_json_key_with_other_content_is_an_error():
    with pytest.raises(DecodeError, match="the key says JSON"):
        records(b"this is not json\n", key="logs/2024/x.json.gz")


def test_unknown_format_argument():
    with pytest.raises(ValueError):
        records(b"{}", format="xml")


# --- streaming: records come out while most of the object is still unread

def _spool(data: bytes):
    f = tempfile.TemporaryFile()
    f.write(data)
    f.seek(0)
    return f


@pytest.mark.parametrize("shape", ["json lines", "single-line array", "concatenated", "cloudtrail", "csv", "text"])
def test_large_objects_are_streamed(shape):
    recs = [{"n": i, "pad": "abcdefgh" * 16} for i in range(60000)]
    data = {"json lines": lambda: jsonl(recs), "single-line array": lambda: orjson.dumps(recs),
            "concatenated": lambda: b"".join(orjson.dumps(r) for r in recs),
            "cloudtrail": lambda: orjson.dumps({"Records": recs}),
            "csv": lambda: b"n,pad\n" + b"".join(b"%d,%s\n" % (r["n"], r["pad"].encode()) for r in recs),
            "text": lambda: b"".join(b"line %d %s\n" % (r["n"], r["pad"].encode()) for r in recs)}[shape]()
    compressed = gzip.compress(data, compresslevel=1)
    with _spool(compressed) as spool:
        it = iter_records(spool)
        first = next(it)
        consumed = spool.tell()
        rest = sum(1 for _ in it)
    assert rest + 1 == len(recs)
    assert first in (recs[0], {"n": "0", "pad": recs[0]["pad"]}, {"full_log": f"line 0 {recs[0]['pad']}"})
    assert len(data) > 8_000_000 and consumed < len(compressed) / 4, (consumed, len(compressed))


# --- round trips over generated records

_json_scalars = (st.none() | st.booleans() | st.integers(-2**63 + 1, 2**63 - 1)
                 | st.floats(allow_nan=False, allow_infinity=False)
                 | st.text(st.characters(blacklist_categories=("Cs",)), max_size=20))
_keys = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_json = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
                     max_leaves=12)
_records = st.lists(st.dictionaries(_keys, _json, max_size=5), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(_records, st.sampled_from(["lines", "array", "concatenated", "pretty", "cloudtrail"]), st.booleans())
def test_round_trip(recs, shape, compress):
    data = {"lines": lambda: jsonl(recs), "array": lambda: orjson.dumps(recs),
            "concatenated": lambda: b"".join(orjson.dumps(r) for r in recs),
            "pretty": lambda: b"\n".join(json.dumps(r, indent=1, ensure_ascii=False).encode() for r in recs),
            "cloudtrail": lambda: orjson.dumps({"Records": recs})}[shape]()
    if compress:
        data = gzip.compress(data)
    assert records(data) == recs


# --- serialization helpers

def test_dumps_and_batches():
    assert dumps({"a": [1, None, "\u00e9"]}) == '{"a":[1,null,"\u00e9"]}'.encode()
    assert orjson.loads(dumps({"big": 2**70})) == {"big": 2**70}  # past orjson's 64 bits: stdlib fallback
    assert dump_batch([{"a": 1}, {"b": 2**64}]) == [b'{"a":1}', b'{"b":18446744073709551616}']
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError):
        list(batched([1], 0))


def test_dumps_refuses_what_json_cannot_hold():
    with pytest.raises(DecodeError, match="cannot be written as JSON"):
        dumps({"nan": float("nan"), "key": {1j: 1}})


def test_garbage_after_a_gzip_header():
    data = gzip.compress(b"x")[:10] + b"\xff\xff\xff\xff" * 10
    with pytest.raises(DecodeError, match="corrupt gzip data"):
        records(data)

"""The limits on what one object may cost, each on its own: every hostile shape is refused with the limit
that fired (``LimitExceeded``, a DecodeError), within bounded memory, and ordinary objects pass untouched."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.decode.events import BATCH_BYTES, bucket_records, event_batches
from aws_s3_wodle.decode.formats import iter_records
from aws_s3_wodle.decode.formats.parquet import iter_parquet_events
from aws_s3_wodle.decode.limits import LimitExceeded, Limits
from aws_s3_wodle.lab.ocsf import write_ocsf_parquet

MB = 1 << 20


class Generated(io.RawIOBase):
    """A seekable-enough stream of ``head``, ``size`` bytes of ``fill`` and ``tail``, made as it is read:
    a 1 GB object without 1 GB anywhere."""

    def __init__(self, head: bytes, fill: bytes, size: int, tail: bytes) -> None:
        self.parts = [(head, 1), (fill, size // len(fill)), (tail, 1)]
        self.total = len(head) + size // len(fill) * len(fill) + len(tail)
        self.pos = 0
        self.served = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else self.total + pos if whence == 2 else self.pos + pos
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        out = bytearray()
        pos, want = self.pos, len(buffer)
        base = 0
        for chunk, times in self.parts:
            span = len(chunk) * times
            if pos < base + span and len(out) < want:
                offset = pos - base
                while offset < span and len(out) < want:
                    i = offset % len(chunk)
                    piece = chunk[i:i + want - len(out)]
                    out += piece
                    offset += len(piece)
                pos = base + offset
            base += span
        buffer[:len(out)] = out
        self.pos += len(out)
        self.served += len(out)
        return len(out)


def _peak_mb_decoding(path, call: str) -> tuple[float, str]:
    """Decode the object at ``path`` in a child process (``call`` is a Python expression over ``f``, the open
    file): (the child's peak RSS in MB, what it raised). A process of its own: the test's own memory (it
    made the object) must not hide the decoder's."""
    code = (
        "import sys\n"
        "from aws_s3_wodle.decode.formats import iter_records\n"
        "from aws_s3_wodle.decode.formats.parquet import iter_parquet_events\n"
        "from aws_s3_wodle.decode.limits import Limits\n"
        f"f = open({str(path)!r}, 'rb')\n"
        "try:\n"
        f"    for _ in {call}: pass\n"
        "    outcome = 'read'\n"
        "except Exception as exc:\n"
        "    outcome = type(exc).__name__ + ': ' + str(exc)\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "print(int(hwm) / 1024); print(outcome)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    peak, outcome = out.stdout.splitlines()[:2]
    return float(peak), outcome


def _refused(records, limit: str) -> tuple[list, LimitExceeded]:
    got = []
    with pytest.raises(LimitExceeded) as info:
        for r in records:
            got.append(r)
    assert info.value.limit == limit
    assert isinstance(info.value, DecodeError)  # the engine's path for a failed object
    return got, info.value


# --- records: JSON, CSV, text, compression

@pytest.mark.parametrize("head, tail", [(b'{"a":1}\n{"b":"', b'"}\n'),              # JSON lines
                                        (b'[{"a":1},{"b":"', b'"}]'),               # an array
                                        (b'{"Records":[{"a":1},{"b":"', b'"}]}')])  # CloudTrail
def test_a_json_string_of_1_gb_is_refused_while_streaming(head, tail):
    stream = Generated(head, b"x" * 65536, 1 << 30, tail)
    got, exc = _refused(iter_records(stream, key="k.json", limits=Limits(event_bytes=MB)), "event_bytes")
    assert got == [{"a": 1}]  # the record before it was read
    assert "record 2 is still not complete after" in str(exc) and "--max-event-bytes 1048576" in str(exc)
    assert stream.served < 4 * MB  # refused after a few MB, never holding more: not after the gigabyte


def test_a_json_value_over_the_limit_made_of_small_items_is_refused():
    """Not one long string: a record built of a million small items is as large."""
    body = b'{"a":1}\n{"b":[' + b",".join(b'"v%d"' % i for i in range(400_000)) + b"]}\n"
    got, exc = _refused(iter_records(io.BytesIO(body), key="k.json", limits=Limits(event_bytes=MB)), "event_bytes")
    assert got == [{"a": 1}]


def test_a_csv_line_over_the_limit_is_refused():
    stream = Generated(b'a,b\n1,2\n3,"', b"y" * 65536, 256 * MB, b'"\n')
    got, exc = _refused(iter_records(stream, key="k.csv", limits=Limits(event_bytes=MB)), "event_bytes")
    assert got == [{"a": "1", "b": "2"}]
    assert stream.served < 4 * MB


def test_records_within_the_limit_pass_whatever_their_number():
    line = json.dumps({"pad": "z" * (MB - 100)}).encode() + b"\n"
    records = list(iter_records(io.BytesIO(line * 5), key="k.json", limits=Limits(event_bytes=MB)))
    assert len(records) == 5


def _gzip(data: bytes, level: int = 9) -> bytes:
    return gzip.compress(data, compresslevel=level)


def test_a_gzip_bomb_is_refused_before_a_record_of_it_is_read():
    bomb = _gzip(b'{"e":1}\n' * (8 * MB))  # 64 MB of JSON lines, ~1000:1
    got, exc = _refused(iter_records(io.BytesIO(bomb), key="b.json.gz"), "compression_ratio")
    assert got == [] and "inflates" in str(exc) and "--max-compression-ratio 200" in str(exc)


def test_a_gzip_bomb_that_starts_mild_is_refused_while_it_inflates():
    """An ordinary start, then a bomb: the count while reading refuses it once the whole object so far inflates
    past the ratio (the records before are read: the object's ratio, not a window's, so a genuine log with a
    run of identical lines is not refused)."""
    mild = b"".join(json.dumps({"n": i, "r": os.urandom(12).hex()}).encode() + b"\n" for i in range(5000))
    line = json.dumps({"e": "a" * 1000}).encode() + b"\n"
    bomb = _gzip(mild + line * (64 * MB // len(line)))
    got, exc = _refused(iter_records(io.BytesIO(bomb), key="b.json.gz"), "compression_ratio")
    assert 5000 < len(got) < 64 * MB // len(line) and "the object inflates" in str(exc)


def test_a_truncated_gzip_object_is_corrupt_not_refused():
    packed = _gzip(b"".join(json.dumps({"n": i, "r": os.urandom(40).hex()}).encode() + b"\n" for i in range(50_000)))
    with pytest.raises(DecodeError) as info:
        list(iter_records(io.BytesIO(packed[: len(packed) * 2 // 3]), key="cut.json.gz"))
    assert not isinstance(info.value, LimitExceeded) and "truncated gzip data" in str(info.value)


def test_an_ordinary_gzip_object_compressing_well_is_read():
    lines = b"".join(json.dumps({"eventName": "GetObject", "n": i}).encode() + b"\n" for i in range(200_000))
    assert len(list(iter_records(io.BytesIO(_gzip(lines)), key="ct.json.gz"))) == 200_000


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_a_zip_bomb_is_refused_by_its_declared_sizes():
    bomb = _zip({"ok.json": b'{"a":1}\n', "bomb.json": b'{"e":1}\n' * (8 * MB)})
    got, exc = _refused(iter_records(io.BytesIO(bomb), key="b.zip"), "compression_ratio")
    assert got == [] and "zip members declare" in str(exc)


def test_an_object_over_the_object_limit_is_refused():
    lines = b"".join(json.dumps({"n": i, "pad": os.urandom(16).hex()}).encode() + b"\n" for i in range(100_000))
    got, exc = _refused(iter_records(io.BytesIO(lines), key="k.json", limits=Limits(object_bytes=2 * MB)),
                        "object_bytes")
    assert 0 < len(got) < 100_000 and "--max-object-bytes 2097152" in str(exc)
    zipped = _zip({"a.json": lines})
    got, exc = _refused(iter_records(io.BytesIO(zipped), key="k.zip", limits=Limits(object_bytes=2 * MB)),
                        "object_bytes")
    assert got == []  # declared before a byte is inflated


# --- events: the JSON an event becomes

def test_an_event_over_the_limit_refuses_its_object_and_batches_end_on_bytes():
    records = [{"n": 1}, {"pad": "p" * (2 * MB)}]
    batches = event_batches(iter(records), source="custom", bucket="b", key="k", expand=bucket_records,
                            limits=Limits(event_bytes=MB))
    got, exc = _refused(batches, "event_bytes")
    assert "an event is" in str(exc)
    big = [{"pad": "q" * (4 * MB)} for _ in range(20)]
    sizes = [sum(len(e) for e in b) for b in event_batches(iter(big), source="custom", bucket="b", key="k",
                                                           expand=bucket_records, batch_size=500)]
    assert sum(sizes) > 80 * MB and max(sizes) < BATCH_BYTES + 5 * MB and len(sizes) >= 3


# --- Parquet: judged by the footer and page headers before a page is read

def _parquet(table: pa.Table, **kwargs) -> io.BytesIO:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    buf.seek(0)
    return buf


def test_a_parquet_value_of_200_mb_in_a_small_object_is_refused_before_it_is_read(tmp_path):
    big = pa.array([b"A" * (200 * MB)], pa.binary()).cast(pa.string())
    f = _parquet(pa.table({"class_uid": [1], "message": big}), compression="zstd")
    del big
    assert len(f.getvalue()) < 1 * MB
    got, exc = _refused(iter_parquet_events(f), "compression_ratio")
    assert got == [] and "--max-compression-ratio 200" in str(exc)
    (tmp_path / "o.parquet").write_bytes(f.getvalue())
    peak, outcome = _peak_mb_decoding(tmp_path / "o.parquet", "iter_parquet_events(f)")
    assert outcome.startswith("LimitExceeded") and peak < 150, (peak, outcome)  # the value is never decoded


def test_a_parquet_page_over_the_event_limit_is_refused_by_its_header():
    values = ["x"] * 1000
    values[500] = os.urandom(10 * MB).hex()  # 20 MB that do not compress away
    f = _parquet(pa.table({"message": values}), compression="zstd", use_dictionary=False)
    got, exc = _refused(iter_parquet_events(f, limits=Limits(event_bytes=4 * MB)), "event_bytes")
    assert got == [] and "column 'message' (row group 0) has a page of" in str(exc)
    # under a limit it fits, it is read whole
    f.seek(0)
    assert sum(len(b) for b in iter_parquet_events(f, limits=Limits(event_bytes=32 * MB))) == 1000


def test_a_parquet_row_over_the_event_limit_is_refused_when_converted():
    """Pages of ~1 MB (nothing for the footer to tell) whose row is over the limit once it is JSON."""
    table = pa.table({f"c{i}": [os.urandom(200_000).hex()] for i in range(4)})  # one row of 1.6 MB
    f = _parquet(table, compression="zstd")
    got, exc = _refused(iter_parquet_events(f, limits=Limits(event_bytes=MB)), "event_bytes")
    assert "row 0 is" in str(exc) and "bytes as JSON" in str(exc)


def test_a_parquet_schema_of_100k_fields_is_refused_before_pyarrow_parses_it(tmp_path):
    schema = pa.schema([pa.field(f"c{i}", pa.int32()) for i in range(100_000)])
    f = _parquet(schema.empty_table(), compression="none", write_statistics=False)
    got, exc = _refused(iter_parquet_events(f), "columns")
    assert "its schema has 100000 fields" in str(exc) and "--max-columns 10000" in str(exc)
    (tmp_path / "o.parquet").write_bytes(f.getvalue())
    peak, outcome = _peak_mb_decoding(tmp_path / "o.parquet", "iter_parquet_events(f)")
    assert outcome.startswith("LimitExceeded") and peak < 150, (peak, outcome)  # pyarrow's parse costs ~250 MB
    # pyarrow's own parse of that footer, for the record: what the guard spares
    peak, outcome = _peak_mb_decoding(tmp_path / "o.parquet", "iter_parquet_events(f, limits=Limits(columns=10**6))")
    assert peak > 150, peak


def test_ordinary_parquet_passes_every_check_unchanged():
    f = io.BytesIO()
    write_ocsf_parquet(f, 3000, seed=5)
    plain = [bytes(e) for b in iter_parquet_events(f, batch_size=500, limits=Limits(event_bytes=1 << 40))
             for e in b]
    f.seek(0)
    guarded = [bytes(e) for b in iter_parquet_events(f, batch_size=500) for e in b]
    assert len(guarded) == 3000 and hashlib.sha256(b"".join(guarded)).digest() == \
        hashlib.sha256(b"".join(plain)).digest()


def test_wide_parquet_rows_are_read_fewer_at_a_time(monkeypatch):
    from aws_s3_wodle.decode.formats import parquet
    monkeypatch.setattr(parquet, "_BATCH_BYTES", MB)  # 64 MiB in use: rows of 100 KB, 10 a batch here
    rows = 200
    f = _parquet(pa.table({"pad": [os.urandom(50_000).hex() for _ in range(rows)]}), compression="zstd")
    sizes = [len(b) for b in iter_parquet_events(f, batch_size=5000)]
    assert sum(sizes) == rows and max(sizes) == 10


def test_the_limits_are_run_settings_on_every_command_line():
    import argparse

    from aws_s3_wodle.cli.flags import add_settings
    from aws_s3_wodle.cli.wazuh import OWN_SETTINGS
    from aws_s3_wodle.config.settings import RunSettings
    names = ["max_event_bytes", "max_object_bytes", "max_compression_ratio", "max_columns", "record_max_bytes",
             "record_files"]
    assert set(names) <= set(OWN_SETTINGS)  # the Wazuh manager's command line takes them too
    parser = argparse.ArgumentParser()
    add_settings(parser, RunSettings.names())
    args = parser.parse_args(["--max-event-bytes", "1M", "--max-object-bytes", "2g", "--max-compression-ratio",
                              "50", "--max-columns", "300", "--record-max-bytes", "64KiB"])
    settings = RunSettings.from_values(vars(args))
    assert Limits.from_settings(settings) == Limits(event_bytes=MB, object_bytes=2 << 30, compression_ratio=50,
                                                    columns=300)
    assert settings.record_max_bytes == 64 * 1024 and settings.record_files == 4
    assert Limits.from_settings(RunSettings()) == Limits()
    for bad in (["--max-event-bytes", "lots"], ["--max-event-bytes", "0"], ["--record-max-bytes", "1k"],
                ["--max-columns", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)

"""Objects built to take the host's memory or disk, end to end: each refused with one clear line, the rest
delivered, the process's peak memory and the record files bounded.

The hostile objects are made here, never checked in: a Parquet value of 200 MB in a few KB, a Parquet page
of 20 MB that does not compress, a Parquet schema of 100k fields, a gzip bomb, a zip bomb, a JSON string of
1 GB (gzip: ~1 MB) and one of 12 MB that does not compress. The wodle runs in its own process against
moto's server, into a real datagram socket; its peak RSS is the kernel's VmHWM of that process.
"""
from __future__ import annotations

import base64
import gzip
import io
import json
import os
import subprocess
import sys
import threading
import time
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aws_s3_wodle.lab.buckets import BucketsLab
from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.ocsf import write_ocsf_parquet
from aws_s3_wodle.lab.security_lake import lab_env

from .test_faults import expected_uids, settle, uids

PEAK_MB = 300
MB = 1 << 20


def _peak_rss_run(cmd: list[str], env: dict, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """Run cmd to its end, reading its VmHWM every 10 ms: (the completed process, its peak RSS in MB)."""
    peak = 0.0
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output: dict = {}
    reader = threading.Thread(target=lambda: output.update(zip(("out", "err"), proc.communicate())))
    reader.start()
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                peak = max([peak] + [int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:")])
        except OSError:
            pass  # it has just exited
        if time.monotonic() > deadline:
            proc.kill()
            reader.join()
            pytest.fail(f"the wodle ran over {timeout} s")
        time.sleep(0.01)
    reader.join()
    assert peak > 0  # the watch saw the process
    return subprocess.CompletedProcess(cmd, proc.returncode, output.get("out", ""), output.get("err", "")), peak


def _refusals(stderr: str, key: str) -> list[str]:
    return [line for line in stderr.splitlines() if "refused by a limit" in line and key in line]


# --- the hostile Parquet objects

def _parquet(table: pa.Table, **kwargs) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def _value_of_200_mb() -> bytes:
    """One row whose string is 200 MB of one letter: zstd makes it a few KB."""
    big = pa.array([b"A" * (200 * MB)], pa.binary()).cast(pa.string())
    return _parquet(pa.table({"class_uid": [3001], "message": big}), compression="zstd")


def _page_of_20_mb(rows: int = 1000) -> bytes:
    """1000 rows, one of them with a 20 MB string that does not compress: a page over the event limit."""
    noise = base64.b64encode(os.urandom(15 * MB)).decode()
    values = ["x"] * rows
    values[rows // 2] = noise
    return _parquet(pa.table({"class_uid": [3001] * rows, "message": values}), compression="zstd",
                    use_dictionary=False)


def _schema_of_100k_fields() -> bytes:
    schema = pa.schema([pa.field(f"c{i}", pa.int32()) for i in range(100_000)])
    return _parquet(schema.empty_table(), compression="none", write_statistics=False)


def test_hostile_parquet_objects_are_refused_and_the_others_delivered(lab, tmp_path):
    good = []
    for seed in (71, 72):
        buf = io.BytesIO()
        write_ocsf_parquet(buf, 300, seed=seed)
        lab.put(lab.key_for("CLOUD_TRAIL_MGMT", "2.0"), buf.getvalue(), 300, "good")
        good.append((seed, 300))
    hostile = {"--max-compression-ratio": lab.put(lab.key_for("VPC_FLOW", "2.0"), _value_of_200_mb(), 1, "h"),
               "--max-event-bytes": lab.put(lab.key_for("VPC_FLOW", "2.0"), _page_of_20_mb(), 1000, "h"),
               "--max-columns": lab.put(lab.key_for("LAMBDA_EXECUTION", "2.0"), _schema_of_100k_fields(), 0, "h")}
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    with DatagramEngine(str(tmp_path / "sock" / "queue")) as engine:
        env = {**os.environ, **lab_env(lab.endpoint, lab.region)}
        proc, peak = _peak_rss_run([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once",
                                    "--socket", engine.path, "--sqs-wait", "1", "--state-dir", str(tmp_path / "state")],
                                   env)
        settle(engine)
    assert proc.returncode == 5, proc.stderr  # some objects failed; the run went on
    assert "Traceback" not in proc.stderr
    assert peak < PEAK_MB, f"peak RSS {peak:.0f} MB"
    for flag, obj in hostile.items():
        lines = _refusals(proc.stderr, obj.key)
        assert len(lines) == 1, (flag, proc.stderr)
        assert flag in lines[0] and "left in the queue" in lines[0], lines[0]
    assert "3 errors (3 refused)" in proc.stderr
    got = uids(engine)
    assert set(got) == expected_uids(*good) and max(got.values()) == 1
    print(f"hostile Parquet objects: peak RSS {peak:.0f} MB")


# --- the hostile generic objects (a buckets subscriber)

def _gzip_stream(chunks, level: int = 6) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=level) as g:
        for chunk in chunks:
            g.write(chunk)
    return buf.getvalue()


def _json_string_of_1_gb() -> bytes:
    """{"message": "xxxx... 1 GB ...x"} gzip-compressed, made a MB at a time (~1 MB compressed)."""
    return _gzip_stream([b'{"message":"', *(b"x" * MB for _ in range(1024)), b'"}\n'], level=1)


def _gzip_bomb() -> bytes:
    """1 GB of one small JSON line repeated: ~1 MB compressed."""
    line = b'{"eventName":"x"}\n'
    block = line * (MB // len(line))
    return _gzip_stream([block] * 1024, level=9)


def _zip_bomb() -> bytes:
    """A zip whose member inflates 1000:1 to 512 MB (its declared sizes say so)."""
    buf = io.BytesIO()
    line = b'{"eventName":"y"}\n'
    block = line * (MB // len(line))
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("bomb.json", "w", force_zip64=True) as member:
            for _ in range(512):
                member.write(block)
    return buf.getvalue()


def _incompressible_string_of_12_mb() -> bytes:
    return _gzip_stream([b'{"message":"', base64.b64encode(os.urandom(9 * MB)), b'"}\n'], level=1)


def test_bombs_and_huge_strings_are_refused_and_oversized_events_recorded_within_their_cap(moto_server, tmp_path):
    lab = BucketsLab(endpoint=moto_server.endpoint).create()
    good = [{"eventName": "ok", "n": i} for i in range(50)]
    ordinary = lab.put("logs/ordinary.json.gz", gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in good)),
                       good)
    # 40 events of 100 KB: too big for the engine's datagram, under the event limit: recorded, object delivered
    wide = [{"eventName": "wide", "n": i, "pad": f"{i:05d}" + "p" * (100 * 1024)} for i in range(40)]
    big_events = lab.put("logs/wide-events.json", b"".join(json.dumps(r).encode() + b"\n" for r in wide), [])
    hostile = [(lab.put("logs/string-1gb.json.gz", _json_string_of_1_gb(), []), "--max-compression-ratio 200"),
               (lab.put("logs/bomb.json.gz", _gzip_bomb(), []), "--max-compression-ratio 200"),
               (lab.put("logs/bomb.zip", _zip_bomb(), []), "--max-compression-ratio 200"),
               (lab.put("logs/string-12mb.json.gz", _incompressible_string_of_12_mb(), []), "--max-event-bytes")]
    # S3 announces each object on the queue itself (the lab's bucket notifications)
    conf = tmp_path / "ossec.conf"
    conf.write_text(lab.ossec_conf())
    state = tmp_path / "state"
    with DatagramEngine(str(tmp_path / "sock" / "queue")) as engine:
        env = {**os.environ, **lab_env(lab.endpoint, lab.region)}
        proc, peak = _peak_rss_run([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), "--once",
                                    "--socket", engine.path, "--sqs-wait", "1", "--state-dir", str(state),
                                    "--record-max-bytes", "64k", "--record-files", "1"], env)
        settle(engine)
    assert proc.returncode == 5, proc.stderr
    assert "Traceback" not in proc.stderr
    assert peak < PEAK_MB, f"peak RSS {peak:.0f} MB"
    for obj, flag in hostile:
        lines = _refusals(proc.stderr, obj.key)
        assert len(lines) == 1, (obj.key, proc.stderr)
        assert flag in lines[0] and "left in the queue" in lines[0], lines[0]
    # the ordinary object delivered, each event once
    events = [json.loads(d[len(b"1:Wazuh-AWS:"):]) for d in engine.datagrams]
    delivered = sorted(e["aws"]["n"] for e in events if e["aws"]["log_info"]["log_file"] == ordinary.key)
    assert delivered == list(range(50))
    # the oversized events: recorded (head, size, sha256), the record files within their cap, rotation logged
    assert not any(e["aws"]["log_info"]["log_file"] == big_events.key for e in events)
    files = sorted(state.glob("oversized-events.jsonl*"))
    assert [f.name for f in files] == ["oversized-events.jsonl", "oversized-events.jsonl.1"]
    assert all(f.stat().st_size <= 64 * 1024 for f in files), [f.stat().st_size for f in files]
    kept = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert kept and all(k["truncated"] and len(k["head"]) <= 4096 and k["event_bytes"] > 100 * 1024 for k in kept)
    rotations = [line for line in proc.stderr.splitlines() if "(--record-max-bytes 65536): rotated" in line]
    assert rotations and any("were removed (--record-files 1)" in line for line in rotations), \
        [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert "40 oversized events recorded" in proc.stderr
    assert "4 errors (4 refused)" in proc.stderr and ", 50 events," in proc.stderr  # nothing of a bomb was sent
    print(f"hostile generic objects: peak RSS {peak:.0f} MB")

"""Shared fixtures: one moto server per session (real HTTP), a real datagram socket per test."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Optional

import pytest

from aws_s3_wodle.lab.engine import DatagramEngine
from aws_s3_wodle.lab.security_lake import SecurityLakeLab, find_samples, lab_env
from aws_s3_wodle.lab.server import MotoServer

SHARED = Path(os.environ.get("AWS_S3_WODLE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SAMPLES = find_samples(SHARED)
SKIP_NO_SHARED = "../shared/samples not present (a user's clone): real Security Lake samples are only in the team's workspace"


@pytest.fixture(scope="session")
def moto_server():
    with MotoServer() as server:
        yield server


@pytest.fixture
def lab(moto_server):
    """A fresh Security Lake subscriber (own bucket, queue and role names) in the shared moto server."""
    suffix = uuid.uuid4().hex[:10]
    return SecurityLakeLab(endpoint=moto_server.endpoint, queue_name=f"AmazonSecurityLake-{suffix}-Main-Queue",
                           role_name=f"lake-subscriber-{suffix}").create()


@pytest.fixture
def services_lab(moto_server):
    """CloudWatch Logs groups and Inspector v2 findings of this test (names unique to it) in the moto server."""
    from aws_s3_wodle.lab.services import ServicesLab
    return ServicesLab(endpoint=moto_server.endpoint)


@pytest.fixture(params=["list", "textbatch", "sliced-textbatch"])
def as_batch(request):
    """The shapes a sink gets: a list of bytes (JSON decoders) and a TextBatch (Parquet, sent by sendmmsg),
    also one cut from a larger array (a resumed object's batch: its buffers start before its events)."""
    if request.param == "list":
        return list
    import pyarrow as pa

    from aws_s3_wodle.decode.textbatch import TextBatch
    if request.param == "textbatch":
        return lambda events: TextBatch(pa.array(list(events), pa.binary()))
    return lambda events: TextBatch(pa.array([b'{"before":1}'] * 7 + list(events), pa.binary()))[7:]


@pytest.fixture
def engine(tmp_path):
    with DatagramEngine(str(tmp_path / "queue" / "sockets" / "queue")) as e:
        yield e


def run_wodle(lab: SecurityLakeLab, conf: Path, *args: str, env: Optional[dict] = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """The wodle as an operator runs it: its own process, AWS_ENDPOINT_URL pointing at the lab."""
    full_env = {**os.environ, **lab_env(lab.endpoint, lab.region), **(env or {})}
    if "--state-dir" not in args:  # never the default under /var/ossec: each test keeps its own state
        args = (*args, "--state-dir", str(conf.parent / "state"))
    return subprocess.run([sys.executable, "-m", "aws_s3_wodle", "--config", str(conf), *args],
                          env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def fault_proxy(moto_server):
    """A fault-injecting HTTP proxy in front of the moto server (aws_s3_wodle.lab.faults)."""
    from aws_s3_wodle.lab.faults import FaultProxy
    with FaultProxy(moto_server.endpoint) as proxy:
        yield proxy


def run_cli(lab: SecurityLakeLab, *args: str, env: Optional[dict] = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """`aws-s3-wodle ARGS...` as its own process against the lab (no --config added); env None values unset."""
    full_env = {**os.environ, **lab_env(lab.endpoint, lab.region), **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "aws_s3_wodle", *args], env=full_env, capture_output=True,
                          text=True, timeout=timeout)


# Fixtures that bring up real parts (moto's server over HTTP, the lab on it): a test using one is end to end.
E2E_FIXTURES = {"moto_server", "lab", "buckets_lab", "fault_lab", "services_lab"}


def pytest_collection_modifyitems(config, items):
    """Mark the end-to-end tests (`-m e2e` / `-m "not e2e"`): everything under tests/e2e/, and every test that
    starts moto's server (directly or through a fixture that needs it)."""
    e2e_dir = Path(__file__).parent / "e2e"
    for item in items:
        path = Path(str(item.fspath))
        if e2e_dir in path.parents or E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter):
    """The fault-injection suite's table (tests/e2e/test_faults.py), shown in every run's summary."""
    table = getattr(sys.modules.get("tests.e2e.test_faults"), "TABLE", None)
    if table:
        terminalreporter.section("delivery under faults")
        terminalreporter.write_line("| fault | mode (--parallel-objects) | events expected | delivered | duplicates "
                                    "| lost |")
        terminalreporter.write_line("|---|---|---|---|---|---|")
        for fault, mode, expected, delivered, duplicates, lost in table:
            terminalreporter.write_line(f"| {fault} | {mode} | {expected} | {delivered} | {duplicates} | {lost} |")

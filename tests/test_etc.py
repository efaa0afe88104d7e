"""The files in etc/ are what they claim: every example and the packaged ossec.conf load with our parser."""
from __future__ import annotations

from pathlib import Path

import pytest

from aws_s3_wodle.config import load_config

ETC = Path(__file__).resolve().parents[1] / "etc"
EXAMPLES = sorted((ETC / "examples").glob("*.conf"))


def test_there_is_an_example_per_setup():
    assert {p.name for p in EXAMPLES} >= {"security_lake.conf", "security_lake-profile.conf",
                                         "security_lake-vpc-endpoints.conf", "security_lake-two-regions.conf"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path):
    config = load_config(str(path))
    blocks = config.enabled_blocks()
    assert blocks, path
    for _wodle, block in blocks:
        assert block.sqs_name.startswith("AmazonSecurityLake-")


def test_packaged_config_loads_and_is_disabled_until_edited():
    config = load_config(str(ETC / "ossec.conf"))
    assert [w.disabled for w in config.wodles] == [True]
    assert config.enabled_blocks() == []


def test_vpc_endpoint_example_sets_both_endpoints():
    [(_, block)] = load_config(str(ETC / "examples" / "security_lake-vpc-endpoints.conf")).enabled_blocks()
    assert block.sts_endpoint.startswith("https://vpce-") and ".s3." in block.service_endpoint
    assert block.iam_role_duration == 7200

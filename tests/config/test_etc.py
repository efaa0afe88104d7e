"""The files in etc/ are what they claim: every example and the packaged ossec.conf load with our parser."""
from __future__ import annotations

from pathlib import Path

import pytest

from aws_s3_wodle.config.reader import load_config

ETC = Path(__file__).resolve().parents[2] / "etc"
EXAMPLES = sorted((ETC / "examples").glob("*.conf"))


def test_there_is_an_example_per_setup():
    assert {p.name for p in EXAMPLES} >= {"security_lake.conf", "security_lake-profile.conf",
                                         "security_lake-vpc-endpoints.conf", "security_lake-two-regions.conf",
                                         "buckets.conf", "security_hub.conf", "bucket-prefix-sources.conf",
                                         "services.conf"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads(path):
    config = load_config(str(path))
    blocks = config.enabled_blocks()
    assert blocks, path
    for _wodle, block in blocks:
        if path.name.startswith("security_lake"):
            assert block.sqs_name.startswith("AmazonSecurityLake-")


def test_every_source_has_an_example():
    """Every block type the reader supports appears in at least one example."""
    from aws_s3_wodle.config.reader import BLOCK_TYPES
    seen = {(type(b).TAG if hasattr(type(b), "TAG") else "bucket", getattr(b, "kind", None) or type(b).TYPE)
            for p in EXAMPLES for _, b in load_config(str(p)).enabled_blocks()}
    kinds = {kind for _, kind in seen}
    for (tag, kind) in BLOCK_TYPES:
        if tag in ("subscriber", "service"):
            assert kind in kinds, f"no example for <{tag} type=\"{kind}\">"
    assert {"cloudtrail", "vpcflow", "waf"} <= kinds


def test_packaged_config_loads_and_is_disabled_until_edited():
    config = load_config(str(ETC / "ossec.conf"))
    assert [w.disabled for w in config.wodles] == [True]
    assert config.enabled_blocks() == []


def test_vpc_endpoint_example_sets_both_endpoints():
    [(_, block)] = load_config(str(ETC / "examples" / "security_lake-vpc-endpoints.conf")).enabled_blocks()
    assert block.sts_endpoint.startswith("https://vpce-") and ".s3." in block.service_endpoint
    assert block.iam_role_duration == 7200

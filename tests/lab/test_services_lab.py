"""`aws-s3-wodle lab services`: the demo of the service blocks passes (three runs, each exactly what it should)."""
from __future__ import annotations

import pytest

from aws_s3_wodle.lab.services import demo


@pytest.mark.e2e
def test_the_services_demo_passes(tmp_path, capsys):
    assert demo(tmp_path, events=40) == 0
    out = capsys.readouterr().out
    assert "first run: expected 44 events, received 44 (OK)" in out and "second run: expected 0 events" in out

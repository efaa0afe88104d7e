"""Run settings (config/settings.py): declared once, they make every command line's flags and the README table."""
from __future__ import annotations

from pathlib import Path

import pytest

from aws_s3_wodle.cli import check, main, wazuh
from aws_s3_wodle.config.settings import RunSettings, settings_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_flag_table_is_the_one_generated_from_the_declarations():
    assert settings_markdown() in README.read_text()


def test_each_command_line_takes_its_defaults_from_the_declarations():
    defaults = RunSettings()
    ours = vars(main.build_parser().parse_args([]))
    assert {name: ours[name] for name in RunSettings.names()} == vars(defaults)
    manager = vars(wazuh.build_parser().parse_args(["--subscriber", "security_lake", "--queue", "q"]))
    for name in wazuh.OWN_SETTINGS:
        assert manager[name] == getattr(defaults, name), name
    assert check.build_parser().get_default("wazuh_path") == defaults.wazuh_path


@pytest.mark.parametrize("argv", [["--parallel-objects", "65"], ["--sqs-wait", "21"], ["--debug", "4"],
                                  ["--convert-threads", "-1"]])
def test_a_setting_out_of_its_range_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main.build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_the_manager_command_line_and_ours_build_the_same_settings():
    ours = RunSettings.from_values(vars(main.build_parser().parse_args(
        ["--once", "--run-on-start", "--state-dir", "/tmp/s", "--batch-size", "7", "--sqs-wait", "3"])))
    args = wazuh.build_parser().parse_args(["--subscriber", "security_lake", "--queue", "q", "--state-dir", "/tmp/s",
                                           "--batch-size", "7", "--sqs-wait", "3"])
    theirs = wazuh.settings_of(args, {"debug": 0})
    assert theirs.once and theirs.run_on_start and theirs.config == wazuh.WHERE
    assert {**vars(theirs), "config": ours.config} == vars(ours)

"""Command line: `aws-s3-wodle [options]` runs the configured blocks; `aws-s3-wodle lab ...` the local lab,
`aws-s3-wodle test ...` the setup check; Wazuh's own flags (`--subscriber ...`) one pass (cli/wazuh.py).

Exit codes (see errors.py and the README): 0 ok, 1 configuration, 2 usage, 3 AWS access, 4 sink,
5 some objects failed, 130 stopped by a signal.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from aws_s3_wodle import __version__
from aws_s3_wodle.cli.flags import add_settings
from aws_s3_wodle.config.reader import load_config
from aws_s3_wodle.config.settings import RunSettings
from aws_s3_wodle.errors import guarded
from aws_s3_wodle.observe import log as logsetup
from aws_s3_wodle.platform.exit import exit_now
from aws_s3_wodle.platform.memory import tune_allocators

log = logging.getLogger("aws-s3-wodle")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="aws-s3-wodle",
        description="Pull AWS security data (Amazon Security Lake) into Wazuh's analysis engine. "
                    "Subcommands: 'aws-s3-wodle test --help' checks AWS and engine connectivity; "
                    "'aws-s3-wodle lab --help' for the local lab. A Wazuh manager's own command line "
                    "('--subscriber security_lake --queue ...') runs one pass, as its aws-s3 script would.")
    add_settings(p, RunSettings.names())
    p.add_argument("--version", action="version", version=f"aws-s3-wodle {__version__}")
    return p


def run(args: argparse.Namespace) -> int:
    """Our own command line: the configuration from --config, then the one entry every command line shares."""
    from aws_s3_wodle.run import process
    settings = RunSettings.from_values(vars(args))
    if settings.reset_state:
        return process.reset_state(settings, settings.reset_state)
    config = load_config(settings.config)  # before the heavy imports: a bad config fails fast
    return process.run(config, settings)


def main(argv: Optional[Sequence[str]] = None) -> int:
    tune_allocators()  # before pyarrow is imported (memory.py says why)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lab":
        from aws_s3_wodle.lab.cli import main as lab_main
        return lab_main(argv[1:])
    if argv and argv[0] == "test":
        from aws_s3_wodle.cli.check import main as test_main
        return test_main(argv[1:])
    from aws_s3_wodle.cli.wazuh import is_wazuh_command_line
    if is_wazuh_command_line(argv):  # called by a Wazuh manager in place of its own script
        from aws_s3_wodle.cli.wazuh import main as wazuh_main
        return wazuh_main(argv)
    args = build_parser().parse_args(argv)
    logsetup.setup(args.debug)
    return guarded(log, lambda: run(args), args.debug > 0)


def entry() -> None:
    """The `aws-s3-wodle` executable: `main`, then, after a run, an exit without the interpreter's teardown.

    When a run returns, everything it did is durable: events were accepted by the engine, the state
    database committed and closed, messages deleted, the dead-letter and record files closed, the metrics
    file written. Tearing down pyarrow's and botocore's modules after that costs ~0.13 s of CPU on every
    pass a manager starts (measured: bench/README.md), so the logs and standard streams are flushed and
    the process ends at once, with main's exit code whatever the flushing meets (a closed stdout, a late
    signal). The lab and the connectivity check end normally (their servers and temporary files clean up
    at exit).
    """
    argv = sys.argv[1:]
    code = main(argv)
    if argv and argv[0] in ("lab", "test"):
        raise SystemExit(code)
    exit_now(code)

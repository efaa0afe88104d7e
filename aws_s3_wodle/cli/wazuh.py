"""Wazuh's command line for one pass, so a Wazuh manager can call us in place of its own aws-s3 script.

wazuh-modulesd (wm_aws.c) runs its script once per block and interval, from the Wazuh directory, with the
block's options as flags, for example

    wodles/aws/aws-s3 --subscriber security_lake --queue NAME --external_id ID --iam_role_arn ARN
                      [--iam_role_duration S] [--aws_profile P] [--sts_endpoint URL] [--service_endpoint URL]
                      [--discard-field F --discard-regex R] [--debug 1|2|3] [--skip_on_error]
    wodles/aws/aws-s3 --bucket NAME [--remove] [--aws_profile P] [--iam_role_arn ARN] ... [--type TYPE] ...

and reads back every line it prints (stdout and stderr) and its exit status.

The translation is a table: each Wazuh flag names the config field it sets, and the value is checked by
that field's own parser (the one ossec.conf goes through), so a flag and its XML element can never
disagree. A mode flag (`--subscriber`, `--bucket`, `--service`) chooses the block class from
config.BLOCK_TYPES; more modes and flags are rows to add. The pass runs through cli.run like `--once`,
with the lines printed as Wazuh's script prints them (`DEBUG:`, `INFO:`, `WARNING:`, `ERROR:`, no
timestamps) and the documented exit codes.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass, fields
from typing import Any, Optional, Sequence

from aws_s3_wodle.observe import log as logsetup
from aws_s3_wodle.cli.flags import add_settings
from aws_s3_wodle.config.settings import RunSettings
from aws_s3_wodle.config.buckets import BUCKET_TYPES
from aws_s3_wodle.config.reader import BLOCK_TYPES, KNOWN_UNSUPPORTED
from aws_s3_wodle.config.wodle import Config, Wodle
from aws_s3_wodle.config.discard import parse_discard_regex
from aws_s3_wodle.errors import EXIT_USAGE, WodleError, guarded

log = logging.getLogger("aws-s3-wodle")

WHERE = "<Wazuh command line>"

# Our own settings a wrapper may add to the manager's flags (the manager itself never passes them).
OWN_SETTINGS = ("wazuh_path", "socket", "output", "state_dir", "engine_retry", "batch_size", "sqs_wait", "keep_nulls",
                "parallel_objects", "convert_threads", "metrics_file", "max_event_bytes", "max_object_bytes",
                "max_compression_ratio", "max_columns", "record_max_bytes", "record_files")


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    target: str                # "block.<field>", "discard.field|regex", "run.<option>"
    help: str
    switch: bool = False       # takes no value (store_true)


@dataclass(frozen=True)
class Mode:
    """A flag that selects what one pass reads: a block of config.BLOCK_TYPES[(tag, kind)].

    The flag's value is either a field of the block (`--bucket NAME`: value_field="name", the kind from
    the `kind_flag` run option, e.g. `--type`) or the kind itself (value_field=None: `--subscriber TYPE`,
    whose queue comes from another flag, `--service TYPE`).
    """

    flag: Flag
    tag: str
    value_field: Optional[str] = None
    kind_flag: Optional[str] = None     # run.<option> holding the kind, when the value is not the kind
    default_kind: Optional[str] = None

    def kinds(self) -> list[str]:
        return [k for (t, k) in BLOCK_TYPES if t == self.tag]


MODES: list[Mode] = [
    Mode(Flag(("-b", "--bucket"), "mode.bucket", "S3 bucket holding AWS logs: read it by listing (bucket mode)"),
         tag="bucket", value_field="name", kind_flag="type", default_kind="cloudtrail"),
    Mode(Flag(("-sb", "--subscriber"), "mode.subscriber", "subscriber type: security_lake, buckets or "
                                                          "security_hub (its queue with --queue)"),
         tag="subscriber"),
    Mode(Flag(("-sr", "--service"), "mode.service", "AWS service to read: inspector or cloudwatchlogs"),
         tag="service"),
]

FLAGS: list[Flag] = [
    Flag(("-q", "--queue"), "block.sqs_name", "SQS queue of the subscriber (name, URL or ARN)"),
    Flag(("-t", "--type"), "run.type", f"bucket type: {', '.join(BUCKET_TYPES)} (default cloudtrail)"),
    Flag(("-c", "--aws_account_id"), "block.aws_account_id", "comma-separated AWS account ids"),
    Flag(("-O", "--aws_organization_id"), "block.aws_organization_id", "organization id of an organization trail"),
    Flag(("-n", "--aws_account_alias"), "block.aws_account_alias", "AWS account alias"),
    Flag(("-r", "--regions"), "block.regions", "comma-separated AWS regions"),
    Flag(("-l", "--trail_prefix"), "block.path", "key prefix before AWSLogs/ (<path>)"),
    Flag(("-L", "--trail_suffix"), "block.path_suffix", "key prefix after AWSLogs/ (<path_suffix>)"),
    Flag(("-s", "--only_logs_after"), "block.only_logs_after", "read logs of this day and later, YYYY-MMM-DD"),
    Flag(("-R", "--remove"), "block.remove_from_bucket", "delete objects once delivered", switch=True),
    Flag(("-p", "--aws_profile"), "block.aws_profile", "AWS profile to start from"),
    Flag(("-i", "--iam_role_arn"), "block.iam_role_arn", "role to assume"),
    Flag(("-x", "--external_id"), "block.external_id", "external id for the role (never logged; a value on a "
                                                       "command line shows in ps: the switch's wrapper hands it "
                                                       "over with --external_id-fd)"),
    Flag(("-rd", "--iam_role_duration"), "block.iam_role_duration", "role session seconds, 900 to 43200"),
    Flag(("-st", "--sts_endpoint"), "block.sts_endpoint", "STS endpoint for AssumeRole"),
    Flag(("-se", "--service_endpoint"), "block.service_endpoint", "S3 endpoint"),
    Flag(("-df", "--discard-field"), "discard.field", "record field for --discard-regex (dotted path)"),
    Flag(("-dr", "--discard-regex"), "discard.regex", "drop records whose --discard-field matches"),
    Flag(("-g", "--aws_log_groups"), "block.aws_log_groups", "CloudWatch log groups (service mode)"),
    Flag(("-P", "--remove-log-streams"), "block.remove_log_streams", "remove read log streams (service mode)",
         switch=True),
    Flag(("-o", "--reparse"), "run.reparse", "read again from only_logs_after", switch=True),
    Flag(("-e", "--skip_on_error"), "run.skip_on_error", "go on with the next object when one fails", switch=True),
    Flag(("-d", "--debug"), "run.debug", "debug level 0..3"),
]

# Flags Wazuh's script still accepts that we refuse with a reason, not "unrecognized".
REFUSED = {("-a", "--access_key"): "keys on a command line are visible to every user (ps); use --aws_profile, "
                                   "the AWS_* environment variables or an instance role",
           ("-k", "--secret_key"): "keys on a command line are visible to every user (ps); use --aws_profile, "
                                   "the AWS_* environment variables or an instance role"}


def is_wazuh_command_line(argv: Sequence[str]) -> bool:
    names = {n for mode in MODES for n in mode.flag.names}
    return any(a.split("=", 1)[0] in names for a in argv)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, as the manager logs it, not the whole usage text
        self.exit(EXIT_USAGE, f"ERROR: {message}; see: aws-s3-wodle --subscriber TYPE --help\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="aws-s3-wodle", allow_abbrev=False,
                description="One pass with Wazuh's aws-s3 command-line flags, then exit.")
    modes = p.add_mutually_exclusive_group(required=True)
    for mode in MODES:
        modes.add_argument(*mode.flag.names, dest=mode.flag.target, metavar="NAME", help=mode.flag.help)
    for flag in FLAGS:
        if flag.switch:
            p.add_argument(*flag.names, dest=flag.target, action="store_true", help=flag.help)
        else:
            p.add_argument(*flag.names, dest=flag.target, help=flag.help)
    for names in REFUSED:
        p.add_argument(*names, dest="refused:" + names[-1], help=argparse.SUPPRESS)
    own = p.add_argument_group("aws-s3-wodle's own options (the manager never passes these; a wrapper may)")
    add_settings(p, OWN_SETTINGS, short=False, group=own)
    own.add_argument("--external_id-fd", dest="external_id_fd", type=int, metavar="FD",
                     help="read the external id from this file descriptor (keeps it out of the process list)")
    return p


class UsageError(WodleError):
    exit_code = EXIT_USAGE


def _parse_field(cls: type, name: str, flag: str, text: str) -> Any:
    f = next(f for f in fields(cls) if f.name == name)
    try:
        return f.metadata["parse"](text.strip())
    except ValueError as exc:
        shown = "" if f.metadata.get("secret") else f" '{text[:80]}'"
        raise UsageError(f"{flag}: invalid value{shown}: {exc}") from None


def _block_class(mode: Mode, kind: str) -> type:
    cls = BLOCK_TYPES.get((mode.tag, kind))
    if cls is not None:
        return cls
    flag = f"--{mode.kind_flag}" if mode.value_field else mode.flag.names[-1]
    supported = ", ".join(mode.kinds()) or "none yet"
    if kind in KNOWN_UNSUPPORTED.get(mode.tag, ()):
        raise UsageError(f"{flag} {kind} is not supported by this version of aws-s3-wodle yet; supported: {supported}")
    raise UsageError(f"{flag}: unknown type '{kind}'; supported: {supported}")


def _read_fd(fd: int) -> str:
    chunks = []
    try:
        while True:
            data = os.read(fd, 4096)
            if not data:
                break
            chunks.append(data)
    except OSError as exc:
        raise UsageError(f"--external_id-fd {fd} cannot be read ({exc.strerror})") from None
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    return b"".join(chunks).decode().strip()


def translate(args: argparse.Namespace) -> tuple[Wodle, Any, dict[str, Any]]:
    """Namespace of Wazuh flags -> (the wodle settings, the block, run options)."""
    values = vars(args)
    for names, reason in REFUSED.items():
        if values.get("refused:" + names[-1]) is not None:
            raise UsageError(f"{names[-1]} is not supported: {reason}")
    mode = next(m for m in MODES if values.get(m.flag.target) is not None)
    value = values[mode.flag.target]
    kind = (values.get(f"run.{mode.kind_flag}") or mode.default_kind) if mode.value_field else value
    cls = _block_class(mode, kind)
    block = cls()
    if "kind" in {f.name for f in fields(cls)}:
        block.kind = kind
    if mode.value_field:
        setattr(block, mode.value_field, _parse_field(cls, mode.value_field, mode.flag.names[-1], value))
    if values.get("external_id_fd") is not None:
        values["block.external_id"] = _read_fd(values["external_id_fd"])
    run: dict[str, Any] = {}
    discard: dict[str, str] = {}
    given: set[str] = set()
    for flag in FLAGS:
        got = values.get(flag.target)
        if got is None or got is False:
            continue
        scope, _, name = flag.target.partition(".")
        if scope == "block":
            if not any(f.name == name for f in fields(cls)):
                raise UsageError(f"{flag.names[-1]} does not apply to {mode.flag.names[-1]} {kind}")
            setattr(block, name, True if flag.switch else _parse_field(cls, name, flag.names[-1], got))
            given.add(name)
        elif scope == "discard":
            discard[name] = got
        else:
            run[name] = got
    if discard:
        if not any(f.name == "discard_regex" for f in fields(cls)):
            if kind == "security_lake":
                raise UsageError("--discard-regex is not available for Security Lake (Wazuh's module refuses "
                                 "<discard_regex> in a security_lake subscriber too)")
            raise UsageError(f"--discard-regex does not apply to {mode.flag.names[-1]} {kind}")
        if set(discard) != {"field", "regex"}:
            raise UsageError("--discard-field and --discard-regex go together; give both")
        try:
            block.discard_regex = parse_discard_regex(discard["regex"], {"field": discard["field"]})
        except ValueError as exc:
            raise UsageError(f"--discard-regex: {exc}") from None
    missing = [f for f in fields(cls) if f.metadata.get("required") and f.name not in given
               and f.name != mode.value_field]
    if missing:
        flag = next((fl.names[-1] for fl in FLAGS if fl.target == f"block.{missing[0].name}"), missing[0].name)
        raise UsageError(f"{flag} is required with {mode.flag.names[-1]} {kind}: {missing[0].metadata['help']}")
    if mode.kind_flag:
        run.pop(mode.kind_flag, None)
    try:
        debug = int(run.get("debug", 0))
        if not 0 <= debug <= 3:
            raise ValueError
    except ValueError:
        raise UsageError(f"--debug: use a level from 0 to 3, not '{run.get('debug')}'") from None
    run["debug"] = debug
    validate = getattr(block, "validate", None)
    if validate:
        try:
            validate()
        except ValueError as exc:
            raise UsageError(f"{mode.flag.names[-1]} {value}: {exc}") from None
    # Wazuh's script stops at the first failure unless the manager passes --skip_on_error.
    wodle = Wodle(skip_on_error=bool(run.pop("skip_on_error", False)), blocks=[block])
    return wodle, block, run


def settings_of(args: argparse.Namespace, run: dict[str, Any]) -> RunSettings:
    """The run settings of one pass (--once) of the translated block: our own flags, the manager's run flags."""
    values = {name: getattr(args, name) for name in OWN_SETTINGS}
    return RunSettings.from_values({**values, "config": WHERE, "once": True, "run_on_start": True,
                                    "debug": run["debug"], "reparse": bool(run.get("reparse"))})


def main(argv: Sequence[str]) -> int:
    from aws_s3_wodle.run import process

    args = build_parser().parse_args(list(argv))
    debug = args.__dict__.get("run.debug")
    # Lines as Wazuh's script prints them: no timestamps (the manager adds its own), one message per line.
    # The manager reads stdout and stderr alike; stderr keeps stdout free for --output -.
    logsetup.setup(int(debug) if debug and str(debug).isdigit() and int(debug) <= 3 else 0, timestamps=False)

    def one_pass() -> int:
        wodle, block, run = translate(args)
        logsetup.register_secrets(block.secrets())
        return process.run(Config(path=WHERE, wodles=[wodle]), settings_of(args, run))

    return guarded(log, one_pass, bool(debug and str(debug).isdigit() and int(debug) > 0))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))

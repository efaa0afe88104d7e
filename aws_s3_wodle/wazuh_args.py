"""Drop-in for Wazuh's `wodles/aws/aws-s3`: the manager's own command line runs one pass.

wazuh-modulesd (wm_aws.c) runs its script once per block and interval, with the block's options as
flags, e.g. for a Security Lake subscriber:

    wodles/aws/aws-s3 --subscriber security_lake --queue NAME --external_id ID --iam_role_arn ARN
                      [--iam_role_duration S] [--aws_profile P] [--sts_endpoint URL] [--service_endpoint URL]
                      [--discard-field F] [--discard-regex R] [--debug 1|2|3] [--skip_on_error]

and reads back what the script prints (every line, stdout and stderr) and its exit status. This module
turns such a command line into the same config blocks `ossec.conf` would give (one table, `FLAGS`: flag ->
the element of the block it sets, checked by that element's own parser) and runs them once through the
normal path. Lines are printed as `DEBUG:`, `INFO:`, `WARNING:`, `ERROR:` without timestamps, the way
Wazuh's script prints them; the exit status is the documented one (errors.py).

Block types come from `config.BLOCK_TYPES`: a type another module registers (a bucket type, another
subscriber type) works here as soon as its dataclass declares the elements the flags name.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import NoReturn, Optional, Sequence

from . import config as cfg
from .errors import EXIT_USAGE

# Flags that select Wazuh's mode: their presence makes a command line a Wazuh-style call.
MODE_FLAGS = {"--subscriber": "subscriber", "-sb": "subscriber", "--bucket": "bucket", "-b": "bucket",
              "--service": "service", "-sr": "service"}


@dataclass(frozen=True)
class Flag:
    """One flag of Wazuh's aws-s3 script: what it sets in our config, for which kinds of block."""

    names: tuple[str, ...]
    dest: str
    help: str
    element: Optional[str] = None      # block element it sets (None: handled by the translation itself)
    switch: bool = False               # takes no value; sets the element to 'yes'
    kinds: tuple[str, ...] = ("subscriber", "bucket", "service")
    secret: bool = False
    attribute: Optional[str] = None    # sets this attribute of `element` instead of its text


# Every flag wm_aws.c passes (subscribers, buckets, services) plus the script's own extras (--reparse).
FLAGS: tuple[Flag, ...] = (
    Flag(("--subscriber", "-sb"), "subscriber", "subscriber type: security_lake, buckets or security_hub"),
    Flag(("--bucket", "-b"), "bucket", "bucket to read (bucket mode); its type comes from --type", element="name",
         kinds=("bucket",)),
    Flag(("--service", "-sr"), "service", "service to read: inspector or cloudwatchlogs (service mode)"),
    Flag(("--queue", "-q"), "queue", "SQS queue name of the subscriber", element="sqs_name", kinds=("subscriber",)),
    Flag(("--external_id", "-x"), "external_id", "external id for AssumeRole (never logged)", element="external_id",
         secret=True),
    Flag(("--iam_role_arn", "-i"), "iam_role_arn", "role to assume", element="iam_role_arn"),
    Flag(("--iam_role_duration", "-rd"), "iam_role_duration", "assumed-role session seconds (900-43200)",
         element="iam_role_duration"),
    Flag(("--aws_profile", "-p"), "aws_profile", "profile of the shared AWS credentials/config files",
         element="aws_profile"),
    Flag(("--sts_endpoint", "-st"), "sts_endpoint", "STS endpoint for AssumeRole", element="sts_endpoint"),
    Flag(("--service_endpoint", "-se"), "service_endpoint", "S3 (or service) endpoint", element="service_endpoint"),
    Flag(("--discard-field", "-df"), "discard_field", "event field the discard regex applies to",
         element="discard_regex", attribute="field"),
    Flag(("--discard-regex", "-dr"), "discard_regex", "events whose field matches are skipped",
         element="discard_regex"),
    Flag(("--skip_on_error", "-e"), "skip_on_error", "go on with the next object when one fails (Wazuh passes it "
         "when <skip_on_error> is yes)", switch=True),
    Flag(("--debug", "-d"), "debug", "debug level 0-3 (Wazuh passes 1-3 after the manager's own debug level)"),
    # bucket and service mode (wm_aws.c wm_aws_run_s3 / wm_aws_run_service)
    Flag(("--type", "-t"), "type", "bucket type (default cloudtrail)", kinds=("bucket",)),
    Flag(("--remove", "-R"), "remove", "remove processed objects from the bucket", element="remove_from_bucket",
         switch=True, kinds=("bucket",)),
    Flag(("--access_key",), "access_key", "(refused: put keys in a profile)", kinds=("bucket", "service")),
    Flag(("--secret_key",), "secret_key", "(refused: put keys in a profile)", kinds=("bucket", "service"),
         secret=True),
    Flag(("--aws_organization_id", "-O"), "aws_organization_id", "organization id of an organization trail",
         element="aws_organization_id", kinds=("bucket",)),
    Flag(("--aws_account_id", "-c"), "aws_account_id", "comma list of account ids", element="aws_account_id",
         kinds=("bucket", "service")),
    Flag(("--aws_account_alias", "-n"), "aws_account_alias", "account alias", element="aws_account_alias",
         kinds=("bucket", "service")),
    Flag(("--trail_prefix", "-l"), "trail_prefix", "key prefix before AWSLogs/", element="path", kinds=("bucket",)),
    Flag(("--trail_suffix", "-L"), "trail_suffix", "key suffix after the region", element="path_suffix",
         kinds=("bucket",)),
    Flag(("--only_logs_after", "-s"), "only_logs_after", "first day to read, YYYY-MMM-DD",
         element="only_logs_after", kinds=("bucket", "service")),
    Flag(("--regions", "-r"), "regions", "comma list of regions", element="regions", kinds=("bucket", "service")),
    Flag(("--reparse", "-o"), "reparse", "read again what was already read", switch=True, kinds=("bucket",)),
    Flag(("--aws_log_groups", "-g"), "aws_log_groups", "CloudWatch log groups", element="aws_log_groups",
         kinds=("service",)),
    Flag(("--remove-log-streams", "-P"), "remove_log_streams", "remove processed log streams",
         element="remove_log_streams", switch=True, kinds=("service",)),
)


def is_wazuh_call(argv: Sequence[str]) -> bool:
    """True when the command line is the manager's (it names a subscriber, bucket or service)."""
    return any(a.split("=", 1)[0] in MODE_FLAGS for a in argv)


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one `ERROR:` line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="aws-s3-wodle (Wazuh drop-in)", add_help=True,
                description="Wazuh aws-s3 command line: one pass of the block the flags describe, then exit.")
    for f in FLAGS:
        if f.switch:
            p.add_argument(*f.names, dest=f.dest, action="store_true", help=f.help)
        elif f.dest == "debug":
            p.add_argument(*f.names, dest="debug", type=int, choices=range(0, 4), default=0, metavar="{0..3}",
                           help=f.help)
        else:
            p.add_argument(*f.names, dest=f.dest, help=f.help)
    ours = p.add_argument_group("aws-s3-wodle's own options (the manager never passes these; a wrapper may)")
    ours.add_argument("--wazuh-path", default="/var/ossec", help="Wazuh directory (default %(default)s)")
    out = ours.add_mutually_exclusive_group()
    out.add_argument("--socket", help="the engine's datagram socket (default WAZUH_PATH/queue/sockets/queue)")
    out.add_argument("--output", help="JSON lines to this file instead of the engine ('-' = stdout)")
    ours.add_argument("--state-dir", help="where events too big for the engine are recorded")
    ours.add_argument("--metrics-file", help="Prometheus text file written after the run")
    ours.add_argument("--sqs-wait", type=int, default=20, choices=range(0, 21), metavar="{0..20}")
    ours.add_argument("--batch-size", type=int, default=5000)
    ours.add_argument("--keep-nulls", action="store_true")
    ours.add_argument("--engine-retry", type=float, default=30.0)
    ours.add_argument("--external_id-fd", dest="external_id_fd", type=int,
                      help="read the external id from this file descriptor (keeps it out of the process list)")
    return p


def _mode(ns: argparse.Namespace) -> tuple[str, str]:
    chosen = [(k, v) for k, v in (("subscriber", ns.subscriber), ("bucket", ns.bucket), ("service", ns.service)) if v]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --subscriber, --bucket or --service")
    kind, value = chosen[0]
    if kind == "bucket":
        return "bucket", ns.type or "cloudtrail"
    return kind, value


def _block_class(kind: str, type_name: str) -> type:
    tag = kind
    cls = cfg.BLOCK_TYPES.get((tag, type_name))
    if cls is not None:
        return cls
    supported = ", ".join(f"--{t} {n}" if t != "bucket" else f"--bucket NAME --type {n}"
                          for (t, n) in sorted(cfg.BLOCK_TYPES))
    if type_name in cfg.KNOWN_UNSUPPORTED.get(tag, ()):
        what = f"--bucket with --type {type_name}" if tag == "bucket" else f"--{tag} {type_name}"
        raise UsageError(f"{what} is not supported by this version of aws-s3-wodle yet; supported: {supported}")
    raise UsageError(f"unknown {tag} type '{type_name}'; supported: {supported}")


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


def translate(ns: argparse.Namespace) -> cfg.Config:
    """The flags as one Config with one wodle section holding one block, checked like ossec.conf is."""
    kind, type_name = _mode(ns)
    cls = _block_class(kind, type_name)
    if getattr(ns, "external_id_fd", None) is not None:
        ns.external_id = _read_fd(ns.external_id_fd)
    if ns.access_key or ns.secret_key:
        raise UsageError("--access_key/--secret_key are not accepted (keys on a command line show in the process "
                         "list); put them in a profile of the shared credentials file and use --aws_profile")
    options = cfg._options(cls)
    block = cls()
    where = cfg.Location("<Wazuh command line>", 0)
    block.location = where
    label = f'<{cls.TAG} type="{cls.TYPE}">'
    texts: dict[str, tuple[Flag, str]] = {}          # element -> (flag, its text)
    attrs: dict[str, dict[str, str]] = {}             # element -> its attributes (e.g. discard_regex field=)
    for f in FLAGS:
        value = getattr(ns, f.dest, None)
        if f.element is None or value in (None, False):
            continue
        flag = f.names[0]
        if kind not in f.kinds:
            raise UsageError(f"{flag} does not apply to --{kind}")
        if options.get(f.element) is None:
            if f.element == "discard_regex" and cls.TYPE == "security_lake":
                raise UsageError(f"{flag} is not available for Security Lake (Wazuh's module refuses "
                                 "<discard_regex> in a security_lake subscriber too)")
            raise UsageError(f"{flag} is not supported for {label} by this version of aws-s3-wodle")
        if f.attribute:
            attrs.setdefault(f.element, {})[f.attribute] = str(value).strip()
        else:
            texts[f.element] = (f, "yes" if f.switch else str(value).strip())
    for element in attrs.keys() - texts.keys():
        flag = next(f.names[0] for f in FLAGS if f.element == element and f.attribute)
        text_flag = next(f.names[0] for f in FLAGS if f.element == element and not f.attribute)
        raise UsageError(f"{flag} needs {text_flag} too")
    for element, (f, text) in texts.items():
        opt = options[element]
        declared = opt.metadata.get("attributes") or ()
        try:
            parsed = opt.metadata["parse"](text, attrs.get(element, {})) if declared else opt.metadata["parse"](text)
        except ValueError as exc:
            shown = "" if f.secret or opt.metadata.get("secret") else f" '{text[:80]}'"
            raise UsageError(f"{f.names[0]}: invalid value{shown}: {exc}") from None
        setattr(block, opt.name, parsed)
    given = set(texts)
    for element, opt in options.items():
        if opt.metadata.get("required") and element not in given:
            flags = [f.names[0] for f in FLAGS if f.element == element]
            name = flags[0] if flags else f"<{element}>"
            raise UsageError(f"{name} is required with --{kind} {type_name}: {opt.metadata['help']}")
    check = getattr(block, "validate", None)
    if check:
        try:
            check()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if ns.reparse:
        raise UsageError("--reparse is not supported by this version of aws-s3-wodle")
    wodle = cfg.Wodle(skip_on_error=bool(ns.skip_on_error), run_on_start=True, location=where)
    wodle.blocks.append(block)
    return cfg.Config(path="<Wazuh command line>", wodles=[wodle])


def run_args(ns: argparse.Namespace, config: cfg.Config) -> argparse.Namespace:
    """The namespace cli.run expects: one pass (--once) of the translated config."""
    return argparse.Namespace(config="<Wazuh command line>", prebuilt_config=config, once=True, run_on_start=True,
                              wazuh_path=ns.wazuh_path, socket=ns.socket, output=ns.output, state_dir=ns.state_dir,
                              debug=ns.debug, sqs_wait=ns.sqs_wait, batch_size=ns.batch_size,
                              keep_nulls=ns.keep_nulls, engine_retry=ns.engine_retry,
                              metrics_file=ns.metrics_file)


def main(argv: Sequence[str]) -> int:
    from . import log as logsetup
    from .cli import run
    from .errors import WodleError
    try:
        ns = build_parser().parse_args(list(argv))
    except UsageError as exc:
        print(f"ERROR: {exc}", flush=True)
        return EXIT_USAGE
    # Lines as Wazuh's script prints them: no timestamp (the manager adds its own), on stdout, which the
    # manager reads (it reads stderr too); stderr when stdout carries the events (--output -).
    logsetup.setup(ns.debug, timestamps=False, stream=sys.stderr if ns.output == "-" else sys.stdout)
    try:
        config = translate(ns)
    except UsageError as exc:
        logsetup.log.error("%s", exc)
        return EXIT_USAGE
    for _w, block in config.enabled_blocks():
        logsetup.register_secrets(block.secrets())
    try:
        return run(run_args(ns, config))
    except WodleError as exc:
        logsetup.log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        logsetup.log.warning("Stopped at once by a second signal; unacknowledged messages return to the queue")
        return 130

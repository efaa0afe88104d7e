"""The process's run settings (everything not in ossec.conf), declared once: flag, default, check, help.

Every command line builds its flags from these declarations (`cli/flags.py`): our own, the Wazuh
manager's (its "own options" group) and `test` share one definition each, and a default lives only here.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional

from aws_s3_wodle.config.wodle import DEFAULT_CONFIG, DEFAULT_WAZUH_PATH


def _converted(text: str, convert: Callable[[str], Any], what: str) -> Any:
    """`convert(text)`, or the usage error argparse shows with the flag's name: "'x' is not <what>"."""
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    """An integer of at least 1 (batch sizes: 0 divides by zero, a negative size reads nothing)."""
    value = _converted(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer (at least 1)")
    return value


def seconds(text: str) -> float:
    """A finite number of seconds, 0 or more (nan or a negative wait would spin without sleeping)."""
    value = _converted(text, float, "a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds, 0 or more")
    return value


def whole(low: int, high: int) -> Callable[[str], int]:
    """An integer from low to high (argparse's message names the flag and the range)."""
    def parse(text: str) -> int:
        value = _converted(text, int, "an integer")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not from {low} to {high}")
        return value
    parse.__name__ = f"{low}..{high}"
    return parse


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def byte_size(text: str) -> int:
    """A number of bytes, at least 1, with an optional binary unit: 65536, 64k, 8M, 4G."""
    body = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = body[-1:] if body[-1:] in ("k", "m", "g") else ""
    number = body[:len(body) - len(unit)]
    value = _converted(text, lambda _: int(number), "a size in bytes (e.g. 65536, 64k, 8M, 4G)") * _UNITS[unit]
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive size")
    return value


def record_size(text: str) -> int:
    """A record file's size cap: a size of at least 64k (room for a few recorded events)."""
    value = byte_size(text)
    if value < 64 << 10:
        raise argparse.ArgumentTypeError(f"{text!r} is under 64k: too small to hold a few recorded events")
    return value


# What one object may cost the host (decode/limits.py applies them). Chosen so that a 2-core host with a
# few GB survives hostile objects two at a time, and no real AWS log is refused: the largest AWS records
# (CloudTrail events, Config items) are a few hundred KB, AWS logs compress 5-30:1, an OCSF schema has a
# few hundred to a few thousand fields.
MAX_EVENT_BYTES = 8 << 20
MAX_OBJECT_BYTES = 4 << 30
MAX_COMPRESSION_RATIO = 200
MAX_COLUMNS = 10_000
RECORD_MAX_BYTES = 16 << 20
RECORD_FILES = 4


def setting(default: Any, *flags: str, help: str, doc: Optional[str] = None,
            parse: Optional[Callable[[str], Any]] = None, switch: bool = False, metavar: Optional[str] = None,
            value: Optional[str] = None) -> Any:
    """Declare one run setting: its default, its flags (long first), its check, its `--help` text and the
    README's (`doc`, when it says more than `help`; `value` names the argument there, e.g. PATH; by default
    the `--help` metavar)."""
    value = (metavar or "") if value is None else value
    return field(default=default, metadata={"flags": flags, "help": help, "doc": doc or help, "parse": parse,
                                            "switch": switch, "metavar": metavar, "value": value})


@dataclass
class RunSettings:
    """How this process runs the blocks of a configuration: one pass or a schedule, where events go, where
    state lives, and the tuning knobs. The README's flag table is generated from these declarations."""

    config: str = setting(DEFAULT_CONFIG, "--config", "-c", value="PATH", help="ossec.conf to read (default %(default)s)",
                          doc=f"the `ossec.conf` to read (default `{DEFAULT_CONFIG}`); several `<ossec_config>` roots "
                              "may stand in it")
    once: bool = setting(False, "--once", switch=True, help="run every enabled block once, then exit (for a "
                         "manager that calls us on its own interval)")
    run_on_start: bool = setting(False, "--run-on-start", switch=True,
                                 help="run every block at once, whatever <run_on_start> says",
                                 doc="run every block at once, whatever `<run_on_start>` says")
    wazuh_path: str = setting(DEFAULT_WAZUH_PATH, "--wazuh-path", value="DIR", help="Wazuh installation directory "
                              "(default %(default)s); the engine's socket is WAZUH_PATH/queue/sockets/queue",
                              doc=f"Wazuh directory (default `{DEFAULT_WAZUH_PATH}`); the engine's socket is "
                                  "`DIR/queue/sockets/queue`")
    socket: Optional[str] = setting(None, "--socket", value="PATH", help="analysisd datagram socket to send to "
                                    "(overrides --wazuh-path)",
                                    doc="the engine's datagram socket, overriding `--wazuh-path`")
    output: Optional[str] = setting(None, "--output", "-o", value="FILE", help="write JSON lines to this file "
                                    "instead of the engine ('-' = stdout)",
                                    doc="JSON lines appended to FILE instead of the engine (`-` = stdout)")
    state_dir: Optional[str] = setting(None, "--state-dir", value="DIR", help="where bucket blocks remember what "
                                       "they read, service blocks what they delivered per stream, subscribers what "
                                       "they delivered and how far a half-done object got, and where dead letters and events too big for the engine are recorded "
                                       "(default WAZUH_PATH/var/aws-s3-wodle)",
                                       doc="where bucket blocks remember what they read, subscribers what they "
                                           "delivered and every source how far a half-done object got, service "
                                           "blocks what they delivered per stream (one file, `state.db`), and where "
                                           "dead letters and events too big for the engine are recorded (default "
                                           "`WAZUH_PATH/var/aws-s3-wodle`)")
    reparse: bool = setting(False, "--reparse", switch=True, help="bucket and service blocks read again from "
                            "their only_logs_after day, whatever they read before",
                            doc="bucket and service blocks read again from their `only_logs_after` day, whatever "
                                "they read before (with the scheduler: its first run only)")
    reset_state: Optional[str] = setting(None, "--reset-state", value="BUCKET", metavar="BUCKET",
                                         help="forget what bucket blocks read from BUCKET (every type and path), "
                                              "then exit; the next run starts from only_logs_after",
                                         doc="forget what bucket blocks read from BUCKET (every type and path), "
                                             "then exit")
    debug: int = setting(0, "--debug", "-d", parse=whole(0, 3), metavar="{0..3}", value="0..3",
                         help="verbosity: 1-2 debug, 3 also AWS SDK debug",
                         doc="1-2 debug lines, 3 also the AWS SDK's own (secrets are scrubbed at every level)")
    sqs_wait: int = setting(20, "--sqs-wait", parse=whole(0, 20), metavar="{0..20}", value="0..20",
                            help="SQS long-poll seconds (default %(default)s)",
                            doc="SQS long-poll seconds (default 20)")
    batch_size: int = setting(5000, "--batch-size", parse=positive_int, value="N",
                              help="rows decoded per batch (default %(default)s)",
                              doc="Parquet rows per batch (default 5000, at least 1); objects of any other format "
                                  "(JSON, CSV, text; subscriber or bucket blocks) are sent in batches of at most 500 "
                                  "events whatever N is (each batch's memory is measured in "
                                  "bench/gzip_jsonl_memory.py); memory is bounded by the batch, not by the object")
    parallel_objects: int = setting(16, "--parallel-objects", parse=whole(0, 64), metavar="{0..64}", value="N",
                                    help="at most N objects in flight at once, their receives, downloads, "
                                         "decoding and sending overlapping (default %(default)s; fewer when they "
                                         "are large: 128 MiB of objects in flight at most; 1: one at a time)",
                                    doc="at most N objects in flight at once, their receives, downloads, decoding "
                                        "and sending overlapping (default `16`; `1`: one object at a time). The "
                                        "real number is decided by size: objects in flight hold at most 128 MiB "
                                        "(each counted up to 8 MiB: smaller ones are held in memory, larger ones "
                                        "spooled to disk and decoded one at a time), so many small objects overlap "
                                        "their AWS round trips while large ones cost one decoder's memory. The "
                                        "fault-injection suite proves both `1` and `2`. With `skip_on_error` 'no', "
                                        "no object starts after the first failure; those in flight finish")
    convert_threads: int = setting(0, "--convert-threads", parse=whole(0, 64), metavar="{0..64}", value="N",
                                   help="threads converting Parquet batches to JSON, shared by all objects "
                                        "(default 0: one per core, 2 to 4)",
                                   doc="threads converting Parquet batches to JSON, shared by all objects "
                                       "(default: one per core, 2 to 4)")
    keep_nulls: bool = setting(False, "--keep-nulls", switch=True, help="keep null fields in events (dropped by "
                               "default)", doc="keep null fields in the events (dropped by default)")
    engine_retry: float = setting(30.0, "--engine-retry", parse=seconds, value="S",
                                  help="seconds to keep retrying when the engine's socket refuses (default "
                                       "%(default)s)",
                                  doc="seconds to keep retrying while the engine's socket refuses (default 30), "
                                      "then stop the run")
    metrics_file: Optional[str] = setting(None, "--metrics-file", value="PATH", help="write Prometheus metrics "
                                          "(text format) to this file after every run",
                                          doc="Prometheus text file rewritten (atomically) after every run; see "
                                              "[Watching it run](#watching-it-run)")
    max_event_bytes: int = setting(MAX_EVENT_BYTES, "--max-event-bytes", parse=byte_size, metavar="BYTES",
                                   help="largest event (one record, as read and as JSON) an object may hold; an "
                                        "object with a larger one is refused, as a failure of that object (default "
                                        "8M; units k, M, G)",
                                   doc="largest event (one record as read, and its JSON) an object may hold, else the "
                                       "object is refused (default `8M`; sizes take `k`, `M`, `G`); see "
                                       "[What one object may cost](#what-one-object-may-cost)")
    max_object_bytes: int = setting(MAX_OBJECT_BYTES, "--max-object-bytes", parse=byte_size, metavar="BYTES",
                                    help="most bytes one object may decompress to (Parquet: its uncompressed "
                                         "pages), else it is refused (default 4G)",
                                    doc="most bytes one object may decompress to (Parquet: its uncompressed pages), "
                                        "else it is refused (default `4G`)")
    max_compression_ratio: int = setting(MAX_COMPRESSION_RATIO, "--max-compression-ratio", parse=positive_int,
                                         metavar="N",
                                         help="most an object may inflate (decompressed bytes per compressed byte, "
                                              "judged past 4 MiB of output), else it is refused as a compression "
                                              "bomb (default %(default)s)",
                                         doc="most an object may inflate (decompressed bytes per compressed byte, "
                                             "judged past 4 MiB of output), else it is refused as a bomb (default "
                                             "200)")
    max_columns: int = setting(MAX_COLUMNS, "--max-columns", parse=positive_int, metavar="N",
                               help="most fields a Parquet object's schema may have, else it is refused before "
                                    "its footer is decoded (default %(default)s)",
                               doc="most fields a Parquet schema may have, else the object is refused before its "
                                   "footer is decoded (default 10000)")
    record_max_bytes: int = setting(RECORD_MAX_BYTES, "--record-max-bytes", parse=record_size, metavar="BYTES",
                                    help="size at which oversized-events.jsonl is rotated (each event too big for "
                                         "the engine is recorded as its first 4 KiB, size and sha256; default 16M)",
                                    doc="size at which `oversized-events.jsonl` is rotated (default `16M`, at least "
                                        "`64k`)")
    record_files: int = setting(RECORD_FILES, "--record-files", parse=whole(1, 100), metavar="{1..100}", value="N",
                                help="rotated oversized-events files kept besides the current one (default "
                                     "%(default)s)",
                                doc="rotated `oversized-events.jsonl.N` files kept besides the current one "
                                    "(default 4): the records take at most (N+1) x `--record-max-bytes`")

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> "RunSettings":
        """Settings from parsed flags (an argparse Namespace's vars); names not given keep their default."""
        known = set(cls.names())
        return cls(**{k: v for k, v in values.items() if k in known})


def settings_markdown() -> str:
    """The README's flag table, generated from the declarations (a test keeps the README in sync)."""
    rows = ["| flag | meaning |", "|---|---|"]
    for f in fields(RunSettings):
        meta = f.metadata
        flag = meta["flags"][0] + (f" {meta['value']}" if meta["value"] else "")
        rows.append(f"| `{flag}` | {meta['doc']} |")
    return "\n".join(rows)

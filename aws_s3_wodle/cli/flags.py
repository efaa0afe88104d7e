"""argparse flags built from the declared run settings (config/settings.py), for every command line."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Iterable, Optional

from aws_s3_wodle.config.settings import RunSettings

# Settings that exclude each other on a command line.
_EXCLUSIVE = ({"socket", "output"},)


def add_settings(parser: argparse.ArgumentParser, names: Iterable[str], *, short: bool = True,
                 help_overrides: Optional[dict[str, str]] = None, group: Optional[argparse._ActionsContainer] = None
                 ) -> None:
    """Add the flags of the named settings to `parser` (or to `group`), as RunSettings declares them.

    `short=False` drops the one-letter aliases (the Wazuh command line uses them for its own flags)."""
    target = group or parser
    wanted = list(names)
    by_name = {f.name: f for f in fields(RunSettings)}
    exclusive = {}
    for pair in _EXCLUSIVE:
        if pair <= set(wanted):
            g = target.add_mutually_exclusive_group()
            exclusive.update({name: g for name in pair})
    for name in wanted:
        f = by_name[name]
        meta = f.metadata
        flags = [fl for fl in meta["flags"] if short or fl.startswith("--")]
        help_text = (help_overrides or {}).get(name, meta["help"])
        where = exclusive.get(name, target)
        kwargs = {"dest": name, "default": f.default, "help": help_text}
        if meta["switch"]:
            where.add_argument(*flags, action="store_true", **kwargs)
        else:
            where.add_argument(*flags, type=meta["parse"] or str, metavar=meta["metavar"], **kwargs)

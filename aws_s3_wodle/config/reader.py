"""ossec.conf -> dataclasses, with one clear `file:line` error for anything we do not accept.

The block types are one explicit table (BLOCK_TYPES) built from the block modules; nothing registers
itself on import.
"""
from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

from lxml import etree

from aws_s3_wodle.config.buckets import BucketConfig, BUCKET_TYPES
from aws_s3_wodle.config.options import Location
from aws_s3_wodle.config.services import CloudWatchLogsService, InspectorService
from aws_s3_wodle.config.subscribers import BucketsSubscriber, SecurityHubSubscriber, SecurityLakeSubscriber
from aws_s3_wodle.config.wodle import Config, Wodle
from aws_s3_wodle.errors import ConfigError

# Block types we read: (tag, type) -> dataclass.
BLOCK_TYPES: dict[tuple[str, str], type] = {
    ("subscriber", "security_lake"): SecurityLakeSubscriber,
    ("subscriber", "buckets"): BucketsSubscriber,
    ("subscriber", "security_hub"): SecurityHubSubscriber,
    **{("bucket", kind): BucketConfig for kind in BUCKET_TYPES},
    ("service", "cloudwatchlogs"): CloudWatchLogsService,
    ("service", "inspector"): InspectorService,
}

# Types Wazuh's schema names that this version does not read yet: a clear error, not "unknown" (none today:
# every type of Wazuh 4.14's schema is read; the table stays for the next one Wazuh adds).
KNOWN_UNSUPPORTED: dict[str, set[str]] = {}

# Elements Wazuh's aws-s3 module took once and removed: a specific message, not "unknown element".
REMOVED_ELEMENTS = {
    "access_key": "Wazuh removed <access_key> and <secret_key>: keys no longer go in ossec.conf; put them in a "
                  "profile of the AWS credentials file and name it with <aws_profile>, or use the standard chain "
                  "(environment, instance or task role)",
}
REMOVED_ELEMENTS["secret_key"] = REMOVED_ELEMENTS["access_key"]


# --- reading

def _options(cls: type) -> dict[str, Any]:
    return {(f.metadata.get("element") or f.name): f for f in fields(cls) if "parse" in f.metadata}


def _allowed(names) -> str:
    return ", ".join(f"<{n}>" for n in sorted(names))


def _fill(obj: Any, element: etree._Element, path: str, where: str, skip: set[str] = frozenset()) -> None:
    """Set obj's options from element's children; unknown, repeated, empty or bad ones are errors."""
    opts = _options(type(obj))
    seen: set[str] = set()
    for child in element:
        if not isinstance(child.tag, str):  # comments, processing instructions
            continue
        line = child.sourceline or 0
        if child.tag in skip:
            continue
        f = opts.get(child.tag)
        if f is None and child.tag in REMOVED_ELEMENTS:
            raise ConfigError(path, line, child.tag, f"not supported in {where}: {REMOVED_ELEMENTS[child.tag]}")
        if f is None:
            raise ConfigError(path, line, child.tag, f"unknown element in {where}; allowed: {_allowed(set(opts) | skip)}")
        if child.tag in seen:
            raise ConfigError(path, line, child.tag, f"given twice in {where}; give it once")
        seen.add(child.tag)
        if len(child):
            raise ConfigError(path, line, child.tag, "must hold a plain value, not other elements")
        text = (child.text or "").strip()
        attributes = f.metadata.get("attributes") or ()
        extra = set(child.attrib) - set(attributes)
        if extra:
            raise ConfigError(path, line, child.tag, f"unknown attribute {', '.join(sorted(extra))}; allowed: "
                                                     f"{', '.join(attributes) or 'none'}")
        try:
            value = f.metadata["parse"](text, dict(child.attrib)) if attributes else f.metadata["parse"](text)
        except ValueError as exc:
            shown = "" if f.metadata.get("secret") else f" '{text[:80]}'"
            raise ConfigError(path, line, child.tag, f"invalid value{shown}: {exc}") from None
        setattr(obj, f.name, value)
    for name, f in opts.items():
        if f.metadata.get("required") and name not in seen:
            raise ConfigError(path, element.sourceline or 0, f"{element.tag} type=\"{element.get('type')}\"",
                              f"<{name}> is required: {f.metadata['help']}")


def _parse_block(child: etree._Element, path: str) -> Any:
    line = child.sourceline or 0
    kind = child.get("type")
    tag = child.tag
    types = sorted(t for (g, t) in BLOCK_TYPES if g == tag)
    if not kind:
        raise ConfigError(path, line, tag, f"needs a type attribute; supported: {', '.join(types) or 'none'}")
    cls = BLOCK_TYPES.get((tag, kind))
    if cls is None:
        if kind in KNOWN_UNSUPPORTED.get(tag, ()):
            raise ConfigError(path, line, f'{tag} type="{kind}"',
                              f"is not supported by this version of aws-s3-wodle; supported: {', '.join(types)}")
        raise ConfigError(path, line, f'{tag} type="{kind}"', f"unknown type; supported: {', '.join(types)}")
    block = cls()
    if "kind" in {f.name for f in fields(cls)}:  # one dataclass may serve several types (the bucket types)
        block.kind = kind
    block.location = Location(path, line)
    _fill(block, child, path, f'<{tag} type="{kind}">')
    check = getattr(block, "validate", None)
    if check:
        try:
            check()
        except ValueError as exc:
            raise ConfigError(path, line, f'{tag} type="{kind}"', str(exc)) from None
    return block


_BLOCK_TAGS = {"subscriber", "bucket", "service"}


def parse_wodle(element: etree._Element, path: str) -> Wodle:
    wodle = Wodle(location=Location(path, element.sourceline or 0))
    _fill(wodle, element, path, '<wodle name="aws-s3">', skip=_BLOCK_TAGS)
    try:
        wodle.validate()
    except ValueError as exc:
        raise ConfigError(path, element.sourceline or 0, 'wodle name="aws-s3"', str(exc)) from None
    for child in element:
        if isinstance(child.tag, str) and child.tag in _BLOCK_TAGS:
            wodle.blocks.append(_parse_block(child, path))
    if not wodle.blocks and not wodle.disabled:
        raise ConfigError(path, element.sourceline or 0, 'wodle name="aws-s3"',
                          "has no block to run; add a <subscriber type=\"security_lake\"> (or set <disabled>yes)")
    return wodle


def _xml_parser() -> etree.XMLParser:
    # No entity expansion, no DTD, no network: a config file must never fetch or blow up anything.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True)


def parse_config_bytes(data: bytes, path: str) -> Config:
    # A file may hold several <ossec_config> roots: wrap them in one, on the same line so line numbers hold.
    data = re.sub(rb"^\s*<\?xml[^>]*\?>", b"", data, count=1)
    if re.search(rb"<!(DOCTYPE|ENTITY)", data):
        line = data[: re.search(rb"<!(DOCTYPE|ENTITY)", data).start()].count(b"\n") + 1
        raise ConfigError(path, line, "!DOCTYPE", "DTDs and entities are not allowed in the configuration; remove them")
    try:
        root = etree.fromstring(b"<aws_s3_wodle_root>" + data + b"</aws_s3_wodle_root>", _xml_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 0
        msg = str(exc.msg if hasattr(exc, "msg") else exc)
        msg = re.sub(r",? line \d+, column \d+", "", msg).replace("aws_s3_wodle_root", "end of file")
        msg = " ".join(msg.split())
        raise ConfigError(path, line, "xml", f"malformed XML: {msg}; fix the file's syntax") from None
    wodles = [parse_wodle(el, path) for el in root.iter("wodle") if el.get("name") == "aws-s3"]
    return Config(path=path, wodles=wodles)


def load_config(path: str) -> Config:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(path, 0, "file", f"cannot be read ({exc.strerror}); give an existing file with --config") from None
    config = parse_config_bytes(data, path)
    if not config.wodles:
        raise ConfigError(path, 0, 'wodle name="aws-s3"', 'no <wodle name="aws-s3"> section found; add one '
                                                         "inside <ossec_config>")
    return config


def reference_markdown() -> str:
    """The README's option reference, generated from the declarations (a test keeps the README in sync)."""
    out = []
    sections = [('`<wodle name="aws-s3">`', Wodle)]
    kinds: dict[tuple[str, type], list[str]] = {}
    for (tag, kind), cls in BLOCK_TYPES.items():  # a class serving several types gets one table
        kinds.setdefault((tag, cls), []).append(kind)
    sections += [(f'`<{tag} type="{"|".join(names)}">`', cls) for (tag, cls), names in kinds.items()]
    for title, cls in sections:
        out += [f"#### {title}", "", "| element | default | meaning |", "|---|---|---|"]
        for f in fields(cls):
            if "help" not in f.metadata:
                continue
            default = "required" if f.metadata["required"] else ("none" if f.default is None else
                      ("yes" if f.default is True else "no" if f.default is False else str(f.default)))
            attrs = "".join(f' {a}="..."' for a in f.metadata.get("attributes") or ())
            out.append(f"| `{f.metadata.get('element') or f.name}{attrs}` | {default} | {f.metadata['help']} |")
        out.append("")
    return "\n".join(out)



"""Fuzzing the two parsers that read what others wrote: the config file and the SQS bodies.

Whatever the input, the only exception allowed is the parser's own clean error (ConfigError,
NotificationError) with a one-line message; hostile XML (entities, DTDs, external references) is
refused without expansion and without fetching anything.
"""
from __future__ import annotations

import http.server
import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from aws_s3_wodle.config.reader import BLOCK_TYPES, _options, load_config, parse_config_bytes
from aws_s3_wodle.config.wodle import Wodle
from aws_s3_wodle.errors import ConfigError
from aws_s3_wodle.sources.sqs.notifications import NotificationError, parse_body

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- config

ELEMENTS = sorted(set(_options(Wodle)) | {n for cls in BLOCK_TYPES.values() for n in _options(cls)} |
                  {"subscriber", "bucket", "service", "wodle", "ossec_config", "nope"})
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
XML_TEXT = st.one_of(TEXT.map(lambda t: t.replace("<", "&lt;").replace("&", "&amp;")), TEXT,
                     st.sampled_from(["yes", "no", "10m", "0", "99999999999", "&xxe;", "&amp;", "&#0;", "&#x110000;",
                                      "]]>", "<![CDATA[x]]>", "arn:aws:iam::123456789012:role/r", "5", "1001"]))


@st.composite
def xml_element(draw, depth=0):
    tag = draw(st.sampled_from(ELEMENTS))
    attrs = draw(st.sampled_from(["", ' name="aws-s3"', ' type="security_lake"', ' type="x"', ' name="other"']))
    if depth < 3 and draw(st.booleans()):
        inner = "".join(draw(st.lists(xml_element(depth + 1), max_size=4)))
    else:
        inner = draw(XML_TEXT)
    return f"<{tag}{attrs}>{inner}</{tag}>"


@st.composite
def config_document(draw):
    prolog = draw(st.sampled_from(["", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>\n',
                                   '<!DOCTYPE x [<!ENTITY xxe "boom">]>', "<!-- c -->", "\ufeff"]))
    wodle = draw(xml_element(1))
    return (prolog + f'<ossec_config><wodle name="aws-s3">{wodle}</wodle></ossec_config>').encode("utf-8",
                                                                                                  "surrogatepass")


def _config_ok_or_clean_error(data: bytes) -> None:
    try:
        parse_config_bytes(data, "/etc/ossec.conf")
    except ConfigError as exc:
        text = str(exc)
        assert text.startswith("/etc/ossec.conf") and "\n" not in text and "Traceback" not in text


@FUZZ
@given(st.binary(max_size=400))
def test_config_reader_random_bytes(data):
    _config_ok_or_clean_error(data)


@FUZZ
@given(config_document())
def test_config_reader_structured(data):
    _config_ok_or_clean_error(data)


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list = []

    def do_GET(self):
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<x>fetched</x>")

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_hostile_xml_is_refused_without_expansion_or_fetch(tmp_path, web):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    laughs = '<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8)) + "]>"
    attacks = {
        "billion laughs": laughs + "<ossec_config>&i;</ossec_config>",
        "external file": f'<!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]><ossec_config>&e;</ossec_config>',
        "external url": f'<!DOCTYPE x [<!ENTITY e SYSTEM "{web}/e">]><ossec_config>&e;</ossec_config>',
        "parameter entity": f'<!DOCTYPE x [<!ENTITY % p SYSTEM "{web}/p"> %p;]><ossec_config/>',
        "external dtd": f'<!DOCTYPE ossec_config SYSTEM "{web}/dtd"><ossec_config/>',
        "undeclared entity": '<ossec_config><wodle name="aws-s3"><interval>&e;</interval></wodle></ossec_config>',
        "xinclude": f'<ossec_config xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{web}/inc"/>'
                    '</ossec_config>',
    }
    for name, text in attacks.items():
        path = tmp_path / f"{name.replace(' ', '-')}.conf"
        path.write_text(text)
        try:
            load_config(str(path))
        except ConfigError as exc:
            assert "TOP-SECRET" not in str(exc) and "\n" not in str(exc), name
        else:
            pytest.fail(f"{name}: accepted")
    assert _Recorder.hits == []  # nothing was fetched


# --- SQS bodies

KEYS = ["detail", "bucket", "name", "object", "key", "size", "etag", "version-id", "Records", "s3", "eTag",
        "versionId", "Message", "Type", "Notification", "Event", "s3:TestEvent", "detail-type", "Object Created"]
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), TEXT, st.sampled_from(KEYS)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(KEYS) | TEXT, children, max_size=5)),
    max_leaves=30)


@st.composite
def body(draw):
    doc = draw(JSON)
    if draw(st.booleans()) and isinstance(doc, dict):  # sometimes wrapped in an SNS envelope
        doc = {"Type": "Notification", "Message": json.dumps(doc)}
    return json.dumps(doc)


def _body_ok_or_clean_error(text) -> None:
    try:
        note = parse_body(text)
    except NotificationError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    for ref in note.objects:
        assert isinstance(ref.bucket, str) and ref.bucket and isinstance(ref.key, str) and ref.key
        assert "\n" not in str(ref)  # a key never breaks a log line


@FUZZ
@given(st.text(max_size=300))
def test_notification_parser_random_text(text):
    _body_ok_or_clean_error(text)


@FUZZ
@given(body())
def test_notification_parser_structured(text):
    _body_ok_or_clean_error(text)


@pytest.mark.parametrize("text", [
    "[" * 100000 + "]" * 100000,              # nesting deeper than the JSON parser's recursion
    '{"a":' * 50000 + "1" + "}" * 50000,
    "x" * (256 * 1024 + 1),                   # over SQS's limit
    "\x00\x01\x02binary\xff\xfe",
    b"\x89PNG\r\n".decode("latin-1"),
    json.dumps({"Type": "Notification", "Message": json.dumps({"Type": "Notification", "Message": "{}"})}),
    json.dumps({"Records": [{"s3": {"bucket": {"name": "b"}, "object": {"key": "%0A2026%2F01%2F01+forged"}}}]}),
    None, 42, b"bytes",
])
def test_notification_parser_hostile_bodies(text):
    _body_ok_or_clean_error(text)

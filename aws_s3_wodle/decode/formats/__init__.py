"""Decoders: a downloaded object -> records or batches of JSON events.

``iter_records(fileobj, key=...)`` reads any log object (gzip, zip or plain; JSON, CSV or text)
as a stream of dicts; ``serialize`` turns them into JSON documents; ``parquet`` reads Security
Lake's Parquet. Every decoder raises ``DecodeError`` for bytes it cannot read.
"""
from aws_s3_wodle.decode.errors import DecodeError
from aws_s3_wodle.decode.formats.records import FORMATS, iter_records
from aws_s3_wodle.decode.formats.serialize import batched, dump_batch, dumps

__all__ = ["DecodeError", "FORMATS", "iter_records", "batched", "dump_batch", "dumps"]

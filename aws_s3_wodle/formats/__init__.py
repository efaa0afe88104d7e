"""Decoders: a downloaded object -> batches of JSON events."""


class DecodeError(Exception):
    """The object cannot be decoded (corrupt, truncated, not the expected format); str() says why."""

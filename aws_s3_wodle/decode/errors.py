"""The one error of decoding: an object that cannot be read as what it claims to be."""


class DecodeError(Exception):
    """The object cannot be decoded (corrupt, truncated, not the expected format); str() says why."""

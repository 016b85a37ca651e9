"""S3 and S3-compatible stores: boto3's client (``store``) and the signed fast requests (``signed``), with
what only they use (SigV4, refusals, LIST body caps, credential helpers, latency and in-flight tracking)."""

from .store import (
    KIND,
    MIN_PART,
    STREAM_IN_FLIGHT,
    BufferReader,
    S3Account,
    S3Store,
    make_client,
)

__all__ = [
    "BufferReader",
    "KIND",
    "MIN_PART",
    "S3Account",
    "S3Store",
    "STREAM_IN_FLIGHT",
    "make_client",
]

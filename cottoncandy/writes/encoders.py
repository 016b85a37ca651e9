"""The encoder of an array body written through the mount as its bytes arrive: the library's format.

Why: an array written through the mount must be stored exactly as the library stores it, so that
every reader (the mount's block reads, ``download_raw_array``, cottoncandy 0.4.0) treats the two the
same. For gzip that is the indexed, row-aligned block format (``arrays.gzip_blocks``: one gzip member,
its block index in the header, which goes first but is known last). The other codecs the codec table
marks as streaming (``Codec.stream_encoder``) are one stream of the codec, made by its incremental
compressor. One interface covers both, so the streamed writer has no codec branches of its own.
"""

from __future__ import annotations

import errno
from typing import Protocol

from ..arrays.gzip_blocks import StreamedGzipBlocks
from ..formats import codecs
from ..formats.raw import ArraySpec


class BodyEncoder(Protocol):
    """Bytes of an array in, bytes of its stored body out, in order (pieces of any size)."""

    def metadata(self) -> dict[str, str]:
        """Metadata keys the body needs beyond the array's own (known before the first byte)."""
        ...

    def memory(self) -> int:
        """Bytes the encoder may hold at once beyond what it is given (charged to the writes' memory)."""
        ...

    def compress(self, data: bytes | bytearray | memoryview) -> list[bytes]: ...

    def flush(self) -> list[bytes]:
        """After the last byte: the rest of the body."""
        ...

    def header(self) -> bytes:
        """Bytes that go before everything :meth:`compress` and :meth:`flush` gave, known only after
        :meth:`flush` (``b""``: none)."""
        ...

    def close(self) -> None:
        """Give the body up, or let its resources go once it is done."""
        ...


class StreamedCodec:
    """A codec's own incremental compressor (``Codec.stream_encoder``) as a :class:`BodyEncoder`."""

    def __init__(self, encoder: codecs.StreamEncoder):
        self.encoder = encoder

    def metadata(self) -> dict[str, str]:
        return {}

    def memory(self) -> int:
        return 0  # the standard library's compressors hold their window, a few hundred KiB at most

    def compress(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        piece = self.encoder.compress(bytes(data))
        return [piece] if piece else []

    def flush(self) -> list[bytes]:
        return [self.encoder.flush()]

    def header(self) -> bytes:
        return b""

    def close(self) -> None:
        return None


def encoder_for(spec: ArraySpec, name: str) -> BodyEncoder:
    """The encoder of ``spec``'s body (``spec.compression`` set): gzip in our indexed blocks, another
    streaming codec as one stream; ``EINVAL`` naming ``name`` for a codec that only encodes whole."""
    if spec.compression is None:
        raise ValueError(f"{name}: no codec to encode with")
    record = codecs.record(spec.compression)
    if record.blocks:
        return StreamedGzipBlocks(spec)
    if record.stream_encoder is None:
        raise OSError(errno.EINVAL, f"{name}: codec {spec.compression} cannot compress as bytes arrive")
    return StreamedCodec(record.stream_encoder())

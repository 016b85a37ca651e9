"""A file written from its first byte onward (``np.save``, ``cp``): streamed to the store, no disk.

The bytes are held in memory until there is one part of them (a small file is one PUT at FLUSH).
A file named ``NAME.npy`` is parsed as it arrives: once its ``.npy`` header is complete and says it
is a plain array (not object dtype), the file is the raw array ``NAME`` -- its header is dropped and
becomes cottoncandy's metadata (dtype, shape, order, codec), its data bytes are the object's body --
otherwise it is stored byte for byte under its own name. From one part on, the body streams into ONE
multipart upload (the library's streaming writer, ``ObjectStore.put_chunks``, in parts of the store's
``part_size``; a codec's body is encoded as the library encodes it, gzip in indexed blocks with the
index sent last as the first part: ``encoders``) on a thread of its own, fed through a short queue:
a WRITE waits while the parts before it are being sent, so a file holds at most ``parts_per_file``
parts (the first one, held back by ``put_chunks``; the one being filled; one queued; those being
sent), each WRITE copied once into the part being filled, in buffers reused part after part and file
after file (``parts``, the mount's pool: ``memory.WriteMemory.part_buffers``).

Commit: FLUSH completes the upload and returns the store's answer (CompleteMultipartUpload or the
PUT carries data and metadata together: a partly written file is never visible). A ``.npy`` with
fewer data bytes than its header promises is not stored at FLUSH (``open_memmap`` writes its header,
closes, reopens) and is given up at the last RELEASE: its upload is aborted, nothing is visible.

Invariant: bytes are taken only at the end of the file (``accepts``); anything else is the staged
kind's (``kinds.Staging``), and the seam refuses it while there is none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import queue
import struct
import threading
from collections.abc import Callable, Iterator, Mapping

from ..formats.npy import MAGIC, NPY_HEADER_LIMIT, parse_npy_header
from ..formats.raw import ArraySpec, metadata_from_spec
from ..storage.base import MAX_OBJECT_SIZE, Buffer, ObjectInfo, ObjectStore
from ..storage.conditions import WriteCondition
from .encoders import BodyEncoder, encoder_for
from .kinds import Target
from .memory import WriteMemory
from .parts import PartBuffers, PartFiller
from .settings import WriteSettings

log = logging.getLogger("cottoncandy.writes")

#: whole parts waiting for the upload thread, at most: one, so a WRITE fills the next part while the
#: part before it waits for a free sender (``settings.PARTS_PER_FILE`` counts it)
QUEUED_PARTS = 1
#: parts a file holds besides those being sent: the one being filled, the one queued, the first
#: (held back by ``put_chunks`` until the end)
PARTS_NOT_IN_FLIGHT = 3
#: seconds between looks at the upload while a WRITE waits for room in the queue
POLL = 0.1


class Incomplete(Exception):
    """Raised into the upload to give it up (the file is not stored; ``put_chunks`` aborts it)."""


def npy_header_length(head: bytes | bytearray) -> int | None:
    """The length of the ``.npy`` header ``head`` starts (magic, version, length field, dict), ``0``
    when ``head`` cannot start one, ``None`` when more bytes are needed to tell."""
    if head[: len(MAGIC)] != MAGIC[: len(head)]:
        return 0
    if len(head) < 8:
        return None
    major = head[6]
    if major == 1:
        return None if len(head) < 10 else 10 + struct.unpack("<H", bytes(head[8:10]))[0]
    if major in (2, 3):
        return None if len(head) < 12 else 12 + struct.unpack("<I", bytes(head[8:12]))[0]
    return 0


class Upload:
    """One ``put_chunks`` fed from WRITEs: ``send`` packs the bytes into whole parts (``parts``), a
    thread pulls them from a queue and the store sends each as it is. At most ``in_flight`` parts
    are being sent, plus ``PARTS_NOT_IN_FLIGHT`` more held, all in buffers reused part after part."""

    def __init__(self, store: ObjectStore, key: str, metadata: Mapping[str, str], size_hint: int | None,
                 part_size: int, in_flight: int, condition: WriteCondition | None = None,
                 head: Callable[[], bytes] | None = None, buffers: PartBuffers | None = None):
        self.key = key
        self._chunks: queue.Queue[Buffer | None] = queue.Queue(maxsize=QUEUED_PARTS)
        self._parts = PartFiller(buffers or PartBuffers(part_size, in_flight + PARTS_NOT_IN_FLIGHT))
        self._giving_up = False
        self._done = threading.Event()
        self.info: ObjectInfo | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.info = store.put_chunks(key, self._pull(), metadata, size_hint=size_hint, head=head,
                                             in_flight=in_flight, part_size=part_size, condition=condition)
            except BaseException as exc:  # noqa: BLE001 - kept for the WRITE or FLUSH that asks next
                self.error = exc
            finally:
                self._done.set()

        self._thread = threading.Thread(target=run, name="cc-write", daemon=True)
        self._thread.start()

    def _pull(self) -> Iterator[Buffer]:
        while True:
            chunk = self._chunks.get()
            if self._giving_up:
                raise Incomplete(self.key)
            if chunk is None:
                return
            yield chunk

    def _put(self, item: Buffer | None) -> None:
        while True:
            if self._done.is_set():
                raise self.failure()
            try:
                self._chunks.put(item, timeout=POLL)
                return
            except queue.Full:
                continue

    def send(self, data: Buffer) -> None:
        """Copy ``data`` into the part being filled, queueing each part it fills (waiting while the
        queue is full); the upload's refusal if it has failed. ``data`` is not kept."""
        for part in self._parts.add(data):
            self._put(part)
            del part

    def finish(self) -> ObjectInfo:
        """End the body; the store's answer once the object is stored, or its refusal."""
        rest = self._parts.rest()
        if rest is not None:
            self._put(rest)
            del rest
        self._put(None)
        self._done.wait()
        if self.info is None:
            raise self.failure()
        return self.info

    def abort(self) -> None:
        """Give the upload up (``put_chunks`` aborts its multipart upload) and wait for it to end."""
        self._giving_up = True
        self._parts.rest()  # the part being filled is dropped
        while not self._done.is_set():
            with contextlib.suppress(queue.Full):
                self._chunks.put_nowait(None)  # wakes the puller, which then raises ``Incomplete``
            self._done.wait(POLL)

    def failure(self) -> OSError:
        error = self.error
        if isinstance(error, OSError):
            return error
        return OSError(errno.EIO, f"upload of {self.key} ended without an answer ({error!r})")


class StreamingFile:
    """See the module. Methods are called under the open file's lock (``writable.OpenFile``)."""

    def __init__(self, store: ObjectStore, target: Target, settings: WriteSettings, memory: WriteMemory):
        self.store = store
        self.target = target
        self.settings = settings
        self.memory = memory
        self.part_size = settings.part_size or store.part_size
        self._size = 0
        self._held = bytearray()  # every byte written while nothing is uploaded
        self._charged = 0  # bytes of ``memory`` this file holds
        self.spec: ArraySpec | None = None
        self.header_length = 0
        self.decided = target.array_key is None  # whether it is known to be an array or bytes
        self._upload: Upload | None = None
        self._encoder: BodyEncoder | None = None
        self.stored: ObjectInfo | None = None
        self.given_up = False
        #: the store's refusal, raised again by every later commit point: a program that closes a
        #: ``dup`` of its descriptor first (numpy's ``tofile``) still sees it at its own ``close()``
        self.failure: OSError | None = None

    # --- what it is ----------------------------------------------------------------------------
    @property
    def key(self) -> str:
        if self.spec is not None and self.target.array_key is not None:
            return self.target.array_key
        return self.target.bytes_key

    @property
    def size(self) -> int:
        return self._size

    @property
    def expected_size(self) -> int | None:
        """The file's size its ``.npy`` header promises (``None``: not an array)."""
        return None if self.spec is None else self.header_length + self.spec.nbytes

    def held(self) -> bytes | None:
        """Every byte written so far, while none has been uploaded (``None`` once parts are out, once
        the file is stored, or given up: its bytes are no longer all here)."""
        if self._upload is not None or self.stored is not None or self.given_up:
            return None
        return bytes(self._held)

    def _decide(self, final: bool = False) -> None:
        """Array or bytes, from the bytes held (``final``: no more are coming: undecided is bytes)."""
        if self.decided:
            return
        length = npy_header_length(self._held)
        if length is None or (length and len(self._held) < length):
            if final:
                self.decided = True
            return
        self.decided = True
        if not length or length > NPY_HEADER_LIMIT:
            return
        parsed = parse_npy_header(bytes(self._held[:length]))  # None: object dtype, a pickle, not .npy
        if parsed is not None and parsed[1] == length:
            spec = parsed[0]
            if self.settings.compression is not None:
                spec = dataclasses.replace(spec, compression=self.settings.compression)
            self.spec, self.header_length = spec, length

    def _metadata(self) -> dict[str, str]:
        if self.spec is None:
            return {}
        meta = metadata_from_spec(self.spec)
        encoder = self._body_encoder()
        if encoder is not None:
            meta.update(encoder.metadata())  # gzip's block index key: its shape is known from the header
        return meta

    def _body_encoder(self) -> BodyEncoder | None:
        """The encoder of the array's body when a codec is set (made once the ``.npy`` header is known):
        the library's format, gzip in indexed blocks (``encoders``)."""
        if self.spec is None or self.spec.compression is None:
            return None
        if self._encoder is None:
            self._encoder = encoder_for(self.spec, self.store.describe(self.key))
        return self._encoder

    def _body(self, data: Buffer) -> list[Buffer]:
        """Bytes of the array's body as they go to the store (compressed when a codec is set); raw,
        ``data`` itself (a WRITE's lent bytes: ``Upload.send`` copies them into its part)."""
        encoder = self._body_encoder()
        if encoder is None:
            return [data]
        return list(encoder.compress(data))

    def _body_head(self) -> Callable[[], bytes] | None:
        """What goes before the body, known once it is all encoded (gzip's index), for ``put_chunks``."""
        encoder = self._body_encoder()
        return None if encoder is None else encoder.header

    def _send(self, upload: Upload, pieces: list[Buffer]) -> None:
        for piece in pieces:
            upload.send(piece)

    # --- writing -------------------------------------------------------------------------------
    def accepts(self, offset: int, length: int) -> bool:
        """At the end of the file, before it is stored (a failed file takes every WRITE: to refuse it)."""
        return self.failure is not None or (offset == self._size and self.stored is None and not self.given_up)

    def write(self, offset: int, data: bytes) -> int:
        if self.failure is not None:
            raise self.failure
        expected = self.expected_size
        if expected is not None and self._size + len(data) > expected:
            raise OSError(errno.EFBIG, f"{self.store.describe(self.key)}: more bytes than the .npy header "
                                       f"promises ({expected})")
        if self._upload is not None:
            try:
                self._send(self._upload, self._body(data))
            except OSError as exc:  # the upload failed (and was aborted): this file is not stored
                self.failure = exc
                self.abort()
                raise
            self._size += len(data)
            return len(data)
        self.memory.take(len(data), self.store.describe(self.key), own=self._charged)
        self._charged += len(data)
        self._held += data
        self._size += len(data)
        self._decide()
        self._refuse_unstorable()
        if self.decided and self._size - self.header_length >= self.part_size:
            self._start()
        return len(data)

    def _refuse_unstorable(self) -> None:
        """A raw array whose header promises more than S3 stores (5 TiB) can never be stored: the file
        fails now (``EFBIG``, every later request too), before its bytes are held or sent. (An array to
        be compressed may still fit: its body's size is not known.)"""
        expected = self.expected_size
        if expected is None or self.spec is None or self.spec.compression is not None \
                or expected - self.header_length <= MAX_OBJECT_SIZE:
            return
        self.failure = OSError(errno.EFBIG, f"{self.store.describe(self.key)}: its .npy header promises "
                                            f"{expected - self.header_length} bytes of data; S3 objects hold at "
                                            "most 5 TiB")
        self.abort()
        raise self.failure

    def _start(self) -> None:
        """From one part on: the upload starts, with what is held as its first chunk."""
        encoder = self._body_encoder()
        need = self.settings.parts_per_file * self.part_size + (0 if encoder is None else encoder.memory())
        if need > self._charged:
            self.memory.take(need - self._charged, self.store.describe(self.key), own=self._charged)
            self._charged = need
        expected = self.expected_size
        hint = None if expected is None else expected - self.header_length
        sending = max(1, self.settings.parts_per_file - PARTS_NOT_IN_FLIGHT)
        buffers = self.memory.part_buffers(self.part_size, sending + PARTS_NOT_IN_FLIGHT)
        self._upload = Upload(self.store, self.key, self._metadata(), hint, self.part_size, sending,
                              self.target.condition(self.key), head=self._body_head(), buffers=buffers)
        body = memoryview(self._held)[self.header_length:]
        try:
            self._send(self._upload, self._body(body))
        finally:
            del body
            self._held = bytearray()

    def read(self, size: int, offset: int) -> bytes:
        if self._upload is not None:
            raise OSError(errno.EOPNOTSUPP, f"{self.store.describe(self.key)}: cannot read back a file being "
                                            "uploaded as it is written")
        return bytes(self._held[offset : offset + size])

    def can_truncate(self, length: int) -> bool:
        return self._upload is None and self.stored is None and length <= self._size

    def truncate(self, length: int) -> None:
        """Cut what is held (before anything is uploaded) to ``length`` bytes, deciding again."""
        del self._held[length:]
        self._size = length
        self.spec, self.header_length = None, 0
        self.decided = self.target.array_key is None
        self._decide()

    # --- commit points -------------------------------------------------------------------------
    def _complete(self) -> bool:
        expected = self.expected_size
        return expected is None or self._size == expected

    def flush(self) -> ObjectInfo | None:
        """FLUSH: store the file, unless nothing was written yet -- a shell's ``> f`` opens ``f``, hands
        the descriptor to its command and closes its own copy first (that FLUSH is the file's
        opener's): an empty file is stored at its last release instead (``touch``)."""
        if self._size == 0 and self.failure is None:
            return None
        return self._store()

    def _store(self) -> ObjectInfo | None:
        if self.failure is not None:
            raise self.failure
        if self.stored is not None or self.given_up:
            return None
        self._decide(final=True)
        if not self._complete():  # a .npy still short of its data: stored later, or given up at release
            return None
        try:
            if self._upload is not None:
                if self._encoder is not None:
                    self._send(self._upload, self._encoder.flush())
                info = self._upload.finish()
            else:
                body = memoryview(self._held)[self.header_length:]
                data: bytes | memoryview = body
                encoder = self._body_encoder()
                if encoder is not None:
                    pieces = [*encoder.compress(body), *encoder.flush()]
                    data = b"".join([encoder.header(), *pieces])
                    del pieces
                try:
                    info = self.store.put(self.key, data, self._metadata(), condition=self.target.condition(self.key))
                finally:
                    del body, data
        except OSError as exc:
            self.failure = exc
            self.abort()
            raise
        except BaseException:
            self.abort()
            raise
        self.stored = info
        self._free()
        return info

    def fsync(self) -> ObjectInfo | None:
        return self._store()

    def release(self) -> ObjectInfo | None:
        if self.failure is not None:
            raise self.failure
        if self.stored is None and not self.given_up:
            self._decide(final=True)
            if not self._complete():
                log.warning("%s not stored: its .npy header promises %d bytes, %d were written",
                            self.store.describe(self.key), self.expected_size, self._size)
                self.abort()
                return None
            return self._store()
        return None

    def abort(self) -> None:
        self.given_up = True
        upload, self._upload = self._upload, None
        if upload is not None:
            upload.abort()
        self._free()

    def _free(self) -> None:
        if self._encoder is not None:
            self._encoder.close()  # a gzip body's pool; blocks not compressed yet are dropped
        self._held = bytearray()
        self.memory.give(self._charged)
        self._charged = 0

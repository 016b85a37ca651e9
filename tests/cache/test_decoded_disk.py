"""Decoded blocks of compressed arrays in the persistent disk tier (``cache.disk.DecodedOnDisk``),
without a kernel: a counting decoder stands in for the mount's stretch reader (``cache.stretches``,
over our block indexes and seek points). The folder's files are untrusted: each bad one fails only
itself."""

from __future__ import annotations

import os
from pathlib import Path

from cottoncandy.cache.disk import DECODED, HEADER, DecodedOnDisk, DiskBackedFetch, DiskBlockStore, block_name

BLOCK = 4096
DECODED_BYTES = bytes(range(251)) * 200  # 50,200 bytes: 13 blocks, the last one short
IDENT = "s3 http://e b\0k"


class Decoder:
    """The array's decoded bytes; records every range asked (one inflate each)."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.asked.append((start, end))
        return DECODED_BYTES[start:end]


def fetcher(store: DiskBlockStore, decoder: Decoder, etag: str = "e1") -> DecodedOnDisk:
    return DecodedOnDisk(store, IDENT, etag, decoder, lambda n: memoryview(bytearray(n)), BLOCK)


def test_decoded_blocks_outlive_the_store_and_a_new_version_is_decoded_again(tmp_path: Path) -> None:
    first, decoder = DiskBlockStore(tmp_path, 2**20), Decoder()
    assert bytes(fetcher(first, decoder)(0, len(DECODED_BYTES))) == DECODED_BYTES
    assert decoder.asked == [(0, len(DECODED_BYTES))]  # one decode for the whole read
    first.close()
    again, decoder = DiskBlockStore(tmp_path, 2**20), Decoder()
    assert bytes(fetcher(again, decoder)(3 * BLOCK, 5 * BLOCK)) == DECODED_BYTES[3 * BLOCK : 5 * BLOCK]
    assert bytes(fetcher(again, decoder)(12 * BLOCK, len(DECODED_BYTES))) == DECODED_BYTES[12 * BLOCK :]
    assert decoder.asked == [] and again.hits == 3
    assert bytes(fetcher(again, decoder, etag="e2")(0, BLOCK)) == DECODED_BYTES[:BLOCK]
    assert decoder.asked == [(0, BLOCK)]  # another version: its own names
    again.close()


def test_decoded_and_raw_blocks_never_share_a_name(tmp_path: Path) -> None:
    store = DiskBlockStore(tmp_path, 2**20)
    raw = DiskBackedFetch(store, IDENT, "e1", lambda s, b: b.__setitem__(slice(None), b"R" * len(b)),
                          lambda n: memoryview(bytearray(n)), BLOCK)
    assert bytes(raw(0, BLOCK)) == b"R" * BLOCK  # the compressed body's first block
    store.flush()
    decoder = Decoder()
    assert bytes(fetcher(store, decoder)(0, BLOCK)) == DECODED_BYTES[:BLOCK]
    assert decoder.asked == [(0, BLOCK)]
    assert block_name(IDENT, "e1", 0, BLOCK) != block_name(IDENT, "e1", 0, BLOCK, DECODED)
    store.close()


def test_a_replaced_linked_or_short_file_fails_only_itself(tmp_path: Path) -> None:
    store, decoder = DiskBlockStore(tmp_path, 2**20), Decoder()
    fetcher(store, decoder)(0, 6 * BLOCK)
    store.flush()
    paths = [store.path(block_name(IDENT, "e1", i * BLOCK, (i + 1) * BLOCK, DECODED)) for i in range(6)]
    # block 1: other bytes of the right length and a well-formed header for other data
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: HEADER.size] + bytes(len(data) - HEADER.size))
    # block 3: a link to another block's file
    paths[3].unlink()
    os.symlink(paths[0], paths[3])
    # block 4: cut short
    with open(paths[4], "r+b") as f:
        f.truncate(HEADER.size + 100)
    decoder.asked.clear()
    assert bytes(fetcher(store, decoder)(0, 6 * BLOCK)) == DECODED_BYTES[: 6 * BLOCK]
    assert decoder.asked == [(BLOCK, 2 * BLOCK), (3 * BLOCK, 5 * BLOCK)]  # only the bad ones, decoded again
    assert store.corrupt == 3
    store.flush()
    decoder.asked.clear()
    assert bytes(fetcher(store, decoder)(0, 6 * BLOCK)) == DECODED_BYTES[: 6 * BLOCK]
    assert decoder.asked == []  # kept again, whole
    store.close()


def test_decoded_blocks_share_the_folder_limit(tmp_path: Path) -> None:
    limit = 4 * (HEADER.size + BLOCK)
    store, decoder = DiskBlockStore(tmp_path, limit), Decoder()
    fetcher(store, decoder)(0, 8 * BLOCK)
    store.flush()
    assert store.usage <= limit and store.evicted >= 4
    store.close()


def test_a_fifo_in_place_of_a_block_file_fails_only_itself_without_a_wait(tmp_path: Path) -> None:
    """A named pipe at a block's name (made by the folder's user by mistake, or left by a tool) is not a
    regular file: the read must not open it and wait for a writer that never comes (every wait has a
    bound); it is discarded and its block decoded again."""
    import threading

    store, decoder = DiskBlockStore(tmp_path, 2**20), Decoder()
    fetcher(store, decoder)(0, 2 * BLOCK)
    store.flush()
    path = store.path(block_name(IDENT, "e1", BLOCK, 2 * BLOCK, DECODED))
    path.unlink()
    os.mkfifo(path, 0o600)
    decoder.asked.clear()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(bytes(fetcher(store, decoder)(0, 2 * BLOCK))), daemon=True)
    reader.start()
    reader.join(10)
    stuck = reader.is_alive()
    if stuck:  # let the stuck open return, so the thread ends
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        reader.join(10)
    assert not stuck, "reading the block waited on a named pipe"
    assert got == [DECODED_BYTES[: 2 * BLOCK]] and decoder.asked == [(BLOCK, 2 * BLOCK)] and store.corrupt == 1
    store.close()

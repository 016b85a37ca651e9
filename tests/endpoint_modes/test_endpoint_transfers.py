"""The library's transfers against the signature-checking rig, in every endpoint mode, fast paths on and off,
under awkward key names: every character SigV4's canonical path must escape (or must not), spaces at the
end, unicode, a name near S3's 1,024-byte limit.

Arrays: raw (compressed and not), npy, dask (a folder of parts), and a multipart upload of several parts
read back by parallel ranged GETs.
"""

from __future__ import annotations

import dask.array as da
import numpy as np

from cottoncandy.interface import CloudInterface
from cottoncandy.storage import S3Account
from cottoncandy.storage.s3 import S3Store
from tests.conftest import BUCKET
from tests.endpoint_modes.conftest import Endpoint

MiB = 2**20
#: names that trip signers: reserved and sub-delim characters, %, unicode, trailing spaces, long names
AWKWARD = [
    "plain/name",
    "with space/and more spaces",
    "ünïcødé/ключ/日本語",
    "plus+sign/a+b",
    "per%cent/100%25",
    "eq=uals/a=b=c",
    "til~de/~home",
    "bang!/wow!",
    "quote'/it's",
    "paren(/open(",
    "parens()/(x)",
    "amp&/a&b",
    "question?/why?",
    "hash#/#1",
    "trailing space /end ",
    "star*/semi;colon:,at@dollar$",
    "deep/" + "/".join(f"level{i:02d}" for i in range(40)) + "/" + "x" * 500,
]
assert len(AWKWARD[-1].encode()) < 1024


def test_awkward_names_round_trip(endpoint: Endpoint, fast: bool) -> None:
    store = S3Account(endpoint.settings(fast_paths=fast)).store(BUCKET)
    assert isinstance(store, S3Store)
    assert (store._signed_requests() is not None) == fast
    for i, name in enumerate(AWKWARD):
        data = f"{i}:{name}".encode()
        info = store.put(name, data, {"name-index": str(i)})
        head = store.head(name)
        assert (head.size, head.etag, head.metadata) == (len(data), info.etag, {"name-index": str(i)}), name
        assert store.get_range(name, 1, 4) == data[1:4], name
        buf = memoryview(bytearray(len(data)))
        store.readinto(name, 0, buf)
        assert bytes(buf) == data, name
        parent = name.rsplit("/", 1)[0] + "/"
        assert name in [o.key for o in store.list_dir(parent).objects], name
    if fast:  # a batch of HEADs (fast paths only; without them the caller HEADs one by one)
        heads = store.head_many(AWKWARD)
        assert [name for name in AWKWARD if heads[name] is None] == []
    store.delete_many(AWKWARD)
    assert [name for name in AWKWARD if store.exists(name)] == []


def test_listing_a_prefix_with_a_space(endpoint: Endpoint, fast: bool) -> None:
    """A prefix with a space is listed in one request on the fast path (its query sent as signed: %20)."""
    store = S3Account(endpoint.settings(fast_paths=fast)).store(BUCKET)
    names = ["with space/a", "with space/b c", "trailing space /d"]
    for name in names:
        store.put(name, b"x")
    endpoint.server.clear_log()
    assert [o.key for o in store.list_dir("with space/").objects] == names[:2]
    assert [o.key for o in store.list_dir("trailing space /").objects] == names[2:]
    assert store.list_dir("").prefixes == ["trailing space /", "with space/"]
    assert endpoint.refused() == []
    assert len([e for e in endpoint.server.requests() if e["method"] == "GET"]) == 3  # none asked twice


def test_arrays_round_trip(endpoint: Endpoint, fast: bool) -> None:
    """raw, npy and dask arrays, a 12 MiB multipart upload of 5 MiB parts read back in 1 MiB ranges."""
    settings = endpoint.settings(fast_paths=fast, mpu_threshold=6 * MiB, mpu_chunksize=5 * MiB,
                                 download_part_size=MiB, threads=3)
    cci = CloudInterface(BUCKET, S3Account(settings), settings, verbose=False)
    rng = np.random.default_rng(25)
    small = rng.standard_normal((40, 30))
    names = iter(AWKWARD * 2)
    for compression in (True, False):
        name = next(names) + " raw"
        cci.upload_raw_array(name, small, compression=compression)
        assert np.array_equal(cci.download_raw_array(name), small), name
    name = next(names) + ".npy"
    cci.upload_npy_array(name, small)
    assert np.array_equal(cci.download_npy_array(name), small), name
    name = next(names) + " dask"  # a folder of parts, listed: a space in its prefix
    cci.upload_dask_array(name, da.from_array(small, chunks=(10, 30)), axis=0)
    assert np.array_equal(cci.download_dask_array(name).compute(), small), name
    big = rng.integers(0, 2**32, 12 * MiB // 8, dtype=np.uint64)  # incompressible: 3 parts
    name = next(names) + " big"
    cci.upload_raw_array(name, big, compression=False)
    assert np.array_equal(cci.download_raw_array(name), big), name
    uploads = [e for e in endpoint.server.requests() if e["method"] == "PUT" and "uploadId" in e["query"]]
    assert len(uploads) == 3, uploads

"""A compressed array re-stored with the same body but other metadata keeps its ETag (S3's ETag of a
one-part object is its body's MD5), so ETag alone does not pin what its decode must be: the array's
decoded size (and codec) are the metadata's. A decode kept under the former metadata (``--cache-dir``'s
decoded blocks, ``disk.KeptDecoded``) must not answer for metadata the body does not fit: the read
fails with EIO as the whole decode does, as ``download_raw_array`` raises, never the old values."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mount.test_decoded_arrays_on_disk import KEPT, args, logged, upload
from tests.mount.test_decoded_blocks_on_disk import row
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]


def test_a_kept_decode_does_not_answer_for_metadata_its_body_does_not_fit(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key, array = upload(cci, "Zstd")
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        assert np.array_equal(row(m, key, 3)[0], array[3])
        logged(tmp_path, m, KEPT)
    info = cci.store.head(key)
    body = cci.store.get_range(key, 0, info.size)
    meta = dict(info.metadata)
    meta["shape"] = f"{array.shape[0] // 2},{array.shape[1]}"  # half the rows: the body holds twice that
    cci.store.put(key, body, meta)
    assert cci.store.head(key).etag == info.etag  # same body, same ETag
    with pytest.raises(ValueError, match="decoded bytes, the array needs"):
        cci.download_raw_array(key)
    with mounted(BUCKET, tmp_path, *args(cci, cache), expect_errors=True) as m:
        with pytest.raises(OSError) as caught:
            row(m, key, 3)
        assert caught.value.errno == errno.EIO
    errors = mounted.last_errors  # type: ignore[attr-defined]
    assert len(errors) == 1 and "zstd body declares 4194304 decoded bytes, the array needs 2097152" in errors[0]

"""cottoncandy 0.4.0 reads back what ``np.save`` wrote through a ``--rw`` mount (issue 26 item 2): the
written ``NAME.npy`` is the raw array ``NAME`` with 0.4.0's metadata, raw or compressed as asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.mountutil import mounted, needs_fuse

from .conftest import NEW_BUCKET
from .harness import reset_bucket

pytestmark = [needs_fuse, pytest.mark.fuse, pytest.mark.xdist_group("real-io")]  # a real mount: serial

rng = np.random.default_rng(26)
ARRAYS = {
    "plain": rng.standard_normal((300, 400)),
    "fortran": np.asfortranarray(rng.random((120, 90)).astype("<f4")),
    "big_endian": np.arange(70_000, dtype=">i8").reshape(700, 100),
    "strings": np.array(["x", "yz", "abc"] * 500),
    "empty": np.zeros((0, 4), dtype="<i4"),
    "large": rng.integers(0, 1000, 5_000_000, dtype="<i4"),  # 20 MB: one multipart upload
}


@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_040_reads_what_np_save_wrote_through_the_mount(runners: Any, s3_server: Any, s3_client: Any,
                                                        tmp_path: Path, codec: str) -> None:
    reset_bucket(s3_client, NEW_BUCKET)
    with mounted(NEW_BUCKET, tmp_path, "--endpoint-url", s3_server.endpoint_url, "--rw",
                 "--write-compression", codec) as m:
        for name, arr in ARRAYS.items():
            np.save(m / f"{name}.npy", arr)
    old, _ = runners
    problems = []
    for name, arr in ARRAYS.items():
        answer = old.run(backend="s3", bucket=NEW_BUCKET, endpoint=s3_server.endpoint_url, tmp=str(tmp_path),
                         code="", expr=f"cci.download_raw_array({name!r})")
        if "exc" in answer:
            problems.append(f"{name}: 0.4.0 raised {answer['exc']['mro'][0]}: {answer['exc']['msg']}")
            continue
        back = np.load(answer["value"]["path"])
        if back.dtype != arr.dtype or back.shape != arr.shape or not np.array_equal(back, arr):
            problems.append(f"{name}: 0.4.0 read {back.dtype}{back.shape}, np.save wrote {arr.dtype}{arr.shape}")
    assert not problems, "\n".join(problems)

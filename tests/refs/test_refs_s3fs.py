"""A ``ccfs refs`` file read the way README tells fsspec/xarray users: s3fs, zarr, xarray, no cottoncandy.

s3fs runs in a cached side venv (``tests/sidevenv.py``): it pins aiobotocore, which pins botocore, and
must not decide the main venv's boto3. Its values must equal what cottoncandy downloads.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

from tests.cliutil import run
from tests.conftest import BUCKET
from tests.corpusutil import c_order_sha, load_corpus_into
from tests.sidevenv import SideVenv, quiet_env

HERE = Path(__file__).resolve().parent
S3FS_VENV = SideVenv(what="s3fs reader", requirements=HERE / "requirements-s3fs.txt", name="venv-s3fs",
                     env_var="CCFS_S3FS_VENV", lock="s3fs", check="import s3fs, zarr, xarray, dask.array")
GROUPS = ["raw/compression", "raw/dtypes", "raw/layout", "npy", "dask", "proj/sub01_analysis.grp/sub", "sparse/csr"]


def test_refs_file_reads_with_s3fs_and_xarray(s3, cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    python = S3FS_VENV.ensure()
    expected = load_corpus_into(lambda key, body, meta: cci.store.put(key, body, meta))
    refs = tmp_path / "refs.json"
    run(s3, "refs", f"s3://{BUCKET}", "-o", str(refs))
    env = quiet_env(tmp_path / "home")
    env.update({k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    result = subprocess.run([str(python), str(HERE / "reader_s3fs.py"), str(refs), s3.endpoint_url, *GROUPS],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout)
    assert "dask/last_axis" not in seen  # no portable reference (a shorter last part); ccfs refs said so
    for key, (dtype, shape, sha, lazy) in seen.items():
        ours = cci.download_npy_array(key) if key.endswith(".npy") else (
            cci.download_dask_array(key).compute() if key.startswith("dask/") else cci.download_raw_array(key))
        native = ours.dtype.newbyteorder("=") if ours.dtype.byteorder == ">" else ours.dtype  # xarray's choice
        assert (np.dtype(dtype), shape) == (native, list(ours.shape)), key
        assert sha == c_order_sha(ours.astype(native)), key
        assert lazy or not shape, key  # dask-backed (0-d variables are loaded lazily without dask)
    assert len(seen) == sum(1 for key in expected if key.rpartition("/")[0] in GROUPS) - 1 + 3  # + csr's parts

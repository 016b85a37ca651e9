"""Run in the s3fs side venv (no cottoncandy there): open a ``ccfs refs`` file as README says, print what it holds.

Usage: python reader_s3fs.py REFS.json ENDPOINT GROUP [GROUP...]; prints one JSON object:
{"GROUP/NAME": [dtype, shape, sha256 of the C-order bytes, dask-backed?], ...}
"""

import hashlib
import json
import sys

import numpy as np
import xarray as xr

refs, endpoint, groups = sys.argv[1], sys.argv[2], sys.argv[3:]
out = {}
for group in groups:
    ds = xr.open_dataset("reference://", engine="zarr", chunks={}, group=group, backend_kwargs={
        "consolidated": True,
        "storage_options": {"fo": refs, "remote_protocol": "s3",
                            "remote_options": {"endpoint_url": endpoint, "asynchronous": True}}})
    for name, var in ds.data_vars.items():
        values = np.array(var.values, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        out[f"{group}/{name}"] = [values.dtype.str, list(values.shape), hashlib.sha256(values.tobytes()).hexdigest(),
                                  type(var.data).__module__.startswith("dask")]
print(json.dumps(out))

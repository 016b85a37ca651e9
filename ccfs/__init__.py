"""ccfs: a read-only FUSE view of a bucket where every stored array is a .npy file."""

import os as _os
from ctypes.util import find_library as _find_library

# mfusepy picks libfuse 2 when both are installed; libfuse 3 allows 1 MiB kernel reads (2 caps at 128 KiB)
if "FUSE_LIBRARY_NAME" not in _os.environ and _find_library("fuse3"):
    _os.environ["FUSE_LIBRARY_NAME"] = "fuse3"

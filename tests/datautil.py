"""Test data that gzip level 9 gets through quickly.

0.4.0's default compression, and so ours, is gzip at level 9. On ``np.arange`` data (long runs of
near-matches) level 9 spends about a second of CPU per MB; on bytes that look random it spends a
few hundredths. Tests whose arrays must be large (dask arrays need parts of at least 5 MiB, a
decoded array must spill past a cache) use these values instead: every element still differs, so a
part put in the wrong place, or a wrong slice, shows as wrong values.
"""

from __future__ import annotations

import numpy as np

#: odd, so multiplying by it is a bijection modulo 2**64: distinct inputs give distinct outputs
SPREAD = np.int64(-7046029254386353131)


def distinct_int64(n: int) -> np.ndarray:
    """``n`` distinct int64 values in an order gzip finds no runs in (a deterministic hash of 0..n-1)."""
    return np.arange(n, dtype=np.int64) * SPREAD

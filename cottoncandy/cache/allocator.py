"""glibc's malloc set for a daemon whose data lives in large buffers freed by other threads.

Why: the budget (``budget.py``) counts every fetched buffer from allocation to release, but a
buffer released is not memory given back. Under 8 readers of 2 GiB of arrays with ``--cache-size
256M`` the daemon peaked at 630 MB RSS while its budget counted at most 241 MiB: glibc's
``mallinfo2`` at that peak said 576 MB taken from the system for its arenas, 228 MB of it in use and
348 MB *free inside the arenas*, and only 1.4 MB in ``mmap``-ed chunks. Two glibc defaults made it:

* *The mmap threshold moves.* An allocation of at least ``M_MMAP_THRESHOLD`` (128 KiB) gets its own
  ``mmap`` and is unmapped when freed; but freeing such a chunk raises the threshold to its size (up
  to 32 MiB), so after the first 8 MiB run was freed every later run, block and decoded array came
  from an arena instead, where a free chunk is given back only if it is at the arena's top.
* *One arena per thread* (up to 8 per core): 16 fetch, 16 demand and ~10 libfuse threads each
  allocate in their own arena, and a run allocated by a fetch thread is freed by whichever thread
  drops its last block, so each arena keeps its own holes of freed runs.

Setting the threshold explicitly turns its adjustment off (``mallopt(3)``): every buffer of
``MMAP_THRESHOLD`` bytes or more (runs, blocks, first blocks, decoded arrays, compressed bodies) is
an ``mmap`` that leaves the process when its last view goes, so RSS follows what the budget counts.
The cost, a fresh mapping's page faults, is what ``BufferPool`` already avoids for the runs of a
sequential read (it reuses them). Smaller allocations (Python objects, FUSE replies of up to 128 KiB,
request buffers) stay in arenas, and ``M_ARENA_MAX`` keeps those to a few: the daemon's threads
spend most of their time waiting for sockets or the GIL, not in malloc.

A variable already set in the environment (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_ARENA_MAX``, glibc's
tunables) is left to win. Other C libraries (musl, macOS) have no ``mallopt`` or other defaults:
nothing is done there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

#: mallopt(3) parameters (glibc's malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: allocations of at least this many bytes are mmap-ed (and unmapped on free): the mount's blocks
#: (``--block-size``, 256 KiB by default) and everything larger; replies to 128 KiB READs are not
MMAP_THRESHOLD = 256 * 1024
ARENA_MAX = 4


def tune_malloc(mmap_threshold: int = MMAP_THRESHOLD, arena_max: int = ARENA_MAX) -> bool:
    """Fix glibc's mmap threshold and cap its arenas (see the module docstring); True if done.
    Call it before the threads start (arenas already made stay)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (or no C library found): its own defaults stand
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    done = False
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ and "mmap_threshold" not in tunables:
        done = bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)))
    if "MALLOC_ARENA_MAX" not in os.environ and "arena_max" not in tunables:
        done = bool(mallopt(M_ARENA_MAX, int(arena_max))) and done
    if done:
        log.debug("malloc: mmap threshold %d KiB, at most %d arenas", mmap_threshold >> 10, arena_max)
    return done

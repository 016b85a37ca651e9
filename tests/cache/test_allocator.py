"""glibc's malloc as the daemon sets it (``cottoncandy.cache.allocator``): a freed large buffer leaves
the process, whichever thread allocated it and whatever else that thread still holds."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

#: 4 threads allocate eight 8 MiB buffers each (a fetch run's size); every other one is freed: the
#: RSS those frees give back, in MiB (of 128 freed)
SCRIPT = """
import sys, threading
import numpy as np
from cottoncandy.cache.allocator import tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc()

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096

first = np.ones(8 << 20, np.uint8)
del first  # glibc raises its mmap threshold past 8 MiB here, unless it was set
held = []
def work():
    for _ in range(8):
        held.append(np.ones(8 << 20, np.uint8))
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
before = rss()
del held[1::2]
print((before - rss()) >> 20)
"""


def given_back(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"})
    return int(out.stdout)


def test_freed_runs_leave_the_process() -> None:
    assert given_back("tuned") >= 120  # all 128 MiB freed, give or take a page table
    assert given_back("default") < 64  # what it fixes: glibc's defaults kept the holes in its arenas

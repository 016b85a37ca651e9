"""mfusepy's internals, overridden for speed: readdirplus, zero-copy reads and writes, kept thread
states, and libfuse's ``fuse_interrupted``. Fenced: none of it is needed for a correct mount.

``Fuse`` overrides callbacks of mfusepy's ``FUSE`` that are not its public API (``_wrapper``,
``readdir_fuse_3``, ``open``, ``read``, ``write``, ``releasedir``) and calls its helpers ``c_stat`` and
``set_st_attrs``; ``interrupted_check`` reads the private ``mfusepy._libfuse``. A release of mfusepy
may rename or reshape any of them, so ``fuse_class`` checks they are there, with the parameters
``Fuse`` relies on, before choosing it. When one is missing (or ``CCFS_FAST_PATHS=0``, or
``ccfs mount --no-fast-paths``) the mount runs on mfusepy's stock ``FUSE``, which calls the
fusepy-API methods of ``operations.Operations`` (``open``, ``read``, ``readdir``): the same files and
bytes, with one LOOKUP per listed entry, one copy more per read and the kernel's page cache of a
file dropped at each open. See ``cottoncandy.fastpaths`` for the switch and the one warning.
"""

from __future__ import annotations

import ctypes
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

import mfusepy as fuse

from cottoncandy import fastpaths, waits

from .errors import report

log = logging.getLogger("ccfs")

def fill(destination: int, pieces: list[memoryview | bytes]) -> int:
    """Copy ``pieces`` one after another to the address ``destination``; the bytes copied."""
    done = 0
    for piece in pieces:
        size = len(piece)
        if not size:
            continue
        if isinstance(piece, memoryview):  # a cached block is lent by address, kept alive by ``pieces``
            piece = piece.tobytes() if piece.readonly else ctypes.addressof(  # type: ignore[assignment]
                ctypes.c_char.from_buffer(piece))
        ctypes.memmove(destination + done, piece, size)
        done += size
    return done


READDIR_PLUS = 1  # fuse_readdir_flags: the kernel asked for attributes with the names
FILL_DIR_PLUS = 2  # fuse_fill_dir_flags: this entry carries its attributes
MAX_OPEN_PASSES = 1024


class Fuse(fuse.FUSE):
    """mfusepy's FUSE, with readdirplus.

    mfusepy hands libfuse only each entry's mode, so after a listing the kernel still sent one
    LOOKUP per entry to learn sizes and times (2,000 callbacks for ``ls -l`` of 2,000 arrays).
    Here an entry carries its whole stat when the kernel asks for it (libfuse 3 only). Entries go
    out with their offsets, as many as fit in each reply: libfuse before 3.17 drops the attributes
    of entries given with offset 0. One listing serves all the replies of one pass over a folder.
    """

    #: READs answered and the largest size the kernel asked for (logged at unmount: the READ size
    #: ``--read-ahead`` gave, which decides the FUSE round trips per MiB of a sequential read); class
    #: defaults, so an instance made without ``__init__`` (the adapter tests) counts too
    reads = 0
    largest_read = 0

    def __init__(self, *args: Any, **kwargs: Any):
        self._thread_state = threading.local()
        self._passes: dict[int, Any] = {}  # directory handle -> the entries of its pass (DirectoryEntries)
        self._passes_lock = threading.Lock()
        try:
            super().__init__(*args, **kwargs)  # mounts and serves until unmounted
        finally:
            if self.reads:
                log.info("READs served: %d, the largest %d KiB", self.reads, self.largest_read >> 10)

    def _wrapper(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        """Every callback, on one of libfuse's threads.

        ctypes gives a foreign thread a fresh Python thread state for each callback and frees it
        after (an mmap, page faults and an munmap with a TLB shootdown on every core, each time:
        profiled at a tenth of the daemon's CPU on a sequential read). One extra
        ``PyGILState_Ensure`` on a thread's first callback keeps its state for the next ones.
        The cost: a few tens of KiB per libfuse worker thread that ever ran, until the daemon exits.
        """
        if not getattr(self._thread_state, "kept", False):
            ctypes.pythonapi.PyGILState_Ensure()
            self._thread_state.kept = True
        return super()._wrapper(func, *args, **kwargs)

    def readdir_fuse_3(self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int) -> int:
        """READDIR and READDIRPLUS, a reply at a time, from the folder's entries as they are listed:
        a reply waits only for its first entry, then takes what is there, so a reader of a big
        folder gets names while the rest is still being listed (an empty reply ends the pass)."""
        handle = fip.contents.fh  # from ``Operations.opendir``: one per open folder
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        with self._passes_lock:
            entries = self._passes.get(handle) if offset else None
        if entries is None and offset:  # a pass resumed after its entries were dropped: the order a
            entries = self.operations.readdir_listed(decoded, handle)  # new visit streams may differ
        if entries is None:
            entries = self.operations.readdir_entries(decoded, handle)
            with self._passes_lock:
                if len(self._passes) >= MAX_OPEN_PASSES:  # folders closed halfway through
                    self._passes.clear()
                self._passes[handle] = entries
        plus = bool(flags & READDIR_PLUS)
        st = fuse.c_stat()
        index = offset
        # the wait for entries gives up when the kernel interrupts this request or the mount stops
        previous = waits.install(getattr(getattr(self.operations, "fs", None), "give_up", None))
        try:
            # a reply waits for one real entry, the first reply too: in its default ("auto") mode the
            # kernel asks for attributes (READDIRPLUS) in a pass's first reply only, so a first reply
            # of '.' and '..' alone left every entry without its stat (a LOOKUP each for ``ls -l``)
            if not entries.wait(max(index, 2)) and index >= 2:  # nothing left: the pass ends
                with self._passes_lock:
                    self._passes.pop(handle, None)
                return 0
        except BaseException as exc:  # the listing failed: this call fails, with one log line
            with self._passes_lock:
                self._passes.pop(handle, None)
            raise fuse.FuseOSError(report("readdir", decoded or "", exc)) from exc
        finally:
            waits.restore(previous)
        while entries.ready(index):
            name, attrs = entries[index]
            ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
            if attrs:
                fuse.set_st_attrs(st, attrs, use_ns=self.use_ns)
            # without PLUS the stat still gives the entry's type (``find`` needs no LOOKUP for it)
            if filler(buf, name.encode(self.encoding, self.errors), st if attrs else None, index + 1,
                      FILL_DIR_PLUS if plus and attrs else 0) != 0:
                break  # the reply is full: the kernel asks again from this offset
            index += 1
        return 0

    def open(self, path: bytes, fip: Any) -> int:
        """OPEN, with ``keep_cache`` decided per open: the kernel keeps a file's cached pages
        only while the version opened is the one they came from (``ccfs.versions``)."""
        info = fip.contents
        info.fh, keep_cache = self.operations.open_file(path.decode(self.encoding, self.errors), info.flags)
        info.keep_cache = int(keep_cache)
        return 0

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        """The READ callback, lean: it runs once per 128 KiB of a sequential read, on the critical
        path of the kernel's read-ahead. The reply is copied once, from the cached blocks straight
        into libfuse's buffer (a reply spanning two blocks, or the header and a block, was first
        joined into a new ``bytes``: a second copy and a 128 KiB allocation)."""
        self.reads += 1  # a race between threads may lose a count: a statistic, not a promise
        if size > self.largest_read:
            self.largest_read = size
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        pieces = self.operations.read_pieces(decoded, size, offset, fip.contents.fh)
        return fill(ctypes.addressof(buf.contents), pieces)

    def write(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        """The WRITE callback, with its bytes lent, not copied: a view of libfuse's own buffer, valid
        for this call only. mfusepy copied each WRITE into a new ``bytes`` first: for a 1 MiB WRITE a
        fresh mapping the kernel zero-fills page by page and unmaps after (profiled as the largest
        share of the daemon's CPU during ``np.save``). Every writer copies what it is given before it
        returns (the staged file's ``pwrite``, the streamed file's part being filled) and keeps no
        reference to it; the view is released when the call returns."""
        decoded = None if path is None else path.decode(self.encoding, self.errors)
        lent = memoryview((ctypes.c_char * size).from_address(ctypes.cast(buf, ctypes.c_void_p).value or 0)).cast("B")
        try:
            return int(self.operations.write(decoded, lent, offset, fip.contents.fh))
        finally:
            lent.release()

    def releasedir(self, path: bytes | None, fip: Any) -> int:
        with self._passes_lock:
            self._passes.pop(fip.contents.fh, None)
        return int(super().releasedir(path, fip))


#: the mfusepy ``FUSE`` methods ``Fuse`` overrides or calls, with the leading parameters it relies on
OVERRIDDEN: dict[str, tuple[str, ...]] = {
    "_wrapper": ("self", "func"),
    "readdir_fuse_3": ("self", "path", "buf", "filler", "offset", "fip", "flags"),
    "open": ("self", "path", "fip"),
    "read": ("self", "path", "buf", "size", "offset", "fip"),
    "write": ("self", "path", "buf", "size", "offset", "fip"),
    "releasedir": ("self", "path", "fip"),
}
#: mfusepy's module-level helpers ``Fuse`` calls
CALLED = ("c_stat", "set_st_attrs")


def check_internals() -> None:
    """Raise ``fastpaths.Unavailable`` if mfusepy lacks (or reshaped) what ``Fuse`` overrides or calls."""
    for name in CALLED:
        fastpaths.private(fuse, name)
    for name, expected in OVERRIDDEN.items():
        method = fastpaths.private(fuse.FUSE, name)
        try:
            params = tuple(inspect.signature(method).parameters)
        except (TypeError, ValueError) as exc:
            raise fastpaths.Unavailable(f"FUSE.{name} has no signature ({exc})") from None
        if params[: len(expected)] != expected:
            raise fastpaths.Unavailable(f"FUSE.{name} takes {params}, not {expected}")


def fuse_class() -> type[fuse.FUSE]:
    """``Fuse`` when the fast paths are on and mfusepy has what it overrides; else mfusepy's ``FUSE``."""
    if not fastpaths.enabled():
        return fuse.FUSE
    try:
        check_internals()
    except fastpaths.Unavailable as exc:
        fastpaths.fell_back("mfusepy", str(exc), "mfusepy's stock FUSE")
        return fuse.FUSE
    return Fuse


def interrupted_check() -> Callable[[], bool] | None:
    """libfuse's ``fuse_interrupted()``: whether the kernel sent INTERRUPT for the request this
    thread serves (the reader got a signal). ``None`` where the loaded libfuse lacks it, the fast
    paths are off, or mfusepy no longer exposes its library handle (then a read waiting on a slow
    server ends only when its fetch does)."""
    if not fastpaths.enabled():
        return None
    try:
        library = fastpaths.private(fuse, "_libfuse")
    except fastpaths.Unavailable as exc:
        fastpaths.fell_back("libfuse", str(exc), "reads that wait for their fetch (no fuse_interrupted)")
        return None
    check = getattr(library, "fuse_interrupted", None)
    if check is None:
        return None
    check.restype = ctypes.c_int
    check.argtypes = []
    return lambda: bool(check())


class SessionWatch:
    """Whether libfuse's loop was told to end: SIGTERM or SIGINT (libfuse's own handlers), or the
    kernel's connection gone (an unmount, an abort). ``fuse_session_exited`` of the mount's session,
    which libfuse frees as the mount ends: ``forget`` (from ``Operations.destroy``, which libfuse calls
    before freeing it) makes every later answer True without asking it."""

    def __init__(self, exited: Callable[[Any], int], session: int):
        self._exited = exited
        self._session = session
        self._gone = False
        self._lock = threading.Lock()

    def exited(self) -> bool:
        with self._lock:
            return self._gone or bool(self._exited(self._session))

    def forget(self) -> None:
        with self._lock:
            self._gone = True


def session_watch() -> SessionWatch | None:
    """A ``SessionWatch`` of the mount being served; call it from a callback (``init``): the session
    is found through the request's context. A stop path, not a speed path, so it is taken with the
    fast paths off too; ``None`` (one warning) where mfusepy no longer exposes its library handle or
    libfuse lacks the calls: then a stop waits for the requests in flight to end."""
    try:
        library = fastpaths.private(fuse, "_libfuse")
    except fastpaths.Unavailable as exc:
        fastpaths.fell_back("libfuse", str(exc), "a stop that waits for the requests in flight")
        return None
    context = getattr(library, "fuse_get_context", None)
    get_session = getattr(library, "fuse_get_session", None)
    exited = getattr(library, "fuse_session_exited", None)
    if context is None or get_session is None or exited is None:
        return None
    get_session.restype = ctypes.c_void_p
    get_session.argtypes = [ctypes.c_void_p]
    exited.restype = ctypes.c_int
    exited.argtypes = [ctypes.c_void_p]
    found = context()  # mfusepy typed it: a pointer to its ``fuse_context`` (``fuse`` first)
    fuse_pointer = found.contents.fuse if found else None
    session = get_session(fuse_pointer) if fuse_pointer else None
    return SessionWatch(exited, session) if session else None


#: the most worker threads libfuse 3's loop runs (its own default, named here so the idle limit matches it)
MAX_THREADS = 10


def thread_options() -> dict[str, object]:
    """The FUSE options every mount adds for libfuse 3's worker threads.

    libfuse 3.14.0 printed "fuse: Ignoring invalid max threads value 4294967295 > max (100000)." on
    stderr at every mount (a ``--foreground`` mount's terminal): its unset ``max_idle_threads`` is
    UINT_MAX, which its own range check refuses (3.14.1 stopped saying so). Given as ``max_threads``,
    no idle worker is ever ended, as when unset: the same loop, without the line. libfuse 2 has
    neither option."""
    if int(getattr(fuse, "fuse_version_major", 3)) < 3:
        return {}
    return {"max_threads": MAX_THREADS, "max_idle_threads": MAX_THREADS}


def write_options() -> dict[str, object]:
    """The FUSE options a ``--rw`` mount adds. libfuse 3 negotiates WRITEs of up to 1 MiB by itself;
    libfuse 2 sends 4 KiB WRITEs (77 MB/s measured, against 300-850 MB/s) unless told ``big_writes``,
    which it is here, with one log line saying so."""
    if int(getattr(fuse, "fuse_version_major", 3)) >= 3:
        return {}
    log.info("libfuse 2: writes through the mount use big_writes (128 KiB WRITEs); libfuse 3 (fuse3) "
             "sends up to 1 MiB and is faster: set FUSE_LIBRARY_NAME=fuse3 where both are installed")
    return {"big_writes": True}

"""Mounting: checks that fail early with a clear message, a clean daemon, readiness, unmounting.

Nothing that starts threads or network clients runs before the fork: the child builds the store,
checks the bucket, mounts, and tells the parent through a pipe when the kernel has the mount (the
FUSE ``init`` callback) or why it failed. SIGTERM/SIGINT end the FUSE loop, which unmounts: the
requests still waiting on the store give up so that it can (``stop_when_told``), and the daemon
detaches the mount and exits if it has not ended 5 s later. SIGHUP drops the cached listings and
attributes (``control.sighup_refresh``). ``unmount`` asks the daemon nothing without a bound.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cottoncandy.changes import ChangeListener
from cottoncandy.errors import OptionAdvice, Spelling
from cottoncandy.printable import without_userinfo

from . import mounts
from .flags import cli_flag
from .mountoptions import MountOptions
from .target import Target

if TYPE_CHECKING:
    from .filesystem import CcFilesystem
    from .libfuse import SessionWatch

log = logging.getLogger("ccfs")

#: what ``fuse_main`` returns when its loop ended with an error, which libfuse 3 sets to the signal
#: that stopped it
SIGNAL_STOP_STATUS = 8


class MountError(Exception):
    """A mount that cannot happen, with the reason a user can act on."""


@dataclass(frozen=True)
class MountRequest:
    target: Target
    mountpoint: str
    options: MountOptions = field(default_factory=MountOptions)
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    addressing_style: str | None = None  # ``--addressing-style`` (``config.ADDRESSING_STYLES``)
    fuse_options: tuple[str, ...] = ()
    log_file: str | None = None
    log_level: str = "INFO"
    fast_paths: bool = True  # False: ``--no-fast-paths`` (see ``cottoncandy.fastpaths``)
    spell: Spelling = cli_flag  # how errors name an option: ``--endpoint-url URL``, ``-o endpoint_url=URL``...


def said(exc: BaseException, spell: Spelling = cli_flag) -> str:
    """An error's one line, the option its advice names (if any) spelled as this face spells options."""
    advice = getattr(exc, "advice", None)
    if isinstance(advice, OptionAdvice):
        return advice.render(spell)
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def check_mountpoint(path: str) -> None:
    entry = mounts.mount_at(path)
    if entry is not None and entry.is_ccfs and mounts.daemon_gone(path):
        raise MountError(f"{path} holds a ccfs mount whose daemon has stopped (transport endpoint is not "
                         f"connected); clean it up first: ccfs umount {path}")
    if entry is not None or os.path.ismount(path):
        kind = f" ({entry.fstype})" if entry is not None else ""
        raise MountError(f"{path} is already a mount point{kind}; unmount it first")
    p = Path(path)
    try:
        if not p.exists():
            raise MountError(f"mountpoint {path} does not exist (create it with mkdir)")
        if not p.is_dir():
            raise MountError(f"mountpoint {path} is not a directory")
        if any(p.iterdir()):
            raise MountError(f"mountpoint {path} is not empty")
    except OSError as exc:
        raise MountError(f"mountpoint {path}: {exc.strerror or exc}") from None


def check_fuse() -> None:
    if not os.path.exists("/dev/fuse"):
        raise MountError("FUSE is not available: /dev/fuse is missing (install fuse3, or load the fuse module)")
    try:
        import mfusepy  # noqa: F401  (loads libfuse)
    except OSError as exc:
        raise MountError(f"FUSE library not found ({exc}); install fuse3 (apt-get install fuse3)") from exc


def make_store(request: MountRequest):  # type: ignore[no-untyped-def]
    """The store to serve, after checking it is reachable (clear errors for missing or refused)."""
    from cottoncandy.storage import registry
    from cottoncandy.storage.errors import NoAnswer

    target = request.target
    kind = registry.kind_of(target.scheme)
    options = registry.StoreOptions(endpoint_url=request.endpoint_url, profile=request.profile,
                                    region=request.region, addressing_style=request.addressing_style)
    account = kind.account(options.resolved_settings())
    endpoint = without_userinfo(account.endpoint)
    try:
        account.check_bucket_name(target.bucket)  # a name no store takes: said before any request
        if not account.bucket_exists(target.bucket):
            if kind.paths:
                raise MountError(f"local directory {target.bucket} does not exist")
            raise MountError(f"bucket not found: {target.store_url()} (endpoint {endpoint})")
    except PermissionError as exc:
        raise MountError(f"credentials refused for {target.store_url()}: {said(exc, request.spell)}") from exc
    except OSError as exc:
        reason = said(exc, request.spell)  # advice (no endpoint given, AWS unreachable) says "cannot reach" itself
        unanswered = isinstance(exc, NoAnswer) and getattr(exc, "advice", None) is None
        raise MountError(f"cannot reach {endpoint}: {reason}" if unanswered else reason) from exc
    return account.store(target.bucket)


def private_file(path: str) -> None:
    """Create ``path`` readable by its owner only (0600), or make it so: the log names keys,
    folders and endpoints, which other users of the machine need not see."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def setup_logging(request: MountRequest, foreground: bool) -> None:
    handlers: list[logging.Handler] = []
    if request.log_file:
        Path(request.log_file).parent.mkdir(parents=True, exist_ok=True)
        private_file(request.log_file)
        # a path that is not UTF-8 (the kernel's bytes) is logged escaped, not lost with its line
        handlers.append(logging.FileHandler(request.log_file, encoding="utf-8", errors="backslashreplace"))
    elif foreground:
        handlers.append(logging.StreamHandler(sys.stderr))
    if not handlers:
        handlers.append(logging.NullHandler())
    logging.basicConfig(level=getattr(logging, request.log_level.upper(), logging.INFO), handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    # mfusepy ("fuse") logs every errno a callback returns at DEBUG, the expected ones too (ENODATA for
    # each of ``ls -l``'s two xattr probes per entry: a tenth of the daemon's CPU listing a big folder
    # at --log-level DEBUG); the failures that matter are logged by ``ccfs.errors.report``, once
    for noisy in ("botocore", "boto3", "urllib3", "fuse"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


#: ``-o max_read=N``: the largest READ a mount may be asked to cap its READs at, and the smallest
MAX_READ_RANGE = (4096, 2**20)


def fuse_max_read(fuse_options: dict[str, object]) -> int:
    """The READ size ``-o max_read=N`` asks for (0: not given). libfuse 3 passes it to the kernel at
    mount, and then refuses to serve unless the filesystem's ``init`` asks for the same size, so the
    value is read once here and handed to both. ``ValueError`` naming the option if it is not a whole
    number of bytes within ``MAX_READ_RANGE``."""
    given = fuse_options.get("max_read")
    if given is None:
        return 0
    low, high = MAX_READ_RANGE
    text = str(given)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"max_read={given}: not a READ size in bytes from {low} to {high}")
    return int(text)


def raise_readahead(mountpoint: str, kib: int, timeout: float = 10.0) -> None:
    """Let the kernel send READs of up to ``kib`` KiB (FUSE's default read-ahead caps them at 128 KiB).

    The limit lives in the mount's backing-device info; only root may raise it, so this is best effort.
    """
    deadline = time.monotonic() + timeout
    while not os.path.ismount(mountpoint) and time.monotonic() < deadline:
        time.sleep(0.02)
    dev = os.stat(mountpoint).st_dev
    knob = f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb"
    try:
        with open(knob, "w") as fh:
            fh.write(str(kib))
        log.info("kernel read-ahead for %s set to %d KiB", mountpoint, kib)
    except OSError as exc:
        log.info("kernel read-ahead left at its default (%s: %s)", knob, exc.strerror)


def listen_for_changes(listener: ChangeListener, mountpoint: str) -> None:
    """Open the change channel of the mount at ``mountpoint``, named by its device in the mount table."""
    entry = mounts.mount_at(mountpoint)
    if entry is None or not entry.device:
        log.warning("changes made by cottoncandy on this machine will show after the listing TTL: "
                    "%s is not in the mount table", mountpoint)
        return
    listener.start(entry.device)


def serve(request: MountRequest, on_ready: Callable[[], object] | None = None) -> None:
    """Mount and serve until unmounted (blocks)."""
    from cottoncandy import fastpaths
    from cottoncandy.cache.allocator import tune_malloc

    from .control import sighup_refresh
    from .filesystem import CcFilesystem
    from .libfuse import fuse_class, interrupted_check, session_watch, thread_options, write_options
    from .operations import Operations

    tune_malloc()  # before any thread: RSS follows the budget (``cottoncandy.cache.allocator``)
    if not request.fast_paths:
        fastpaths.disable()
    if not fastpaths.enabled():
        log.info("fast paths off: plain boto3 calls and mfusepy's stock FUSE")
    store = make_store(request)
    filesystem = CcFilesystem(store, request.target.prefix, request.options)
    filesystem.interrupted = interrupted_check()  # a read waiting on a slow server ends when its reader is signalled
    readahead_kib = request.options.read_ahead // 1024

    served = threading.Event()
    finished = threading.Event()  # libfuse's loop has ended (its teardown has begun, or it returned)

    scope = store.change_scope()  # writes by cottoncandy on this machine show at once (``cottoncandy.changes``)
    listener = ChangeListener(scope, filesystem.changed) if scope is not None else None

    def ready() -> None:
        served.set()
        watch = session_watch()  # in a callback: the session is this request's
        if watch is not None:
            def loop_ended() -> None:  # libfuse's teardown (after every request ended), before the
                watch.forget()         # disk cache drains: a drain is no stuck request
                finished.set()
                if listener is not None:  # the device number is free again: so is its channel
                    listener.stop()

            operations.on_destroy = loop_ended
            threading.Thread(target=stop_when_told, args=(watch, filesystem, request.mountpoint, finished),
                             name="ccfs-stop", daemon=True).start()
        if listener is not None:
            threading.Thread(target=listen_for_changes, args=(listener, request.mountpoint), daemon=True).start()

        def announce() -> None:  # the mount is ready once its READ size is set: the first read gets it
            try:
                raise_readahead(request.mountpoint, readahead_kib)
            except OSError as exc:  # best effort: the mount serves with the kernel's default
                log.info("kernel read-ahead left at its default: %s", exc)
            finally:
                if on_ready is not None:
                    on_ready()

        # on a thread: the knob is found through a stat of the mountpoint, which this callback blocks
        threading.Thread(target=announce, name="ccfs-ready", daemon=True).start()

    extra: dict[str, object] = {}
    for option in request.fuse_options:
        for item in option.split(","):
            if not item:
                continue
            name, _, value = item.partition("=")
            extra[name] = value if value else True
    operations = Operations(filesystem, request.options.metadata_ttl, on_ready=ready,
                            attr_ttl=request.options.attr_ttl, sync_reads=request.options.interruptible_reads,
                            max_read=fuse_max_read(extra))
    if request.options.uid is not None or request.options.gid is not None or request.options.umask:
        extra.setdefault("default_permissions", True)  # the kernel enforces the modes shown
    extra.update(thread_options())
    if request.options.rw:  # what writes need of libfuse (big WRITEs), said once if it is missing
        extra.update(write_options())
    log.info("mounting %s on %s", request.target, request.mountpoint)
    try:
        with sighup_refresh(filesystem.refresh):
            fuse_class()(operations, request.mountpoint, foreground=True, nothreads=False, ro=not request.options.rw,
                         fsname=f"ccfs:{request.target}", subtype="ccfs", **extra)
    except RuntimeError as exc:
        # libfuse 3 ends a loop stopped by SIGTERM/SIGINT with status 8 (the signal is kept
        # as the session's error), after unmounting: that is the documented way to stop a mount
        if not (served.is_set() and exc.args == (SIGNAL_STOP_STATUS,)):
            raise
        log.info("stopped by a signal (libfuse status %d)", SIGNAL_STOP_STATUS)
    finally:
        finished.set()
        if listener is not None:
            listener.stop()
        filesystem.close()
        log.info("unmounted %s", request.mountpoint)


#: seconds libfuse's loop has, once told to stop, before the daemon detaches the mount and exits
STOP_GRACE = 5.0


def stop_when_told(watch: SessionWatch, filesystem: CcFilesystem, mountpoint: str, finished: threading.Event,
                   grace: float = STOP_GRACE) -> None:
    """Once libfuse's loop is told to end (SIGTERM, SIGINT, the connection gone), have every request
    still waiting on the store give up, so the loop can end: libfuse waits for each request in flight
    before it unmounts, and a request waiting on a LIST that never ended kept the daemon alive after
    SIGTERM, its reader in D state, and ``ccfs umount`` waiting. If the loop has still not returned
    ``grace`` seconds later (a request stuck where no wait can be given up), the last resort: the mount
    is detached (lazily) and the daemon exits, which ends every request still in the kernel."""
    while not watch.exited():
        if finished.wait(0.1):
            return
    if finished.is_set():
        return
    log.info("stopping: requests still waiting on the store give up")
    filesystem.stop()
    if finished.wait(grace):
        return
    log.warning("the mount of %s did not end within %.0f s of the stop; detaching it and exiting", mountpoint, grace)
    detach(mountpoint)
    logging.shutdown()
    os._exit(1)


def detach(mountpoint: str, timeout: float = 5.0) -> bool:
    """Lazily unmount ``mountpoint`` (the name goes at once; what is open inside it stays until
    closed): ``fusermount3 -u -z``, ``fusermount -u -z`` or ``umount -l``, whichever works first."""
    for tool in (["fusermount3", "-u", "-z"], ["fusermount", "-u", "-z"], ["umount", "-l"]):
        if shutil.which(tool[0]) is None:
            continue
        try:
            if subprocess.run([*tool, mountpoint], capture_output=True, timeout=timeout).returncode == 0:
                return True
        except subprocess.TimeoutExpired:
            continue
    return False


def mount(request: MountRequest, foreground: bool = False, timeout: float = 60.0) -> None:
    """Mount; in the background unless ``foreground``, returning once the mount is ready."""
    check_mountpoint(request.mountpoint)
    check_fuse()
    if foreground:
        setup_logging(request, foreground=True)
        try:
            serve(request)
        except MountError:
            raise
        except RuntimeError as exc:
            raise MountError(f"mount failed: {exc}") from exc
        return
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the daemon
        os.close(read_fd)
        _daemon(request, write_fd)
    os.close(write_fd)
    message = _wait_for_child(read_fd, request.mountpoint, timeout)
    os.waitpid(pid, 0)  # the intermediate child exits at once
    if message != "ok":
        _end_failed_daemon(pid, request.mountpoint)
        raise MountError(message or "the mount daemon exited before the mount was ready")


def _end_failed_daemon(group: int, mountpoint: str) -> None:
    """No daemon survives a mount that failed or timed out (one still waiting on a credential helper
    or the endpoint): the daemon is in the process group its parent, the intermediate child, started
    (``os.setsid``, group id ``group``), killed whole; a mount it made meanwhile is detached."""
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
    entry = mounts.mount_at(mountpoint)  # ``check_mountpoint`` found none before: a ccfs one is the daemon's
    if entry is not None and entry.is_ccfs:
        detach(mountpoint)


def _daemon(request: MountRequest, write_fd: int) -> None:  # pragma: no cover - runs in the daemon
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    reported = False

    def tell(message: str) -> None:
        nonlocal reported
        if not reported:
            reported = True
            os.write(write_fd, message.encode()[:4000])
            os.close(write_fd)

    code = 0
    try:
        setup_logging(request, foreground=False)
        serve(request, on_ready=lambda: tell("ok"))
    except MountError as exc:
        tell(str(exc))
        code = 1
    except BaseException as exc:
        log.exception("ccfs daemon failed")
        tell(f"mount failed: {exc}")
        code = 1
    tell("the mount daemon stopped")
    os._exit(code)


def _wait_for_child(read_fd: int, mountpoint: str, timeout: float) -> str:
    import select

    deadline = time.monotonic() + timeout
    chunks = []
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], 0.2)
            if ready:
                chunk = os.read(read_fd, 4096)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"".join(chunks) == b"ok":
                    break
        else:
            return f"timed out after {timeout:.0f}s waiting for the mount on {mountpoint}"
    finally:
        os.close(read_fd)
    message = b"".join(chunks).decode(errors="replace")
    if message == "ok":
        for _ in range(100):  # init ran; the kernel shows the mount a moment later
            if os.path.ismount(mountpoint):
                break
            time.sleep(0.05)
    return message


def unmount(mountpoint: str, timeout: float = 30.0) -> None:
    """Unmount a ccfs mount (and only one: a tmpfs or a disk at ``mountpoint`` is refused).

    A mount whose daemon died (every access fails with ENOTCONN) is detached lazily if a plain
    unmount fails, so the mountpoint can be used again. Waits until the kernel's table no longer
    has the mount, and then (within the same ``timeout``) until the daemon has exited: it finishes
    writing the blocks its ``--cache-dir`` has queued first, so a remount right after finds them.

    A mount that is busy (a program has a file or folder of it open, or waits on it: an ``ls`` of a
    folder whose LIST never ends) is detached lazily as the last resort -- its name goes at once,
    the programs inside get errors -- and its daemon is told to stop (SIGTERM: it gives up what its
    requests wait for and exits within seconds); a daemon that does not answer at all, or does not
    exit, has its kernel connection aborted (fusectl), else is killed. Nothing here waits on the
    daemon without a bound: a daemon whose threads are all taken answers nothing.
    """
    entry = mounts.mount_at(mountpoint)
    if entry is None:
        raise MountError(f"{mountpoint} is not mounted")
    if not entry.is_ccfs:
        raise MountError(f"{mountpoint} is not a ccfs mount (it is {entry.fstype} from {entry.source}); "
                         "refusing to unmount it")
    path = entry.mountpoint
    deadline = time.monotonic() + timeout
    tools = [["fusermount3", "-u"], ["fusermount", "-u"], ["umount"]]
    gone = mounts.daemon_gone(path, timeout=ASK_SECONDS)
    daemon = None if gone else daemon_pid(path, timeout=ASK_SECONDS)
    if gone:
        tools += [["fusermount3", "-u", "-z"], ["fusermount", "-u", "-z"], ["umount", "-l"]]
    unmounted, last = _first_that_works(tools, path)
    forced = False
    if not unmounted and mounts.is_mounted(entry.mount_id):
        if gone or not detach(path):  # the last resort: the name goes now, the daemon is stopped
            raise MountError(f"could not unmount {mountpoint}: {last}")
        forced = True
        sys.stderr.write(f"ccfs umount: {mountpoint} was busy ({last}): detached it (programs still "
                         "using it get errors) and stopped its daemon\n")
    while mounts.is_mounted(entry.mount_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    if mounts.is_mounted(entry.mount_id):
        raise MountError(f"{mountpoint} is still mounted after {timeout:.0f}s")
    if forced:
        _end_daemon(entry, daemon, mountpoint, deadline)
    elif daemon is not None:  # it writes what its disk cache has queued, then exits: a remount finds it
        while mounts.process_alive(daemon) and time.monotonic() < deadline:
            time.sleep(0.02)


#: seconds a question to a daemon (is it there? its process id?) is waited for by ``ccfs umount``
ASK_SECONDS = 2.0


def _first_that_works(tools: list[list[str]], path: str) -> tuple[bool, str]:
    """Run unmount tools in turn until one succeeds: (whether one did, the last one's complaint)."""
    last = "no unmount tool found (fusermount3, fusermount, umount)"
    for tool in tools:
        if shutil.which(tool[0]) is None:
            continue
        try:
            result = subprocess.run([*tool, path], capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            last = f"{tool[0]} did not return within 10 s"
            continue
        if result.returncode == 0:
            return True, ""
        last = " ".join(result.stderr.split()) or f"{tool[0]} exited with status {result.returncode}"
    return False, last


def _end_daemon(entry: mounts.MountEntry, daemon: int | None, mountpoint: str, deadline: float) -> None:
    """After a forced detach: SIGTERM the daemon (``stop_when_told`` lets it exit within seconds,
    after storing the staged files still open: ``writes.recovery.settle``, bounded); one that did not
    say its process id, or is still there ``STOP_GRACE`` + 2 s + that bound later, has its kernel
    connection aborted (fusectl) or, where that cannot be done, is killed."""
    import signal

    from cottoncandy.writes.recovery import UNMOUNT_COMMIT_SECONDS

    pids = [daemon] if daemon is not None else mounts.daemons_serving(mountpoint)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    patience = min(deadline, time.monotonic() + STOP_GRACE + 2.0 + UNMOUNT_COMMIT_SECONDS)
    while any(mounts.process_alive(pid) for pid in pids) and time.monotonic() < patience:
        time.sleep(0.05)
    if pids and not any(mounts.process_alive(pid) for pid in pids):
        return
    if not mounts.abort_connection(entry):
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    while any(mounts.process_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def daemon_pid(mountpoint: str, timeout: float | None = None) -> int | None:
    """The process id of the daemon serving ``mountpoint`` (it answers an attribute of the root),
    or None when it does not say (an older daemon; with ``timeout``, one that has not answered by
    then: its threads may all be waiting)."""
    from .filesystem import PID_XATTR

    def ask() -> int | None:
        try:
            value = os.getxattr(mountpoint, PID_XATTR)
        except OSError:
            return None
        return int(value) if value.isdigit() else None

    return ask() if timeout is None else mounts.asked(ask, timeout, None)

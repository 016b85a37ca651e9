"""What a writable mount's writer is told (one frozen object, made by ``ccfs.mountoptions``)."""

from __future__ import annotations

from dataclasses import dataclass

from ..formats import codecs

#: the codecs a written array may be stored with: those that compress as the bytes arrive (their
#: ``Codec.stream_encoder``), or none
WRITE_CODECS = ("none", *(codec.id for codec in codecs.allowed() if codec.stream_encoder is not None))
#: parts of the library's part size in memory per file being streamed: the one being filled, one
#: queued for the sender, the first one (held back by ``put_chunks``), and up to eight being sent, as
#: many as the library's ``upload_raw_array`` (``streaming.PARTS_NOT_IN_FLIGHT`` are not). Remote-like
#: (20 ms, 100 MB/s per connection), np.save of 256 MiB: two being sent ran at 0.55x the library's
#: speed; four: 2.5 parts in flight on average, 1.13x the library's time; eight: 4.8, 1.01x (daemon
#: peak RSS 197 -> 262 MiB)
PARTS_PER_FILE = 11
#: seconds a write waits for memory held by other files being written before it fails with ENOMEM
MEMORY_WAIT = 30.0
#: objects a folder rename copies before it is EXDEV (``--rename-folder-limit``: ``writes.tree_changes``)
RENAME_FOLDER_LIMIT = 1000


@dataclass(frozen=True)
class WriteSettings:
    """``memory``: bytes of file data held by all files being written together (``writes.memory``);
    ``compression``: the codec of written arrays (``None``: raw); ``part_size``: bytes per uploaded
    part (``None``: the store's ``part_size``, the library's).

    Changes to the tree (``writes.tree_changes``): ``allow_delete`` lets ``rm``/``rmdir`` delete objects
    (else EACCES); a folder rename copies at most ``rename_folder_limit`` objects (EXDEV beyond);
    ``last_writer_wins`` writes without conditions (``storage.conditions``: no EEXIST/ESTALE)."""

    memory: int = 128 * 2**20
    compression: str | None = None
    part_size: int | None = None
    parts_per_file: int = PARTS_PER_FILE
    memory_wait: float = MEMORY_WAIT
    allow_delete: bool = False
    rename_folder_limit: int = RENAME_FOLDER_LIMIT
    last_writer_wins: bool = False
    #: where this mount's multipart uploads are recorded (``writes.recovery``; ``None``: the user's cache folder)
    journal_folder: str | None = None

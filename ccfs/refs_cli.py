"""``ccfs refs``: the arrays under a prefix as a reference file that fsspec, zarr and xarray open
without cottoncandy (the logic is ``cottoncandy.refs``; this is its command line)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import click

from cottoncandy.files.urls import parse_source
from cottoncandy.printable import escape_controls, shown_name
from cottoncandy.refs import DEFAULT_CHUNK_BYTES, build_refs, refs_text
from cottoncandy.storage.tempfiles import create_temp

from .commands import _store, complete_url, remote_options


def _size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    from .cli import parse_size

    size = parse_size(value)
    if size < 4096:
        raise click.BadParameter("must be at least 4K")
    return size


def _write(path: str, text: str) -> None:
    """Beside the target, then renamed into place: a failure leaves no half-written file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = create_temp(folder, prefix=".ccfs-refs-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@click.command("refs")
@click.argument("url", shell_complete=complete_url)
@click.option("-o", "--output", default="-", show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write the references to (- : standard output).")
@click.option("--chunk-size", default=f"{DEFAULT_CHUNK_BYTES // 2**20}M", show_default=True, callback=_size,
              help="Largest chunk cut from an uncompressed array (a slice reads at most this much more).")
@click.option("--gzip-blocks", is_flag=True,
              help="A gzip array written by cottoncandy becomes one chunk per block of whole rows (a row reads "
                   "one block, not the whole body). Its readers then need cottoncandy installed (its numcodecs "
                   "codec inflates a block), so by default such an array is one gzip chunk any zarr reads.")
@remote_options
def refs_command(url: str, output: str, chunk_size: int, gzip_blocks: bool, **options: Any) -> None:
    """Write zarr references (kerchunk JSON) to the arrays under URL, for fsspec/zarr/xarray users.

    Every raw array, .npy object and dask folder under URL becomes a zarr array whose chunks are
    byte ranges of the objects as stored; folders become groups. Objects that cannot be described
    are left out, each named on stderr with the reason.
    """
    location = parse_source(url)
    store = _store(location, options)
    with warnings.catch_warnings():  # each left-out object is printed once below, from refs.skipped
        warnings.simplefilter("ignore", UserWarning)
        refs = build_refs(store, location.key, chunk_bytes=chunk_size, portable=True, gzip_blocks=gzip_blocks)
    for skipped in refs.skipped:
        where, reason = location.url(skipped.key), skipped.reason
        line = reason if reason.startswith(where) else f"{where}: {reason}"  # reasons usually name it already
        click.echo(f"left out {escape_controls(line)}", err=True)
    if not refs.arrays:
        raise click.ClickException(f"no arrays under {url}")
    text = refs_text(refs)
    if output == "-":
        click.echo(text)
    else:
        _write(output, text)
    summary = (f"{len(refs.arrays)} array{'s' if len(refs.arrays) != 1 else ''} in {len(refs.groups)} "
               f"group{'s' if len(refs.groups) != 1 else ''}; {len(refs.skipped)} left out, "
               f"{len(refs.ignored)} other object{'s' if len(refs.ignored) != 1 else ''} (not arrays)")
    click.echo(f"wrote {shown_name(output)}: {summary}" if output != "-" else summary, err=output == "-")

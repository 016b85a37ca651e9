"""One record per codec (issue 27 item 3): every codec fills every field, and no other module names codecs.

A codec's facts (0.4.0 name, allowlist, maximum expansion, how it decodes, blocks, zarr codec) live
in ``formats.codecs.CODECS`` only; encode, decode, refs and the mount read them from there. A codec
added to the table is checked here at once, not at run time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numcodecs
import numpy as np
import pytest

from cottoncandy.formats import codecs

ROOT = Path(__file__).resolve().parents[2]
#: where a codec's name may be written as a literal: the table itself, and 0.4.0's config defaults
TABLE_MODULES = {"cottoncandy/formats/codecs.py", "cottoncandy/config.py"}
#: literals equal to a codec name that are not codec facts: 0.4.0's legacy ``gzip`` metadata key, the
#: deprecated ``gzip=`` keyword argument, and the demo calling the API as a user would
NOT_CODECS = {("cottoncandy/formats/keys.py", "gzip"), ("cottoncandy/interface.py", "gzip"),
              ("ccfs/demo.py", "Zstd")}
#: the consumers of the table: encode, decode, the size checks, refs, zarr metadata, the mount
CONSUMERS = ("cottoncandy/arrays/raw.py", "cottoncandy/formats/raw.py", "cottoncandy/formats/zarrmeta.py",
             "cottoncandy/formats/pgzip.py", "cottoncandy/refs/build.py", "cottoncandy/arrays/gzip_blocks.py",
             "cottoncandy/formats/zarr_blocks.py", "ccfs/filesystem.py")


@pytest.mark.parametrize("codec", codecs.CODECS, ids=lambda c: c.id)
def test_every_codec_fills_every_field(codec: codecs.Codec) -> None:
    assert codec.id == codec.id.lower() and codec.name.lower() == codec.id
    assert codec.max_ratio >= 1 and codec.why
    assert codec.decode in ("stream", "declared")
    assert codec.size_at in ("head", "xz-index", "isize", "none")
    assert codec.zarr is not None and codec.zarr["id"] == codec.id
    if not codec.allowed:
        with pytest.raises(ValueError, match=codec.why[:30]):
            codecs.record(codec.name)
        return
    assert codecs.record(codec.name) is codec and codecs.record(codec.id.upper()) is codec
    assert codec.encode is not None
    assert (codec.decode == "stream") == (codec.stream_into is not None)
    assert (codec.decode == "declared") == (codec.declared_size is not None) == (codec.size_at == "head")
    assert codec.blocks == (codec.id == codecs.GZIP) == (codec.zarr_block is not None)
    data = np.arange(5000, dtype="<f8") % 7
    body = codec.encode(memoryview(data.tobytes()))
    out = bytearray(data.nbytes)
    codecs.decode_into(body, codec.name, memoryview(out))
    assert bytes(out) == data.tobytes()
    # the zarr codec reads the same body (cottoncandy.refs hands it to zarr as is)
    assert bytes(numcodecs.get_codec(dict(codec.zarr)).decode(body)) == data.tobytes()
    if codec.declared_size is not None:
        assert codec.declared_size(body) == data.nbytes
    assert len(body) * codec.max_ratio >= data.nbytes
    if codec.stream_encoder is not None:  # a body encoded piece by piece reads back the same way
        encoder = codec.stream_encoder()
        raw = data.tobytes()
        streamed = b"".join(encoder.compress(raw[i : i + 4096]) for i in range(0, len(raw), 4096)) + encoder.flush()
        out = bytearray(data.nbytes)
        codecs.decode_into(streamed, codec.name, memoryview(out))
        assert bytes(out) == raw


def test_views_come_from_the_table() -> None:
    assert tuple(c.id for c in codecs.CODECS if c.allowed) == codecs.ALLOWED
    assert set(codecs.supported_codecs()) >= {c.name for c in codecs.CODECS if c.allowed}
    assert codecs.max_decoded_size_any(1) == max(codecs.SMALL_CLAIM, max(c.max_ratio for c in codecs.allowed()))


def _literals(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_module_but_the_table_names_a_codec() -> None:
    names = {c.id for c in codecs.CODECS} | {c.name.lower() for c in codecs.CODECS}
    found = []
    for path in sorted((ROOT / "cottoncandy").rglob("*.py")) + sorted((ROOT / "ccfs").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in TABLE_MODULES:
            continue
        for line, text in _literals(path):
            if text.strip().lower() in names and (rel, text) not in NOT_CODECS:
                found.append(f"{rel}:{line}: {text!r}")
    assert not found, "codec names outside formats/codecs.CODECS (read the table instead):\n" + "\n".join(found)


@pytest.mark.parametrize("module", CONSUMERS)
def test_each_consumer_reads_the_table(module: str) -> None:
    source = (ROOT / module).read_text()
    assert "codecs import" in source or "import codecs" in source, f"{module} does not read formats.codecs"

"""Seek points into 0.4.0's gzip bodies (formats.zran): recorded during a full decode, read back by
stretches, and a kept record checked as untrusted input."""

from __future__ import annotations

import gzip
import io
import zlib

import numpy as np
import pytest

from cottoncandy.formats import zran
from cottoncandy.formats.codecs import CorruptBodyError

pytestmark = pytest.mark.skipif(not zran.available(), reason="libz cannot be loaded here")
SPAN = 2**17  # small stretches so that small bodies get many points


def body_040(raw: bytes) -> bytes:
    """A gzip body as 0.4.0 writes it (``GzipFile``, level 9)."""
    out = io.BytesIO()
    with gzip.GzipFile(mode="wb", fileobj=out, compresslevel=9) as gz:
        gz.write(raw)
    return out.getvalue()


def chunks(body: bytes, size: int = 65536) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, bytes]:
    rng = np.random.default_rng(7)
    # mixed: runs of small integers (long matches) and noise, so blocks end at every bit offset
    raw = np.concatenate([rng.integers(0, 50, 300_000), rng.standard_normal(150_000).view("<i8")]).astype("<i8")
    data = raw.tobytes()
    return data, body_040(data)


def recorded(sample: tuple[bytes, bytes]) -> list[zran.SeekPoint]:
    raw, body = sample
    out = bytearray(len(raw))
    points = zran.gunzip_recording(chunks(body), memoryview(out), span=SPAN)
    assert out == raw and points is not None
    return points


def test_points_every_span_and_every_stretch_reads_alone(sample: tuple[bytes, bytes]) -> None:
    raw, body = sample
    points = recorded(sample)
    assert points[0].out_start == 0 and points[0].window == b""
    assert len(points) > 10  # deflate blocks of this body decode to 2-200 KB each
    assert points[1].out_start >= min(SPAN, zran.FIRST_SPAN)  # a small first stretch: every open reads it
    assert all(b.out_start - a.out_start >= SPAN for a, b in zip(points[1:], points[2:]))
    assert {p.skip for p in points} - {0} != set(), "some points start mid-byte"
    for i, point in enumerate(points):
        assert len(point.window) == min(zran.WINDOW, point.out_start)
        start, end, out_start, out_end = zran.segment_bounds(points, i, len(body), len(raw))
        assert zran.inflate_segment(point, body[start:end], out_end - out_start) == raw[out_start:out_end]


def test_a_damaged_or_truncated_body_fails_as_the_plain_decoder_does(sample: tuple[bytes, bytes]) -> None:
    raw, body = sample
    with pytest.raises(CorruptBodyError, match="truncated"):
        zran.gunzip_recording(chunks(body[: len(body) // 2]), memoryview(bytearray(len(raw))))
    bad = bytearray(body)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(CorruptBodyError):
        zran.gunzip_recording(chunks(bytes(bad)), memoryview(bytearray(len(raw))))
    with pytest.raises(CorruptBodyError, match="more than"):
        zran.gunzip_recording(chunks(body), memoryview(bytearray(len(raw) - 1)))


def test_a_body_of_two_members_is_decoded_but_not_indexed() -> None:
    first, second = b"a" * 200_000, bytes(range(256)) * 500
    out = bytearray(len(first) + len(second))
    assert zran.gunzip_recording(chunks(body_040(first) + body_040(second)), memoryview(out), span=SPAN) is None
    assert out == first + second


def test_a_record_round_trips_and_every_forged_field_is_refused(sample: tuple[bytes, bytes]) -> None:
    raw, body = sample
    points = recorded(sample)
    blob = zran.encode_index(points, len(body), len(raw))
    assert zran.decode_index(blob, len(body), len(raw), span_floor=SPAN) == points

    def forged(**change: object) -> bytes:
        i = 2
        fields = {"start": points[i].start, "skip": points[i].skip, "out_start": points[i].out_start,
                  "window": points[i].window, "crc": points[i].crc}
        fields.update(change)
        copy = list(points)
        copy[i] = zran.SeekPoint(**fields)  # type: ignore[arg-type]
        return zran.encode_index(copy, len(body), len(raw))

    cases = [forged(skip=9), forged(start=len(body)), forged(start=points[1].start),
             forged(out_start=points[1].out_start + 1), forged(window=points[2].window[:-1]),
             forged(out_start=len(raw) + 5), zran.encode_index(points, len(body) + 1, len(raw)),
             zran.encode_index(points, len(body), len(raw) + 1), blob[:-3], blob + b"x",
             zlib.compress(b"ccz1" + b"\0" * 100), b"not zlib at all",
             zlib.compress(b"\0" * (zran.record_bound(len(raw) // SPAN + 2) + 10))]
    for case in cases:
        with pytest.raises(zran.IndexRecordError):
            zran.decode_index(case, len(body), len(raw), span_floor=SPAN)


def test_a_forged_window_or_crc_is_caught_when_its_stretch_is_read(sample: tuple[bytes, bytes]) -> None:
    raw, body = sample
    points = recorded(sample)
    point = points[3]
    start, end, out_start, out_end = zran.segment_bounds(points, 3, len(body), len(raw))
    window = bytes(b ^ 1 for b in point.window)
    for bad in (zran.SeekPoint(point.start, point.skip, point.out_start, window, point.crc),
                zran.SeekPoint(point.start, point.skip, point.out_start, point.window, point.crc ^ 1),
                zran.SeekPoint(point.start, (point.skip + 3) % 8, point.out_start, point.window, point.crc)):
        with pytest.raises(ValueError):
            zran.inflate_segment(bad, body[start:end], out_end - out_start)


def test_without_libz_nothing_is_worth_indexing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert zran.worth_indexing(zran.MIN_ARRAY)
    assert not zran.worth_indexing(zran.MIN_ARRAY - 1)
    monkeypatch.setattr(zran, "_libz", None)
    assert not zran.available() and not zran.worth_indexing(2**30)

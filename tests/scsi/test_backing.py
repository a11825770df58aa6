"""Backing stores: sparse memory and locked files (fcsoft.scsi.backing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcsoft.scsi import backing as backing_mod
from fcsoft.scsi.backing import (
    CHUNK_SIZE,
    BackingError,
    FileBacking,
    MemoryBacking,
    open_backing,
)

TIB = 1 << 40


# --- memory -----------------------------------------------------------------------------------


def test_memory_unwritten_reads_zeros() -> None:
    m = MemoryBacking(1 << 20)
    assert bytes(m.read(0, 4096)) == bytes(4096)
    assert bytes(m.read(CHUNK_SIZE - 100, 300)) == bytes(300)  # across a chunk boundary
    assert m.allocated_chunks == 0


def test_memory_one_tebibyte_costs_only_what_is_written() -> None:
    m = MemoryBacking(TIB)
    m.write(0, b"\x01" * 4096)
    m.write(TIB - 4096, b"\x02" * 4096)
    m.write(TIB // 2 - 10, b"\x03" * 20)  # straddles two chunks
    assert m.allocated_chunks == 4
    assert bytes(m.read(TIB - 4096, 4096)) == b"\x02" * 4096
    assert bytes(m.read(TIB // 2 - 12, 24)) == b"\0\0" + b"\x03" * 20 + b"\0\0"
    assert bytes(m.read(TIB // 4, 512)) == bytes(512)


def test_memory_read_inside_one_chunk_is_a_view_of_the_store() -> None:
    m = MemoryBacking(1 << 20)
    m.write(4096, b"abcd" * 1024)
    view = m.read(4096, 4096)
    assert isinstance(view, memoryview)
    assert bytes(view) == b"abcd" * 1024
    m.write(4096, b"zz")
    assert bytes(view[:4]) == b"zzcd"  # no copy: the view aliases the chunk


def test_memory_write_from_memoryview_across_chunks() -> None:
    m = MemoryBacking(4 * CHUNK_SIZE)
    data = bytes(range(256)) * (3 * CHUNK_SIZE // 256)
    m.write(CHUNK_SIZE // 2, memoryview(data))
    assert bytes(m.read(CHUNK_SIZE // 2, len(data))) == data
    assert m.allocated_chunks == 4


def test_memory_zero_writes_do_not_allocate_and_free_whole_chunks() -> None:
    m = MemoryBacking(4 * CHUNK_SIZE)
    m.write(100, bytes(1000))
    assert m.allocated_chunks == 0
    m.write(0, b"\xff" * (2 * CHUNK_SIZE))
    assert m.allocated_chunks == 2
    m.write(0, bytes(CHUNK_SIZE))  # a whole chunk of zeros frees it
    assert m.allocated_chunks == 1
    m.write(CHUNK_SIZE + 10, bytes(10))  # partial zeros into an allocated chunk: written
    assert bytes(m.read(CHUNK_SIZE + 8, 14)) == b"\xff\xff" + bytes(10) + b"\xff\xff"


def test_memory_unmap_frees_whole_chunks_and_zeroes_the_edges() -> None:
    m = MemoryBacking(8 * CHUNK_SIZE)
    m.write(0, b"\x11" * (8 * CHUNK_SIZE))
    m.unmap(CHUNK_SIZE // 2, 3 * CHUNK_SIZE)  # half, two whole, half
    assert m.allocated_chunks == 6
    assert bytes(m.read(0, CHUNK_SIZE // 2)) == b"\x11" * (CHUNK_SIZE // 2)
    assert bytes(m.read(CHUNK_SIZE // 2, 3 * CHUNK_SIZE)) == bytes(3 * CHUNK_SIZE)
    assert bytes(m.read(3 * CHUNK_SIZE + CHUNK_SIZE // 2, 10)) == b"\x11" * 10
    m.unmap(5 * CHUNK_SIZE + 1, 2)  # inside one chunk
    assert bytes(m.read(5 * CHUNK_SIZE, 4)) == b"\x11\0\0\x11"


def test_memory_unmap_of_a_huge_range_walks_the_allocated_chunks() -> None:
    m = MemoryBacking(TIB)
    for offset in (0, TIB // 3, TIB - CHUNK_SIZE):
        m.write(offset, b"\x01" * 512)
    m.unmap(0, TIB)  # 16M chunks in range, 3 allocated: must not iterate the range
    assert m.allocated_chunks == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4 * CHUNK_SIZE - 1),
                          st.integers(1, 2 * CHUNK_SIZE), st.integers(0, 255)), max_size=12))
def test_memory_matches_a_bytearray_model(ops: list[tuple[bool, int, int, int]]) -> None:
    size = 4 * CHUNK_SIZE
    m = MemoryBacking(size)
    model = bytearray(size)
    for is_write, offset, length, value in ops:
        length = min(length, size - offset)
        if is_write:
            m.write(offset, bytes((value,)) * length)
            model[offset:offset + length] = bytes((value,)) * length
        else:
            m.unmap(offset, length)
            model[offset:offset + length] = bytes(length)
    assert bytes(m.read(0, size)) == bytes(model)


def test_memory_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        MemoryBacking(0)
    with pytest.raises(ValueError):
        MemoryBacking(4096, chunk_size=0)


# --- files ------------------------------------------------------------------------------------


def test_file_is_created_sparse_and_holes_read_zeros(tmp_path: Path) -> None:
    path = tmp_path / "lun.img"
    with FileBacking(path, 1 << 30) as f:
        assert path.stat().st_size == 1 << 30
        assert path.stat().st_blocks * 512 < 1 << 20  # sparse: nothing allocated
        f.write(1 << 29, b"middle")
        assert bytes(f.read(0, 4096)) == bytes(4096)
        assert bytes(f.read((1 << 29) - 2, 10)) == b"\0\0middle\0\0"


def test_file_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "lun.img"
    f = FileBacking(path, 1 << 20)
    f.write(512, b"persist" * 100)
    f.flush()
    f.close()
    f.close()  # idempotent
    with FileBacking(path, 1 << 20) as again:
        assert bytes(again.read(512, 700)) == b"persist" * 100


def test_second_opener_in_this_process_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lun.img"
    with FileBacking(path, 1 << 20):
        with pytest.raises(BackingError, match="lun.img.*in use"):
            FileBacking(path, 1 << 20)
    with FileBacking(path, 1 << 20):  # the lock went with the close
        pass


def test_second_process_is_refused_while_the_lock_is_held(tmp_path: Path) -> None:
    path = tmp_path / "lun.img"
    code = ("import sys\nfrom fcsoft.scsi.backing import FileBacking, BackingError\n"
            "try:\n    FileBacking(sys.argv[1], 1 << 20)\n"
            "except BackingError as e:\n    print(e); sys.exit(3)\n")
    with FileBacking(path, 1 << 20):
        proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                              text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert str(path) in proc.stdout
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_smaller_file_grows_and_larger_file_is_refused(tmp_path: Path) -> None:
    small = tmp_path / "small.img"
    small.write_bytes(b"head" + bytes(1020))
    with FileBacking(small, 1 << 20) as f:
        assert small.stat().st_size == 1 << 20
        assert bytes(f.read(0, 4)) == b"head"
        assert (f.grown_from, f.created) == (1024, False)  # the start logs it
    with FileBacking(small, 1 << 20) as f:
        assert f.grown_from is None
    big = tmp_path / "big.img"
    big.write_bytes(bytes(8192))
    with pytest.raises(BackingError) as info:
        FileBacking(big, 4096)
    assert str(info.value) == (f"backing file {big} holds 8192 bytes, more than the configured "
                               'size of 4096: set size = "8192B" to use it whole, or name '
                               "another file")
    assert big.stat().st_size == 8192  # never truncated
    with FileBacking(big, 8192):  # and not left locked
        pass


def test_a_created_file_is_removed_when_opening_fails_or_on_discard(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    new = tmp_path / "new.img"
    with FileBacking(new, 4096) as f:
        assert f.created and f.grown_from is None
    assert new.exists()  # closing keeps it
    again = FileBacking(new, 4096)
    assert not again.created
    again.discard()
    assert new.exists()  # discard removes only what this store created

    fresh = FileBacking(tmp_path / "fresh.img", 4096)
    fresh.discard()
    assert not (tmp_path / "fresh.img").exists()
    (tmp_path / "small.img").write_bytes(bytes(512))
    grown = FileBacking(tmp_path / "small.img", 4096)
    grown.discard()
    assert (tmp_path / "small.img").stat().st_size == 512  # grown, then given back

    def too_big(fd: int, length: int) -> None:
        raise OSError(27, "File too large")

    monkeypatch.setattr(os, "ftruncate", too_big)
    with pytest.raises(BackingError, match="huge.img .*cannot grow: File too large"):
        FileBacking(tmp_path / "huge.img", 1 << 62)
    assert not (tmp_path / "huge.img").exists()  # no 0-byte image left behind


def test_file_that_cannot_grow_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    path = tmp_path / "small.img"
    path.write_bytes(bytes(512))

    def no_space(fd: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "ftruncate", no_space)
    with pytest.raises(BackingError, match="small.img.*less than the configured"):
        FileBacking(path, 1 << 20)
    with FileBacking(path, 512):  # the failed open released its lock
        pass


def test_unusable_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BackingError, match="cannot open backing file .*Is a directory"):
        FileBacking(tmp_path, 4096)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BackingError, match="fifo is not a regular file"):
        FileBacking(fifo, 4096)
    with pytest.raises(BackingError, match="cannot open backing file .*missing"):
        FileBacking(tmp_path / "missing" / "lun.img", 4096)


def test_flush_calls_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    with FileBacking(tmp_path / "lun.img", 4096) as f:
        calls.clear()  # creating the file synced its directory
        f.write(0, b"x")
        assert calls == []
        f.flush()
        assert calls == [f.fd]


def test_unmap_punches_holes(tmp_path: Path) -> None:
    path = tmp_path / "lun.img"
    with FileBacking(path, 4 << 20) as f:
        f.write(0, b"\x5a" * (4 << 20))
        f.flush()
        before = path.stat().st_blocks
        f.unmap(1 << 20, 2 << 20)
        assert bytes(f.read((1 << 20) - 1, 3)) == b"\x5a\0\0"
        assert bytes(f.read(3 << 20, 2)) == b"\x5a\x5a"
        assert bytes(f.read(1 << 20, 2 << 20)) == bytes(2 << 20)
        if f._punch:  # the file system supports PUNCH_HOLE
            assert path.stat().st_blocks < before


def test_unmap_without_punch_hole_writes_zeros(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backing_mod, "_punch_hole", lambda fd, offset, length: False)
    with FileBacking(tmp_path / "lun.img", 3 << 20) as f:
        f.write(0, b"\x01" * (3 << 20))
        f.unmap(100, (2 << 20) + 50)
        assert bytes(f.read(98, 4)) == b"\x01\x01\0\0"
        assert bytes(f.read((2 << 20) + 148, 4)) == b"\0\0\x01\x01"
        assert not f._punch


def test_closed_file_backing_refuses_io(tmp_path: Path) -> None:
    f = FileBacking(tmp_path / "lun.img", 4096)
    f.close()
    with pytest.raises(BackingError, match="closed"):
        f.read(0, 1)


def test_open_backing_picks_the_kind(tmp_path: Path) -> None:
    assert isinstance(open_backing("memory", 4096), MemoryBacking)
    f = open_backing(tmp_path / "x.img", 4096)
    try:
        assert isinstance(f, FileBacking)
    finally:
        f.close()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_write_many_is_writes_one_after_another(data: st.DataObject) -> None:
    """A run of data frames handed over together (write_many) leaves the store exactly as
    writing them one by one does: pieces inside allocated chunks, across chunk ends, into
    unallocated chunks, all-zero pieces."""
    cs = 64
    size = cs * 8
    seed = data.draw(st.lists(st.tuples(st.integers(0, size - 1), st.binary(min_size=1,
                                                                             max_size=80))))
    offset = data.draw(st.integers(0, size - 1))
    lengths = data.draw(st.lists(st.integers(1, 70), max_size=12))
    pieces = [data.draw(st.sampled_from([bytes(n), bytes([n % 251 + 1]) * n,
                                         os.urandom(n)])) for n in lengths]
    total = sum(map(len, pieces))
    if offset + total > size:
        return
    one, many = MemoryBacking(size, chunk_size=cs), MemoryBacking(size, chunk_size=cs)
    for at, blob in seed:
        blob = blob[:size - at]
        one.write(at, blob)
        many.write(at, blob)
    at = offset
    for p in pieces:
        one.write(at, p)
        at += len(p)
    many.write_many(offset, [memoryview(p) for p in pieces])
    assert bytes(many.read(0, size)) == bytes(one.read(0, size))

"""Backing stores for logical units: where the blocks live.

Two kinds, one interface (`Backing`), byte-addressed (the logical unit turns LBAs into byte
offsets and checks ranges before it calls in):

- `MemoryBacking`: sparse, a dict of fixed-size chunks. A 1 TiB LU costs nothing until written;
  unwritten bytes read as zeros; writing zeros to an unallocated chunk allocates nothing, and a
  whole chunk written with zeros (or unmapped) is freed. A read that stays inside one chunk
  returns a memoryview of that chunk: no copy. The view aliases the store, so a later write
  shows through it, as a real array's cache would under overlapping SIMPLE tasks.
- `FileBacking`: a regular file (or block device), created sparse when missing, locked with an
  exclusive non-blocking flock(2) so two fcsoft processes (or two LUs of one) never share it;
  a regular file smaller than the LU grows sparse to its size (`grown_from` says from what),
  one larger is refused (its tail would be data nobody can reach: say the size you mean);
  `discard` (a start that failed) removes a file this store created and shrinks back one it
  grew, and a failed opening removes a file it created;
  pread/pwrite, fsync(2) on `flush()` (SYNCHRONIZE CACHE, FUA, write-through caching),
  `unmap()` punches a hole (fallocate PUNCH_HOLE) where the file system supports it and
  writes zeros where it does not. The lock dies with the process (docs/behaviour.md, durability).

Nothing here loops per byte or per block: a request touches each chunk (64 KiB) once, or is one
system call.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Backing", "BackingError", "CHUNK_SIZE", "FileBacking", "MemoryBacking",
           "open_backing"]

#: MemoryBacking allocation unit; also the optimal UNMAP granularity the LU reports
CHUNK_SIZE = 64 * 1024
_ZEROS = bytes(1024 * 1024)  # compared against (startswith: a memcmp) and written from


class BackingError(OSError):
    """A backing store that cannot be opened or used; the message names the file. An OSError,
    so that start-up code that reports file problems in one line reports these too."""


class Backing(Protocol):
    """What a logical unit needs from its store. Offsets and lengths are in bytes and always
    inside [0, size): the caller checks ranges."""

    size: int

    def read(self, offset: int, length: int) -> bytes | bytearray | memoryview:
        """`length` bytes at `offset` (zeros where nothing was written)."""
        ...

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Store `data` at `offset`."""
        ...

    def flush(self) -> None:
        """Make every completed write durable (fsync for files, nothing for memory)."""
        ...

    def unmap(self, offset: int, length: int) -> None:
        """Deallocate the range; it reads as zeros afterwards."""
        ...

    def close(self) -> None:
        """Release the store (idempotent)."""
        ...


def _is_zero(data: bytes | bytearray | memoryview) -> bool:
    """True when `data` is all zero bytes. bytes.startswith takes any buffer and compares
    with memcmp; comparing memoryviews with == would unpack item by item."""
    n = len(data)
    if n <= len(_ZEROS):
        return _ZEROS.startswith(data)
    view = memoryview(data)
    return all(_ZEROS.startswith(view[i:i + len(_ZEROS)]) for i in range(0, n, len(_ZEROS)))


class MemoryBacking:
    """Sparse in-memory store: dict of CHUNK_SIZE bytearrays keyed by chunk index."""

    def __init__(self, size: int, chunk_size: int = CHUNK_SIZE) -> None:
        if size <= 0:
            raise ValueError(f"backing size must be positive, not {size}")
        if chunk_size <= 0 or chunk_size > len(_ZEROS):
            raise ValueError(f"chunk size must be 1..{len(_ZEROS)}, not {chunk_size}")
        self.size = size
        self.chunk_size = chunk_size
        self._chunks: dict[int, bytearray] = {}
        self._zero = memoryview(_ZEROS)[:chunk_size]

    @property
    def allocated_chunks(self) -> int:
        """How many chunks hold data (what the store costs, in chunk_size units)."""
        return len(self._chunks)

    def read(self, offset: int, length: int) -> bytes | bytearray | memoryview:
        cs = self.chunk_size
        index, start = divmod(offset, cs)
        if start + length <= cs:  # one chunk: a view, no copy
            chunk = self._chunks.get(index)
            if chunk is None:
                return self._zero[:length] if length <= cs else bytes(length)
            return memoryview(chunk)[start:start + length]
        out = bytearray(length)  # zero-filled: unallocated chunks need no work
        chunks = self._chunks
        pos = 0
        while pos < length:
            n = min(cs - start, length - pos)
            chunk = chunks.get(index)
            if chunk is not None:
                out[pos:pos + n] = memoryview(chunk)[start:start + n]
            pos += n
            index += 1
            start = 0
        return out

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        cs = self.chunk_size
        index, start = divmod(offset, cs)
        n = data.nbytes if isinstance(data, memoryview) else len(data)
        if start + n <= cs and n < cs:  # part of one chunk (a data frame's payload)
            chunk = self._chunks.get(index)
            if chunk is not None:
                chunk[start:start + n] = data
                return
        view = memoryview(data)  # slices of a view are views: no copy until the chunk
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        length = len(view)
        chunks = self._chunks
        pos = 0
        while pos < length:
            n = min(cs - start, length - pos)
            piece = view[pos:pos + n]
            chunk = chunks.get(index)
            if n == cs:  # a whole chunk: replace it, or free it when all zeros
                if _is_zero(piece):
                    chunks.pop(index, None)
                elif chunk is None:
                    chunks[index] = bytearray(piece)
                else:
                    chunk[:] = piece
            elif chunk is not None:
                chunk[start:start + n] = piece
            elif not _is_zero(piece):
                chunk = chunks[index] = bytearray(cs)
                chunk[start:start + n] = piece
            pos += n
            index += 1
            start = 0

    def write_many(self, offset: int, pieces: list[bytes | memoryview]) -> None:
        """`write` of consecutive pieces from `offset` (a run of data frames): a piece that
        falls inside a chunk already allocated is copied there directly, the chunk found
        once for all the pieces in it; any other piece goes through `write`."""
        cs = self.chunk_size
        chunks = self._chunks
        index, start = divmod(offset, cs)
        chunk = chunks.get(index)
        for data in pieces:
            n = len(data)
            end = start + n
            if chunk is not None and end < cs:
                chunk[start:end] = data
                start = end
                continue
            self.write(index * cs + start, data)
            index += end // cs
            start = end % cs
            chunk = chunks.get(index)

    def flush(self) -> None:
        """Nothing to do: memory is as durable as it gets."""

    def unmap(self, offset: int, length: int) -> None:
        cs = self.chunk_size
        end = offset + length
        first_full = -(-offset // cs)
        last_full = end // cs  # exclusive
        chunks = self._chunks
        if last_full > first_full:
            if last_full - first_full > len(chunks):  # huge range: walk what exists instead
                for index in [i for i in chunks if first_full <= i < last_full]:
                    del chunks[index]
            else:
                for index in range(first_full, last_full):
                    chunks.pop(index, None)
            self._zero_partial(offset, min(end, first_full * cs))
            self._zero_partial(max(offset, last_full * cs), end)
        else:
            self._zero_partial(offset, end)

    def _zero_partial(self, start: int, end: int) -> None:
        """Zero [start, end), which lies within at most two chunks, where allocated."""
        cs = self.chunk_size
        while start < end:
            index, off = divmod(start, cs)
            n = min(cs - off, end - start)
            chunk = self._chunks.get(index)
            if chunk is not None:
                chunk[off:off + n] = self._zero[:n]
            start += n

    def resize(self, size: int) -> None:
        """Grow (the new bytes read as zeros) or shrink (what lies beyond is dropped)."""
        if size <= 0:
            raise ValueError(f"backing size must be positive, not {size}")
        if size < self.size:
            self.unmap(size, self.size - size)
            for index in [i for i in self._chunks if i * self.chunk_size >= size]:
                del self._chunks[index]
        self.size = size

    def close(self) -> None:
        self._chunks.clear()

    def __repr__(self) -> str:
        return f"MemoryBacking(size={self.size}, allocated_chunks={len(self._chunks)})"


# --- files ------------------------------------------------------------------------------------

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02


_fallocate: Any = None  # libc fallocate(2), looked up once; False when there is none


def _punch_hole(fd: int, offset: int, length: int) -> bool:
    """fallocate(PUNCH_HOLE | KEEP_SIZE) through libc; False when not available here."""
    global _fallocate
    import ctypes
    if _fallocate is None:
        try:
            import ctypes.util
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            func = libc.fallocate64 if hasattr(libc, "fallocate64") else libc.fallocate
            func.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
            func.restype = ctypes.c_int
            _fallocate = func
        except (OSError, AttributeError):
            _fallocate = False
    if _fallocate is False:
        return False
    if _fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err))


class FileBacking:
    """A file (created sparse if missing) holding the LU's bytes, locked while open."""

    def __init__(self, path: str | os.PathLike[str], size: int) -> None:
        if size <= 0:
            raise ValueError(f"backing size must be positive, not {size}")
        self.path = Path(path)
        self.size = size
        self._punch = True  # until the file system says otherwise
        self._fd = -1
        #: the size the file had before it grew to `size` (None: it did not grow)
        self.grown_from: int | None = None
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags | os.O_EXCL, 0o644)
            self.created = True  #: this store created the file (a start may take it back)
        except FileExistsError:
            self.created = False
            try:
                fd = os.open(self.path, flags, 0o644)
            except OSError as exc:
                raise BackingError(f"cannot open backing file {self.path}: "
                                   f"{exc.strerror or exc}") from None
        except OSError as exc:
            raise BackingError(f"cannot open backing file {self.path}: "
                               f"{exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BackingError(f"backing file {self.path} is in use (locked by another "
                                   "fcsoft process or LU)") from None
            self._check_size(fd)
            if self.created:
                self._sync_directory()
        except BaseException:
            os.close(fd)
            self._remove_created()
            raise
        self._fd = fd

    def _check_size(self, fd: int) -> None:
        st = os.fstat(fd)
        if stat.S_ISBLK(st.st_mode):
            have = os.lseek(fd, 0, os.SEEK_END)
            if have < self.size:
                raise BackingError(f"backing device {self.path} holds {have} bytes, less than "
                                   f"the configured {self.size}")
            return
        if not stat.S_ISREG(st.st_mode):
            raise BackingError(f"backing file {self.path} is not a regular file or block "
                               "device")
        if st.st_size > self.size:
            raise BackingError(f"backing file {self.path} holds {st.st_size} bytes, more than "
                               f"the configured size of {self.size}: set size = "
                               f"\"{st.st_size}B\" to use it whole, or name another file")
        if st.st_size < self.size:
            try:
                os.ftruncate(fd, self.size)  # grows sparse: no blocks allocated
            except OSError as exc:
                raise BackingError(f"backing file {self.path} holds {st.st_size} bytes, less "
                                   f"than the configured {self.size}, and cannot grow: "
                                   f"{exc.strerror or exc}") from None
            if not self.created:
                self.grown_from = st.st_size

    def _remove_created(self) -> None:
        if self.created:
            self.created = False
            try:
                self.path.unlink()
            except OSError:
                pass

    def discard(self) -> None:
        """Close, and undo what opening did to the file system (a start that failed): a file
        this store created is removed, one it grew gets its old size back."""
        if self.grown_from is not None and self._fd >= 0:
            try:
                os.ftruncate(self._fd, self.grown_from)
            except OSError:
                pass
            self.grown_from = None
        self.close()
        self._remove_created()

    def _sync_directory(self) -> None:
        """A new file's directory entry must survive a crash as its data does."""
        try:
            dfd = os.open(self.path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise BackingError(f"backing file {self.path} is closed")
        return self._fd

    def read(self, offset: int, length: int) -> bytes | bytearray | memoryview:
        fd = self.fd
        data = os.pread(fd, length, offset)
        if len(data) == length:
            return data
        out = bytearray(length)  # short read: retry the rest, zeros past EOF
        out[:len(data)] = data
        got = len(data)
        while got < length:
            more = os.pread(fd, length - got, offset + got)
            if not more:
                break
            out[got:got + len(more)] = more
            got += len(more)
        return out

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        fd = self.fd
        view = memoryview(data).cast("B")
        done = 0
        total = len(view)
        while done < total:
            done += os.pwrite(fd, view[done:], offset + done)

    def flush(self) -> None:
        os.fsync(self.fd)

    def unmap(self, offset: int, length: int) -> None:
        if length <= 0:
            return
        if self._punch and _punch_hole(self.fd, offset, length):
            return
        self._punch = False
        zeros = memoryview(_ZEROS)
        end = offset + length
        while offset < end:
            n = min(len(zeros), end - offset)
            self.write(offset, zeros[:n])
            offset += n

    def resize(self, size: int) -> None:
        """Grow the file sparse to `size` bytes (a block device must already hold them).
        Shrinking is refused: the data past the new end would be lost."""
        if size < self.size:
            raise ValueError(f"a file-backed LU only grows ({self.path} holds {self.size} "
                             f"bytes, more than {size})")
        st = os.fstat(self.fd)
        if stat.S_ISBLK(st.st_mode):
            have = os.lseek(self.fd, 0, os.SEEK_END)
            if have < size:
                raise ValueError(f"backing device {self.path} holds {have} bytes, less than "
                                 f"{size}")
        elif st.st_size < size:
            try:
                os.ftruncate(self.fd, size)
            except OSError as exc:
                raise ValueError(f"backing file {self.path} cannot grow to {size} bytes: "
                                 f"{exc.strerror or exc}") from None
        self.size = size

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)  # releases the flock

    def __enter__(self) -> FileBacking:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FileBacking({str(self.path)!r}, size={self.size})"


def open_backing(backing: str | os.PathLike[str], size: int) -> Backing:
    """The store a LunConfig's `backing` names: "memory" or a file path."""
    if isinstance(backing, str) and backing == "memory":
        return MemoryBacking(size)
    return FileBacking(backing, size)

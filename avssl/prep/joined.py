"""A read-only, seekable view of several files as one: VoxCeleb's ``_partaa``, ``_partab``, ... pieces.

The official instructions join the pieces with ``cat`` into one zip before unzipping, which needs the
archive's size again in free disk (about 270 GB for the VoxCeleb2 face tracks). ``zipfile`` and
``tarfile`` only need a seekable file object, so reading the pieces in place gives the same archive
without the copy.
"""

from __future__ import annotations

import bisect
import io
import os
from pathlib import Path


class JoinedFile(io.RawIOBase):
    """The concatenation of ``parts`` (in the order given), read like one file."""

    def __init__(self, parts: list[str | os.PathLike]) -> None:
        super().__init__()
        self.paths = [Path(part) for part in parts]
        self.starts = [0]
        for path in self.paths:
            self.starts.append(self.starts[-1] + path.stat().st_size)
        self.size = self.starts[-1]
        self._position = 0
        self._handles: dict[int, io.BufferedReader] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Fill ``buffer`` across part boundaries; short only at the end of the last part.

        Readers such as zipfile treat a short read of a header as a corrupt archive, so a read must not
        stop at a part boundary.
        """
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._position < self.size:
            index = bisect.bisect_right(self.starts, self._position) - 1
            handle = self._handle(index)
            handle.seek(self._position - self.starts[index])
            wanted = min(len(view) - filled, self.starts[index + 1] - self._position)
            count = handle.readinto(view[filled : filled + wanted])
            if not count:
                raise OSError(f"{self.paths[index]} is shorter than when it was opened; was it replaced?")
            filled += count
            self._position += count
        return filled

    def _handle(self, index: int) -> io.BufferedReader:
        if index not in self._handles:
            self._handles[index] = open(self.paths[index], "rb")  # closed in close()
        return self._handles[index]

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        super().close()

"""Writing a small file so that a crash or power cut leaves either the old or the new one."""

from __future__ import annotations

import os


def write_durably(path: str, data: bytes) -> None:
    """Temporary name, fsync, rename, directory fsync: a crash leaves all of it or a .tmp.

    The directory fsync is what makes the rename itself durable: without it a power cut can
    bring back the old file (or none) after the new one was reported written.
    """
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A failed write (disk full) would otherwise leave bytes nobody counts.
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    fsync_directory(os.path.dirname(path) or ".")


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""On-disk spool: where acknowledged batches wait while the store is unavailable.

A batch the store refused is written here as one segment file (written to a temporary name,
fsynced, renamed, directory fsynced), and only then acknowledged to the exporter. The writer
replays segments oldest first once the store answers again and deletes each one after its
insert succeeded; a crash between insert and delete replays it once more, which the span-id
keys of the tables absorb (ReplacingMergeTree + FINAL).

Segments are pickles of record objects. They are written and read only by this process, in a
directory the operator gives it; they are not an exchange format.

The spool is bounded in bytes: when full, :meth:`Spool.append` raises :class:`SpoolFullError`
and the receivers answer "retry later" (nothing is acknowledged that is not on disk).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_margin.processor.durable_file import write_durably

SEGMENT_SUFFIX = ".spool"
LOCK_NAME = ".lock"


class SpoolInUseError(OSError):
    """Another process holds the spool directory."""


class SpoolFullError(RuntimeError):
    """The spool is at its byte bound; the batch was not written."""


class UnreadableSegmentError(RuntimeError):
    """A segment cannot be read back (damaged or removed on disk); ``segment`` names it."""

    def __init__(self, segment: Segment, cause: BaseException) -> None:
        super().__init__(f"spool segment {segment.path} is unreadable: {cause}")
        self.segment = segment


@dataclass(frozen=True)
class Segment:
    path: str
    size: int
    records: int


class Spool:
    """Ordered, bounded, crash-safe list of batches in one directory."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = os.path.abspath(directory)
        self.max_bytes = max_bytes
        # Private to the processor's user: segments are unpickled on replay.
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        if os.stat(self.directory).st_mode & 0o022:
            raise PermissionError(
                f"spool directory {self.directory} is writable by other users; "
                "make it private (chmod 700)"
            )
        self._lock_fd: int | None = _lock_directory(self.directory)
        self._lock = threading.Lock()
        self._segments: list[Segment] = []
        self._bytes = 0
        self._next_seq = 0
        self._recover()

    # -- state ---------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Pick up segments left by an earlier run; drop half-written temporaries."""
        names = sorted(os.listdir(self.directory))
        for name in names:
            path = os.path.join(self.directory, name)
            if name.endswith(".tmp"):
                os.remove(path)  # never acknowledged: the exporter was told to retry
            elif name.endswith(SEGMENT_SUFFIX):
                seq, records = _parse_name(name)
                size = os.path.getsize(path)
                self._segments.append(Segment(path, size, records))
                self._bytes += size
                self._next_seq = max(self._next_seq, seq + 1)
        # Numbers already used in bad/ too: a segment set aside later must not replace one.
        bad = os.path.join(self.directory, "bad")
        if os.path.isdir(bad):
            for name in os.listdir(bad):
                if name.endswith(SEGMENT_SUFFIX):
                    self._next_seq = max(self._next_seq, _parse_name(name)[0] + 1)

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._bytes

    @property
    def records(self) -> int:
        with self._lock:
            return sum(s.records for s in self._segments)

    def __len__(self) -> int:
        with self._lock:
            return len(self._segments)

    # -- writing -------------------------------------------------------------------------------
    def append(self, payload: Any, records: int) -> Segment:
        """Write one batch durably; raises SpoolFullError past the bound."""
        data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            if self._bytes + len(data) > self.max_bytes:
                raise SpoolFullError(
                    f"spool {self.directory} is full ({self._bytes} of {self.max_bytes} bytes)"
                )
            seq = self._next_seq
            self._next_seq += 1
            name = f"{seq:016d}-{records}{SEGMENT_SUFFIX}"
            path = os.path.join(self.directory, name)
            write_durably(path, data)
            segment = Segment(path, len(data), records)
            self._segments.append(segment)
            self._bytes += segment.size
            return segment

    # -- replaying -----------------------------------------------------------------------------
    def peek(self) -> tuple[Segment, Any] | None:
        """The oldest segment and its payload, or None when empty."""
        with self._lock:
            if not self._segments:
                return None
            segment = self._segments[0]
        with open(segment.path, "rb") as handle:
            return segment, pickle.load(handle)

    def peek_many(self, max_records: int, skip: int = 0) -> list[tuple[Segment, Any]]:
        """The oldest segments (after ``skip``) holding at most ``max_records``, at least one
        if any."""
        with self._lock:
            chosen: list[Segment] = []
            total = 0
            for segment in self._segments[skip:]:
                if chosen and total + segment.records > max_records:
                    break
                chosen.append(segment)
                total += segment.records
        out = []
        for segment in chosen:
            try:
                with open(segment.path, "rb") as handle:
                    out.append((segment, pickle.load(handle)))
            except Exception as exc:  # noqa: BLE001 - any damage: the writer sets it aside
                raise UnreadableSegmentError(segment, exc) from exc
        return out

    def remove(self, segment: Segment) -> None:
        """Forget a segment once its rows are stored."""
        with self._lock:
            self._segments.remove(segment)
            self._bytes -= segment.size
        try:
            os.remove(segment.path)
        except FileNotFoundError:
            pass

    def set_aside(self, payload: Any, records: int) -> str:
        """Write records the store refuses (not a whole segment) to ``bad/``, for inspection.
        Outside the byte bound: they are no longer waiting to be stored."""
        bad = os.path.join(self.directory, "bad")
        os.makedirs(bad, exist_ok=True)
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
        path = os.path.join(bad, f"{seq:016d}-{records}{SEGMENT_SUFFIX}")
        write_durably(path, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
        return path

    def quarantine(self, segment: Segment) -> str:
        """Move a segment the store keeps refusing to ``bad/`` (kept for inspection)."""
        bad = os.path.join(self.directory, "bad")
        os.makedirs(bad, exist_ok=True)
        target = os.path.join(bad, os.path.basename(segment.path))
        with self._lock:
            self._segments.remove(segment)
            self._bytes -= segment.size
        try:
            os.replace(segment.path, target)
        except FileNotFoundError:  # removed by hand: nothing left to keep
            pass
        return target

    def close(self) -> None:
        """Release the directory (segments stay for the next run)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _lock_directory(directory: str) -> int:
    """Hold the directory for this process's lifetime: two processors on one spool (server
    mode's default ``./llm-margin-spool``, one config for two replicas) would number segments
    alike and replace each other's acknowledged batches."""
    fd = os.open(os.path.join(directory, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        by = f" (pid {holder})" if holder.isdigit() else ""
        raise SpoolInUseError(
            f"the spool directory {directory} is in use by another process{by}"
        ) from exc
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _parse_name(name: str) -> tuple[int, int]:
    stem = name[: -len(SEGMENT_SUFFIX)]
    seq, _, records = stem.partition("-")
    return int(seq), int(records or 0)


def batch_payload(calls: Sequence[Any], task_spans: Sequence[Any]) -> tuple[list, list]:
    return list(calls), list(task_spans)

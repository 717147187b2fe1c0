"""Where file contents live. A small interface, so an S3-compatible store can stand in for the local one.

Blobs are content-addressed (the key is the SHA-256 of the bytes): storing the same image twice keeps one copy,
and a key never changes meaning.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol


def blob_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    def put(self, data: bytes) -> str:
        """Stores the bytes (if not already there) and returns their key."""

    def read(self, key: str, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset`; raises KeyError if there is no such blob."""

    def size(self, key: str) -> int:
        """Raises KeyError if there is no such blob."""

    def delete(self, key: str) -> None:
        """Removes the blob if present."""


class LocalBlobStore:
    """A directory: <root>/ab/cd/<sha256>. Writes go to a temporary file in the same directory, are fsynced, and
    are renamed into place (then the directory is fsynced), so a crash never leaves a partial blob visible."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise KeyError(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = blob_key(data)
        path = self._path(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return key

    def read(self, key: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except FileNotFoundError:
            raise KeyError(key) from None

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except KeyError:
            pass

"""Where file contents live. A small interface, so an S3-compatible store can stand in for the local one.

Blobs are content-addressed (the key is the SHA-256 of the bytes): storing the same image twice keeps one copy,
and a key never changes meaning.
"""

from __future__ import annotations

import asyncio
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


class Blobs(Protocol):
    """What the services use: a blob store whose calls never block the event loop."""

    async def put(self, data: bytes) -> str: ...

    async def read(self, key: str, offset: int, length: int) -> bytes:
        """KeyError when there is no such blob."""
        ...

    async def delete(self, key: str) -> None: ...


class ThreadedBlobStore:
    """A LocalBlobStore (SQLite deployments: one machine, a folder under the project) with its file work off the
    event loop."""

    def __init__(self, local: LocalBlobStore):
        self.local = local

    async def put(self, data: bytes) -> str:
        return await asyncio.to_thread(self.local.put, data)

    async def read(self, key: str, offset: int, length: int) -> bytes:
        return await asyncio.to_thread(self.local.read, key, offset, length)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.local.delete, key)


class DatabaseBlobStore:
    """Blobs in the database (PostgreSQL deployments): every replica reads what any replica stored, with no shared
    folder. Stored photos are small (a 512 px WebP, tens of KB), so a row each is cheap; reads fetch only the
    requested range."""

    def __init__(self, db):
        self._db = db

    async def put(self, data: bytes) -> str:
        from communities.storage import media as media_repo

        key = blob_key(data)
        async with self._db.unit_of_work(write=True) as uow:
            await media_repo.put_blob(uow, key, data)
        return key

    async def read(self, key: str, offset: int, length: int) -> bytes:
        from communities.storage import media as media_repo

        async with self._db.unit_of_work(write=False) as uow:
            data = await media_repo.read_blob(uow, key, offset, length)
        if data is None:
            raise KeyError(key)
        return data

    async def delete(self, key: str) -> None:
        from communities.storage import media as media_repo

        async with self._db.unit_of_work(write=True) as uow:
            await media_repo.delete_blob(uow, key)

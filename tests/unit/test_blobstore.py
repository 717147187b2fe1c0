"""LocalBlobStore: content-addressed files under a directory, written so a crash never leaves a partial blob."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from communities.media import blobstore
from communities.media.blobstore import LocalBlobStore

DATA = b"photo bytes \x00\xff" * 1000


@pytest.fixture
def store(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "media")


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_put_is_content_addressed(store):
    key = store.put(DATA)
    assert key == hashlib.sha256(DATA).hexdigest()
    [path] = files_under(store.root)
    assert path == store.root / key[:2] / key[2:4] / key
    assert path.read_bytes() == DATA
    assert store.put(b"other bytes") != key


def test_put_is_idempotent(store):
    key = store.put(DATA)
    [path] = files_under(store.root)
    inode = path.stat().st_ino
    assert store.put(DATA) == key
    assert files_under(store.root) == [path]
    assert path.stat().st_ino == inode, "an existing blob is left alone"
    assert path.read_bytes() == DATA


def test_root_is_created(tmp_path):
    root = tmp_path / "a" / "b" / "media"
    store = LocalBlobStore(root)
    assert root.is_dir()
    assert store.read(store.put(b"x"), 0, 10) == b"x"


def test_read_with_offset_and_length(store):
    key = store.put(DATA)
    assert store.read(key, 0, len(DATA)) == DATA
    assert store.read(key, 0, 10) == DATA[:10]
    assert store.read(key, 100, 37) == DATA[100:137]
    assert store.read(key, len(DATA) - 5, 100) == DATA[-5:]
    assert store.read(key, len(DATA), 100) == b""
    assert store.read(key, len(DATA) + 100, 100) == b""
    assert store.read(key, 0, 0) == b""
    chunks = [store.read(key, offset, 4096) for offset in range(0, len(DATA), 4096)]
    assert b"".join(chunks) == DATA


def test_size(store):
    assert store.size(store.put(DATA)) == len(DATA)
    assert store.size(store.put(b"")) == 0


def test_delete(store):
    key = store.put(DATA)
    other = store.put(b"keep me")
    store.delete(key)
    with pytest.raises(KeyError):
        store.read(key, 0, 1)
    with pytest.raises(KeyError):
        store.size(key)
    assert [path.name for path in files_under(store.root)] == [other]
    store.delete(key)  # again: nothing to do
    assert store.read(other, 0, 100) == b"keep me"
    assert store.put(DATA) == key and store.read(key, 0, 5) == DATA[:5], "a deleted blob can be stored again"


def test_missing_key(store):
    key = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(KeyError):
        store.read(key, 0, 1)
    with pytest.raises(KeyError):
        store.size(key)
    store.delete(key)


INVALID_KEYS = [
    "",
    "abc",
    "0" * 63,
    "0" * 65,
    "A" * 64,  # upper case is not how keys are spelled
    "g" * 64,
    "../" + "0" * 61,
    "00/00/" + "0" * 58,
    "/etc/passwd".ljust(64, "0"),
    "0" * 63 + "\n",
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_key(store, tmp_path, key):
    secret = tmp_path / "secret"
    secret.write_bytes(b"outside the store")
    store.put(DATA)
    with pytest.raises(KeyError):
        store.read(key, 0, 100)
    with pytest.raises(KeyError):
        store.size(key)
    store.delete(key)  # not an error, and nothing is removed
    assert len(files_under(store.root)) == 1 and secret.exists()


def test_no_temporary_files_are_left(store):
    for index in range(5):
        store.put(DATA + bytes([index]))
    store.put(DATA)
    names = [path.name for path in files_under(store.root)]
    assert len(names) == 6
    assert not [name for name in names if name.startswith(".incoming-")]


@pytest.mark.parametrize("failing", ["replace", "fsync", "write"])
def test_a_crash_while_storing_leaves_nothing(store, monkeypatch, failing):
    """Simulated crashes at each step of a put: the blob is not visible, no temporary file stays, and a later put
    works."""

    def boom(*args, **kwargs):
        raise OSError("disk on fire")

    if failing == "write":

        class Failing:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                self.handle.write(data[: len(data) // 2])
                raise OSError("disk full")

            def __getattr__(self, name):
                return getattr(self.handle, name)

        real_fdopen = os.fdopen
        monkeypatch.setattr(blobstore.os, "fdopen", lambda *a, **k: Failing(real_fdopen(*a, **k)))
    else:
        monkeypatch.setattr(blobstore.os, failing, boom)
    with pytest.raises(OSError):
        store.put(DATA)
    monkeypatch.undo()
    key = hashlib.sha256(DATA).hexdigest()
    with pytest.raises(KeyError):
        store.size(key)
    with pytest.raises(KeyError):
        store.read(key, 0, 1)
    assert files_under(store.root) == []
    assert store.put(DATA) == key and store.read(key, 0, len(DATA)) == DATA
    assert [path.name for path in files_under(store.root)] == [key]


def test_concurrent_puts_of_the_same_bytes(store):
    """Several threads storing the same photo at once: one blob, intact, no temporary files."""
    barrier = threading.Barrier(8)
    keys = []

    def put():
        barrier.wait()
        keys.append(store.put(DATA))

    threads = [threading.Thread(target=put) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(keys) == {hashlib.sha256(DATA).hexdigest()}
    [path] = files_under(store.root)
    assert path.read_bytes() == DATA


def test_blob_key_function():
    assert blobstore.blob_key(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

"""Reading an Updates.Subscribe stream from synchronous tests: a thread moves the updates into a queue."""

from __future__ import annotations

import queue
import threading

import grpc

from communities.v1 import updates_pb2, updates_pb2_grpc

_END = object()


class UpdateStream:
    def __init__(self, channel: grpc.Channel, metadata, cursor: str = "", *, wait_ready: bool = True):
        self._call = updates_pb2_grpc.UpdatesStub(channel).Subscribe(
            updates_pb2.Subscribe(cursor=cursor), metadata=metadata, timeout=120
        )
        self._queue: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.cursor = cursor
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if wait_ready:
            self.ready = self.next(15)
            assert self.ready.WhichOneof("event") == "ready", self.ready

    def _read(self) -> None:
        try:
            for update in self._call:
                self._queue.put(update)
        except grpc.RpcError as error:
            self.error = error
        self._queue.put(_END)

    def next(self, timeout: float = 10) -> updates_pb2.Update:
        item = self._queue.get(timeout=timeout)
        if item is _END:
            self._queue.put(_END)
            raise AssertionError(f"the stream ended: {self.error}")
        if item.cursor:
            self.cursor = item.cursor
        return item

    def expect(self, event: str, timeout: float = 10) -> updates_pb2.Update:
        """The next update, which must be `event`."""
        update = self.next(timeout)
        assert update.WhichOneof("event") == event, f"expected {event}, got {update}"
        return update

    def events(self, quiet: float = 0.5) -> list[updates_pb2.Update]:
        """Everything that arrives until nothing has for `quiet` seconds."""
        received = []
        while True:
            try:
                item = self._queue.get(timeout=quiet)
            except queue.Empty:
                return received
            if item is _END:
                self._queue.put(_END)
                return received
            if item.cursor:
                self.cursor = item.cursor
            received.append(item)

    def kinds(self, quiet: float = 0.5) -> list[str]:
        return [update.WhichOneof("event") for update in self.events(quiet)]

    def ended(self, timeout: float = 10) -> grpc.RpcError | None:
        """Wait for the stream to end; its error (None if it ended OK)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the stream did not end"
        return self.error

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(5)

    def __enter__(self) -> UpdateStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

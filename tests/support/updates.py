"""Reading an Updates.Subscribe stream from synchronous tests: a thread moves the updates into a queue."""

from __future__ import annotations

import itertools
import queue
import threading
import time

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

    def take(self, count: int, timeout: float = 30) -> list[updates_pb2.Update]:
        """The next `count` updates (then `events` tells whether more came)."""
        deadline = time.monotonic() + timeout
        return [self.next(max(0.1, deadline - time.monotonic())) for _ in range(count)]

    def until_nickname(self, marker: str, timeout: float = 30) -> list[updates_pb2.Update]:
        """Everything before the member_updated that sets a member's nickname to `marker` (see `settle`)."""
        received = []
        deadline = time.monotonic() + timeout
        while True:
            update = self.next(max(0.1, deadline - time.monotonic()))
            if update.HasField("member_updated") and update.member_updated.member.nickname == marker:
                return received
            received.append(update)

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


_markers = itertools.count(1)


def settle(members_stub, community_id: int, account, *streams: UpdateStream) -> list[list[updates_pb2.Update]]:
    """What each stream received until now, without guessing how long to wait: `account` (a member of the
    community, which every stream's caller is in) sets its own nickname to a unique marker, and since a community's
    updates arrive in commit order, each stream has received everything committed before once the marker arrives."""
    from communities.v1 import members_pb2

    marker = f"settle-{next(_markers)}"
    members_stub.EditMember(
        members_pb2.EditMember(community_id=community_id, member_id=account.id, nickname=marker),
        metadata=account.metadata,
    )
    return [stream.until_nickname(marker) for stream in streams]

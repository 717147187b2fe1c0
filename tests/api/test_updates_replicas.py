"""Update streams across replicas: two servers on one database. A change made through one reaches streams on the
other; a stream cut off when its server dies resumes on the other server from its last cursor with nothing lost
and nothing repeated; concurrent writers through both servers are seen by every subscriber in commit order."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from communities.v1 import communities_pb2, communities_pb2_grpc, roles_pb2, roles_pb2_grpc
from tests.support.postgres import free_port
from tests.support.server import AioServerFacade
from tests.support.updates import UpdateStream, settle


def test_a_change_through_one_server_reaches_a_stream_on_the_other(replica_channel, communities_stub, make_account):
    owner = make_account("owner")
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="A"), metadata=owner.metadata)
    on_replica = communities_pb2_grpc.CommunitiesStub(replica_channel)
    with UpdateStream(replica_channel, owner.metadata) as stream:
        communities_stub.EditCommunity(  # through the first server
            communities_pb2.EditCommunity(community_id=community.id, name="via first"), metadata=owner.metadata
        )
        assert stream.expect("community_updated").community_updated.name == "via first"
        on_replica.EditCommunity(
            communities_pb2.EditCommunity(community_id=community.id, name="via replica"), metadata=owner.metadata
        )
        assert stream.expect("community_updated").community_updated.name == "via replica"


def test_resume_on_another_server_after_the_first_dies(server, database_url, grpc_channel, make_account):
    owner = make_account("owner")
    doomed = AioServerFacade(database_url, worker_id=2, listen=f"127.0.0.1:{free_port()}")
    doomed.start()
    channel = grpc.insecure_channel(doomed.listen)
    try:
        communities = communities_pb2_grpc.CommunitiesStub(channel)
        community = communities.CreateCommunity(communities_pb2.CreateCommunity(name="R"), metadata=owner.metadata)
        stream = UpdateStream(channel, owner.metadata)
        names = [f"n{index}" for index in range(20)]
        writer_done = threading.Event()

        def write() -> None:
            # Through the surviving server, while the other one dies mid-stream.
            stub = communities_pb2_grpc.CommunitiesStub(grpc_channel)
            for name in names:
                stub.EditCommunity(
                    communities_pb2.EditCommunity(community_id=community.id, name=name), metadata=owner.metadata
                )
                time.sleep(0.02)
            writer_done.set()

        writer = threading.Thread(target=write)
        writer.start()
        seen = []
        while len(seen) < 5:
            seen.append(stream.expect("community_updated").community_updated.name)
        doomed.stop()  # the server dies with the stream open
        assert stream.ended(timeout=10) is not None
        seen.extend(update.community_updated.name for update in stream.events(0.1))
        cursor = stream.cursor
        writer.join(30)
        assert writer_done.is_set()
    finally:
        channel.close()
    with UpdateStream(grpc_channel, owner.metadata, cursor, wait_ready=False) as resumed:
        while True:
            update = resumed.next()
            if update.HasField("ready"):
                break
            seen.append(update.community_updated.name)
    assert seen == names, "every change exactly once, in order"


def test_concurrent_writers_on_both_servers_in_commit_order_per_community(
    replica_channel, grpc_channel, communities_stub, roles_stub, members_stub, make_account
):
    """Roles created in parallel through both servers: every subscriber gets each exactly once, and the order
    of a community's updates is the same for every subscriber (commit order), on either server."""
    owner = make_account("owner")
    community = communities_stub.CreateCommunity(communities_pb2.CreateCommunity(name="C"), metadata=owner.metadata)
    stubs = [roles_stub, roles_pb2_grpc.RolesStub(replica_channel)]
    with UpdateStream(grpc_channel, owner.metadata) as first, UpdateStream(replica_channel, owner.metadata) as second:

        def create(index: int) -> int:
            role = stubs[index % 2].CreateRole(
                roles_pb2.CreateRole(community_id=community.id, name=f"r{index}"), metadata=owner.metadata
            )
            return role.id

        with ThreadPoolExecutor(8) as pool:
            created = set(pool.map(create, range(40)))
        got_first, got_second = settle(members_stub, community.id, owner, first, second)
        order_first = [u.role_created.id for u in got_first if u.HasField("role_created")]
        order_second = [u.role_created.id for u in got_second if u.HasField("role_created")]
    assert set(order_first) == created and len(order_first) == len(created)
    assert order_first == order_second

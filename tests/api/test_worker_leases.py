"""Worker id leases: two servers on one database never mint ids with the same worker id."""

from communities.storage import workers


def claim(server, worker_id, instance, now, lease_ms=15_000):
    async def run():
        async with server.app.db.unit_of_work(write=True) as uow:
            return await workers.claim(uow, worker_id, instance, now, lease_ms)

    return server.run(run())


def renew(server, worker_id, instance, now):
    async def run():
        async with server.app.db.unit_of_work(write=True) as uow:
            return await workers.renew(uow, worker_id, instance, now)

    return server.run(run())


def test_running_server_holds_its_worker_id(server):
    now = server.app.clock_ms()
    # The test server leased worker 0 when it started and renews it: nobody else gets it.
    assert not claim(server, 0, "intruder", now)
    assert renew(server, 0, server.server.instance, now)


def test_lease_can_be_taken_only_after_it_lapses(server):
    assert claim(server, 7, "a", 1_000_000)
    assert not claim(server, 7, "b", 1_000_000 + 14_000)
    assert renew(server, 7, "a", 1_000_000 + 14_000)
    assert not claim(server, 7, "b", 1_000_000 + 28_000)
    assert claim(server, 7, "b", 1_000_000 + 14_000 + 15_001)
    # The old holder finds out at its next renewal.
    assert not renew(server, 7, "a", 1_000_000 + 40_000)
    assert renew(server, 7, "b", 1_000_000 + 40_000)

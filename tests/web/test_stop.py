"""The console inside the server's graceful stop: a call in progress through the bridge still gets its answer,
and once the stop has begun the console takes no new connections."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import httpx
import pytest

from communities.services import users as users_service
from tests.support.server import AioServerFacade


@pytest.fixture()
def stoppable(tmp_path):
    path = tmp_path / "communities.db"
    facade = AioServerFacade(f"sqlite:///{path}", console=True)
    facade.start()
    yield facade, path
    facade._loop.call_soon_threadsafe(facade._loop.stop)


def test_stop_lets_a_call_in_progress_through_the_console_finish(stoppable):
    facade, path = stoppable
    credentials = facade.run(users_service.create_user(facade.app, "Late", bot=False))
    url = facade.console_url
    answers: list[httpx.Response] = []

    def create() -> None:
        answers.append(
            httpx.post(
                f"{url}/communities.v1.Communities/CreateCommunity",
                content=json.dumps({"name": "Made while stopping"}),
                headers={"content-type": "application/json", "authorization": f"Bearer {credentials.token}"},
                timeout=30,
            )
        )

    # Another process holds SQLite's write lock: the call waits for it, in progress, while the stop begins.
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    caller = threading.Thread(target=create)
    caller.start()
    time.sleep(0.5)
    assert facade.server.calls.in_flight == 1
    stopper = threading.Thread(target=lambda: facade.run(facade.server.stop(10)))
    stopper.start()
    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/", timeout=5)  # no new connections once the stop has begun
    holder.execute("ROLLBACK")
    holder.close()
    caller.join(30)
    stopper.join(30)
    assert not stopper.is_alive()
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    assert answers[0].json()["name"] == "Made while stopping"

"""Real-time updates: the hub's resume/backpressure rules, and a real WebSocket client against
the service running in a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import polars as pl
import pytest
import uvicorn
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from core.lake import write_table
from serving.realtime.hub import Hub
from tests.serving.conftest import World, availability_frame, make_token


def test_hub_resume_reset_and_backpressure() -> None:
    async def scenario() -> None:
        hub = Hub(queue_size=3, replay=4)
        conn, replay, reset = hub.connect("u", None)
        assert (replay, reset) == ([], False)
        for i in range(5):
            hub.publish("u", {"type": "x", "i": i})
        await asyncio.sleep(0.01)  # deliveries run in the loop
        assert conn.overflowed.is_set(), "a client that does not read is cut off, not buffered"
        assert conn.queue.qsize() == 3
        hub.disconnect(conn)
        # resume after seq 2: events 3..5 replayed in order
        _, replay, reset = hub.connect("u", 2)
        assert [e["seq"] for e in replay] == [3, 4, 5] and not reset
        # resume from 0: event 1 is no longer buffered (replay=4): reset, not a silent gap
        _, replay, reset = hub.connect("u", 0)
        assert reset and replay == []
        _, replay, reset = hub.connect("u", 5)
        assert replay == [] and not reset
        # another user's stream is separate
        assert hub.seq("v") == 0
        # erasure drops the stream: nothing of it can be replayed any more
        hub.forget("u")
        assert hub.seq("u") == 0
        _, replay, reset = hub.connect("u", 2)
        assert replay == [] and not reset

    asyncio.run(scenario())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live(asgi_app: Any, fresh_world: World, service_env: pytest.MonkeyPatch) -> Iterator[str]:
    """The service in a real uvicorn server on loopback; yields its base URL (http://...)."""
    service_env.setenv("MEDIA_GATEWAY_POLL_S", "0.3")
    overlay = fresh_world.overlay(
        "live",
        anonymous_per_minute=1000,
        authenticated_per_minute=1000,
        realtime={"heartbeat_s": 0.5, "queue_size": 64, "replay": 256},
    )
    service_env.setenv("MEDIA_GATEWAY_CONFIG", str(overlay))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(asgi_app, host="127.0.0.1", port=port, log_level="warning", ws="websockets")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(base + "/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server not ready"
        time.sleep(0.2)
    yield base
    server.should_exit = True
    thread.join(timeout=30)


class Reader:
    """A well-behaved client: a thread reads every message, answers pings, queues the rest."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.pings = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for raw in self.ws:
                msg = json.loads(raw)
                if msg["type"] == "ping":
                    self.pings += 1
                    self.ws.send(json.dumps({"type": "pong"}))
                else:
                    self.inbox.put(msg)
        except ConnectionClosed:
            return

    def take(self, n: int, timeout: float = 90) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        return [self.inbox.get(timeout=max(0.1, deadline - time.monotonic())) for _ in range(n)]


def _move_arrival(world: World, provider: str, name: str) -> None:
    offers = availability_frame()
    arrival = pl.col("title_id") == "movie:329865"
    offers = offers.with_columns(
        pl.when(arrival).then(pl.lit(provider)).otherwise("provider_id").alias("provider_id"),
        pl.when(arrival).then(pl.lit(name)).otherwise("provider_name").alias("provider_name"),
    )
    write_table(world.settings().paths.lake, "availability", offers)


def _swap(base: str, promote) -> None:
    before = httpx.get(base + "/status").json()["champion_version"]
    promote()
    deadline = time.monotonic() + 60
    while httpx.get(base + "/status").json()["champion_version"] == before:
        assert time.monotonic() < deadline, "no swap"
        time.sleep(0.2)


def test_websocket_updates_heartbeat_and_resume(live: str, fresh_world: World, promote) -> None:
    ws_url = live.replace("http://", "ws://") + "/ws"
    token = make_token(fresh_world, "alice", ["read:recommendations", "write:watchlist"])
    headers = {"Authorization": f"Bearer {token}"}
    with pytest.raises(InvalidStatus):
        connect(ws_url).recv(timeout=5)
    with pytest.raises(InvalidStatus):
        connect(ws_url, additional_headers={"Authorization": "Bearer forged"}).recv(timeout=5)

    with connect(ws_url, additional_headers=headers) as ws:
        reader = Reader(ws)
        (welcome,) = reader.take(1)
        assert welcome["type"] == "welcome" and welcome["user"] == "alice" and welcome["seq"] == 0
        ws.send(json.dumps({"type": "subscribe", "titles": ["movie:329865", "movie:1"]}))
        (sub,) = reader.take(1)
        assert sub == {"type": "subscribed", "titles": ["movie:329865"], "unknown": ["movie:1"]}
        _move_arrival(fresh_world, "netflix", "Netflix")
        _swap(live, promote)
        events = reader.take(3)
    kinds = {(e["type"], e.get("change"), e.get("provider_id")) for e in events}
    assert kinds == {
        ("availability", "left", "hulu"),
        ("availability", "joined", "netflix"),
        ("top10", None, None),
    }, events
    assert [e["seq"] for e in events] == [1, 2, 3]
    top = next(e for e in events if e["type"] == "top10")
    assert len(top["results"]) == 10 and top["entered"] and top["left"]
    assert top["model_version"] != top["previous_model_version"]
    last = events[-1]["seq"]

    # while alice is away, Arrival goes back to hulu and another model is promoted
    _move_arrival(fresh_world, "hulu", "Hulu")
    _swap(live, promote)
    time.sleep(1.0)
    with connect(f"{ws_url}?resume={last}", additional_headers=headers) as ws:
        reader = Reader(ws)
        (welcome,) = reader.take(1)
        assert welcome["seq"] > last
        missed = reader.take(welcome["seq"] - last)
        deadline = time.monotonic() + 10
        while reader.pings == 0:  # heartbeats arrive while nothing happens
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.1)
    assert [e["seq"] for e in missed] == list(range(last + 1, welcome["seq"] + 1))
    changes = {
        (e.get("change"), e.get("provider_id")) for e in missed if e["type"] == "availability"
    }
    assert changes == {("left", "netflix"), ("joined", "hulu")}

"""``/ws``: the WebSocket endpoint (JSON text messages).

Protocol:

1. Connect with the bearer token in ``Authorization`` (or ``?access_token=`` for browsers, which
   cannot set headers on a WebSocket) and scope ``read:recommendations``; a missing or bad token
   refuses the handshake (HTTP 403). Optional ``?resume=<last seq seen>``.
2. Server: ``{"type": "welcome", "user", "seq", "heartbeat_s"}``, then the replayed events (or a
   ``{"type": "reset"}`` when they are no longer buffered).
3. Client: ``{"type": "subscribe", "titles": [...]}`` / ``unsubscribe``; server answers
   ``subscribed`` with the current set (unknown ids are listed in ``unknown``). The user's
   watchlist is always watched.
4. Server events carry ``seq``: ``availability`` (a provider joined/left a title in the user's
   country) and ``top10`` (a promoted model changed the user's top 10).
5. Heartbeats: the server sends ``{"type": "ping"}`` every ``heartbeat_s``; the client answers
   ``{"type": "pong"}`` (any message counts); a client silent for three beats is closed (4408).
6. A client too slow to drain its queue is closed with 1013 and reconnects with ``resume``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import weakref
from typing import Any

import bentoml
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from serving import auth
from serving.gateway import Gateway, canonical_content_id
from serving.guard import ApiError
from serving.ratelimit import client_ip
from serving.realtime.hub import OVERFLOW_CLOSE_CODE, Connection, Hub
from serving.realtime.watch import Watcher

router = APIRouter()
MAX_TITLES = 500
_hubs: dict[int, tuple[weakref.ref[Gateway], Hub, Watcher]] = {}
_hubs_lock = threading.Lock()


def hub_for(gateway: Gateway) -> tuple[Hub, Watcher]:
    """The hub and watcher of this gateway (one per service instance, created on first use)."""
    with _hubs_lock:
        found = _hubs.get(id(gateway))
        if found is None or found[0]() is not gateway:
            cfg = gateway.settings.serving.realtime
            hub = Hub(cfg.queue_size, cfg.replay)
            found = (weakref.ref(gateway), hub, Watcher(gateway, hub))
            _hubs[id(gateway)] = found
        return found[1], found[2]


def forget_user(gateway: Gateway, user: str) -> None:
    """Erasure: drop the user's buffered events and snapshots (if the channel was ever used)."""
    with _hubs_lock:
        found = _hubs.get(id(gateway))
    if found is not None and found[0]() is gateway:
        found[1].forget(user)
        found[2].forget(user)


def _authenticate(ws: WebSocket, gateway: Gateway) -> auth.Principal:
    header = ws.headers.get("authorization")
    token = ws.query_params.get("access_token")
    if header is None and token:
        header = f"Bearer {token}"
    client = client_ip(ws)
    principal = gateway.guard.check(header, client, auth.READ_RECOMMENDATIONS)
    if principal is None or principal.client:
        raise ApiError(403, "a user token is required")
    return principal


@router.websocket("/ws")
async def updates(ws: WebSocket) -> None:
    gateway: Gateway = bentoml.get_current_service().gateway  # type: ignore[attr-defined]
    try:
        principal = await run_in_threadpool(_authenticate, ws, gateway)
        resume_raw = ws.query_params.get("resume")
        resume = int(resume_raw) if resume_raw is not None else None
        if resume is not None and resume < 0:
            raise ValueError
    except (ApiError, ValueError):
        await ws.close(code=4401)
        return
    await ws.accept()
    hub, watcher = hub_for(gateway)
    user = principal.subject
    conn, replay, reset = hub.connect(user, resume)
    heartbeat = gateway.settings.serving.realtime.heartbeat_s
    try:
        await run_in_threadpool(watcher.watch, user, set())
        await ws.send_json(
            {"type": "welcome", "user": user, "seq": hub.seq(user), "heartbeat_s": heartbeat}
        )
        if reset:
            await ws.send_json({"type": "reset", "seq": hub.seq(user)})
        for event in replay:
            await ws.send_json(event)
        await _serve(ws, gateway, hub, watcher, conn, heartbeat)
    except WebSocketDisconnect:
        pass
    finally:
        hub.disconnect(conn)


async def _serve(
    ws: WebSocket, gateway: Gateway, hub: Hub, watcher: Watcher, conn: Connection, beat: float
) -> None:
    last_heard = time.monotonic()
    receiver = asyncio.ensure_future(ws.receive_text())
    sender = asyncio.ensure_future(conn.queue.get())
    overflow = asyncio.ensure_future(conn.overflowed.wait())
    try:
        while True:
            done, _ = await asyncio.wait(
                {receiver, sender, overflow}, timeout=beat, return_when=asyncio.FIRST_COMPLETED
            )
            if overflow in done:
                await ws.close(code=OVERFLOW_CLOSE_CODE, reason="client too slow; resume")
                return
            if sender in done:
                await ws.send_json(sender.result())
                sender = asyncio.ensure_future(conn.queue.get())
            if receiver in done:
                last_heard = time.monotonic()
                reply = await _handle(receiver.result(), gateway, hub, watcher, conn.user)
                if reply is not None:
                    await ws.send_json(reply)
                receiver = asyncio.ensure_future(ws.receive_text())
            if not done:
                if time.monotonic() - last_heard > 3 * beat:
                    await ws.close(code=4408, reason="no pong for three heartbeats")
                    return
                await ws.send_json({"type": "ping", "t": time.time()})
    finally:
        for task in (receiver, sender, overflow):
            task.cancel()


async def _handle(
    raw: str, gateway: Gateway, hub: Hub, watcher: Watcher, user: str
) -> dict[str, Any] | None:
    try:
        msg = json.loads(raw)
    except json.JSONDecodeError:
        return {"type": "error", "reason": "messages are JSON objects"}
    kind = msg.get("type") if isinstance(msg, dict) else None
    if kind == "pong":
        return None
    if kind in ("subscribe", "unsubscribe"):
        titles = msg.get("titles")
        if not isinstance(titles, list) or not all(isinstance(t, str) for t in titles):
            return {"type": "error", "reason": "titles must be a list of content ids"}
        if len(titles) > MAX_TITLES:
            return {"type": "error", "reason": f"at most {MAX_TITLES} titles"}
        known, unknown = set(), []
        catalog = gateway.state.catalog
        for raw_id in titles:
            try:
                known.add(canonical_content_id(catalog, raw_id))
            except ApiError:
                unknown.append(raw_id)
        if kind == "subscribe":
            await run_in_threadpool(watcher.watch, user, known)
            current = hub.subscribe(user, known)
        else:
            current = hub.unsubscribe(user, known)
        return {"type": "subscribed", "titles": sorted(current), "unknown": unknown}
    return {"type": "error", "reason": f"unknown message type {kind!r}"}
